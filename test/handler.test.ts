// DaemonControl over real Fdb, Stats, SourceFilter and state files, with the
// daemon's side of network add/del (opening TAPs) left out: what the control
// plane answers and saves for a host with several networks.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { loadConfig, networkFromFlags, type NetworkConfig } from '../src/config/config';
import { DaemonControl, type DaemonControlOptions, type NetworkLifecycle } from '../src/control/handler';
import { Networks, type ServedNetwork } from '../src/control/networks';
import { SourceFilter } from '../src/datapath/accept';
import { Stats } from '../src/datapath/stats';
import { Fdb } from '../src/fdb/fdb';
import { DropReason } from '../src/ports/drops';
import { Neighbours } from '../src/fdb/neighbours';
import { StateStore } from '../src/state/store';

function setup(t: tap.Test, vnis: number[], reload?: DaemonControlOptions['reload']) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vxland-handler-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const networks = new Networks();
  const neighbours = new Neighbours();
  const make = (config: NetworkConfig, origin: ServedNetwork['origin']): ServedNetwork => ({
    config, origin, mac: `02:00:00:00:00:${config.vni.toString(16).padStart(2, '0')}`,
    fdb: new Fdb({ ageingMs: 0, maxLearned: 10, maxLearnedPerVtep: 10, learnRatePerS: 0 }), neighbours, stats: new Stats(),
    sources: new SourceFilter(config.accept), store: new StateStore({ stateDir: dir, dev: config.dev }), monitors: new Set(),
    tapCondition: () => ({ dev: config.dev, down: config.vni === 43, unrestored: [], failed: null }),
  });
  for (const vni of vnis) networks.add(make(networkFromFlags({ vni: String(vni) }, 'udp4'), 'config'));
  const calls: string[] = [];
  const lifecycle: NetworkLifecycle = {
    async add(config) {
      calls.push(`add ${config.vni} ${config.dev}`);
      const n = make(config, 'runtime');
      networks.add(n);
      return n;
    },
    async remove(n) {
      calls.push(`remove ${n.config.vni}`);
      networks.delete(n.config.vni);
    },
  };
  const hostStats = new Stats();
  const host = loadConfig({ local: '192.0.2.1', stateDir: dir, socket: path.join(dir, 'vxland.sock'), metrics: '[::1]:9798', vni: '42' }, {}, '');
  const handler = new DaemonControl({
    host: { port: 4789, local: '192.0.2.1', family: 'udp4', srcPorts: { min: 40000, max: 40001 } },
    datapath: { kind: 'dgram', offloads: () => [], srcPorts: [40000, 40001], envelope: 'ttl 64, tos 0x00, df unset; no ECN (outer not-ECT, inner never marked CE)' },
    networks, lifecycle, hostStats, log: pino({ level: 'silent' }), startedMs: Date.now(),
    hostFacts: { interfaceWithAddress: () => null, interfaceTowards: () => null, interfaceMtu: () => null, tcpInCsumErrors: () => 0 },
    ...(reload === undefined ? {} : { reload }),
    hostConfig: () => host,
  });
  return { dir, networks, handler, calls, hostStats, host };
}

t.test('status: the host part and one block per network; a selected network also at the top level', async (t) => {
  const { handler, hostStats, networks } = setup(t, [42, 43]);
  hostStats.addDrops(DropReason.RxWrongVni, 2);
  (networks.get(42)!.stats as Stats).addDrops(DropReason.RxOversize, 1);
  const both = handler.status({});
  t.same(both.networks.map((n) => [n.vni, n.dev, n.origin]), [[42, 'vxl42', 'config'], [43, 'vxl43', 'config']]);
  t.same(both.host, { drops: { rx_wrong_vni: 2 }, dropsTotal: 2 });
  t.notOk('vni' in both, 'several networks: no network fields at the top level');
  const one = handler.status({ vni: 42 });
  t.match(one, { vni: 42, dev: 'vxl42', mac: '02:00:00:00:00:2a', networks: [{ vni: 42 }] });
  t.same(one.stats!.drops, { rx_oversize: 1 }, 'one of several selected: its own counters');
});

t.test('status and stats of the only network include the host drops; with several, a network shows its own', async (t) => {
  const { handler, hostStats, networks } = setup(t, [42]);
  hostStats.addDrops(DropReason.RxWrongVni, 2);
  t.same(handler.status({}).stats!.drops, { rx_wrong_vni: 2 });
  t.same(handler.stats({}).stats.drops, { rx_wrong_vni: 2 });
  hostStats.track('192.0.2.9');
  hostStats.vtep('192.0.2.9').drops += 4;
  hostStats.vtep('other').drops += 1;
  t.match(handler.stats({}).vteps, [{ vtep: '192.0.2.9', drops: 4 }, { vtep: 'other', drops: 1 }], 'and its per-VTEP rows the host\'s');
  await handler.networkAdd({ vni: '43' });
  t.same(handler.status({ vni: 42 }).stats!.drops, {}, 'selected among two');
  t.same(handler.stats({ vni: 42 }).stats.drops, {});
  t.equal(networks.size, 2);
});

