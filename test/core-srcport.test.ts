// The flow hash behind per-flow outer source ports (native/core_srcport.h),
// through the addon as the dgram path calls it (PacketCore.flowSlot and
// classifyTx's flowSlots) and srcPortCandidate, which both data paths bind
// their send sockets with: stable for a flow, spread evenly over the slots,
// and every candidate port inside its range.
import t from 'tap';

import { loadAddon } from '../src/io/addon';
import { openPacketCore } from '../src/io/core';
import { TX_FLOOD } from '../src/ports/core';
import { SRC_PORT_BIND_ATTEMPTS, SRC_PORT_SOCKETS } from '../src/tables/limits.generated';
import { mac } from './fakes';

const VNI = 42;
const OWN = '02:00:00:00:00:01';
const PEER_MAC = '02:00:00:00:00:02';
const FLOWS = 1000;

interface Flow {
  src: string;
  dst: string;
  proto: number;
  srcPort: number;
  dstPort: number;
}

/** An Ethernet + IPv4 frame of flow f, payloadBytes long past the L4 ports, with IP id / TTL / TCP flags that vary per segment. */
function ipv4Frame(f: Flow, payloadBytes: number, id = 0, ttl = 64): Buffer {
  const b = Buffer.alloc(14 + 20 + 20 + payloadBytes, 0x5a);
  mac(PEER_MAC).copy(b, 0);
  mac(OWN).copy(b, 6);
  b.writeUInt16BE(0x0800, 12);
  b[14] = 0x45;
  b.writeUInt16BE(20 + 20 + payloadBytes, 16);
  b.writeUInt16BE(id, 18);
  b.writeUInt16BE(0x4000, 20);
  b[22] = ttl;
  b[23] = f.proto;
  for (const [off, ip] of [[26, f.src], [30, f.dst]] as const) ip.split('.').forEach((o, i) => (b[off + i] = Number(o)));
  b.writeUInt16BE(f.srcPort, 34);
  b.writeUInt16BE(f.dstPort, 36);
  b.writeUInt32BE(id * 1448, 38); // the TCP sequence number moves on per segment
  return b;
}

function ipv6Frame(srcLast: number, srcPort: number, payloadBytes: number, hopLimit = 64): Buffer {
  const b = Buffer.alloc(14 + 40 + 8 + payloadBytes, 0x33);
  mac(PEER_MAC).copy(b, 0);
  mac(OWN).copy(b, 6);
  b.writeUInt16BE(0x86dd, 12);
  b[14] = 0x60;
  b.writeUInt16BE(8 + payloadBytes, 18);
  b[20] = 17;
  b[21] = hopLimit;
  Buffer.from('fd000000000000000000000000000000', 'hex').copy(b, 22);
  b[22 + 15] = srcLast;
  Buffer.from('fd0000000000000000000000000000ff', 'hex').copy(b, 38);
  b.writeUInt16BE(srcPort, 54);
  b.writeUInt16BE(4791, 56);
  return b;
}

function flowOf(i: number): Flow {
  return { src: `10.42.${(i >> 8) & 0xff}.${i & 0xff}`, dst: '10.42.255.1', proto: 6, srcPort: 32768 + ((i * 7919) % 28000), dstPort: 5201 };
}

function setup() {
  const core = openPacketCore({ family: 4, dstPort: 4789 });
  core.addNetwork({ vni: VNI, mtu: 9000, ownMac: mac(OWN) });
  core.setFloodList(VNI, ['198.18.0.2']);
  return core;
}

t.test('one flow, one slot: whatever its segments carry', async (t) => {
  const core = setup();
  const f = flowOf(7);
  const slot = core.flowSlot(ipv4Frame(f, 1448));
  t.ok(slot >= 0 && slot < SRC_PORT_SOCKETS, `a slot of ${SRC_PORT_SOCKETS}`);
  for (let seg = 0; seg < 20; seg++) {
    t.equal(core.flowSlot(ipv4Frame(f, seg === 19 ? 100 : 1448, seg, 64 - seg)), slot, `segment ${seg} (other id, TTL, length, sequence)`);
  }
  t.equal(core.flowSlot(ipv4Frame(f, 0)), slot, 'a bare ACK of the flow too');
  const v6 = core.flowSlot(ipv6Frame(1, 40000, 1200));
  t.equal(core.flowSlot(ipv6Frame(1, 40000, 80, 3)), v6, 'an IPv6 flow keeps its slot');

  // classifyTx gives the dgram path the same slot for each frame it sends.
  const frames = [ipv4Frame(f, 1448), ipv4Frame(flowOf(8), 1448), ipv6Frame(2, 40001, 64)];
  const buffer = Buffer.concat(frames);
  const offsets = Uint32Array.from(frames.map((_, i) => frames.slice(0, i).reduce((n, x) => n + x.length, 0)));
  const lengths = Uint32Array.from(frames, (x) => x.length);
  const codes = new Int32Array(3);
  const flowSlots = new Uint32Array(3).fill(0xffffffff);
  core.classifyTx(VNI, buffer, offsets, lengths, 3, codes, 1_000_000, undefined, flowSlots);
  t.same([...codes], [TX_FLOOD, TX_FLOOD, TX_FLOOD], 'the frames go out (flooded to the peer)');
  t.same([...flowSlots], frames.map((x) => core.flowSlot(x)), 'classifyTx writes each frame\'s flow slot');
});

