// Exercises test/helpers/netns.ts for real with kernel-only topologies (no
// vxland): veth pair + kernel vxlan on both ends, and a 3-host bridge.
// All traffic stays inside namespaces created here. Skipped unless root.
import t from 'tap';
import {
  addKernelVxlan, createTopology, exec, fdbShow, linkStats, listNamespaces,
  ping, skipUnlessRoot, spawnDaemon, verifiedTcpTransfer, ExecError,
} from './helpers/netns.js';

const VNI = 42;
const PORT = 4789;

async function main(): Promise<void> {
  if (skipUnlessRoot(t)) return;
  const created: string[] = [];

  await t.test('two hosts over veth with kernel vxlan', async (t) => {
    const topo = await createTopology(t, { hosts: 2 });
    created.push(...topo.namespaces);
    const [a, b] = topo.hosts;
    t.equal(topo.kind, 'p2p');
    t.equal(a.ip, '198.18.1.1');
    t.equal(b.ip, '198.18.1.2');

    const underlay = await ping(a.ns, b.ip, { count: 2, intervalS: 0.2 });
    t.match(underlay, { transmitted: 2, received: 2 }, 'underlay ping');

    const va = await addKernelVxlan(a, { vni: VNI, dstport: PORT, remotes: [b.ip], address: '10.42.0.1/24' });
    const vb = await addKernelVxlan(b, { vni: VNI, dstport: PORT, remotes: [a.ip], address: '10.42.0.2/24' });
    const mtu = (await exec(a.ns, ['cat', `/sys/class/net/${va.name}/mtu`])).stdout.trim();
    t.equal(mtu, '1450', 'vxlan MTU');

    const before = await linkStats(a.ns, a.dev);
    const overlay = await ping(a.ns, '10.42.0.2', { count: 5, intervalS: 0.2 });
    t.equal(overlay.transmitted, 5);
    t.equal(overlay.received, 5, 'overlay ping answered');
    const after = await linkStats(a.ns, a.dev);
    t.ok(after.txPackets - before.txPackets >= 5, `underlay tx grew by ${after.txPackets - before.txPackets}`);
    t.ok(after.rxPackets - before.rxPackets >= 5, `underlay rx grew by ${after.rxPackets - before.rxPackets}`);
    const vxStats = await linkStats(b.ns, vb.name);
    t.ok(vxStats.rxPackets >= 5, 'vxlan device on b received');

    // Kernel learning: a learned b's overlay MAC behind b's underlay IP.
    const fdb = await fdbShow(a.ns, va.name);
    t.ok(fdb.some((e) => e.mac === vb.mac && e.dst === b.ip), `a learned ${vb.mac} via ${b.ip}`);
    t.ok(fdb.some((e) => e.mac === '00:00:00:00:00:00' && e.dst === b.ip), 'flood entry present');

    // Full-size frames: 1450 - 28 = 1422 bytes of ICMP payload with DF.
    const big = await ping(a.ns, '10.42.0.2', { count: 2, size: 1422, dontFragment: true });
    t.equal(big.received, 2, 'MTU-sized DF ping');

    const bytes = 5 * 1024 * 1024;
    const r = await verifiedTcpTransfer({ serverNs: b.ns, serverIp: '10.42.0.2', clientNs: a.ns, bytes, timeoutMs: 60_000 });
    t.equal(r.sent.bytes, bytes, 'source sent all bytes');
    t.equal(r.received.bytes, bytes, 'sink received all bytes');
    t.equal(r.received.sha256, r.sent.sha256, 'sha256 matches');
    t.equal(r.sent.sha256, r.expectedSha256, 'stream is the expected one');
    t.comment(`5 MiB over kernel vxlan in ${r.durationMs} ms`);

    // Paced: 2 MiB at 1 MiB/s cannot finish in under 2 s (the source
    // sleeps until each chunk is due), and arrives intact.
    const paced = await verifiedTcpTransfer({
      serverNs: b.ns, serverIp: '10.42.0.2', clientNs: a.ns, bytes: 2 * 1024 * 1024, rateBytesPerS: 1024 * 1024, timeoutMs: 60_000, seed: 3,
    });
    t.equal(paced.received.sha256, paced.expectedSha256, 'paced transfer intact');
    t.ok(paced.durationMs >= 2000, `paced transfer took at least bytes / rate (${paced.durationMs} ms)`);
  });

  await t.test('three hosts on a bridge', async (t) => {
    const topo = await createTopology(t, { hosts: 3, subnet: 2 });
    created.push(...topo.namespaces);
    t.equal(topo.kind, 'bridge');
    t.ok(topo.switchNs, 'switch namespace');
    const overlayIp = (i: number) => `10.42.1.${i + 1}`;
    for (const h of topo.hosts) {
      await addKernelVxlan(h, {
        vni: VNI, dstport: PORT, address: `${overlayIp(h.index)}/24`,
        remotes: topo.hosts.filter((o) => o !== h).map((o) => o.ip),
      });
    }
    for (const [from, to] of [[0, 1], [0, 2], [1, 2]]) {
      const r = await ping(topo.hosts[from].ns, overlayIp(to), { count: 3, intervalS: 0.2 });
      t.equal(r.received, 3, `h${from} -> h${to} over the overlay`);
    }
  });

  await t.test('exec and spawnDaemon bounds', async (t) => {
    const topo = await createTopology(t, { hosts: 2, subnet: 3 });
    created.push(...topo.namespaces);
    const ns = topo.hosts[0].ns;
    await t.rejects(exec(ns, ['sleep', '5'], { timeoutMs: 300 }), ExecError, 'exec times out');
    const r = await exec(ns, ['false'], { allowFail: true });
    t.equal(r.code, 1, 'allowFail returns the exit code');

    const script = `
      let n = 0;
      const iv = setInterval(() => console.log(JSON.stringify({ level: 30, msg: 'tick', n: n++ })), 50);
      process.on('SIGTERM', () => { clearInterval(iv); console.log(JSON.stringify({ level: 30, msg: 'bye' })); process.exit(0); });
      setTimeout(() => process.exit(3), 20000);`;
    const d = spawnDaemon(t, ns, [process.execPath, '-e', script]);
    const line = await d.waitForJson((j) => j.msg === 'tick' && (j.n as number) >= 3, 5000);
    t.equal(line.n, 3, 'waitForJson sees the matching log line');
    await t.rejects(d.waitForJson((j) => j.msg === 'never', 200), /timed out/, 'waitForJson times out');
    await d.stop();
    t.equal(d.exitCode, 0, 'SIGTERM handled');
    t.ok(d.logs.some((j) => j.msg === 'bye'), 'last log line collected');
  });

  await t.test('namespaces are gone after the tests', async (t) => {
    t.ok(created.length >= 7, `${created.length} namespaces were created`);
    const left = await listNamespaces();
    t.same(created.filter((n) => left.includes(n)), [], 'none left');
  });
}

main().catch((err) => t.threw(err));
