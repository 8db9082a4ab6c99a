// The etcd membership over the in-memory store (test/fakes.ts FakeKvServer):
// two daemons see each other, a lost watch or a compaction is followed by a
// list that reconciles, a persistent error is retried with backoff (the count
// of lists stays bounded), a lost lease is granted again and our keys
// re-published, a clean stop revokes the lease, configured entries win.
import t from 'tap';
import { Fdb, FLOOD_MAC } from '../src/fdb/fdb';
import { Membership, type Binding, type MemberNetwork } from '../src/membership/membership';
import { memberKey } from '../src/membership/record';
import { FakeKvServer } from './fakes';
import { eventually } from './helpers/eventually';

const VNI = 42;
const PREFIX = '/vxland';
const quiet = { info: () => {}, warn: () => {} };

interface Host {
  membership: Membership;
  fdb: Fdb;
  bindings: Map<string, readonly Binding[]>;
  network: MemberNetwork;
}

function host(server: FakeKvServer, t: { teardown(fn: () => unknown): void }, vtep: string, mac: string, extra: { backoffBaseMs?: number; backoffCapMs?: number } = {}): Host {
  const fdb = new Fdb({ ageingMs: 300_000, maxLearned: 1000 });
  const bindings = new Map<string, readonly Binding[]>();
  const membership = new Membership({
    store: server.client(),
    endpoints: ['fake'],
    prefix: PREFIX,
    leaseTtlS: 15,
    localVtep: vtep,
    log: quiet,
    bindings: { onBindings: (vni, at, b) => bindings.set(`${vni}/${at}`, b) },
    backoffBaseMs: extra.backoffBaseMs ?? 5,
    backoffCapMs: extra.backoffCapMs ?? 20,
  });
  const network: MemberNetwork = { vni: VNI, fdb, self: () => ({ vtep, port: 4789, mac, bindings: [{ ip: `10.42.0.${vtep.split('.')[3]}`, mac }] }) };
  membership.addNetwork(network);
  membership.start();
  t.teardown(() => membership.stop());
  return { membership, fdb, bindings, network };
}

const etcdPeers = (h: Host) => h.fdb.entries().filter((e) => e.kind === 'etcd' && e.mac === FLOOD_MAC).map((e) => e.vtep).sort();

t.test('two daemons over one store see each other: etcd peer, etcd MAC entry, bindings', async (t) => {
  const server = new FakeKvServer();
  const a = host(server, t, '198.18.0.1', '02:00:00:00:00:01');
  const b = host(server, t, '198.18.0.2', '02:00:00:00:00:02');
  t.ok(await a.membership.synced(2000), 'a synced');
  await eventually(() => etcdPeers(a), { until: (p) => p.length === 1, what: 'a sees b' });
  await eventually(() => etcdPeers(b), { until: (p) => p.length === 1, what: 'b sees a' });
  t.same(etcdPeers(a), ['198.18.0.2']);
  t.same(etcdPeers(b), ['198.18.0.1'], 'its own key is not a peer');
  t.same(a.fdb.entries().filter((e) => e.mac !== FLOOD_MAC).map((e) => [e.mac, e.vtep, e.kind]), [['02:00:00:00:00:02', '198.18.0.2', 'etcd']]);
  t.same(a.bindings.get(`${VNI}/198.18.0.2`), [{ ip: '10.42.0.2', mac: '02:00:00:00:00:02' }]);
  t.same(a.fdb.configuredPeers(VNI), [], 'nothing a state file would keep');
  t.same(a.fdb.staticEntries(), []);
  const s = a.membership.status();
  t.ok(s.connected && s.revision !== null && s.remoteVteps === 1, 'status: connected, a revision, one remote VTEP');
  t.ok(s.leaseTtlLeftMs !== null && s.leaseTtlLeftMs > 0 && s.leaseTtlLeftMs <= 15_000, `lease ttl left ${s.leaseTtlLeftMs} ms`);

  await b.membership.stop();
  t.notOk(server.kvs.has(memberKey(PREFIX, VNI, '198.18.0.2')), 'stop revoked the lease: the key is gone at once');
  await eventually(() => etcdPeers(a), { until: (p) => p.length === 0, what: 'b gone from a' });
  t.same(a.fdb.entries(), [], 'its MAC entry went with it');
  t.same(a.bindings.get(`${VNI}/198.18.0.2`), [], 'its bindings withdrawn');
});

