// vxland ↔ vxland across two namespaces: ping both ways and a verified 50 MB
// TCP transfer, on every data path this build offers.
import t from 'tap';
import { createTopology, ping, skipUnlessRoot, verifiedTcpTransfer } from './helpers/netns';
import { datapathsUnderTest, startVxland } from './helpers/vxland';

const TRANSFER_BYTES = 50 * 1024 * 1024;

for (const datapath of datapathsUnderTest()) {
  t.test(`vxland ↔ vxland (${datapath})`, async (t) => {
    if (skipUnlessRoot(t)) return;
    const topo = await createTopology(t, { hosts: 2 });
    const [a, b] = topo.hosts;
    const va = await startVxland(t, a, { peers: [b.ip], address: '10.42.0.1/24', datapath });
    const vb = await startVxland(t, b, { peers: [a.ip], address: '10.42.0.2/24', datapath });

    const ab = await ping(a.ns, '10.42.0.2', { count: 5, intervalS: 0.2, timeoutS: 2 });
    t.equal(ab.received, 5, 'A pings B over the overlay');
    const ba = await ping(b.ns, '10.42.0.1', { count: 5, intervalS: 0.2, timeoutS: 2 });
    t.equal(ba.received, 5, 'B pings A over the overlay');
    const big = await ping(a.ns, '10.42.0.2', { count: 3, intervalS: 0.2, timeoutS: 2, size: 1422, dontFragment: true });
    t.equal(big.received, 3, 'a full 1450-byte inner packet passes unfragmented');

    const transfer = await verifiedTcpTransfer({ serverNs: b.ns, serverIp: '10.42.0.2', clientNs: a.ns, bytes: TRANSFER_BYTES, timeoutMs: 120_000 });
    t.equal(transfer.received.bytes, TRANSFER_BYTES, '50 MB arrived');
    t.equal(transfer.received.sha256, transfer.expectedSha256, 'bytes intact (sha256)');
    t.comment(`50 MB in ${transfer.durationMs} ms`);

    const fdbA = await va.json<any[]>('fdb', 'show');
    const statusB = await vb.json<any>('status');
    t.ok(fdbA.some((e) => e.mac === statusB.mac && e.vtep === b.ip && e.kind === 'learned'), `A learned B's TAP MAC ${statusB.mac} behind B`);
    t.ok(statusB.stats.rxBytes >= TRANSFER_BYTES, 'B counted the bytes it received');
    t.equal(statusB.datapath, datapath);
  });
}
