// vxland ↔ a Linux kernel vxlan device: ping and verified TCP both ways, and
// vxland learns the kernel VTEP's MAC; once with the kernel's IPv4 default
// (zero outer UDP checksums) and once with `udpcsum` (checksummed datagrams,
// which the receiving host's UDP layer verifies before vxland reads them).
import t from 'tap';
import { addKernelVxlan, createTopology, fdbShow, ping, skipUnlessRoot, verifiedTcpTransfer } from './helpers/netns';
import { datapathsUnderTest, startVxland, TEST_VNI } from './helpers/vxland';

const TRANSFER_BYTES = 20 * 1024 * 1024;
/** The second checksum setting needs less traffic: the framing is the same. */
const UDPCSUM_TRANSFER_BYTES = 8 * 1024 * 1024;
const KERNEL_CHECKSUM_SETTINGS = [
  { label: 'kernel default: noudpcsum', extra: [] as string[], bytes: TRANSFER_BYTES },
  { label: 'kernel udpcsum', extra: ['udpcsum'], bytes: UDPCSUM_TRANSFER_BYTES },
];

for (const datapath of datapathsUnderTest()) for (const csum of KERNEL_CHECKSUM_SETTINGS) {
  t.test(`vxland ↔ kernel vxlan (${datapath}, ${csum.label})`, async (t) => {
    if (skipUnlessRoot(t)) return;
    const topo = await createTopology(t, { hosts: 2 });
    const [a, b] = topo.hosts;
    const kernel = await addKernelVxlan(b, { vni: TEST_VNI, remotes: [a.ip], address: '10.42.0.2/24', extra: csum.extra });
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

    const toKernel = await verifiedTcpTransfer({ serverNs: b.ns, serverIp: '10.42.0.2', clientNs: a.ns, bytes: csum.bytes, timeoutMs: 120_000 });
    t.equal(toKernel.received.sha256, toKernel.expectedSha256, 'vxland → kernel: bytes intact');
    const fromKernel = await verifiedTcpTransfer({ serverNs: a.ns, serverIp: '10.42.0.1', clientNs: b.ns, bytes: csum.bytes, timeoutMs: 120_000, seed: 7 });
    t.equal(fromKernel.received.sha256, fromKernel.expectedSha256, 'kernel → vxland: bytes intact');
    t.equal(fromKernel.received.bytes, csum.bytes);
    const drops = (await v.json<any>('status')).stats.drops as Record<string, number> | undefined;
    t.same(Object.entries(drops ?? {}).filter(([, n]) => n > 0), [], 'vxland dropped nothing');
  });
}
