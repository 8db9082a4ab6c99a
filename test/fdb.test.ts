import t from 'tap';
import { Fdb, FLOOD_MAC, LearnOutcome, type FdbEvent } from '../src/fdb/fdb';
import { formatMacKey as formatMac, macKeyOf } from '../src/wire/mac';

const VNI = 42;
const A = '02:00:00:00:00:0a';
const B = '02:00:00:00:00:0b';

function setup(opts: { ageingMs?: number; maxLearned?: number } = {}) {
  let nowMs = 1_000_000;
  const events: FdbEvent[] = [];
  const fdb = new Fdb({
    ageingMs: opts.ageingMs ?? 300_000,
    maxLearned: opts.maxLearned ?? 16384,
    now: () => nowMs,
  });
  fdb.subscribe((e) => events.push(e));
  return {
    fdb,
    events,
    advance: (ms: number) => (nowMs += ms),
    now: () => nowMs,
  };
}

t.test('learning maps a source MAC to the outer source address and refreshes it', async (t) => {
  const { fdb, events, now } = setup();
  t.equal(fdb.learn(VNI, macKeyOf(A), '198.18.0.2', now()), LearnOutcome.Learned);
  t.equal(fdb.learn(VNI, macKeyOf(A), '198.18.0.2', now()), LearnOutcome.Refreshed);
  t.equal(fdb.lookup(VNI, macKeyOf(A), now()), '198.18.0.2');
  t.equal(fdb.lookup(VNI + 1, macKeyOf(A), now()), undefined, 'keyed by VNI too');
  t.equal(fdb.learnedCount, 1);
  t.same(events.map((e) => [e.type, e.mac, e.vtep]), [['learned', A, '198.18.0.2']]);
});

t.test('a learned MAC that moves is updated and the move reported', async (t) => {
  const { fdb, events, now } = setup();
  fdb.learn(VNI, macKeyOf(A), '198.18.0.2', now());
  t.equal(fdb.learn(VNI, macKeyOf(A), '198.18.0.3', now()), LearnOutcome.Moved);
  t.equal(fdb.lookup(VNI, macKeyOf(A), now()), '198.18.0.3');
  t.match(events[1], { type: 'moved', mac: A, vtep: '198.18.0.3', previousVtep: '198.18.0.2' });
});

t.test('static entries are never moved or aged by learning', async (t) => {
  const { fdb, now, advance } = setup({ ageingMs: 1000 });
  fdb.addStatic(VNI, A, '198.18.0.9');
  t.equal(fdb.learn(VNI, macKeyOf(A), '198.18.0.2', now()), LearnOutcome.StaticConflict);
  t.equal(fdb.learn(VNI, macKeyOf(A), '198.18.0.9', now()), LearnOutcome.Static);
  advance(10_000);
  t.equal(fdb.sweep(), 0);
  t.equal(fdb.lookup(VNI, macKeyOf(A), now()), '198.18.0.9');
  t.same(fdb.staticEntries(), [{ vni: VNI, mac: A, vtep: '198.18.0.9' }]);
});

t.test('a static entry replaces a learned one', async (t) => {
  const { fdb, now } = setup();
  fdb.learn(VNI, macKeyOf(A), '198.18.0.2', now());
  fdb.addStatic(VNI, A, '198.18.0.9');
  t.equal(fdb.learnedCount, 0);
  t.equal(fdb.size, 1);
  t.equal(fdb.entries()[0].kind, 'static');
});

t.test('ageing removes learned entries by their updated time, 0 means never', async (t) => {
  const { fdb, events, now, advance } = setup({ ageingMs: 300_000 });
  fdb.learn(VNI, macKeyOf(A), '198.18.0.2', now());
  advance(200_000);
  fdb.learn(VNI, macKeyOf(B), '198.18.0.2', now());
  fdb.lookup(VNI, macKeyOf(A), now()); // use does not refresh, as in the kernel
  advance(100_000);
  t.equal(fdb.sweep(), 1, 'A aged after 300 s');
  t.equal(fdb.lookup(VNI, macKeyOf(A), now()), undefined);
  t.equal(fdb.lookup(VNI, macKeyOf(B), now()), '198.18.0.2');
  t.match(events.at(-1), { type: 'aged', mac: A });

  const never = setup({ ageingMs: 0 });
  never.fdb.learn(VNI, macKeyOf(A), '198.18.0.2', never.now());
  never.advance(10 ** 9);
  t.equal(never.fdb.sweep(), 0);
  t.equal(never.fdb.learnedCount, 1);
});