t.test('the flows spread evenly over the slots', async (t) => {
  const core = setup();
  const perSlot = new Array<number>(SRC_PORT_SOCKETS).fill(0);
  for (let i = 0; i < FLOWS; i++) perSlot[core.flowSlot(ipv4Frame(flowOf(i), 64))]++;
  const expected = FLOWS / SRC_PORT_SOCKETS;
  // A uniform hash puts each slot's count within about 3 standard
  // deviations (sqrt(15.6) ~ 4) of the mean.
  const outliers = perSlot.map((n, slot) => ({ slot, n })).filter(({ n }) => Math.abs(n - expected) > 3.5 * Math.sqrt(expected));
  t.same(outliers, [], `${FLOWS} flows: every slot near ${expected.toFixed(1)} (min ${Math.min(...perSlot)}, max ${Math.max(...perSlot)})`);
  const chi2 = perSlot.reduce((s, n) => s + (n - expected) ** 2 / expected, 0);
  // 63 degrees of freedom: chi-square below 100 at p > 0.002.
  t.ok(chi2 < 100, `chi-square ${chi2.toFixed(1)} for ${SRC_PORT_SOCKETS - 1} degrees of freedom`);

  // Flows that differ only in their source port (iperf3 -P, one client) spread too.
  const ports = new Set<number>();
  for (let p = 0; p < 8 * 16; p++) ports.add(core.flowSlot(ipv4Frame({ ...flowOf(1), srcPort: 50000 + p }, 0)));
  t.ok(ports.size > SRC_PORT_SOCKETS * 0.8, `128 client ports reach ${ports.size} slots`);
  // Not IP: the MAC addresses decide.
  const arp = Buffer.alloc(60);
  arp.writeUInt16BE(0x0806, 12);
  const slots = new Set<number>();
  for (let i = 0; i < 64; i++) {
    mac(`02:00:00:00:01:${i.toString(16).padStart(2, '0')}`).copy(arp, 6);
    slots.add(core.flowSlot(arp));
  }
  t.ok(slots.size > 20, `64 senders of non-IP frames reach ${slots.size} slots`);
});

t.test('candidate ports stay inside the range, spread first, then walk on', async (t) => {
  const { srcPortCandidate } = loadAddon();
  for (const [min, max] of [[40000, 40999], [32768, 60999], [1, 1], [65500, 65535], [40000, 40003]]) {
    const span = max - min + 1;
    let outside = 0;
    for (let slot = 0; slot < SRC_PORT_SOCKETS; slot++) {
      for (let attempt = 0; attempt < SRC_PORT_BIND_ATTEMPTS; attempt++) {
        const p = srcPortCandidate(min, max, slot, attempt);
        if (p < min || p > max) outside++;
      }
    }
    t.equal(outside, 0, `${min}-${max}: every candidate inside`);
    const firsts = Array.from({ length: SRC_PORT_SOCKETS }, (_, slot) => srcPortCandidate(min, max, slot, 0));
    t.equal(new Set(firsts).size, Math.min(span, SRC_PORT_SOCKETS), `${min}-${max}: the slots start on distinct ports where there are enough`);
    t.equal(firsts[0], min, `${min}-${max}: slot 0 starts at the bottom`);
    if (span >= SRC_PORT_SOCKETS) {
      const gaps = new Set(firsts.slice(1).map((p, i) => p - firsts[i]));
      t.ok(Math.max(...gaps) - Math.min(...gaps) <= 1, `${min}-${max}: evenly spaced (gaps ${[...gaps].join(', ')})`);
    }
    t.equal(srcPortCandidate(min, max, 0, span), min, `${min}-${max}: the walk wraps around`);
  }
  t.throws(() => srcPortCandidate(2000, 1000, 0, 0), /min <= max/, 'a reversed range is refused');
});
