// Garbage datagrams to the VXLAN port are dropped and counted by reason while
// forwarding goes on.
import path from 'node:path';
import t from 'tap';
import { createTopology, exec, FIXTURES_DIR, ping, skipUnlessRoot } from './helpers/netns';
import { datapathsUnderTest, startVxland, TEST_VNI } from './helpers/vxland';
import { ETH_HEADER_BYTES } from '../src/wire/ethernet';
import { VXLAN_HEADER_BYTES } from '../src/wire/vxlan';

const RANDOM_DATAGRAMS = 200;

for (const datapath of datapathsUnderTest()) {
  t.test(`garbage is counted, forwarding goes on (${datapath})`, async (t) => {
    if (skipUnlessRoot(t)) return;
    const topo = await createTopology(t, { hosts: 2 });
    const [a, b] = topo.hosts;
    const va = await startVxland(t, a, { peers: [b.ip], address: '10.42.0.1/24', datapath });
    await startVxland(t, b, { peers: [a.ip], address: '10.42.0.2/24', datapath });
    t.equal((await ping(a.ns, '10.42.0.2', { count: 2, intervalS: 0.2, timeoutS: 2 })).received, 2);

    const before = (await va.json<any>('status')).stats;
    const r = await exec(b.ns, [process.execPath, path.join(FIXTURES_DIR, 'udp-garbage.js'), a.ip, '4789', String(TEST_VNI), String(RANDOM_DATAGRAMS)], { timeoutMs: 20_000 });
    t.match(r.stdout, /"sent":204/);
    t.equal((await ping(a.ns, '10.42.0.2', { count: 3, intervalS: 0.2, timeoutS: 2 })).received, 3, 'forwarding goes on');

    const after = (await va.json<any>('status')).stats;
    const delta = (reason: string) => (after.drops[reason] ?? 0) - (before.drops[reason] ?? 0);
    // The fixture's random datagrams are 1..RANDOM_DATAGRAMS bytes long, each
    // length once, all with the I flag clear: those shorter than a VXLAN and
    // an Ethernet header are truncated, the others lack the I flag.
    const randomTruncated = VXLAN_HEADER_BYTES + ETH_HEADER_BYTES - 1;
    t.equal(delta('rx_truncated'), 2 + randomTruncated, 'truncated datagrams counted: the two made so and the short random ones');
    t.equal(delta('rx_no_i_flag'), 1 + RANDOM_DATAGRAMS - randomTruncated, 'I flag clear counted: the one made so and the longer random ones');
    t.equal(delta('rx_wrong_vni'), 1, 'wrong VNI counted');
    t.equal(after.dropsTotal - before.dropsTotal, 204, 'every garbage datagram is accounted for');
  });
}
