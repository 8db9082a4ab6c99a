// openPacketCore (the dgram path's handle on the packet core): what it
// refuses, classify calls that could reach outside their buffers, and the
// drop reason of a refused TAP write, and the budget of ICMP too-big replies.
import { constants as osConstants } from 'node:os';
import t from 'tap';

import { openPacketCore } from '../src/io/core';
import { DropReason } from '../src/ports/drops';
import { TX_ICMP_REPLY } from '../src/ports/core';
import { ICMP_TOO_BIG_BURST, ICMP_TOO_BIG_PER_S, MTU_MAX_BYTES } from '../src/tables/limits.generated';
import { mac, vxlanDatagram, frame } from './fakes';

const OWN = mac('02:00:00:00:00:01');

t.test('a network out of range is VXLAND_BAD_ARGUMENT', async (t) => {
  const core = openPacketCore({ family: 4, dstPort: 4789 });
  for (const o of [{ mtu: MTU_MAX_BYTES + 1 }, { vni: 1 << 24 }, { ownMac: Buffer.alloc(5) }]) {
    t.throws(
      () => core.addNetwork({ vni: 42, mtu: 1450, ownMac: OWN, ...o }),
      { code: 'VXLAND_BAD_ARGUMENT' },
      JSON.stringify(Object.keys(o)),
    );
  }
});

t.test('classify refuses what is not an address or reaches past a buffer', async (t) => {
  const core = openPacketCore({ family: 4, dstPort: 4789 });
  t.ok(core.addNetwork({ vni: 42, mtu: 1450, ownMac: OWN }));
  core.setSourcePolicy(42, 'any', [], []);
  t.throws(() => core.classifyRx(Buffer.alloc(30), 'not-an-ip', 0), /not an IP literal/);
  t.throws(() => core.classifyTx(42, Buffer.alloc(20), Uint32Array.of(10), Uint32Array.of(11), 1, new Int32Array(1), 0), /outside the buffer/);
  t.throws(() => core.classifyTx(42, Buffer.alloc(20), Uint32Array.of(0), Uint32Array.of(14), 2, new Int32Array(2), 0), /count exceeds/);
  t.throws(() => core.classifyTx(43, Buffer.alloc(20), Uint32Array.of(0), Uint32Array.of(14), 1, new Int32Array(1), 0), /no network has vni 43/);
  t.equal(core.classifyRx(vxlanDatagram(43, frame('02:00:00:00:00:01', '02:00:00:00:00:02')), '198.18.0.9', 0), DropReason.RxWrongVni);
  t.equal(core.result[0], 43, 'the foreign VNI is in result[0]');
});

t.test('networks are keyed by VNI: added once, removed with their entries', async (t) => {
  const core = openPacketCore({ family: 4, dstPort: 4789 });
  t.ok(core.addNetwork({ vni: 42, mtu: 1450, ownMac: OWN }));
  t.notOk(core.addNetwork({ vni: 42, mtu: 1400, ownMac: OWN }), 'the same VNI twice is refused');
  t.ok(core.addNetwork({ vni: 43, mtu: 1450, ownMac: OWN }));
  const peer = '198.18.0.2';
  for (const vni of [42, 43]) core.setSourcePolicy(vni, 'peers', [peer], []);
  const inner = frame('02:00:00:00:00:01', '02:00:00:00:00:02');
  t.equal(core.classifyRx(vxlanDatagram(43, inner), peer, 0), -2, 'network 43 delivers');
  core.fdbSet(43, 0x020000000009, peer, false);
  t.ok(core.removeNetwork(43));
  t.notOk(core.removeNetwork(43), 'unknown once removed');
  t.equal(core.classifyRx(vxlanDatagram(43, inner), peer, 0), DropReason.RxWrongVni, 'its VNI is foreign now');
  t.notOk(core.fdbDelete(43, 0x020000000009), 'its mirror entries went with it');
  t.ok(core.addNetwork({ vni: 43, mtu: 1450, ownMac: OWN }), 'and it can come back');
  t.equal(core.classifyRx(vxlanDatagram(43, inner), peer, 0), DropReason.RxSourceNotAllowed, 'with a policy of its own (nobody named yet)');
});

t.test('a TAP write refused with EAGAIN is rx_tap_busy, with any other errno rx_tap_error (the engine counts by the same rule)', async (t) => {
  const core = openPacketCore({ family: 4, dstPort: 4789 });
  const { EAGAIN, EIO, EINVAL, ENOBUFS } = osConstants.errno;
  t.equal(core.rxTapWriteDrop(EAGAIN), DropReason.RxTapBusy, 'EAGAIN');
  for (const errno of [EIO, EINVAL, ENOBUFS]) t.equal(core.rxTapWriteDrop(errno), DropReason.RxTapError, `errno ${errno}`);
});

t.test('ICMP too-big replies hold to the per-network budget: a full bucket, then the rate, each network its own', async (t) => {
  const core = openPacketCore({ family: 4, dstPort: 4789 });
  const mtu = 1450;
  for (const vni of [42, 43]) t.ok(core.addNetwork({ vni, mtu, ownMac: OWN }));
  /** count oversize IPv4 DF frames of network vni at nowMs: how many were answered. */
  const answered = (vni: number, count: number, nowMs: number): number => {
    const one = frame('02:00:00:00:00:0a', '02:00:00:00:00:0b', mtu + 1);
    one[14] = 0x45;
    one.writeUInt16BE(0x4000, 14 + 6);
    Buffer.from([10, 0, 0, 1, 10, 0, 0, 2]).copy(one, 14 + 12);
    const buf = Buffer.concat(Array.from({ length: count }, () => one));
    const offsets = Uint32Array.from({ length: count }, (_, i) => i * one.length);
    const lengths = new Uint32Array(count).fill(one.length);
    const codes = new Int32Array(count);
    core.classifyTx(vni, buf, offsets, lengths, count, codes, nowMs);
    t.ok(codes.every((c) => c === TX_ICMP_REPLY || c === DropReason.TxOversize), 'every frame is oversize, answered or not');
    return codes.filter((c) => c === TX_ICMP_REPLY).length;
  };
  t.equal(answered(42, 3 * ICMP_TOO_BIG_BURST, 1000), ICMP_TOO_BIG_BURST, 'a burst gets the full bucket');
  t.equal(answered(42, 5, 1000), 0, 'then nothing at the same moment');
  t.equal(answered(43, 5, 1000), 5, 'another network has its own bucket');
  t.equal(answered(42, 5, 1000 + 2000 / ICMP_TOO_BIG_PER_S), 2, 'two intervals later, two tokens');
  t.equal(answered(42, 3 * ICMP_TOO_BIG_BURST, 1000 + 3_600_000), ICMP_TOO_BIG_BURST, 'an hour later, never more than the bucket');
});
