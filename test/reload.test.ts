import t from 'tap';
import { loadConfig } from '../src/config/config';
import { planReload } from '../src/config/reload';

const base = loadConfig({ vni: '42', peer: [], dev: 'vxl0' });

function withFile(values: Record<string, unknown>) {
  return Object.freeze({ ...base, ...values }) as typeof base;
}

t.test('peers and static entries: add what is new, remove what the old file had and the new one lacks', async (t) => {
  const current = withFile({ peers: ['192.0.2.2', '192.0.2.3'], fdb: [{ mac: '02:00:00:00:00:01', vtep: '192.0.2.2' }, { mac: '02:00:00:00:00:02', vtep: '192.0.2.2' }] });
  const next = withFile({ peers: ['192.0.2.3', '192.0.2.4'], fdb: [{ mac: '02:00:00:00:00:01', vtep: '192.0.2.9' }] });
  t.match(planReload(current, next), {
    addPeers: ['192.0.2.4'],
    removePeers: ['192.0.2.2'],
    addStatic: [{ mac: '02:00:00:00:00:01', vtep: '192.0.2.9' }],
    removeStatic: ['02:00:00:00:00:02'],
    logLevel: null,
    accept: null,
    needRestart: [],
  });
});

t.test('log level and source policy apply; fixed settings need a restart', async (t) => {
  const next = withFile({ logLevel: 'debug', accept: { kind: 'any' }, mtu: 1400, port: 8472 });
  const plan = planReload(base, next);
  t.equal(plan.logLevel, 'debug');
  t.same(plan.accept, { kind: 'any' });
  t.same(plan.needRestart.sort(), ['mtu', 'port']);
});

t.test('an unchanged file changes nothing', async (t) => {
  t.same(planReload(base, withFile({})), { addPeers: [], removePeers: [], addStatic: [], removeStatic: [], logLevel: null, accept: null, needRestart: [] });
});