t.test('a lost watch or a compaction lists again and reconciles what changed meanwhile', async (t) => {
  const server = new FakeKvServer();
  const a = host(server, t, '198.18.0.1', '02:00:00:00:00:01');
  await a.membership.synced(2000);
  const lease = server.grant(15, () => {});
  server.put(memberKey(PREFIX, VNI, '198.18.0.3'), JSON.stringify({ version: 1, vtep: '198.18.0.3', port: 4789, mac: '02:00:00:00:00:03', bindings: [] }), lease);
  await eventually(() => etcdPeers(a), { until: (p) => p.length === 1, what: 'c seen' });
  // The store goes away; meanwhile c vanishes and d appears (written behind the outage).
  t.equal(a.membership.status().lastError, null, 'connected: no error to tell');
  server.setDown(true);
  await eventually(() => a.membership.status().connected, { until: (c) => !c, what: 'disconnected' });
  t.same(etcdPeers(a), ['198.18.0.3'], 'the last-known membership stays while the store is out of reach');
  t.match((await eventually(() => a.membership.status(), { until: (s) => s.lastError === 'fake etcd: unavailable', what: 'the reason of a failed call' })).lastError,
    'fake etcd: unavailable', 'status says why (the last failed call)');
  // Behind the outage, c vanishes and d appears, and the history is compacted:
  // only a new list can tell.
  server.kvs.delete(memberKey(PREFIX, VNI, '198.18.0.3'));
  server.kvs.set(memberKey(PREFIX, VNI, '198.18.0.4'), { value: JSON.stringify({ version: 1, vtep: '198.18.0.4', port: 4789, mac: '02:00:00:00:00:04', bindings: [] }), lease });
  server.revision += 2;
  server.compact();
  server.down = false;
  await eventually(() => etcdPeers(a), { until: (p) => p.join() === '198.18.0.4', what: 'reconciled to d only' });
  t.ok(a.membership.status().lists >= 2, `listed again (${a.membership.status().lists} lists)`);
  const listsBefore = a.membership.status().lists;
  server.compact();
  await eventually(() => a.membership.status().lists, { until: (n) => n > listsBefore, what: 'a compaction makes it list again' });
  t.same(etcdPeers(a), ['198.18.0.4']);
  t.ok(a.membership.status().connected, 'connected again');
  t.equal(a.membership.status().lastError, null, 'and the reason is cleared');
});

t.test('a persistent error is retried with growing delays, never in a loop', async (t) => {
  const server = new FakeKvServer();
  server.down = true;
  const started = Date.now();
  const a = host(server, t, '198.18.0.1', '02:00:00:00:00:01', { backoffBaseMs: 20, backoffCapMs: 200 });
  t.notOk(await a.membership.synced(50), 'synced() gives up after its bound');
  // Up to ~1 s: with a base of 20 ms doubling to 200 ms there are at most ~8 attempts
  // (the jitter halves a delay at most); a hot loop would make thousands.
  await new Promise<void>((resolve) => setTimeout(resolve, 1000));
  const attempts = server.calls;
  const elapsedMs = Date.now() - started;
  t.ok(attempts >= 2 && attempts <= 12, `calls to a store that is down in ${elapsedMs} ms: ${attempts} (retried, with backoff)`);
  t.equal(server.lists, 0, 'no list without a lease');
  t.notOk(a.membership.status().connected);
  // Now the store accepts lists but drops every watch at once: lists stay bounded too.
  server.down = false;
  const interval = setInterval(() => server.dropWatches(new Error('flaky')), 1);
  t.teardown(() => clearInterval(interval));
  await eventually(() => server.lists, { until: (n) => n >= 1, what: 'a first list' });
  const from = server.lists;
  await new Promise<void>((resolve) => setTimeout(resolve, 1000));
  clearInterval(interval);
  const lists = server.lists - from;
  t.ok(lists <= 12, `lists in 1 s while every watch drops at once: ${lists} (bounded by the backoff, ${attempts} before)`);
});

