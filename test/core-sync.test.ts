// CoreSync feeding a real packet core context (the dgram path's PacketCore)
// from an Fdb and a SourceFilter: what the core then decides follows every
// change, at once (static entries, learned entries ageing out or deleted,
// peers, the policy, the VLAN option), and nothing after stop().
import t from 'tap';

import { SourceFilter } from '../src/datapath/accept';
import { CoreSync } from '../src/datapath/core-sync';
import { followFdbEvent } from '../src/datapath/follow-fdb';
import { Stats } from '../src/datapath/stats';
import { Fdb } from '../src/fdb/fdb';
import { openPacketCore } from '../src/io/core';
import { RX_DELIVER, RX_DELIVER_LEARN, TX_FLOOD, TX_UNICAST } from '../src/ports/core';
import { DropReason } from '../src/ports/drops';
import { macKeyOf } from '../src/wire/mac';
import { frame, mac, vxlanDatagram } from './fakes';

const VNI = 42;
const OWN = '02:00:00:00:00:01';
const MAC_X = '02:00:00:00:00:aa';
const PEER = '198.18.0.2';
const OTHER = '198.18.0.3';
const NOW_MS = 1_000_000;

function setup() {
  const stats = new Stats();
  const sources = new SourceFilter({ kind: 'peers' });
  const fdb = new Fdb({ ageingMs: 300_000, maxLearned: 100, now: () => NOW_MS });
  fdb.subscribe((e) => followFdbEvent(e, stats, sources));
  const core = openPacketCore({ family: 4, dstPort: 4789 });
  core.addNetwork({ vni: VNI, mtu: 1450, ownMac: mac(OWN) });
  const sync = new CoreSync(core, fdb, sources, VNI);
  const rx = (from: string, src: string, nowMs = NOW_MS, inner?: Buffer) =>
    core.classifyRx(vxlanDatagram(VNI, inner ?? frame(OWN, src)), from, nowMs);
  const codes = new Int32Array(1);
  const tx = (f: Buffer) => {
    core.classifyTx(VNI, f, Uint32Array.of(0), Uint32Array.of(f.length), 1, codes, NOW_MS);
    return codes[0];
  };
  return { fdb, sources, core, sync, rx, tx };
}

t.test('the seed: peers, static entries and the VLAN option reach the core at start', async (t) => {
  const { fdb, sync, rx, tx } = setup();
  fdb.addPeer(VNI, PEER);
  fdb.addStatic(VNI, MAC_X, OTHER);
  t.equal(rx(PEER, MAC_X), DropReason.RxSourceNotAllowed, 'before start the core knows nobody');
  sync.start(true);
  t.equal(rx(PEER, MAC_X), DropReason.RxStaticMacConflict, 'the static entry pins MAC_X at another VTEP');
  t.equal(rx(OTHER, MAC_X), RX_DELIVER, "the static entry's VTEP is heard, and its MAC is not offered for learning");
  t.equal(tx(frame(MAC_X, OWN)), TX_UNICAST, 'unicast to the static MAC');
  t.equal(tx(frame('ff:ff:ff:ff:ff:ff', OWN)), TX_FLOOD, 'broadcast floods to the peer');
  const tagged = frame(OWN, '02:00:00:00:00:bb', Buffer.from('0064080045000000', 'hex'), 0x8100);
  t.equal(rx(PEER, '', NOW_MS, tagged), RX_DELIVER_LEARN, 'VLAN-tagged frames allowed');
  sync.stop();
});

t.test('changes follow at once; after stop() they no longer do', async (t) => {
  const { fdb, sources, core, sync, rx, tx } = setup();
  fdb.addPeer(VNI, PEER);
  sync.start(false);
  t.equal(rx(PEER, MAC_X), RX_DELIVER_LEARN, 'a new MAC is offered');
  t.same([core.result[0], core.result[1]], [VNI, macKeyOf(MAC_X)], 'with its VNI and MAC');
  fdb.learn(VNI, macKeyOf(MAC_X), PEER, NOW_MS);
  t.equal(tx(frame(MAC_X, OWN)), TX_UNICAST, 'the learned entry reaches the mirror');
  fdb.remove(VNI, MAC_X);
  t.equal(tx(frame(MAC_X, OWN)), TX_FLOOD, 'its deletion too');

  t.equal(rx(OTHER, MAC_X), DropReason.RxSourceNotAllowed, 'OTHER is no peer');
  sources.setPolicy({ kind: 'any' });
  t.equal(rx(OTHER, '02:00:00:00:00:cc'), RX_DELIVER_LEARN, 'a policy change applies to the next datagram');

  fdb.removePeer(VNI, PEER);
  await Promise.resolve();  // flood-list pushes are coalesced per microtask burst
  t.equal(tx(frame('ff:ff:ff:ff:ff:ff', OWN)), DropReason.TxNoDestination, 'the last peer gone: no destination');

  sync.stop();
  fdb.addPeer(VNI, PEER);
  await Promise.resolve();
  t.equal(tx(frame('ff:ff:ff:ff:ff:ff', OWN)), DropReason.TxNoDestination, 'after stop() the core is no longer fed');
});
