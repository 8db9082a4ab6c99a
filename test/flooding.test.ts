// Three hosts: vxland plus two kernel VTEPs. An unknown unicast frame is
// flooded to both; once its MAC is learned it goes only to the right host.
// And flood lists of hundreds and thousands of peers: each gets a broadcast
// exactly once.
import path from 'node:path';
import t from 'tap';
import { ipv4At } from './fixtures/fixture-util';
import { addKernelVxlan, createTopology, exec, FIXTURES_DIR, ip, linkStats, ping, skipUnlessRoot, spawnDaemon } from './helpers/netns';
import { ANNOUNCEMENTS_DONE_MESSAGE } from '../src/io/announce';
import { eventually } from './helpers/eventually';
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
    t.same({ transmitted: unanswered.transmitted, received: unanswered.received }, { transmitted: PINGS, received: 0 },
      'every echo went out into the tunnel, and nobody answered 10.42.0.99');
    const b1 = await linkStats(b.ns, kb.name);
    const c1 = await linkStats(c.ns, kc.name);
    t.equal(b1.rxPackets - b0.rxPackets, PINGS, 'unknown unicast flooded to B, each echo once');
    t.equal(c1.rxPackets - c0.rxPackets, PINGS, 'and to C');

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

/** 300: more than the 256 the native path used to reach; 2100: more
 *  datagrams than one native send batch holds (2048). */
const MANY_PEER_COUNTS = [300, 2100];
/** The first underlay address of the many peers, all on one receiving host
 *  (198.19.0.0/16, routed there). */
const MANY_PEERS_FIRST = '198.19.1.1';
const FLOOD_WAIT_MS = 10_000;

for (const datapath of datapathsUnderTest()) {
  for (const peerCount of MANY_PEER_COUNTS) t.test(`${peerCount} peers each receive a broadcast exactly once (${datapath})`, async (t) => {
    if (skipUnlessRoot(t)) return;
    const topo = await createTopology(t, { hosts: 2 });
    const [a, r] = topo.hosts;
    const peers = Array.from({ length: peerCount }, (_, i) => ipv4At(MANY_PEERS_FIRST, i));
    await exec(r.ns, ['ip', '-batch', '-'], { input: peers.map((p) => `addr add ${p}/32 dev ${r.dev}\n`).join('') });
    await ip(a.ns, 'route', 'add', '198.19.0.0/16', 'via', r.ip, 'dev', a.dev);
    const counter = spawnDaemon(t, r.ns, [process.execPath, path.join(FIXTURES_DIR, 'vxlan-counter.js'),
      '--first', peers[0], '--count', String(peerCount), '--vni', String(TEST_VNI)]);
    await counter.waitForJson((l) => l.event === 'listening', FLOOD_WAIT_MS);
    const v = await startVxland(t, a, { peers, address: '10.42.0.1/24', datapath });
    t.equal((await v.peers()).length, peerCount, `${peerCount} peers listed`);

    const broadcast = (marker: string) => exec(a.ns, [process.execPath, path.join(FIXTURES_DIR, 'udp-broadcast.js'),
      '--from', '10.42.0.1', '--to', '10.42.0.255', '--port', '9', '--marker', marker]);
    await broadcast('first');
    await counter.waitForJson((l) => l.event === 'all' && l.marker === 'first', FLOOD_WAIT_MS);
    // Every copy of "first" was sent before any of "fence", and each
    // address's datagrams arrive in order: once every address has the fence,
    // any duplicate of "first" would have arrived.
    await broadcast('fence');
    const report = await counter.waitForJson((l) => l.event === 'all' && l.marker === 'fence', FLOOD_WAIT_MS);
    const firstCounts = (report.counts as Record<string, Record<string, number>>).first;
    t.equal(Object.keys(firstCounts).length, peerCount, `every one of the ${peerCount} peers received the broadcast`);
    t.same(Object.entries(firstCounts).filter(([, n]) => n !== 1), [], 'each exactly once');

    // Per-VTEP counters: every peer has its own row, none folded into "other".
    const counted = await eventually(async () => {
      const stats = await v.json<{ vteps: Array<{ vtep: string; txPackets: number }> }>('stats');
      return stats.vteps.filter((row) => row.txPackets >= 2).map((row) => row.vtep);
    }, {
      until: (rows) => rows.length >= peerCount, timeoutMs: FLOOD_WAIT_MS, intervalMs: 100,
      what: `${peerCount} per-VTEP rows counting both broadcasts`, describe: (rows) => `${rows.length} rows`,
    });
    t.same(counted.sort(), [...peers].sort(), 'stats counts both broadcasts for each peer under its own address');
  });
}