t.test('a change goes to the selected network and its state file only', async (t) => {
  const { dir, handler } = setup(t, [42, 43]);
  t.throws(() => handler.peerAdd({}, '192.0.2.9'), { code: 'VXLAND_NETWORK_AMBIGUOUS' });
  handler.peerAdd({ vni: 43 }, '192.0.2.9');
  handler.fdbAdd({ dev: 'vxl43' }, '02:00:00:00:00:99', '192.0.2.9');
  t.same(handler.peerList({ vni: 43 }), [{ ip: '192.0.2.9', kind: 'peer' }]);
  t.same(handler.peerList({ vni: 42 }), [], 'not a peer of 42');
  t.same(JSON.parse(fs.readFileSync(path.join(dir, 'vxl43.json'), 'utf8')), {
    version: 1, vni: 43, peers: ['192.0.2.9'], fdb: [{ mac: '02:00:00:00:00:99', vtep: '192.0.2.9' }], mac: '02:00:00:00:00:2b',
  });
  t.notOk(fs.existsSync(path.join(dir, 'vxl42.json')), 'nothing written for 42');
  t.throws(() => handler.peerDel({ vni: 42 }, '192.0.2.9'), { code: 'VXLAND_NOT_FOUND', message: '192.0.2.9 is not a peer of vxl42 (vni 42)' });
});

t.test('network add validates and refuses a clash before the daemon opens anything; del refuses a config network', async (t) => {
  const { handler, calls } = setup(t, [42]);
  await t.rejects(handler.networkAdd({ vni: '44', mtu: '70000' }), { code: 'VXLAND_CONFIG_INVALID', message: 'mtu must be an integer 68..65481 (got "70000")' });
  await t.rejects(handler.networkAdd({ vni: '42', dev: 'other' }), { code: 'VXLAND_NETWORK_EXISTS', message: 'vni 42 is already served (network vni 42 (vxl42))' });
  await t.rejects(handler.networkAdd({ vni: '44', dev: 'vxl42' }), { code: 'VXLAND_NETWORK_EXISTS', message: 'dev vxl42 is already served' });
  t.same(calls, [], 'the daemon was asked nothing');
  t.same(await handler.networkAdd({ vni: '44', peer: ['192.0.2.4'] }), { vni: 44, dev: 'vxl44' });
  t.same(handler.networkList().map((n) => [n.vni, n.origin, n.peers]), [[42, 'config', 0], [44, 'runtime', 0]]);
  await t.rejects(handler.networkDel({ vni: 42 }), { code: 'VXLAND_BAD_ARGUMENT', message: /^network vni 42 \(vxl42\) comes from the config file/ });
  t.same(await handler.networkDel({ dev: 'vxl44' }), { vni: 44, dev: 'vxl44' });
  t.same(calls, ['add 44 vxl44', 'remove 44']);
  await t.rejects(handler.networkDel({ vni: 44 }), { code: 'VXLAND_NETWORK_UNKNOWN' });
});

t.test('network show: status and settings as they are now', async (t) => {
  const { handler } = setup(t, [42]);
  handler.peerAdd({}, '192.0.2.2');
  const show = handler.networkShow({ vni: 42 });
  t.match(show, { vni: 42, dev: 'vxl42', settings: { vni: 42, dev: 'vxl42', peers: ['192.0.2.2'], fdb: [], accept: 'peers', mac: '02:00:00:00:00:2a' } });
});

t.test('doctor: the host checks once, each network\'s with its VNI; --vni narrows to one network', async (t) => {
  const { handler, hostStats } = setup(t, [42, 43]);
  hostStats.foreignVni('192.0.2.7', 44, Date.now(), 3);
  const all = handler.doctor({});
  t.match(all.findings, [
    { check: 'vni', problem: /^192\.0\.2\.7 sends VXLAN with VNI 44, which no network of this host has \(it serves VNI 42, 43; 3 datagrams dropped\)/ },
    { check: 'tap', vni: 43, problem: /vxl43 is down/ },
  ]);
  t.equal(all.findings.length, 2);
  t.same(handler.doctor({ vni: 42 }).findings.map((f) => f.check), ['vni'], 'network 42 is healthy; the host finding stays');
});

