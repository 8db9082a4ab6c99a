// npm run bench: kernel vxlan vs vxland (native and dgram data paths) over
// two network namespaces joined by a veth pair, measured in one run.
//
// For each pairing (kernel<->kernel, native<->native, dgram<->dgram,
// native<->kernel) it builds a fresh pair of namespaces (unique names, removed
// in `finally` and on SIGINT/SIGTERM; all traffic stays inside them) and
// measures, RUNS times each, reporting the median:
//   - single-stream TCP throughput (iperf3 -t 5 -J),
//   - 4 parallel TCP streams (iperf3 -P 4 -t 5 -J; the sum received),
//   - packet rate with 64-byte UDP payloads (iperf3 -u -l 64 -b 0; received),
//   - ping RTT (ping -c 20 -i 0.05, average, after a 1 s pause),
//   - CPU seconds per GB moved by the vxland processes during the TCP test
//     (utime + stime from /proc/PID/stat; kernel vxlan work is softirq time
//     that belongs to no process, so it is not shown).
// Each figure is printed with its ratio to kernel<->kernel; the results, the
// machine and the date are written to BENCHMARKS.md. Needs root and iperf3.
//
// Then many networks on one daemon (BENCH_ONLY=networks runs only this): one
// vxland serving 1, then 64 networks from one host file ("networks": [...],
// one VNI, TAP and address each, the other namespace's address as peer), on
// each data path: resident memory, threads and idle CPU (user + system time
// over IDLE_SECONDS with no traffic, after the start-up announcements). Its
// section of BENCHMARKS.md (between the networks markers) is rewritten alone.
//
// Then outer source ports (BENCH_ONLY=srcport runs only this): a kernel
// vxlan with `srcport`, then vxland native and dgram with --srcport, each
// sending 8 parallel TCP flows (iperf3 -P 8) to a kernel peer; tcpdump on the
// sender's veth counts the distinct outer UDP source ports (RFC 7348 §5). Its
// section of BENCHMARKS.md (between the srcport markers) is rewritten alone.
//
// Then membership from etcd (BENCH_ONLY=etcd runs only this; scripts/
// bench-etcd.ts): 500 simulated VTEPs in a real etcd, how long one vxland
// takes to have them all, its RSS, how long until 100 removed are gone. It
// needs a vxland with --etcd; without one it says why and keeps the old
// section.
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { ETCD_BEGIN, ETCD_END, etcdBench, etcdBenchSkipReason, etcdSection } from './bench-etcd';

const ROOT = path.resolve(__dirname, '..', '..');
const CLI = path.join(ROOT, 'dist', 'src', 'cli.js');
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const TCP_SECONDS = 5;
const TCP_PARALLEL_STREAMS = 4;
const UDP_SECONDS = 5;
const PING_COUNT = 20;
const PING_SETTLE_MS = 1000;
const VNI = 42;
const INNER_MTU_BYTES = 1450;
const CLOCK_TICKS_PER_S = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());
const COMMAND_TIMEOUT_MS = 30_000;

type Side = 'kernel' | 'native' | 'dgram';
interface Pairing { label: string; a: Side; b: Side }
const ALL_PAIRINGS: Pairing[] = [
  { label: 'kernel <-> kernel', a: 'kernel', b: 'kernel' },
  { label: 'native <-> native', a: 'native', b: 'native' },
  { label: 'dgram <-> dgram', a: 'dgram', b: 'dgram' },
  { label: 'native <-> kernel', a: 'native', b: 'kernel' },
];
/** BENCH_ONLY=native,kernel keeps the pairings made only of those sides (for
 *  quick comparisons; BENCHMARKS.md is then not rewritten); with
 *  "networks" in the list the many-networks benchmark runs too and rewrites
 *  its own section of BENCHMARKS.md. */
