// What an operator sees of a running daemon, on each data path: doctor names
// a VNI mismatch and a silent peer, monitor shows a learned MAC as it
// happens, per-VTEP counters, the metrics endpoint (and that the README's
// metric table is what it exports), a log level changed at run time, and
// which data path and offloads are in effect.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { DOCTOR_PEER_GRACE_MS } from '../src/doctor';
import { DROP_REASON_NAMES } from '../src/ports/drops';
import { eventually } from './helpers/eventually';
import { addKernelVxlan, createTopology, exec, ping, REPO_ROOT, skipUnlessRoot, vxlandArgv } from './helpers/netns';
import { awaitFinding, doctorReport, parseMetrics, scrapeMetrics, silentPeer, type ScrapedMetric } from './helpers/operator';
import { datapathsUnderTest, startMonitor, startVxland, tempDir, TEST_VNI } from './helpers/vxland';

const METRICS = '127.0.0.1:9798';

interface DocumentedMetric {
  name: string;
  type: string;
  /** Each label with the values the README lists for it (null: any value). */
  labels: Map<string, Set<string> | null>;
}

/** The rows of the README table that starts with `header`, as cells. */
function readmeTable(readme: string, header: string): string[][] {
  const lines = readme.split('\n');
  const start = lines.indexOf(header);
  if (start < 0) throw new Error(`README has no table headed ${header}`);
  const rows: string[][] = [];
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith('|')) break;
    rows.push(line.slice(1, -1).split('|').map((c) => c.trim()));
  }
  return rows;
}

const backticked = (s: string): string[] => [...s.matchAll(/`([^`]+)`/g)].map((m) => m[1]);

/** The reasons the README's drop reason table names (a row may name several). */
function documentedDropReasons(readme: string): string[] {
  return readmeTable(readme, '| reason | cause |').flatMap((row) => backticked(row[0]));
}

/** The README's metric table: each row names metrics, their type, and
 *  their labels, a label's values in parentheses after it (`reason` (see
 *  *Drop reasons*) means the drop reason table's names). */
function documentedMetrics(readme: string): Map<string, DocumentedMetric> {
  const dropReasons = new Set(documentedDropReasons(readme));
  const out = new Map<string, DocumentedMetric>();
  for (const [names, type, labelCell] of readmeTable(readme, '| metric | type | labels |')) {
    const labels = new Map<string, Set<string> | null>();
    for (const [, label, values] of labelCell.matchAll(/`([^`]+)`(?:\s*\(([^)]*)\))?/g)) {
      if (values === undefined) labels.set(label, null);
      else if (/Drop reasons/.test(values)) labels.set(label, dropReasons);
      else labels.set(label, new Set(backticked(values)));
    }
    for (const name of backticked(names)) out.set(name, { name, type: type.split(' ')[0], labels });
  }
  return out;
}

/** Where the README's metric table and a scrape disagree, one line each. */
function disagreements(documented: Map<string, DocumentedMetric>, scraped: Map<string, ScrapedMetric>): string[] {
  const out: string[] = [];
  const exported = [...scraped.values()].filter((m) => m.name.startsWith('vxland_'));
  for (const m of exported) if (!documented.has(m.name)) out.push(`${m.name} is exported but not in the README table`);
  for (const d of documented.values()) {
    const m = scraped.get(d.name);
    if (!m) { out.push(`${d.name} is in the README table but not exported`); continue; }
    if (m.type !== d.type) out.push(`${d.name}: README says ${d.type}, /metrics says ${m.type}`);
    const names = (labels: Iterable<string>) => [...labels].sort().join(', ') || 'none';
    if (m.samples.length === 0) out.push(`${d.name}: no sample to compare labels with`);
    else if (names(m.labels.keys()) !== names(d.labels.keys())) out.push(`${d.name}: README labels ${names(d.labels.keys())}, /metrics labels ${names(m.labels.keys())}`);
    for (const [label, allowed] of d.labels) {
      for (const value of m.labels.get(label) ?? []) {
        if (allowed !== null && !allowed.has(value)) out.push(`${d.name}{${label}="${value}"} is exported but the README does not list ${value}`);
      }
    }
  }
  return out;
}

/** For a pattern: an IPv4 address with its dots escaped. */
const re = (s: string): string => s.replace(/\./g, '\\.');

