// NeighSync (src/datapath/neigh-sync.ts): a network's neighbour mirror and
// suppress flag follow the Neighbours table, seeded at start, per VNI.
import t from 'tap';
import { NeighSync } from '../src/datapath/neigh-sync';
import { Neighbours } from '../src/fdb/neighbours';
import type { CoreMirror } from '../src/ports/core';
import { macKeyOf } from '../src/wire/mac';

function recordingCore(): CoreMirror & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    fdbSet: () => undefined,
    fdbDelete: () => true,
    setFloodList: () => undefined,
    setSourcePolicy: () => undefined,
    setAllowVlan: () => undefined,
    setSuppress: (vni, on) => void calls.push(`suppress ${vni} ${on}`),
    neighSet: (vni, ip, macKey) => void calls.push(`set ${vni} ${ip} ${macKey}`),
    neighDelete: (vni, ip) => {
      calls.push(`delete ${vni} ${ip}`);
      return true;
    },
  };
}

const A = '02:00:00:00:00:0a';
const B = '02:00:00:00:00:0b';

t.test('seeds the network\'s entries and flag, then follows its changes only, until stopped', async (t) => {
  const n = new Neighbours();
  n.addStatic(42, '10.0.0.2', A);
  n.addStatic(43, '10.0.0.2', B);
  n.setSuppress(42, true);
  const core = recordingCore();
  const sync = new NeighSync(core, n, 42);
  sync.start();
  t.same(core.calls, [`set 42 10.0.0.2 ${macKeyOf(A)}`, 'suppress 42 true']);
  core.calls.length = 0;
  n.replaceEtcd(42, '192.0.2.3', [{ ip: 'fd00::3', mac: B }]);
  n.addStatic(43, '10.0.0.9', A);
  n.setSuppress(43, true);
  n.removeStatic(42, '10.0.0.2');
  n.setSuppress(42, false);
  t.same(core.calls, [`set 42 fd00::3 ${macKeyOf(B)}`, 'delete 42 10.0.0.2', 'suppress 42 false'], 'other networks\' changes are not mirrored');
  sync.stop();
  sync.stop();
  n.addStatic(42, '10.0.0.7', A);
  t.same(core.calls.length, 3, 'nothing after stop');
});
