// vxland ↔ a Linux kernel vxlan device: ping and verified TCP both ways, and
// vxland learns the kernel VTEP's MAC.
import t from 'tap';
import { addKernelVxlan, createTopology, fdbShow, ping, skipUnlessRoot, verifiedTcpTransfer } from './helpers/netns';
import { datapathsUnderTest, startVxland, TEST_VNI } from './helpers/vxland';

const TRANSFER_BYTES = 20 * 1024 * 1024;

for (const datapath of datapathsUnderTest()) {
  t.test(`vxland ↔ kernel vxlan (${datapath})`, async (t) => {
    if (skipUnlessRoot(t)) return;
    const topo = await createTopology(t, { hosts: 2 });
    const [a, b] = topo.hosts;
    const kernel = await addKernelVxlan(b, { vni: TEST_VNI, remotes: [a.ip], address: '10.42.0.2/24' });
    const v = await startVxland(t, a, { peers: [b.ip], address: '10.42.0.1/24', datapath });

    t.equal((await ping(a.ns, '10.42.0.2', { count: 5, intervalS: 0.2, timeoutS: 2 })).received, 5, 'vxland → kernel');
    t.equal((await ping(b.ns, '10.42.0.1', { count: 5, intervalS: 0.2, timeoutS: 2 })).received, 5, 'kernel → vxland');

    const fdb = await v.json<any[]>('fdb', 'show');
    t.ok(
      fdb.some((e) => e.mac === kernel.mac && e.vtep === b.ip && e.kind === 'learned' && e.vni === TEST_VNI),
      `vxland learned the kernel VTEP's MAC ${kernel.mac} behind ${b.ip}`,
    );
    const kernelFdb = await fdbShow(b.ns, kernel.name);
    t.ok(kernelFdb.some((e) => e.dst === a.ip && e.mac !== '00:00:00:00:00:00'), 'and the kernel learned vxland\'s MAC');

    const toKernel = await verifiedTcpTransfer({ serverNs: b.ns, serverIp: '10.42.0.2', clientNs: a.ns, bytes: TRANSFER_BYTES, timeoutMs: 120_000 });
    t.equal(toKernel.received.sha256, toKernel.expectedSha256, 'vxland → kernel: bytes intact');
    const fromKernel = await verifiedTcpTransfer({ serverNs: a.ns, serverIp: '10.42.0.1', clientNs: b.ns, bytes: TRANSFER_BYTES, timeoutMs: 120_000, seed: 7 });
    t.equal(fromKernel.received.sha256, fromKernel.expectedSha256, 'kernel → vxland: bytes intact');
    t.equal(fromKernel.received.bytes, TRANSFER_BYTES);
  });
}