for (const datapath of datapathsUnderTest()) {
  t.test(`doctor, monitor, stats, metrics and log-level against a live daemon (${datapath})`, async (t) => {
    if (skipUnlessRoot(t)) return;
    const topo = await createTopology(t, { hosts: 4 });
    const [a, b, c, d] = topo.hosts;
    const kb = await addKernelVxlan(b, { vni: TEST_VNI, remotes: [a.ip], address: '10.42.0.2/24' });
    await addKernelVxlan(c, { vni: TEST_VNI + 1, remotes: [a.ip], address: '10.42.0.3/24' });
    const v = await startVxland(t, a, {
      peers: [b.ip, c.ip, d.ip], address: '10.42.0.1/24', datapath,
      extraArgs: ['--log-level', 'info', '--metrics', METRICS],
    });

    // Every drop reason has its series from the start, the network's and the host's.
    const first = parseMetrics(await scrapeMetrics(a.ns, METRICS));
    const reasonsOf = (metric: string) => (first.get(metric)?.samples ?? []).map((x) => x.labels.reason).sort();
    t.same(reasonsOf('vxland_drops_total'), [...DROP_REASON_NAMES].sort(), 'vxland_drops_total: every reason from the first scrape');
    t.same(reasonsOf('vxland_host_drops_total'), [...DROP_REASON_NAMES].sort(), 'vxland_host_drops_total: every reason from the first scrape');
    const offloads = (await v.json<any>('status')).offloads as string[];
    const version = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')).version as string;
    t.same(first.get('vxland_build_info')?.samples, [{ labels: { version, datapath, offloads: offloads.length === 0 ? 'none' : offloads.join(',') }, value: 1 }],
      'vxland_build_info: the version, the data path and the offloads in effect');

    // Right after start D's silence is not a finding yet (the grace period).
    const early = await doctorReport(v);
    const uptimeS = (await v.json<any>('status')).uptimeS as number;
    if (uptimeS * 1000 < DOCTOR_PEER_GRACE_MS) {
      t.notOk(early.findings.some(silentPeer(d.ip)), `doctor does not call D silent ${uptimeS} s after start`);
    }

    const monitor = await startMonitor(t, v);
    t.equal((await ping(b.ns, '10.42.0.1', { count: 3, timeoutS: 3 })).received, 3, 'B reaches vxland');
    const learned = await monitor.waitForJson((e) => e.type === 'learned' && e.mac === kb.mac, 5000);
    t.match(learned, { type: 'learned', mac: kb.mac, vtep: b.ip, vni: TEST_VNI, kind: 'learned' }, 'monitor shows the learned MAC');

    // C's kernel VTEP is on another VNI: its ARP requests are counted and named.
    const pingFromC = () => exec(c.ns, ['ping', '-c', '2', '-i', '0.2', '-W', '1', '10.42.0.1'], { allowFail: true, timeoutMs: 10_000 });
    await pingFromC();
    const stats = await eventually(() => v.json<any>('stats'), {
      until: (s) => s.stats.drops.rx_wrong_vni >= 1,
      what: 'the foreign VNI counted',
      describe: (s) => JSON.stringify(s.stats.drops),
    });
    t.pass(`the foreign VNI is counted (rx_wrong_vni ${stats.stats.drops.rx_wrong_vni})`);
    const fromB = stats.vteps.find((x: any) => x.vtep === b.ip);
    t.ok(fromB.rxPackets >= 3 && fromB.txPackets >= 3, `per-VTEP counters for B (rx ${fromB.rxPackets}, tx ${fromB.txPackets})`);

    // Doctor calls D silent once the daemon has run for its grace period.
    const doctor = await awaitFinding(v, silentPeer(d.ip), { what: `doctor naming the silent peer ${d.ip}` });
    t.equal(doctor.code, 1, 'doctor exits 1 when it finds problems');
    const human = await v.cli('doctor');
    t.equal(human.code, 1, 'and so does its human form');
    t.match(human.stdout, new RegExp(`vni: ${re(c.ip)} sends VXLAN with VNI ${TEST_VNI + 1}, but vxl0 uses VNI ${TEST_VNI}`), 'names the host and its VNI');
    t.match(human.stdout, new RegExp(`peer: nothing was ever received from peer ${re(d.ip)}`), 'names the silent peer');
    t.notMatch(human.stdout, new RegExp(`peer ${re(b.ip)}\\b`), 'but not the peer that answers');

    const scrape = await scrapeMetrics(a.ns, METRICS);
    const vni = `vni="${TEST_VNI}"`;
    for (const name of [`vxland_rx_packets_total{${vni}}`, `vxland_tx_packets_total{${vni}}`, `vxland_vtep_rx_packets_total{${vni},vtep="${b.ip}"}`, `vxland_fdb_entries{${vni},kind="learned"}`, 'process_cpu_seconds_total', `vxland_info{dev="vxl0",vni="${TEST_VNI}",datapath="${datapath}"} 1`]) {
      t.ok(scrape.includes(name), `metrics include ${name}`);
    }
    // A datagram for a VNI no network has is a host-level drop; a data plane
    // that counts it in the one network shows it there.
    const wrongVni = parseMetrics(scrape);
    const counted = (metric: string) => (wrongVni.get(metric)?.samples ?? []).filter((x) => x.labels.reason === 'rx_wrong_vni').reduce((sum, x) => sum + x.value, 0);
    t.ok(counted('vxland_host_drops_total') + counted('vxland_drops_total') >= 1, 'metrics count the foreign VNI (vxland_host_drops_total or the network\'s vxland_drops_total)');
    // Every metric of the README's table, with its type and labels, and
    // nothing else of vxland's. The scrape has a drop, peers and learned
    // entries, so every labelled metric has samples to compare.
    const readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
    t.same(disagreements(documentedMetrics(readme), parseMetrics(scrape)), [], 'the README metric table is what /metrics exports');

    t.notOk(v.proc.logs.some((l) => l.msg === 'fdb change'), 'no debug lines at level info');
    t.equal((await v.cli('log-level', 'debug')).stdout, 'log level: debug (was info)\n');
    await v.cli('fdb', 'add', '02:00:00:00:aa:02', b.ip);
    await v.proc.waitForJson((l) => l.msg === 'fdb change' && l.mac === '02:00:00:00:aa:02', 5000);
    t.pass('debug lines appear after log-level debug');
  });

  // A start with an MTU the underlay cannot carry is refused (config.test);
  // here the underlay shrinks under a running daemon.
  t.test(`doctor names an inner MTU that does not fit the underlay (${datapath})`, async (t) => {
    if (skipUnlessRoot(t)) return;
    const topo = await createTopology(t, { hosts: 2 });
    const [a, b] = topo.hosts;
    const v = await startVxland(t, a, { peers: [b.ip], datapath });
    await exec(a.ns, ['ip', 'link', 'set', 'dev', a.dev, 'mtu', '1470']);
    const report = await doctorReport(v);
    t.equal(report.code, 1);
    t.equal(report.ok, false);
    t.match(report.findings, [{ check: 'mtu', problem: new RegExp(`vxl0 MTU 1450 .* ${a.dev} .* MTU 1470`), fix: /--mtu 1420/ }]);
  });

  t.test(`status names the data path and the offloads in effect (${datapath})`, async (t) => {
    if (skipUnlessRoot(t)) return;
    const topo = await createTopology(t, { hosts: 2 });
    const [a, b] = topo.hosts;
    const v = await startVxland(t, a, { peers: [b.ip], datapath });
    const status = await v.json<any>('status');
    t.equal(status.datapath, datapath);
    // This kernel has TUNSETOFFLOAD (with USO), UDP_SEGMENT and UDP_GRO; node:dgram has none of them.
    const expected = datapath === 'native' ? ['tso', 'uso', 'udp-gso', 'udp-gro', 'tcp-coalesce'] : [];
    t.same(status.offloads, expected, `offloads: ${JSON.stringify(status.offloads)}`);
    const human = (await v.cli('status')).stdout;
    t.match(human, new RegExp(`^datapath: +${datapath}${expected.length > 0 ? ` \\(${expected.join(', ')}\\)` : ''}$`, 'm'), 'the human status shows them on the datapath line');
  });
}

