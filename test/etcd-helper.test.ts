// The real-etcd harness (helpers/etcd.ts): a member starts and answers,
// VTEP keys written with a lease read back and vanish with it, a 3-member
// cluster keeps serving with one member killed and takes it back, and
// teardown leaves no etcd process and no data dir.
import { existsSync } from 'node:fs';
import t from 'tap';
import { deleteVteps, fakeVtep, grantLease, putVteps, readVteps, revokeLease, skipUnlessEtcd, startEtcd, vtepKey, DEFAULT_PREFIX } from './helpers/etcd';
import { eventually } from './helpers/eventually';
import { createNamespace, skipUnlessRoot } from './helpers/netns';

const VNI = 42;

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

t.test('one member on loopback: put/get through etcdctl, fake VTEP keys with a lease', async (t) => {
  if (skipUnlessEtcd(t)) return;
  const etcd = await startEtcd(t);
  t.equal(etcd.members.length, 1);
  t.match(etcd.endpoints[0], /^http:\/\/127\.0\.0\.1:\d+$/, 'listens on loopback');

  await etcd.ctl('put', '/vxland-test/k', 'v1');
  t.equal((await etcd.ctl('get', '--print-value-only', '/vxland-test/k')).trim(), 'v1', 'put then get');

  const lease = await grantLease(etcd, 60);
  const records = Array.from({ length: 250 }, (_, i) => fakeVtep(VNI, i));
  await putVteps(etcd, { vni: VNI, records, lease });
  const read = await readVteps(etcd, { vni: VNI });
  t.equal(read.length, 250, 'all 250 keys read back (three transactions)');
  const first = read.find((e) => e.key === vtepKey(DEFAULT_PREFIX, VNI, records[0].vtep));
  t.same(first?.value, records[0], 'value is the design11.md JSON');
  t.equal(first?.lease, lease, 'attached to the lease');

  await deleteVteps(etcd, { vni: VNI, vteps: records.slice(0, 100).map((r) => r.vtep) });
  t.equal((await readVteps(etcd, { vni: VNI })).length, 150, '100 deleted');
  await revokeLease(etcd, lease);
  t.same(await readVteps(etcd, { vni: VNI }), [], 'revoking the lease removes the rest');
});

t.test('3-member cluster in a namespace survives one member killed; teardown leaves nothing', async (t) => {
  if (skipUnlessEtcd(t)) return;
  if (skipUnlessRoot(t)) return;
  const pids: number[] = [];
  const dataDirs: string[] = [];
  await t.test('cluster', async (t) => {
    const ns = await createNamespace(t, 'etcd');
    const etcd = await startEtcd(t, { members: 3, ns, ip: '127.0.0.1' });
    pids.push(...etcd.pids());
    dataDirs.push(...etcd.members.map((m) => m.dataDir));
    t.equal(pids.length, 3, 'three member processes');
    const members = JSON.parse(await etcd.ctl('member', 'list', '-w', 'json')) as { members: unknown[] };
    t.equal(members.members.length, 3, 'etcd lists three members');

    await putVteps(etcd, { vni: VNI, records: [fakeVtep(VNI, 0)] });
    // The leader: losing it forces an election, the harder case.
    const leader = await etcd.leader();
    const leaderPid = etcd.members[leader].proc!.pid!;
    await etcd.kill(leader);
    t.notOk(alive(leaderPid), 'the leader killed');
    // Quorum is 2 of 3: writes and reads go on through the other endpoints.
    await eventually(() => putVteps(etcd, { vni: VNI, records: [fakeVtep(VNI, 1)] }).then(() => true, () => false),
      { timeoutMs: 10_000, intervalMs: 200, what: 'a write with one member down' });
    t.same((await readVteps(etcd, { vni: VNI })).map((e) => e.value.vtep), [fakeVtep(VNI, 0).vtep, fakeVtep(VNI, 1).vtep],
      'both keys readable with one member down');
    t.not(await etcd.leader(), leader, 'another member leads');

    await etcd.restart(leader);
    const back = await etcd.ctlMember(leader, 'get', '--print-value-only', '--consistency=s', vtepKey(DEFAULT_PREFIX, VNI, fakeVtep(VNI, 1).vtep));
    t.ok(back.includes(fakeVtep(VNI, 1).vtep), 'the restarted member serves what was written while it was down');
    pids.push(...etcd.pids().filter((p) => !pids.includes(p)));
  });
  t.ok(pids.length >= 3 && pids.every((p) => !alive(p)), 'no member process left after teardown');
  t.ok(dataDirs.every((d) => !existsSync(d)), 'data dirs removed');
});
