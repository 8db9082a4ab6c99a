// Runtime control: no peer → no traffic; `peer add` → it flows; `peer del` →
// it stops; kill -9 and a new start → peers and static entries are back.
import t from 'tap';
import { addKernelVxlan, createTopology, ping, skipUnlessRoot } from './helpers/netns';
import { datapathsUnderTest, startVxland, TEST_VNI } from './helpers/vxland';

for (const datapath of datapathsUnderTest()) {
  t.test(`peers and static entries at run time (${datapath})`, async (t) => {
    if (skipUnlessRoot(t)) return;
    const topo = await createTopology(t, { hosts: 2 });
    const [a, b] = topo.hosts;
    await addKernelVxlan(b, { vni: TEST_VNI, remotes: [a.ip], address: '10.42.0.2/24' });
    const first = await startVxland(t, a, { address: '10.42.0.1/24', datapath });

    t.equal((await ping(a.ns, '10.42.0.2', { count: 2, intervalS: 0.2, timeoutS: 1 })).received, 0, 'no peer: no traffic');
    t.ok((await first.json<any>('status')).stats.drops.tx_no_destination > 0, 'counted as tx_no_destination');

    const added = await first.cli('peer', 'add', b.ip);
    t.equal(added.code, 0, 'peer add succeeds');
    const afterAdd = await ping(a.ns, '10.42.0.2', { count: 3, intervalS: 0.2, timeoutS: 2 });
    t.equal(afterAdd.received, 3, 'peer added: traffic flows');
    t.same(await first.json('peer', 'list'), [b.ip]);

    t.equal((await first.cli('peer', 'del', b.ip)).code, 0, 'peer del succeeds');
    await first.cli('fdb', 'flush', '--learned');
    await new Promise((r) => setTimeout(r, 300));
    t.equal((await ping(a.ns, '10.42.0.2', { count: 2, intervalS: 0.2, timeoutS: 1 })).received, 0, 'peer deleted: traffic stops');

    const unknown = await first.cli('peer', 'del', '198.18.1.77');
    t.not(unknown.code, 0, 'deleting an unknown peer fails');
    t.match(unknown.stderr.trim().split('\n'), [/^vxland: .*198\.18\.1\.77/], 'with one clear line naming it');

    t.equal((await first.cli('peer', 'add', b.ip)).code, 0);
    t.equal((await first.cli('fdb', 'add', '02:00:00:00:aa:01', '198.18.1.50')).code, 0, 'static entry added');

    first.proc.proc.kill('SIGKILL');
    await first.proc.exited;
    const second = await startVxland(t, a, { address: '10.42.0.1/24', datapath, stateDir: first.stateDir });
    t.same(await second.json('peer', 'list'), [b.ip], 'peer is back after kill -9');
    const fdb = await second.json<any[]>('fdb', 'show');
    t.ok(fdb.some((e) => e.mac === '02:00:00:00:aa:01' && e.vtep === '198.18.1.50' && e.kind === 'static'), 'static entry is back');
    t.equal((await ping(a.ns, '10.42.0.2', { count: 3, intervalS: 0.2, timeoutS: 2 })).received, 3, 'traffic flows after restart');
  });
}