t.test('updated and used ages are reported', async (t) => {
  const { fdb, now, advance } = setup();
  fdb.learn(VNI, macKeyOf(A), '198.18.0.2', now());
  advance(5000);
  fdb.lookup(VNI, macKeyOf(A), now());
  advance(2000);
  t.match(fdb.entries()[0], { mac: A, kind: 'learned', updatedAgoMs: 7000, usedAgoMs: 2000 });
});

t.test('at the limit new MACs are not learned but known ones refresh', async (t) => {
  const { fdb, now } = setup({ maxLearned: 2 });
  fdb.learn(VNI, macKeyOf(A), '198.18.0.2', now());
  fdb.learn(VNI, macKeyOf(B), '198.18.0.2', now());
  t.equal(fdb.learn(VNI, macKeyOf('02:00:00:00:00:0c'), '198.18.0.2', now()), LearnOutcome.RefusedFull);
  t.equal(fdb.learn(VNI, macKeyOf(A), '198.18.0.3', now()), LearnOutcome.Moved);
  t.equal(fdb.learnedCount, 2);
  fdb.addStatic(VNI, '02:00:00:00:00:0d', '198.18.0.4');
  t.equal(fdb.learnedCount, 2, 'static entries do not count against the learned limit');
});

t.test('multicast, broadcast and zero source MACs are never learned', async (t) => {
  const { fdb, now } = setup();
  for (const m of ['ff:ff:ff:ff:ff:ff', '01:00:5e:00:00:fb', '00:00:00:00:00:00']) {
    t.equal(fdb.learn(VNI, macKeyOf(m), '198.18.0.2', now()), LearnOutcome.NotLearnable, m);
  }
  t.equal(fdb.size, 0);
});

t.test('peers are the all-zeros flood list', async (t) => {
  const { fdb, events, now } = setup();
  t.ok(fdb.addPeer(VNI, '198.18.0.2'));
  t.ok(fdb.addPeer(VNI, '198.18.0.3'));
  t.notOk(fdb.addPeer(VNI, '198.18.0.2'), 'no duplicates');
  const list = fdb.floodList(VNI, now());
  t.same(list, ['198.18.0.2', '198.18.0.3']);
  t.ok(fdb.removePeer(VNI, '198.18.0.2'));
  t.same(list, ['198.18.0.2', '198.18.0.3'], 'a list handed out is never mutated');
  t.same(fdb.peers(VNI), ['198.18.0.3']);
  t.notOk(fdb.removePeer(VNI, '198.18.0.2'));
  t.same(fdb.floodList(7, now()), [], 'unknown VNI floods nowhere');
  t.match(fdb.entries(), [{ mac: FLOOD_MAC, vtep: '198.18.0.3', kind: 'peer' }]);
  t.same(events.map((e) => e.type), ['added', 'added', 'deleted']);
});

t.test('a flood list of 100,000 peers is built in linear time, in insertion order', async (t) => {
  // With a copy per add (the old table) this takes minutes and hits the
  // test timeout; a daemon seeding a large config did the same at start.
  const { fdb, now } = setup();
  const PEERS = 100_000;
  const address = (i: number): string => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
  for (let i = 0; i < PEERS; i++) fdb.addPeer(VNI, address(i));
  t.notOk(fdb.addPeer(VNI, address(7)), 'still no duplicates');
  for (let i = 0; i < PEERS; i += 2) fdb.removePeer(VNI, address(i));
  const list = fdb.floodList(VNI, now());
  t.equal(list.length, PEERS / 2);
  t.equal(list[0], address(1));
  t.equal(list[list.length - 1], address(PEERS - 1));
  t.equal(fdb.size, PEERS / 2);
});