const ONLY = process.env.BENCH_ONLY?.split(',');
const PAIRINGS = ONLY === undefined ? ALL_PAIRINGS : ALL_PAIRINGS.filter((p) => ONLY.includes(p.a) && ONLY.includes(p.b));
const RUN_NETWORKS = ONLY === undefined || ONLY.includes('networks');
const RUN_ETCD = ONLY === undefined || ONLY.includes('etcd');
const RUN_SRCPORT = ONLY === undefined || ONLY.includes('srcport');
/** The srcport benchmark: its range (vxland's --srcport; the kernel's `srcport MIN MAX` excludes MAX). */
const SRCPORT_RANGE = { min: 40000, max: 40999 };
const SRCPORT_FLOWS = 8;
const SRCPORT_SECONDS = 2;
/** Per flow, so that the capture stays small. */
const SRCPORT_RATE = '8M';
const SRCPORT_CAPTURE_MAX_PACKETS = 100_000;
const SRCPORT_BEGIN = '<!-- srcport benchmark: written by scripts/bench.ts -->';
const SRCPORT_END = '<!-- end of srcport benchmark -->';
const NETWORK_COUNTS = [1, 64];
const NETWORK_DATAPATHS = ['native', 'dgram'] as const;
/** The first network's VNI; network i has FIRST_VNI + i. */
const FIRST_VNI = 1000;
const IDLE_SECONDS = 10;
/** After every TAP is up: the start-up announcements (two, 1 s apart) are over. */
const IDLE_SETTLE_MS = 3000;
const START_TIMEOUT_MS = 60_000;
const BENCHMARKS_PATH = path.join(ROOT, 'BENCHMARKS.md');
const NETWORKS_BEGIN = '<!-- networks benchmark: written by scripts/bench.ts -->';
const NETWORKS_END = '<!-- end of networks benchmark -->';

interface Result { tcpGbps: number; tcp4Gbps: number; udpKpps: number; rttMs: number; cpuSPerGB: number | null; note?: string }

const liveNamespaces = new Set<string>();
const liveChildren = new Set<ChildProcess>();
const tempDirs = new Set<string>();

function cleanupSync(): void {
  for (const c of liveChildren) if (c.exitCode === null) try { c.kill('SIGKILL'); } catch { /* gone */ }
  for (const ns of liveNamespaces) try { execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' }); } catch { /* gone */ }
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  liveNamespaces.clear();
  liveChildren.clear();
}
process.on('exit', cleanupSync);
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => { cleanupSync(); process.exit(130); });

