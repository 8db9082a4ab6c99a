// The neighbour table (src/fdb/neighbours.ts): static over etcd, etcd
// replaced per (network, VTEP), what its listeners (the data paths' mirror
// sync) are told, and the etcd adapter (src/membership/bindings.ts).
import t from 'tap';
import { Neighbours, type NeighbourEvent } from '../src/fdb/neighbours';
import { neighbourBindings } from '../src/membership/bindings';

const A = '02:00:00:00:00:0a';
const B = '02:00:00:00:00:0b';
const C = '02:00:00:00:00:0c';

function recorded(n: Neighbours): NeighbourEvent[] {
  const events: NeighbourEvent[] = [];
  n.subscribe((e) => events.push(e));
  return events;
}

t.test('a static entry wins over an etcd claim, which takes effect when the static one goes', async (t) => {
  const n = new Neighbours();
  const events = recorded(n);
  n.replaceEtcd(42, '192.0.2.2', [{ ip: '10.0.0.2', mac: B }]);
  n.addStatic(42, '10.0.0.2', A);
  t.same(n.lookup(42, '10.0.0.2'), { vni: 42, ip: '10.0.0.2', mac: A, owner: 'static' });
  n.replaceEtcd(42, '192.0.2.2', [{ ip: '10.0.0.2', mac: C }]);
  t.equal(n.lookup(42, '10.0.0.2')?.mac, A, 'etcd changing its claim does not move a static entry');
  t.ok(n.removeStatic(42, '10.0.0.2'));
  t.same(n.lookup(42, '10.0.0.2'), { vni: 42, ip: '10.0.0.2', mac: C, owner: 'etcd', vtep: '192.0.2.2' });
  t.notOk(n.removeStatic(42, '10.0.0.2'), 'an etcd entry is no static one to remove');
  t.same(events, [
    { kind: 'entry', vni: 42, ip: '10.0.0.2', mac: B },
    { kind: 'entry', vni: 42, ip: '10.0.0.2', mac: A },
    { kind: 'entry', vni: 42, ip: '10.0.0.2', mac: C },
  ], 'listeners hear only changes of the effective MAC');
});

t.test('etcd bindings are replaced whole per (network, VTEP); [] removes them', async (t) => {
  const n = new Neighbours();
  n.replaceEtcd(42, '192.0.2.2', [{ ip: '10.0.0.2', mac: B }, { ip: 'fd00::2', mac: B }]);
  n.replaceEtcd(42, '192.0.2.3', [{ ip: '10.0.0.3', mac: C }]);
  n.replaceEtcd(43, '192.0.2.2', [{ ip: '10.0.0.2', mac: A }]);
  const events = recorded(n);
  n.replaceEtcd(42, '192.0.2.2', [{ ip: 'fd00::2', mac: B }]);
  t.same(n.entries(42).map((e) => e.ip), ['10.0.0.3', 'fd00::2'], '10.0.0.2 went with the new record');
  t.equal(n.lookup(43, '10.0.0.2')?.mac, A, 'the same IP in another network is untouched');
  n.replaceEtcd(42, '192.0.2.2', []);
  t.same(n.entries(42).map((e) => e.ip), ['10.0.0.3']);
  t.same(events, [
    { kind: 'entry', vni: 42, ip: '10.0.0.2', mac: null },
    { kind: 'entry', vni: 42, ip: 'fd00::2', mac: null },
  ]);
});

t.test('two VTEPs claiming one address: the latest claim wins, the other stays behind it', async (t) => {
  const n = new Neighbours();
  n.replaceEtcd(42, '192.0.2.2', [{ ip: '10.0.0.9', mac: B }]);
  n.replaceEtcd(42, '192.0.2.3', [{ ip: '10.0.0.9', mac: C }]);
  t.equal(n.lookup(42, '10.0.0.9')?.vtep, '192.0.2.3');
  n.replaceEtcd(42, '192.0.2.3', []);
  t.equal(n.lookup(42, '10.0.0.9')?.vtep, '192.0.2.2', 'the earlier claim is back');
});

t.test('staticEntries lists only what is saved; removeVni forgets a network silently', async (t) => {
  const n = new Neighbours();
  n.addStatic(42, '10.0.0.2', A);
  n.replaceEtcd(42, '192.0.2.3', [{ ip: '10.0.0.3', mac: C }]);
  n.addStatic(43, '10.0.0.2', B);
  n.setSuppress(42, true);
  t.same(n.staticEntries(42), [{ vni: 42, ip: '10.0.0.2', mac: A, owner: 'static' }]);
  const events = recorded(n);
  n.removeVni(42);
  t.same(n.entries(42), []);
  t.notOk(n.suppresses(42));
  t.same(n.entries(43).map((e) => e.mac), [B]);
  t.same(events, []);
  n.replaceEtcd(42, '192.0.2.3', [{ ip: '10.0.0.3', mac: C }]);
  t.equal(n.entries(42).length, 1, 'a VTEP of a removed network can claim again');
});

t.test('the suppress flag is per network, off until set, and its changes are told once', async (t) => {
  const n = new Neighbours();
  const events = recorded(n);
  t.notOk(n.suppresses(42));
  n.setSuppress(42, true);
  n.setSuppress(42, true);
  t.ok(n.suppresses(42));
  t.notOk(n.suppresses(43));
  n.setSuppress(42, false);
  t.same(events, [{ kind: 'suppress', vni: 42, on: true }, { kind: 'suppress', vni: 42, on: false }]);
});

t.test('the etcd adapter keeps only unicast (ip, mac) pairs, normalised', async (t) => {
  const n = new Neighbours();
  neighbourBindings(n).onBindings(42, '192.0.2.2', [
    { ip: 'FD00:0:0::2', mac: '02-00-00-00-00-0B' },
    { ip: '224.0.0.1', mac: B },
    { ip: '10.0.0.2', mac: 'ff:ff:ff:ff:ff:ff' },
    { ip: '10.0.0.4', mac: A },
  ]);
  t.same(n.entries(42), [
    { vni: 42, ip: '10.0.0.4', mac: A, owner: 'etcd', vtep: '192.0.2.2' },
    { vni: 42, ip: 'fd00::2', mac: B, owner: 'etcd', vtep: '192.0.2.2' },
  ]);
  neighbourBindings(n).onBindings(42, '192.0.2.2', []);
  t.same(n.entries(42), [], 'a VTEP that goes takes its bindings with it');
});
