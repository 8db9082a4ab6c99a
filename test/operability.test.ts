// What an operator sees of a running daemon: doctor names a VNI mismatch and
// a silent peer, monitor shows a learned MAC as it happens, per-VTEP counters,
// the metrics endpoint, a log level changed at run time, and which data path
// and offloads are in effect.
import t from 'tap';
import { DOCTOR_PEER_GRACE_MS } from '../src/doctor';
import { addKernelVxlan, createTopology, exec, ping, skipUnlessRoot } from './helpers/netns';
import { datapathsUnderTest, startMonitor, startVxland, TEST_VNI } from './helpers/vxland';

const METRICS = '127.0.0.1:9798';

t.test('doctor, monitor, stats, metrics and log-level against a live daemon', async (t) => {
  if (skipUnlessRoot(t)) return;
  const topo = await createTopology(t, { hosts: 4 });
  const [a, b, c, d] = topo.hosts;
  const kb = await addKernelVxlan(b, { vni: TEST_VNI, remotes: [a.ip], address: '10.42.0.2/24' });
  await addKernelVxlan(c, { vni: TEST_VNI + 1, remotes: [a.ip], address: '10.42.0.3/24' });
  const v = await startVxland(t, a, {
    peers: [b.ip, c.ip, d.ip], address: '10.42.0.1/24',
    extraArgs: ['--log-level', 'info', '--metrics', METRICS],
  });

  const startedMs = Date.now();
  const monitor = await startMonitor(t, v);
  t.equal((await ping(b.ns, '10.42.0.1', { count: 3, timeoutS: 3 })).received, 3, 'B reaches vxland');
  const learned = await monitor.waitForJson((e) => e.type === 'learned' && e.mac === kb.mac, 5000);
  t.match(learned, { type: 'learned', mac: kb.mac, vtep: b.ip, vni: TEST_VNI, kind: 'learned' }, 'monitor shows the learned MAC');

  await exec(c.ns, ['ping', '-c', '3', '-i', '0.2', '-W', '1', '10.42.0.1'], { allowFail: true, timeoutMs: 10_000 });

  const stats = await v.json<any>('stats');
  const fromB = stats.vteps.find((x: any) => x.vtep === b.ip);
  t.ok(fromB.rxPackets >= 3 && fromB.txPackets >= 3, `per-VTEP counters for B (rx ${fromB.rxPackets}, tx ${fromB.txPackets})`);
  t.ok(stats.stats.drops.rx_wrong_vni >= 1, 'the foreign VNI is counted');

  // Doctor reports silent peers only once the daemon has run for its grace
  // period: that time passing is part of what is under test.
  await new Promise((r) => setTimeout(r, Math.max(0, startedMs + DOCTOR_PEER_GRACE_MS + 500 - Date.now())));
  const doctor = await v.cli('doctor');
  t.equal(doctor.code, 1, 'doctor exits 1 when it finds problems');
  t.match(doctor.stdout, new RegExp(`vni: ${c.ip.replace(/\./g, '\\.')} sends VXLAN with VNI ${TEST_VNI + 1}, but vxl0 uses VNI ${TEST_VNI}`), 'names the host and its VNI');
  t.match(doctor.stdout, new RegExp(`peer: nothing was ever received from peer ${d.ip.replace(/\./g, '\\.')}`), 'names the silent peer');
  t.notMatch(doctor.stdout, new RegExp(`peer ${b.ip.replace(/\./g, '\\.')}\\b`), 'but not the peer that answers');

  const scrape = await exec(a.ns, [process.execPath, '-e', `fetch('http://${METRICS}/metrics').then((r) => r.text()).then((b) => process.stdout.write(b))`], { timeoutMs: 10_000 });
  for (const name of ['vxland_rx_packets_total', 'vxland_tx_packets_total', 'vxland_drops_total{reason="rx_wrong_vni"}', `vxland_vtep_rx_packets_total{vtep="${b.ip}"}`, 'vxland_fdb_entries{kind="learned"}', 'process_cpu_seconds_total']) {
    t.ok(scrape.stdout.includes(name), `metrics include ${name}`);
  }

  t.notOk(v.proc.logs.some((l) => l.msg === 'fdb change'), 'no debug lines at level info');
  t.equal((await v.cli('log-level', 'debug')).stdout, 'log level: debug (was info)\n');
  await v.cli('fdb', 'add', '02:00:00:00:aa:02', b.ip);
  await v.proc.waitForJson((l) => l.msg === 'fdb change' && l.mac === '02:00:00:00:aa:02', 5000);
  t.pass('debug lines appear after log-level debug');
});

t.test('doctor names an inner MTU that does not fit the underlay', async (t) => {
  if (skipUnlessRoot(t)) return;
  const topo = await createTopology(t, { hosts: 2 });
  const [a, b] = topo.hosts;
  const v = await startVxland(t, a, { peers: [b.ip], extraArgs: ['--mtu', '1480'] });
  const doctor = await v.cli('doctor', '--json');
  const report = JSON.parse(doctor.stdout);
  t.equal(report.ok, false);
  t.match(report.findings, [{ check: 'mtu', problem: new RegExp(`vxl0 MTU 1480 .* ${a.dev} .* MTU 1500`), fix: /--mtu 1450/ }]);
});

for (const datapath of datapathsUnderTest()) {
  t.test(`status names the data path and the offloads in effect (${datapath})`, async (t) => {
    if (skipUnlessRoot(t)) return;
    const topo = await createTopology(t, { hosts: 2 });
    const [a, b] = topo.hosts;
    const v = await startVxland(t, a, { peers: [b.ip], datapath });
    const status = await v.json<any>('status');
    t.equal(status.datapath, datapath);
    // This kernel has TUNSETOFFLOAD, UDP_SEGMENT and UDP_GRO; node:dgram has none of them.
    const expected = datapath === 'native' ? ['tso', 'udp-gso', 'udp-gro', 'tcp-coalesce'] : [];
    t.same(status.offloads, expected, `offloads: ${JSON.stringify(status.offloads)}`);
    const human = (await v.cli('status')).stdout;
    t.match(human, new RegExp(`^datapath: +${datapath}${expected.length > 0 ? ` \\(${expected.join(', ')}\\)` : ''}$`, 'm'), 'the human status shows them on the datapath line');
  });
}