t.test('etcd entries are shown but never written to the state file; status carries the etcd block', async (t) => {
  const { dir, handler, networks } = setup(t, [43]);
  const fdb = networks.get(43)!.fdb;
  fdb.addEtcdPeer(43, '192.0.2.7');
  fdb.addEtcd(43, '02:00:00:00:00:77', '192.0.2.7');
  handler.peerAdd({ vni: 43 }, '192.0.2.9');
  handler.fdbAdd({ vni: 43 }, '02:00:00:00:00:99', '192.0.2.9');
  t.same(handler.fdbShow({ vni: 43 }, {}).map((e) => [e.mac, e.vtep, e.kind]), [
    ['00:00:00:00:00:00', '192.0.2.7', 'etcd'], ['00:00:00:00:00:00', '192.0.2.9', 'peer'],
    ['02:00:00:00:00:77', '192.0.2.7', 'etcd'], ['02:00:00:00:00:99', '192.0.2.9', 'static'],
  ], 'fdb show names the etcd entries');
  t.same(handler.peerList({ vni: 43 }), [{ ip: '192.0.2.7', kind: 'etcd' }, { ip: '192.0.2.9', kind: 'peer' }], 'peer list names them too');
  fdb.addEtcdPeer(43, '192.0.2.9');
  t.same(handler.peerList({ vni: 43 }).map((p) => p.kind), ['etcd', 'peer'], 'a configured peer etcd also names stays kind peer');
  t.same(JSON.parse(fs.readFileSync(path.join(dir, 'vxl43.json'), 'utf8')), {
    version: 1, vni: 43, peers: ['192.0.2.9'], fdb: [{ mac: '02:00:00:00:00:99', vtep: '192.0.2.9' }], mac: '02:00:00:00:00:2b',
  }, 'the state file holds the configured peer and static entry only');
  t.equal(handler.status({}).etcd, null, 'no membership: etcd null');
});

t.test('reload: the daemon\'s reload answers; a daemon without one refuses', async (t) => {
  await t.rejects(setup(t, [42]).handler.reload(), { code: 'VXLAND_CONFIG_FILE', message: 'this daemon has no config to reload' });
  const result = { addedNetworks: [43], removedNetworks: [], changedNetworks: [42], logLevel: null, needRestart: ['port'], failed: [] };
  t.same(await setup(t, [42], async () => result).handler.reload(), result);
});

t.test('fdb show filters by MAC, VTEP and type; fdb get answers one entry or VXLAND_NOT_FOUND', async (t) => {
  const { handler, networks } = setup(t, [43]);
  networks.get(43)!.fdb.addEtcd(43, '02:00:00:00:00:77', '192.0.2.7');
  handler.peerAdd({ vni: 43 }, '192.0.2.9');
  handler.fdbAdd({ vni: 43 }, '02:00:00:00:00:99', '192.0.2.9');
  handler.fdbAdd({ vni: 43 }, '02:00:00:00:00:98', '192.0.2.7');
  const show = (filter: Parameters<typeof handler.fdbShow>[1]) => handler.fdbShow({ vni: 43 }, filter).map((e) => `${e.mac} ${e.vtep} ${e.kind}`);
  t.same(show({ vtep: '192.0.2.9' }), ['00:00:00:00:00:00 192.0.2.9 peer', '02:00:00:00:00:99 192.0.2.9 static']);
  t.same(show({ kind: 'static' }), ['02:00:00:00:00:99 192.0.2.9 static', '02:00:00:00:00:98 192.0.2.7 static']);
  t.same(show({ kind: 'static', vtep: '192.0.2.7' }), ['02:00:00:00:00:98 192.0.2.7 static'], 'every field given must match');
  t.same(show({ mac: '02:00:00:00:00:77' }), ['02:00:00:00:00:77 192.0.2.7 etcd']);
  t.same(show({ kind: 'learned' }), []);
  t.match(handler.fdbGet({ vni: 43 }, '02:00:00:00:00:99'), { vni: 43, mac: '02:00:00:00:00:99', vtep: '192.0.2.9', kind: 'static' });
  t.throws(() => handler.fdbGet({ vni: 43 }, '02:00:00:00:00:01'), { code: 'VXLAND_NOT_FOUND', message: 'no fdb entry for 02:00:00:00:00:01 on vxl43 (vni 43)' });
});

t.test('config show: a host file of what runs, which loadConfig reads back to the same networks', async (t) => {
  const { dir, handler, host } = setup(t, [42, 43]);
  handler.peerAdd({ vni: 43 }, '192.0.2.9');
  handler.fdbAdd({ vni: 42 }, '02:00:00:00:00:99', '192.0.2.9');
  await handler.networkAdd({ vni: '44', mtu: '1400' });
  handler.peerAdd({ vni: 44 }, '192.0.2.4');
  handler.logLevel('warn');
  const shown = handler.configShow();
  t.match(shown, { local: '192.0.2.1', port: 4789, stateDir: dir, socket: path.join(dir, 'vxland.sock'), metrics: '[::1]:9798', logLevel: 'warn', etcd: null });
  const file = path.join(dir, 'shown.json');
  fs.writeFileSync(file, JSON.stringify(shown));
  const again = loadConfig({ config: file }, {}, '');
  t.same({ ...again, networks: [] }, { ...host, logLevel: 'warn', networks: [] }, 'the host settings read back as they run');
  t.same(again.networks.map((n) => [n.vni, n.dev, n.mtu, n.peers, n.fdb, n.mac]), [
    [42, 'vxl42', 1450, [], [{ mac: '02:00:00:00:00:99', vtep: '192.0.2.9' }], '02:00:00:00:00:2a'],
    [43, 'vxl43', 1450, ['192.0.2.9'], [], '02:00:00:00:00:2b'],
    [44, 'vxl44', 1400, ['192.0.2.4'], [], '02:00:00:00:00:2c'],
  ], 'every network served, with the peers, static entries and MAC of now (the one added at run time too)');
});