function run(argv: string[], timeoutMs = COMMAND_TIMEOUT_MS): string {
  return execFileSync(argv[0], argv.slice(1), { timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'] }).toString();
}
function inNs(ns: string, argv: string[], timeoutMs = COMMAND_TIMEOUT_MS): string {
  return run(['ip', 'netns', 'exec', ns, ...argv], timeoutMs);
}
function sleep(ms: number): Promise<void> { return new Promise((r) => setTimeout(r, ms)); }

function median(xs: number[]): number {
  const s = [...xs].sort((p, q) => p - q);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const outputTails = new WeakMap<ChildProcess, () => string>();

function startProcess(ns: string, argv: string[]): ChildProcess {
  const child = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
  liveChildren.add(child);
  let tail = '';
  const keep = (d: Buffer) => { tail = (tail + d.toString()).slice(-2000); };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  outputTails.set(child, () => tail);
  child.on('exit', () => liveChildren.delete(child));
  return child;
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S;  // utime, stime
}

interface Underlay { nsA: string; nsB: string; dev: string; ipA: string; ipB: string }
interface Env extends Underlay { overlayB: string; daemons: ChildProcess[] }

async function waitFor(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

interface PortRange { min: number; max: number }

async function startSide(side: Side, ns: string, dev: string, local: string, peer: string, overlay: string, tmp: string, srcport?: PortRange): Promise<ChildProcess | null> {
  if (side === 'kernel') {
    if (peer === '') return null;
    const ports = srcport === undefined ? [] : ['srcport', String(srcport.min), String(srcport.max + 1)];
    run(['ip', '-n', ns, 'link', 'add', 'vxk0', 'type', 'vxlan', 'id', String(VNI), 'dstport', '4789', 'local', local, 'dev', dev, ...ports]);
    run(['bridge', '-n', ns, 'fdb', 'append', '00:00:00:00:00:00', 'dev', 'vxk0', 'dst', peer]);
    run(['ip', '-n', ns, 'link', 'set', 'vxk0', 'mtu', String(INNER_MTU_BYTES)]);
    run(['ip', '-n', ns, 'addr', 'add', `${overlay}/24`, 'dev', 'vxk0']);
    run(['ip', '-n', ns, 'link', 'set', 'vxk0', 'up']);
    return null;
  }
  const argv = [process.execPath, CLI, 'run', '--dev', 'vxl0', '--vni', String(VNI), '--local', local, '--peer', peer, '--address', `${overlay}/24`,
    '--state-dir', path.join(tmp, ns), '--socket', path.join(tmp, `${ns}.sock`), '--datapath', side, '--log-level', 'warn',
    ...(srcport === undefined ? [] : ['--srcport', `${srcport.min}-${srcport.max}`])];
  const child = startProcess(ns, argv);
  await waitFor(() => {
    if (child.exitCode !== null) throw new Error(`${side} VTEP in ${ns} exited ${child.exitCode}: ${outputTails.get(child)?.()}`);
    try { inNs(ns, ['ip', 'link', 'show', 'vxl0']); return /UP/.test(inNs(ns, ['ip', 'link', 'show', 'vxl0'])); } catch { return false; }
  }, 15_000, `${side} VTEP in ${ns}`);
  return child;
}

/** Two fresh namespaces joined by a veth pair, addressed 198.18.77.1 and .2. */
function underlay(tag: string): Underlay {
  const nsA = `vxlb-${tag}-a`;
  const nsB = `vxlb-${tag}-b`;
  const dev = `vb${tag}`;
  for (const ns of [nsA, nsB]) {
    liveNamespaces.add(ns);
    run(['ip', 'netns', 'add', ns]);
    inNs(ns, ['sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1']);
    inNs(ns, ['sysctl', '-q', '-w', 'net.ipv6.conf.default.disable_ipv6=1']);
    run(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
  }
  run(['ip', 'link', 'add', dev, 'netns', nsA, 'type', 'veth', 'peer', 'name', dev, 'netns', nsB]);
  const ipA = '198.18.77.1';
  const ipB = '198.18.77.2';
  run(['ip', '-n', nsA, 'addr', 'add', `${ipA}/24`, 'dev', dev]);
  run(['ip', '-n', nsB, 'addr', 'add', `${ipB}/24`, 'dev', dev]);
  run(['ip', '-n', nsA, 'link', 'set', dev, 'up']);
  run(['ip', '-n', nsB, 'link', 'set', dev, 'up']);
  return { nsA, nsB, dev, ipA, ipB };
}

/** srcport: the range A sends from. */
async function setUp(p: Pairing, tag: string, tmp: string, srcport?: PortRange): Promise<Env> {
  const { nsA, nsB, dev, ipA, ipB } = underlay(tag);
  // A kernel VTEP facing vxland: over veth the kernel leaves inner checksums
  // for a NIC that never computes them, so its stack must finish them.
  if (p.a !== p.b) {
    if (p.a === 'kernel') inNs(nsA, ['ethtool', '-K', dev, 'tx', 'off']);
    if (p.b === 'kernel') inNs(nsB, ['ethtool', '-K', dev, 'tx', 'off']);
  }
  const daemons: ChildProcess[] = [];
  for (const [side, ns, local, peer, overlay, range] of [[p.a, nsA, ipA, ipB, '10.42.0.1', srcport], [p.b, nsB, ipB, ipA, '10.42.0.2', undefined]] as const) {
    const d = await startSide(side, ns, dev, local, peer, overlay, tmp, range);
    if (d !== null) daemons.push(d);
  }
  // Warm up ARP and FDB learning.
  inNs(nsA, ['ping', '-c', '3', '-i', '0.1', '-W', '1', '10.42.0.2']);
  return { nsA, nsB, dev, ipA, ipB, overlayB: '10.42.0.2', daemons };
}

async function tearDown(env: Env): Promise<void> {
  for (const d of env.daemons) await stopProcess(d);
  removeUnderlay(env);
}

function removeUnderlay(env: Underlay): void {
  for (const ns of [env.nsA, env.nsB]) {
    try { run(['ip', 'netns', 'del', ns]); } catch { /* gone */ }
    liveNamespaces.delete(ns);
  }
}

async function iperf(env: Env, args: string[], seconds: number): Promise<Record<string, any>> {
  const server = startProcess(env.nsB, ['iperf3', '-s', '-1', '-p', '5201']);
  try {
    await sleep(300);
    const out = inNs(env.nsA, ['iperf3', '-c', env.overlayB, '-p', '5201', '-t', String(seconds), '-J', ...args], (seconds + 20) * 1000);
    return JSON.parse(out);
  } finally {
    await stopProcess(server);
  }
}

async function measure(env: Env): Promise<Result> {
  const pids = env.daemons.map((d) => d.pid as number);
  const cpu0 = pids.reduce((s, pid) => s + cpuSeconds(pid), 0);
  const tcp = await iperf(env, [], TCP_SECONDS);
  const cpu1 = pids.reduce((s, pid) => s + cpuSeconds(pid), 0);
  const tcpBytes = tcp.end.sum_received.bytes as number;
  const tcp4 = await iperf(env, ['-P', String(TCP_PARALLEL_STREAMS)], TCP_SECONDS);
  const udp = await iperf(env, ['-u', '-l', '64', '-b', '0'], UDP_SECONDS);
  const sum = udp.end.sum;
  const received = (sum.packets as number) - (sum.lost_packets as number);
  // An idle tunnel's latency, not the tail of the UDP flood still queued in
  // socket buffers: the same pause for every pairing.
  await sleep(PING_SETTLE_MS);
  const pingOut = inNs(env.nsA, ['ping', '-n', '-q', '-c', String(PING_COUNT), '-i', '0.05', env.overlayB]);
  const rtt = /= [\d.]+\/([\d.]+)\//.exec(pingOut);
  return {
    tcpGbps: (tcp.end.sum_received.bits_per_second as number) / 1e9,
    tcp4Gbps: (tcp4.end.sum_received.bits_per_second as number) / 1e9,
    udpKpps: received / (sum.seconds as number) / 1e3,
    rttMs: rtt ? Number(rtt[1]) : NaN,
    cpuSPerGB: pids.length === 0 ? null : (cpu1 - cpu0) / (tcpBytes / 1e9),
  };
}

interface SrcportResult { sender: Side; ports: number; inRange: boolean }

/** Distinct outer source ports of what A sends to the kernel peer B during 8 parallel flows. */
async function measureSrcport(sender: Side, tmp: string): Promise<SrcportResult> {
  const tag = process.pid.toString(36).slice(-4) + randomBytes(2).toString('hex');
  const env = await setUp({ label: `${sender} -> kernel`, a: sender, b: 'kernel' }, tag, tmp, SRCPORT_RANGE);
  const file = path.join(tmp, `srcport-${tag}.pcap`);
  try {
    const capture = startProcess(env.nsA, ['tcpdump', '-i', env.dev, '-n', '-p', '-U', '-s', '96', '-c', String(SRCPORT_CAPTURE_MAX_PACKETS), '-w', file,
      `udp and src host ${env.ipA} and dst port 4789`]);
    await waitFor(() => /listening on/.test(outputTails.get(capture)?.() ?? ''), 10_000, 'tcpdump listening');
    await iperf(env, ['-P', String(SRCPORT_FLOWS), '-b', SRCPORT_RATE], SRCPORT_SECONDS);
    await stopProcess(capture);
    const ports = new Set<number>();
    // One line per captured packet: up to SRCPORT_CAPTURE_MAX_PACKETS of them.
    const text = execFileSync('tcpdump', ['-n', '-r', file], { timeout: 60_000, maxBuffer: 64 * 1024 * 1024, stdio: ['ignore', 'pipe', 'ignore'] }).toString();
    for (const m of text.matchAll(/IP [\d.]+\.(\d+) > [\d.]+\.4789:/g)) ports.add(Number(m[1]));
    return { sender, ports: ports.size, inRange: [...ports].every((p) => p >= SRCPORT_RANGE.min && p <= SRCPORT_RANGE.max) };
  } finally {
    await tearDown(env);
  }
}

function srcportSection(results: SrcportResult[], machine: string): string {
  const rows = results.map((r) => `| ${r.sender} | ${r.ports} | ${r.inRange ? 'yes' : 'no'} |`);
  return `${SRCPORT_BEGIN}
## Outer source ports (${SRCPORT_FLOWS} TCP flows)

Produced by \`npm run bench\` (or \`BENCH_ONLY=srcport\`) on ${new Date().toISOString()}; ${machine}.
The sender (a kernel vxlan with \`srcport ${SRCPORT_RANGE.min} ${SRCPORT_RANGE.max + 1}\`, or vxland with
\`--srcport ${SRCPORT_RANGE.min}-${SRCPORT_RANGE.max}\`) sends \`iperf3 -P ${SRCPORT_FLOWS} -b ${SRCPORT_RATE} -t ${SRCPORT_SECONDS}\` to a kernel
peer; tcpdump on its veth counts the distinct outer UDP source ports (any
control connection included). Equal-cost paths and NIC queues can only spread
what arrives on distinct ports.

| sender | distinct outer source ports | all in the range |
|---|---|---|
${rows.join('\n')}
${SRCPORT_END}
`;
}

interface NetworksResult { datapath: string; networks: number; rssMiB: number; threads: number; idleCpuPct: number }

function procStatus(pid: number, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (m === null) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(m[1]);
}

/** The host file (design10.md) of `count` networks facing peer. */
function hostFile(kind: string, count: number, local: string, peer: string, dir: string): string {
  const networks = Array.from({ length: count }, (_, i) => ({
    vni: FIRST_VNI + i, dev: `vxl${i}`, mtu: INNER_MTU_BYTES, addresses: [`10.100.${i}.1/24`], peers: [peer],
  }));
  const file = path.join(dir, 'vxland.json');
  writeFileSync(file, JSON.stringify({
    local, port: 4789, datapath: kind, socket: path.join(dir, 'vxland.sock'), stateDir: path.join(dir, 'state'), logLevel: 'warn', networks,
  }, null, 2));
  return file;
}

/** Every vxl* TAP in ns that is up. */
function tapsUp(ns: string): number {
  const links = JSON.parse(run(['ip', '-n', ns, '-j', 'link', 'show'])) as Array<{ ifname: string; flags: string[] }>;
  return links.filter((l) => /^vxl\d+$/.test(l.ifname) && l.flags.includes('UP')).length;
}

/** One vxland serving `count` networks in a fresh namespace, idle. */
async function measureNetworks(kind: string, count: number, tmp: string): Promise<NetworksResult> {
  const tag = process.pid.toString(36).slice(-4) + randomBytes(2).toString('hex');
  const u = underlay(tag);
  const dir = mkdtempSync(path.join(tmp, `networks-${kind}-${count}-`));
  let daemon: ChildProcess | null = null;
  try {
    const file = hostFile(kind, count, u.ipA, u.ipB, dir);
    daemon = startProcess(u.nsA, [process.execPath, CLI, 'run', '--config', file]);
    const started = daemon;
    await waitFor(() => {
      if (started.exitCode !== null) throw new Error(`vxland with ${count} networks (${kind}) exited ${started.exitCode}: ${outputTails.get(started)?.()}`);
      if (tapsUp(u.nsA) < count) return false;
      try { inNs(u.nsA, [process.execPath, CLI, 'status', '--socket', path.join(dir, 'vxland.sock'), '--json']); return true; } catch { return false; }
    }, START_TIMEOUT_MS, `vxland serving ${count} networks (${kind})`);
    await sleep(IDLE_SETTLE_MS);
    const pid = daemon.pid as number;
    const cpu0 = cpuSeconds(pid);
    await sleep(IDLE_SECONDS * 1000);
    const cpu1 = cpuSeconds(pid);
    return {
      datapath: kind, networks: count,
      rssMiB: procStatus(pid, 'VmRSS') / 1024, threads: procStatus(pid, 'Threads'),
      idleCpuPct: ((cpu1 - cpu0) / IDLE_SECONDS) * 100,
    };
  } finally {
    if (daemon !== null) await stopProcess(daemon);
    removeUnderlay(u);
  }
}

async function networksBench(tmp: string): Promise<NetworksResult[]> {
  const results: NetworksResult[] = [];
  for (const kind of NETWORK_DATAPATHS) {
    for (const count of NETWORK_COUNTS) {
      const r = await measureNetworks(kind, count, tmp);
      process.stderr.write(`${kind}, ${count} networks: ${r.rssMiB.toFixed(1)} MiB RSS, ${r.threads} threads, ${r.idleCpuPct.toFixed(2)} % CPU idle\n`);
      results.push(r);
    }
  }
  return results;
}

function networksSection(results: NetworksResult[], machine: string): string {
  const rows = results.map((r) => `| ${r.datapath} | ${r.networks} | ${r.rssMiB.toFixed(1)} | ${r.threads} | ${r.idleCpuPct.toFixed(2)} |`);
  return `${NETWORKS_BEGIN}
## Many networks on one daemon

Produced by \`npm run bench\` (or \`BENCH_ONLY=networks\`) on ${new Date().toISOString()}; ${machine}.

One vxland serving ${NETWORK_COUNTS.join(', then ')} networks from one host file
(VNI ${FIRST_VNI}.., one TAP with MTU ${INNER_MTU_BYTES} and one address each, the
other namespace as the peer of every network), no traffic. RSS and threads
from \`/proc/PID/status\` once every TAP is up and ${IDLE_SETTLE_MS / 1000} s have passed; idle CPU is
user + system time over the next ${IDLE_SECONDS} s, in % of one CPU.

| data path | networks | RSS, MiB | threads | idle CPU, % |
|---|---|---|---|---|
${rows.join('\n')}
${NETWORKS_END}
`;
}

/** A section of BENCHMARKS.md that its benchmark rewrites alone, between markers. */
interface Markers { begin: string; end: string }
const NETWORKS: Markers = { begin: NETWORKS_BEGIN, end: NETWORKS_END };
const ETCD: Markers = { begin: ETCD_BEGIN, end: ETCD_END };
const SRCPORT: Markers = { begin: SRCPORT_BEGIN, end: SRCPORT_END };

/** text with its m section replaced by section (appended when absent). */
function withSection(text: string, m: Markers, section: string): string {
  const begin = text.indexOf(m.begin);
  const end = text.indexOf(m.end);
  if (begin < 0 || end < begin) return `${text.trimEnd()}\n\n${section}`;
  return text.slice(0, begin) + section + text.slice(end + m.end.length + 1);
}

function existingSection(m: Markers): string | null {
  let text: string;
  try { text = readFileSync(BENCHMARKS_PATH, 'utf8'); } catch { return null; }
  const begin = text.indexOf(m.begin);
  const end = text.indexOf(m.end);
  return begin < 0 || end < begin ? null : text.slice(begin, end + m.end.length) + '\n';
}

/** The etcd benchmark's section, or null when it cannot run here (printed). */
async function etcdBenchSection(machine: string): Promise<string | null> {
  const skip = etcdBenchSkipReason();
  if (skip !== false) {
    process.stderr.write(`etcd benchmark not run: ${skip}\n`);
    return null;
  }
  const r = await etcdBench();
  process.stderr.write(`etcd: ${r.vteps} VTEPs written in ${r.writeMs} ms, in the flood list after ${r.watchConvergeMs} ms (watch) / ${r.listConvergeMs} ms (list); RSS ${r.rssBeforeMiB.toFixed(1)} -> ${r.rssAfterMiB.toFixed(1)} MiB; ${r.removed} removed gone after ${r.removeMs} ms\n`);
  return etcdSection(r, machine);
}

function machineLine(): string {
  const cpuModel = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? cpus()[0]?.model ?? 'unknown';
  return `${cpus().length} CPUs (${cpuModel}), Linux ${run(['uname', '-r']).trim()}, Node.js ${process.version}`;
}

function fmt(x: number | null, digits: number): string {
  return x === null || Number.isNaN(x) ? '—' : x.toFixed(digits);
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench needs root (network namespaces)');
  const tmp = mkdtempSync(path.join(tmpdir(), 'vxland-bench-'));
  tempDirs.add(tmp);
  const results = new Map<string, Result>();
  for (const p of PAIRINGS) {
    const runs: Result[] = [];
    for (let i = 0; i < RUNS; i++) {
      const tag = process.pid.toString(36).slice(-4) + randomBytes(2).toString('hex');
      const env = await setUp(p, tag, tmp);
      try {
        const r = await measure(env);
        runs.push(r);
        process.stderr.write(`${p.label} run ${i + 1}: ${r.tcpGbps.toFixed(2)} Gbit/s, ${r.tcp4Gbps.toFixed(2)} Gbit/s x${TCP_PARALLEL_STREAMS}, ${r.udpKpps.toFixed(0)} kpps, ${r.rttMs.toFixed(3)} ms, ${fmt(r.cpuSPerGB, 2)} CPU s/GB\n`);
      } finally {
        await tearDown(env);
      }
    }
    const cpu = runs.map((r) => r.cpuSPerGB).filter((x): x is number => x !== null);
    results.set(p.label, {
      tcpGbps: median(runs.map((r) => r.tcpGbps)),
      tcp4Gbps: median(runs.map((r) => r.tcp4Gbps)),
      udpKpps: median(runs.map((r) => r.udpKpps)),
      rttMs: median(runs.map((r) => r.rttMs)),
      cpuSPerGB: cpu.length ? median(cpu) : null,
    });
  }
  const networks = RUN_NETWORKS ? await networksBench(tmp) : null;
  const machine = machineLine();
  let srcport: string | null = null;
  if (RUN_SRCPORT) {
    const sr: SrcportResult[] = [];
    for (const sender of ['kernel', 'native', 'dgram'] as const) {
      const r = await measureSrcport(sender, tmp);
      process.stderr.write(`srcport: ${sender} -> kernel, ${SRCPORT_FLOWS} flows: ${r.ports} distinct outer source ports${r.inRange ? '' : ' (some outside the range)'}\n`);
      sr.push(r);
    }
    srcport = srcportSection(sr, machine);
  }
  const etcd = RUN_ETCD ? await etcdBenchSection(machine) : null;
  if (ONLY !== undefined) {
    const base = results.get(PAIRINGS[0]?.label ?? '');
    for (const p of base === undefined ? [] : PAIRINGS) {
      const r = results.get(p.label)!;
      process.stdout.write(`${p.label}: ${r.tcpGbps.toFixed(2)} Gbit/s (${(r.tcpGbps / base!.tcpGbps).toFixed(2)}×), ${r.tcp4Gbps.toFixed(2)} Gbit/s x${TCP_PARALLEL_STREAMS} (${(r.tcp4Gbps / base!.tcp4Gbps).toFixed(2)}×), ${r.udpKpps.toFixed(0)} kpps, ${r.rttMs.toFixed(3)} ms\n`);
    }
    for (const [section, m, name] of [[networks && networksSection(networks, machine), NETWORKS, 'networks'], [etcd, ETCD, 'etcd'], [srcport, SRCPORT, 'srcport']] as const) {
      if (section === null) continue;
      writeFileSync(BENCHMARKS_PATH, withSection(readFileSync(BENCHMARKS_PATH, 'utf8'), m, section));
      process.stdout.write(`${section}\nwritten to BENCHMARKS.md (its ${name} section)\n`);
    }
    return;
  }
  const base = results.get(PAIRINGS[0].label)!;
  const ratio = (x: number, b: number) => `${(x / b).toFixed(2)}×`;
  const rows = PAIRINGS.map((p) => {
    const r = results.get(p.label)!;
    return `| ${p.label} | ${r.tcpGbps.toFixed(2)} (${ratio(r.tcpGbps, base.tcpGbps)}) | ${r.tcp4Gbps.toFixed(2)} (${ratio(r.tcp4Gbps, base.tcp4Gbps)}) | ${r.udpKpps.toFixed(0)} (${ratio(r.udpKpps, base.udpKpps)}) | ${r.rttMs.toFixed(3)} (${ratio(r.rttMs, base.rttMs)}) | ${fmt(r.cpuSPerGB, 2)} |`;
  });
  const table = [
    `| pairing | TCP single stream, Gbit/s (× kernel) | TCP ${TCP_PARALLEL_STREAMS} streams, Gbit/s (× kernel) | UDP 64 B payload, kpps received (× kernel) | ping RTT, ms (× kernel) | vxland CPU s per GB (TCP) |`,
    '|---|---|---|---|---|---|',
    ...rows,
  ].join('\n');
  const doc = `# Benchmarks

Produced by \`npm run bench\` (scripts/bench.ts) on ${new Date().toISOString()}.

Machine: ${machine}.

Two network namespaces joined by a veth pair (underlay MTU 1500), VNI ${VNI},
inner MTU ${INNER_MTU_BYTES}, one pairing at a time, fresh namespaces per run;
median of ${RUNS} runs. TCP: \`iperf3 -t ${TCP_SECONDS}\` (one stream, A → B), then
\`iperf3 -P ${TCP_PARALLEL_STREAMS} -t ${TCP_SECONDS}\` (the sum received);
UDP: \`iperf3 -u -l 64 -b 0 -t ${UDP_SECONDS}\` (datagrams received per second);
RTT: \`ping -c ${PING_COUNT} -i 0.05\` average, ${PING_SETTLE_MS / 1000} s after the UDP test.
The vxland CPU column is user +
system time of the vxland processes on both ends during the TCP test divided
by the bytes moved (kernel vxlan work is softirq time, not attributable).
"native" and "dgram" run \`vxland run --datapath native|dgram\`. A kernel VTEP facing
vxland has tx checksum offload off on its veth: over veth the kernel would
otherwise leave inner checksums unfinished.

${table}
`;
  const sections = [
    networks === null ? existingSection(NETWORKS) : networksSection(networks, machine),
    etcd ?? existingSection(ETCD),
    srcport ?? existingSection(SRCPORT),
  ].filter((x): x is string => x !== null);
  writeFileSync(BENCHMARKS_PATH, [doc, ...sections].join('\n'));
  process.stdout.write(`${machine}\n\n${table}\n\nwritten to BENCHMARKS.md\n`);
}

main().then(
  () => { cleanupSync(); process.exit(0); },
  (err) => { process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`); cleanupSync(); process.exit(1); },
);