t.test('flush removes learned, and static unless learnedOnly; peers stay', async (t) => {
  const { fdb, now } = setup();
  fdb.addPeer(VNI, '198.18.0.2');
  fdb.addStatic(VNI, A, '198.18.0.9');
  fdb.learn(VNI, macKeyOf(B), '198.18.0.2', now());
  t.equal(fdb.flush({ learnedOnly: true }), 1);
  t.same(fdb.entries().map((e) => e.kind).sort(), ['peer', 'static']);
  fdb.learn(VNI, macKeyOf(B), '198.18.0.2', now());
  t.equal(fdb.flush({ learnedOnly: false }), 2);
  t.same(fdb.entries().map((e) => e.kind), ['peer']);
  t.equal(fdb.learnedCount, 0);
});

t.test('remove deletes one entry of either kind', async (t) => {
  const { fdb, now } = setup();
  fdb.addStatic(VNI, A, '198.18.0.9');
  fdb.learn(VNI, macKeyOf(B), '198.18.0.2', now());
  t.ok(fdb.remove(VNI, A));
  t.ok(fdb.remove(VNI, B));
  t.notOk(fdb.remove(VNI, B));
  t.equal(fdb.size, 0);
});

t.test('one VTEP cannot hold more than maxLearnedPerVtep MACs', async (t) => {
  const nowMs = 0;
  const fdb = new Fdb({ ageingMs: 0, maxLearned: 100, maxLearnedPerVtep: 3, learnRatePerS: 0, now: () => nowMs });
  for (let i = 1; i <= 3; i++) t.equal(fdb.learn(VNI, i * 2 ** 41, '198.18.0.66', nowMs), LearnOutcome.Learned);
  t.equal(fdb.learn(VNI, 4 * 2 ** 41, '198.18.0.66', nowMs), LearnOutcome.RefusedVtepFull);
  t.equal(fdb.learn(VNI, 4 * 2 ** 41, '198.18.0.2', nowMs), LearnOutcome.Learned, 'other VTEPs still learn');
  t.equal(fdb.learn(VNI, 1 * 2 ** 41, '198.18.0.66', nowMs), LearnOutcome.Refreshed, 'existing entries keep working');
  t.equal(fdb.learn(VNI, 1 * 2 ** 41, '198.18.0.2', nowMs), LearnOutcome.Moved, 'a MAC may move away');
  t.equal(fdb.learn(VNI, 5 * 2 ** 41, '198.18.0.66', nowMs), LearnOutcome.Learned, 'which frees a place');
  fdb.remove(VNI, formatMac(2 * 2 ** 41));
  t.equal(fdb.learn(VNI, 6 * 2 ** 41, '198.18.0.66', nowMs), LearnOutcome.Learned, 'so does removal');
});

t.test('learning is rate-limited per VTEP, refilling over time', async (t) => {
  let nowMs = 1_000;
  const fdb = new Fdb({ ageingMs: 0, maxLearned: 10_000, learnRatePerS: 10, now: () => nowMs });
  const outcomes = Array.from({ length: 15 }, (_, i) => fdb.learn(VNI, (i + 1) * 2 ** 41, '198.18.0.66', nowMs));
  t.equal(outcomes.filter((o) => o === LearnOutcome.Learned).length, 10, 'a burst of 10');
  t.equal(outcomes.filter((o) => o === LearnOutcome.RefusedRate).length, 5, 'the rest refused');
  t.equal(fdb.learn(VNI, 99 * 2 ** 41, '198.18.0.2', nowMs), LearnOutcome.Learned, 'another VTEP is not affected');
  nowMs += 500;
  const later = Array.from({ length: 10 }, (_, i) => fdb.learn(VNI, (i + 100) * 2 ** 41, '198.18.0.66', nowMs));
  t.equal(later.filter((o) => o === LearnOutcome.Learned).length, 5, 'half a second later: 5 more');
  t.equal(fdb.learn(VNI, 1 * 2 ** 41, '198.18.0.66', nowMs), LearnOutcome.Refreshed, 'refreshing costs nothing');
});

