// Networks: the networks a daemon serves and the one rule that turns a
// request's --vni / --dev into one of them.
import t from 'tap';
import { networkFromFlags } from '../src/config/config';
import { Networks, type ServedNetwork } from '../src/control/networks';
import { SourceFilter } from '../src/datapath/accept';
import { Stats } from '../src/datapath/stats';
import { Fdb } from '../src/fdb/fdb';
import { Neighbours } from '../src/fdb/neighbours';
import { StateStore } from '../src/state/store';

function served(vni: number, dev?: string): ServedNetwork {
  const config = networkFromFlags({ vni: String(vni), ...(dev ? { dev } : {}) }, 'udp4');
  return {
    config, origin: 'config', mac: '02:00:00:00:00:01', fdb: new Fdb({ ageingMs: 0, maxLearned: 10, maxLearnedPerVtep: 10, learnRatePerS: 0 }),
    neighbours: new Neighbours(), stats: new Stats(), sources: new SourceFilter(config.accept), store: new StateStore({ stateDir: '/nonexistent', dev: config.dev }),
    monitors: new Set(), tapCondition: () => ({ dev: config.dev, down: false, unrestored: [], failed: null }),
  };
}

t.test('no network, one, several: what a request without --vni/--dev means', async (t) => {
  const networks = new Networks();
  t.throws(() => networks.select({}), { code: 'VXLAND_NETWORK_UNKNOWN', message: 'this daemon serves no network yet; add one with "vxland network add --vni N"' });
  const n42 = served(42);
  networks.add(n42);
  t.equal(networks.select({}), n42, 'the only network');
  networks.add(served(43, 'blue'));
  t.throws(() => networks.select({}), {
    code: 'VXLAND_NETWORK_AMBIGUOUS',
    message: 'this daemon serves 2 networks (vni 42 (vxl42), vni 43 (blue)); say which with --vni N or --dev NAME',
  });
});

t.test('--vni and --dev select; both must agree; an unknown one lists what there is', async (t) => {
  const networks = new Networks();
  const n42 = served(42);
  const n43 = served(43, 'blue');
  networks.add(n42);
  networks.add(n43);
  t.equal(networks.select({ vni: 43 }), n43);
  t.equal(networks.select({ dev: 'vxl42' }), n42);
  t.equal(networks.select({ vni: 43, dev: 'blue' }), n43);
  t.throws(() => networks.select({ vni: 44 }), { code: 'VXLAND_NETWORK_UNKNOWN', message: 'no network with vni 44 (networks: vni 42 (vxl42), vni 43 (blue))' });
  t.throws(() => networks.select({ vni: 42, dev: 'blue' }), { code: 'VXLAND_NETWORK_UNKNOWN', message: 'no network with vni 42 and dev blue (networks:' });
  t.throws(() => networks.select({ dev: 'red' }), { message: /^no network with dev red/ });
  networks.delete(42);
  t.equal(networks.select({}), n43, 'after a delete the other is the only one');
});

t.test('a VNI or dev already served is refused', async (t) => {
  const networks = new Networks();
  networks.add(served(42));
  t.throws(() => networks.add(served(42, 'other')), { code: 'VXLAND_NETWORK_EXISTS', message: 'vni 42 is already served (network vni 42 (vxl42))' });
  t.throws(() => networks.add(served(43, 'vxl42')), { code: 'VXLAND_NETWORK_EXISTS', message: 'dev vxl42 is already served (network vni 42 (vxl42))' });
  t.same(networks.all().map((n) => n.config.vni), [42], 'nothing was added');
});