t.test('a lost lease is granted again and our key re-published', async (t) => {
  const server = new FakeKvServer();
  const a = host(server, t, '198.18.0.1', '02:00:00:00:00:01');
  const b = host(server, t, '198.18.0.2', '02:00:00:00:00:02');
  await eventually(() => etcdPeers(b), { until: (p) => p.length === 1, what: 'b sees a' });
  const key = memberKey(PREFIX, VNI, '198.18.0.1');
  const firstLease = server.kvs.get(key)?.lease;
  server.endLease(String(firstLease), true);
  t.notOk(server.kvs.has(key), 'the key went with the lease');
  const newLease = await eventually(() => server.kvs.get(key)?.lease, { until: (l) => l !== undefined && l !== firstLease, what: 'a new lease holds our key' });
  t.ok(server.leases.has(String(newLease)), `re-published under lease ${newLease} (was ${firstLease})`);
  t.same(await eventually(() => etcdPeers(b), { until: (p) => p.join() === '198.18.0.1', what: 'b sees a again' }), ['198.18.0.1'], 'b sees a again');
  t.same(etcdPeers(a), ['198.18.0.2'], 'a still sees b');
});

t.test('configured entries win: a static MAC keeps its VTEP, a configured peer stays when etcd drops it', async (t) => {
  const server = new FakeKvServer();
  const a = host(server, t, '198.18.0.1', '02:00:00:00:00:01');
  a.fdb.addPeer(VNI, '198.18.0.2');
  a.fdb.addStatic(VNI, '02:00:00:00:00:02', '198.18.0.9');
  const b = host(server, t, '198.18.0.2', '02:00:00:00:00:02');
  await eventually(() => a.membership.status().remoteVteps, { until: (n) => n === 1, what: 'a sees b' });
  t.same(a.fdb.entries().map((e) => [e.mac, e.vtep, e.kind]), [[FLOOD_MAC, '198.18.0.2', 'peer'], ['02:00:00:00:00:02', '198.18.0.9', 'static']]);
  await b.membership.stop();
  await eventually(() => a.membership.status().remoteVteps, { until: (n) => n === 0, what: 'b gone' });
  t.same(a.fdb.peers(VNI), ['198.18.0.2'], 'the configured peer stays');
  t.same(a.fdb.staticEntries().map((e) => e.vtep), ['198.18.0.9']);
});

t.test('networks added and removed at run time publish and withdraw their keys; malformed records are ignored', async (t) => {
  const server = new FakeKvServer();
  const a = host(server, t, '198.18.0.1', '02:00:00:00:00:01');
  await a.membership.synced(2000);
  const fdb7 = new Fdb({ ageingMs: 0, maxLearned: 10 });
  a.membership.addNetwork({ vni: 7, fdb: fdb7, self: () => ({ vtep: '198.18.0.1', port: 4789, mac: '02:00:00:00:00:71', bindings: [] }) });
  await eventually(() => server.kvs.has(memberKey(PREFIX, 7, '198.18.0.1')), { what: 'key for vni 7' });
  const lease = server.grant(15, () => {});
  server.put(memberKey(PREFIX, 7, '198.18.0.5'), '{"version":1,"vtep":"198.18.0.6","port":4789,"mac":"02:00:00:00:00:05","bindings":[]}', lease);
  server.put(memberKey(PREFIX, 7, '198.18.0.7'), JSON.stringify({ version: 1, vtep: '198.18.0.7', port: 4789, mac: '02:00:00:00:00:07', bindings: [] }), lease);
  await eventually(() => fdb7.peers(7), { until: (p) => p.length === 1, what: 'vni 7 sees .7' });
  t.same(fdb7.peers(7), ['198.18.0.7'], 'a record whose vtep does not match its key is ignored');
  t.same(a.fdb.peers(VNI), [], 'vni 42 is not touched by vni 7 keys');
  a.membership.removeNetwork(7);
  await eventually(() => server.kvs.has(memberKey(PREFIX, 7, '198.18.0.1')), { until: (h) => !h, what: 'key for vni 7 withdrawn' });
  t.same(fdb7.entries(), [], 'its etcd entries are removed');
});
