// Three hosts: vxland plus two kernel VTEPs. An unknown unicast frame is
// flooded to both; once its MAC is learned it goes only to the right host.
import t from 'tap';
import { ANNOUNCEMENTS_DONE_MESSAGE } from '../src/io/announce';
import { addKernelVxlan, createTopology, ip, linkStats, ping, skipUnlessRoot } from './helpers/netns';
import { datapathsUnderTest, startVxland, TEST_VNI } from './helpers/vxland';

const PINGS = 5;

for (const datapath of datapathsUnderTest()) {
  t.test(`flooding then learned unicast (${datapath})`, async (t) => {
    if (skipUnlessRoot(t)) return;
    const topo = await createTopology(t, { hosts: 3 });
    const [a, b, c] = topo.hosts;
    const kb = await addKernelVxlan(b, { vni: TEST_VNI, remotes: [a.ip], address: '10.42.0.2/24' });
    const kc = await addKernelVxlan(c, { vni: TEST_VNI, remotes: [a.ip], address: '10.42.0.3/24' });
    const v = await startVxland(t, a, { peers: [b.ip, c.ip], address: '10.42.0.1/24', datapath });
    // Its gratuitous ARPs at start are floods too: count only after them.
    await v.proc.waitForJson((l) => l.msg === ANNOUNCEMENTS_DONE_MESSAGE, 5_000);

    // Unknown unicast: a neighbour entry with a MAC nobody has learned.
    await ip(a.ns, 'neigh', 'replace', '10.42.0.99', 'lladdr', '02:00:00:00:00:99', 'dev', v.dev, 'nud', 'permanent');
    const b0 = await linkStats(b.ns, kb.name);
    const c0 = await linkStats(c.ns, kc.name);
    const unanswered = await ping(a.ns, '10.42.0.99', { count: PINGS, intervalS: 0.1, timeoutS: 1 });
    t.ok(unanswered.transmitted >= PINGS);
    const b1 = await linkStats(b.ns, kb.name);
    const c1 = await linkStats(c.ns, kc.name);
    t.equal(b1.rxPackets - b0.rxPackets, unanswered.transmitted, 'unknown unicast flooded to B');
    t.equal(c1.rxPackets - c0.rxPackets, unanswered.transmitted, 'and to C');

    // B talks first, so vxland learns B's MAC; then unicast to B reaches only B.
    await ip(a.ns, 'neigh', 'replace', '10.42.0.2', 'lladdr', kb.mac, 'dev', v.dev, 'nud', 'permanent');
    await ip(b.ns, 'neigh', 'replace', '10.42.0.1', 'lladdr', (await v.json<any>('status')).mac, 'dev', kb.name, 'nud', 'permanent');
    t.equal((await ping(b.ns, '10.42.0.1', { count: 1, timeoutS: 2 })).received, 1, 'B reaches vxland');
    const fdb = await v.json<any[]>('fdb', 'show');
    t.ok(fdb.some((e) => e.mac === kb.mac && e.vtep === b.ip), 'vxland learned B');

    const b2 = await linkStats(b.ns, kb.name);
    const c2 = await linkStats(c.ns, kc.name);
    t.equal((await ping(a.ns, '10.42.0.2', { count: PINGS, intervalS: 0.1, timeoutS: 2 })).received, PINGS);
    const b3 = await linkStats(b.ns, kb.name);
    const c3 = await linkStats(c.ns, kc.name);
    t.equal(b3.rxPackets - b2.rxPackets, PINGS, 'learned unicast goes to B');
    t.equal(c3.rxPackets - c2.rxPackets, 0, 'and not to C');
  });
}