t.test('etcd MAC entries are pinned against learning, as static ones are, and never aged', async (t) => {
  const { fdb, advance, now } = setup({ ageingMs: 1000 });
  t.ok(fdb.addEtcd(VNI, A, '198.18.0.2'));
  t.equal(fdb.learn(VNI, macKeyOf(A), '198.18.0.2', now()), LearnOutcome.Static);
  t.equal(fdb.learn(VNI, macKeyOf(A), '198.18.0.3', now()), LearnOutcome.StaticConflict, 'another VTEP cannot move it');
  advance(5000);
  t.equal(fdb.sweep(), 0);
  t.equal(fdb.lookup(VNI, macKeyOf(A), now()), '198.18.0.2');
  t.same(fdb.entries().map((e) => e.kind), ['etcd']);
  t.same(fdb.staticEntries(), [], 'not among the entries the state file keeps');
  t.equal(fdb.size, 1);
  t.notOk(fdb.remove(VNI, A), 'fdb del leaves etcd entries to the membership');
  t.equal(fdb.flush({ learnedOnly: false }), 0, 'flush leaves them too');
  t.ok(fdb.removeEtcd(VNI, A, '198.18.0.2'));
  t.equal(fdb.lookup(VNI, macKeyOf(A), now()), undefined);
  t.equal(fdb.size, 0);
});

t.test('an etcd entry replaces a learned one; a static entry wins over etcd both ways', async (t) => {
  const { fdb, events, now } = setup();
  fdb.learn(VNI, macKeyOf(A), '198.18.0.9', now());
  t.ok(fdb.addEtcd(VNI, A, '198.18.0.2'));
  t.equal(fdb.learnedCount, 0);
  fdb.addStatic(VNI, A, '198.18.0.5');
  t.equal(fdb.lookup(VNI, macKeyOf(A), now()), '198.18.0.5', 'configured wins over etcd');
  t.notOk(fdb.addEtcd(VNI, A, '198.18.0.3'), 'etcd cannot displace a static entry');
  t.equal(fdb.lookup(VNI, macKeyOf(A), now()), '198.18.0.5');
  t.notOk(fdb.removeEtcd(VNI, A, '198.18.0.2'), 'only the current claim can be withdrawn');
  t.ok(fdb.remove(VNI, A));
  t.equal(fdb.lookup(VNI, macKeyOf(A), now()), '198.18.0.3', 'the shadowed etcd claim takes effect once the static one goes');
  t.ok(fdb.removeEtcd(VNI, A, '198.18.0.3'));
  t.equal(fdb.size, 0);
  const kinds = events.filter((e) => e.mac === A).map((e) => `${e.type}:${e.kind}`);
  t.same(kinds, ['learned:learned', 'deleted:learned', 'added:etcd', 'deleted:etcd', 'added:static', 'deleted:static', 'added:etcd', 'deleted:etcd']);
});

t.test('a VTEP both configured and listed by etcd stays in the flood list until both drop it', async (t) => {
  const { fdb, events, now } = setup();
  t.ok(fdb.addEtcdPeer(VNI, '198.18.0.2'));
  t.notOk(fdb.addEtcdPeer(VNI, '198.18.0.2'));
  t.same(fdb.entries().map((e) => e.kind), ['etcd'], 'shown as etcd');
  t.same(fdb.configuredPeers(VNI), [], 'not a configured peer: the state file does not keep it');
  t.ok(fdb.addPeer(VNI, '198.18.0.2'), 'configuring it is a change');
  t.same(fdb.floodList(VNI, now()), ['198.18.0.2'], 'once in the flood list');
  t.same(fdb.entries().map((e) => e.kind), ['peer']);
  t.ok(fdb.removeEtcdPeer(VNI, '198.18.0.2'));
  t.same(fdb.floodList(VNI, now()), ['198.18.0.2'], 'the configured peer stays when etcd drops it');
  t.ok(fdb.addEtcdPeer(VNI, '198.18.0.2'));
  t.ok(fdb.removePeer(VNI, '198.18.0.2'));
  t.same(fdb.floodList(VNI, now()), ['198.18.0.2'], 'etcd still lists it');
  t.ok(fdb.removeEtcdPeer(VNI, '198.18.0.2'));
  t.same(fdb.floodList(VNI, now()), []);
  const added = events.filter((e) => e.type === 'added').length;
  const deleted = events.filter((e) => e.type === 'deleted').length;
  t.equal(added, deleted, 'each origin emits one added and one deleted (counting listeners stay balanced)');
});