t.test('the README drop reason table names exactly the reasons the data paths count', async (t) => {
  const readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
  t.same(documentedDropReasons(readme).sort(), [...DROP_REASON_NAMES].sort());
});

// One data path on purpose: the configuration is the same on both.
t.test('config show prints a file that config check accepts and a daemon started from it serves alike', async (t) => {
  if (skipUnlessRoot(t)) return;
  const topo = await createTopology(t, { hosts: 2 });
  const [a, b] = topo.hosts;
  const v = await startVxland(t, a, { peers: [b.ip], address: '10.42.0.1/24', datapath: 'dgram' });
  for (const args of [
    ['peer', 'add', '192.0.2.77'], ['fdb', 'add', '02:00:00:00:aa:07', b.ip],
    ['network', 'add', '--vni', '43', '--peer', b.ip, '--mtu', '1400', '--accept', 'any'], ['peer', 'add', '192.0.2.78', '--vni', '43'],
  ]) t.equal((await v.cli(...args)).code, 0, `vxland ${args.join(' ')}`);
  const view = async (d: typeof v) => ({
    networks: (await d.json<any[]>('network', 'list')).map((n) => [n.vni, n.dev, n.mac, n.mtu]),
    peers: [await d.peers('--vni', '42'), await d.peers('--vni', '43')],
    statics: (await d.json<any[]>('fdb', 'show', '--vni', '42', '--type', 'static')).map((e) => [e.mac, e.vtep]),
    accept: (await d.json<any>('network', 'show', '--vni', '43')).accept,
  });
  const before = await view(v);

  // The file, moved to a fresh state dir and socket: what the new daemon serves comes from the file alone.
  const shown = await v.json<Record<string, unknown>>('config', 'show');
  const dir = tempDir(t, 'h5-shown');
  const file = path.join(dir, 'vxland.json');
  const socket = path.join(dir, 'vxland.sock');
  writeFileSync(file, JSON.stringify({ ...shown, stateDir: path.join(dir, 'state'), socket }, null, 2));
  const check = await exec(a.ns, vxlandArgv('config', 'check', file), { allowFail: true });
  t.same([check.code, check.stderr], [0, ''], `config check accepts it: ${check.stdout.trim()}`);

  v.proc.proc.kill('SIGTERM');
  await v.proc.exited;
  const again = await startVxland(t, a, { datapath: 'dgram', hostFile: file, stateDir: path.join(dir, 'state'), socket });
  t.same(await view(again), before, 'the same networks, MACs, MTUs, peers, static entries and source policy');
  t.match(before, { peers: [[b.ip, '192.0.2.77'], [b.ip, '192.0.2.78']], statics: [['02:00:00:00:aa:07', b.ip]], accept: 'any' }, 'and they are what was changed at run time');
});
