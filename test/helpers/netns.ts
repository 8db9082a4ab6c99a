// Network-namespace helpers for vxland integration tests.
//
// Everything created here lives in network namespaces that this process made
// (names carry our pid and a random tag) and is deleted in t.teardown, on
// process exit and on SIGINT/SIGTERM. Namespaces left over by a process that
// was SIGKILLed are swept by the next createTopology() (their pid is dead).
// Links are created directly inside the namespaces (`ip link add ... netns`),
// so none ever exists in the root namespace, and they vanish with their
// namespace. Underlay addresses: 198.18.<subnet>.<host+1>/24 (RFC 2544 range).
//
// Traffic helpers (ping, verifiedTcpTransfer) are bounded in count and time.
import { spawn, execFileSync, ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expectedDigest } from '../fixtures/tcp-source.js';

/** The part of a tap Test these helpers use (tap's `t` and subtests fit). */
export interface TapLike {
  teardown(fn: () => unknown): void;
  comment(...args: unknown[]): void;
  plan?(n: number, comment?: string): void;
}

const NS_PREFIX = 'vxlt-';
export const UNDERLAY_PREFIX_LEN = 24;
/** Repository root (this file runs from dist/test/helpers/). */
export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
export const FIXTURES_DIR = path.resolve(__dirname, '..', 'fixtures');
/** Path of the compiled vxland CLI. */
export const CLI_PATH = path.join(REPO_ROOT, 'dist', 'src', 'cli.js');

// ---------------------------------------------------------------------------
// Global cleanup registry: namespaces and child processes to remove on exit.
const liveNamespaces = new Set<string>();
const liveChildren = new Set<ChildProcess>();
const processesByNs = new Map<string, Set<LineProcess>>();
let hooksInstalled = false;

function syncCleanup(): void {
  for (const c of liveChildren) {
    try { if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL'); } catch { /* gone */ }
  }
  liveChildren.clear();
  for (const ns of liveNamespaces) {
    try { execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore', timeout: 5000 }); } catch { /* gone */ }
  }
  liveNamespaces.clear();
}

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', syncCleanup);
  for (const [sig, num] of [['SIGINT', 2], ['SIGTERM', 15], ['SIGHUP', 1]] as const) {
    process.once(sig, () => {
      syncCleanup();
      process.exit(128 + num);
    });
  }
}

/** Unique 8-char tag: pid (base36) + random, for namespace and link names. */
export function uniqueTag(): string {
  const pid = process.pid.toString(36).slice(-4).padStart(4, '0');
  return pid + randomBytes(3).toString('hex').slice(0, 4);
}

// ---------------------------------------------------------------------------
// Root / capability detection.
let rootProbe: string | false | undefined;

/** Why namespace tests cannot run here, or false if they can. Cached. */
export function rootSkipReason(): string | false {
  if (rootProbe !== undefined) return rootProbe;
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    return (rootProbe = 'needs root (uid 0) to create network namespaces');
  }
  const probe = `${NS_PREFIX}probe-${process.pid}-${randomBytes(3).toString('hex')}`;
  try {
    execFileSync('ip', ['netns', 'add', probe], { stdio: 'pipe', timeout: 5000 });
  } catch (err) {
    return (rootProbe = `cannot create a network namespace (${firstLine(err)})`);
  }
  try { execFileSync('ip', ['netns', 'del', probe], { stdio: 'ignore', timeout: 5000 }); } catch { /* ignore */ }
  return (rootProbe = false);
}

/** True when running as root and `ip netns add` works. */
export function hasRoot(): boolean {
  return rootSkipReason() === false;
}

/** If not root: prints the reason, plans 0 tests (a tap skip) and returns
 *  true; the caller then returns: `if (skipUnlessRoot(t)) return`. */
export function skipUnlessRoot(t: TapLike): boolean {
  return skipIf(t, rootSkipReason());
}

/** If reason is a string: prints it, plans 0 tests (a tap skip) and returns
 *  true; false returns false. The one way a test skips for a missing
 *  capability (root, a tool, a daemon feature). */
export function skipIf(t: TapLike, reason: string | false): boolean {
  if (reason === false) return false;
  t.comment(`skipping: ${reason}`);
  process.stderr.write(`skipping: ${reason}\n`);
  if (t.plan) t.plan(0, `skip: ${reason}`);
  return true;
}

function firstLine(err: unknown): string {
  const e = err as { stderr?: Buffer | string; message?: string };
  const s = (e.stderr ? e.stderr.toString() : '') || e.message || String(err);
  return s.trim().split('\n')[0];
}

// ---------------------------------------------------------------------------
// Command execution.
export interface ExecOptions {
  /** Kill (SIGKILL) after this long; default 10 s. */
  timeoutMs?: number;
  /** Written to stdin, then stdin is closed. */
  input?: string | Buffer;
  /** Do not throw on non-zero exit / signal; default false. */
  allowFail?: boolean;
  env?: NodeJS.ProcessEnv;
}

export interface ExecResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export class ExecError extends Error {
  constructor(message: string, readonly result: ExecResult, readonly argv: string[]) {
    super(message);
    this.name = 'ExecError';
  }
}

/** argv prefixed with `ip netns exec NS` (or unchanged when ns is null). */
export function nsArgv(ns: string | null, argv: string[]): string[] {
  return ns ? ['ip', 'netns', 'exec', ns, ...argv] : argv;
}

/** Runs argv inside namespace `ns` (null: the current namespace) and
 *  resolves with its output; rejects on non-zero exit or timeout unless
 *  allowFail. Never hangs longer than timeoutMs (+ a kill grace). */
export function exec(ns: string | null, argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const full = nsArgv(ns, argv);
  const timeoutMs = opts.timeoutMs ?? 10_000;
  return new Promise((resolve, reject) => {
    const child = spawn(full[0], full.slice(1), {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: opts.env ?? process.env,
    });
    liveChildren.add(child);
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout!.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    child.stdin!.on('error', () => { /* child may exit before reading */ });
    child.stdin!.end(opts.input ?? '');
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      liveChildren.delete(child);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      liveChildren.delete(child);
      const result: ExecResult = { code, signal, stdout, stderr, timedOut };
      if (!opts.allowFail && (timedOut || code !== 0)) {
        const why = timedOut ? `timed out after ${timeoutMs} ms` : `exited ${code ?? signal}`;
        reject(new ExecError(`${full.join(' ')}: ${why}: ${stderr.trim()}`, result, full));
      } else {
        resolve(result);
      }
    });
  });
}

/** exec() and JSON.parse its stdout (empty stdout → null). */
export async function execJson<T = unknown>(ns: string | null, argv: string[], opts: ExecOptions = {}): Promise<T> {
  const r = await exec(ns, argv, opts);
  const s = r.stdout.trim();
  if (s === '') return null as T;
  try {
    return JSON.parse(s) as T;
  } catch {
    throw new Error(`${nsArgv(ns, argv).join(' ')}: stdout is not JSON: ${s.slice(0, 200)}`);
  }
}

/** Shorthand for `ip -n NS ARGS...` (throws on failure). */
export function ip(ns: string | null, ...args: string[]): Promise<ExecResult> {
  return exec(null, ns ? ['ip', '-n', ns, ...args] : ['ip', ...args]);
}

// ---------------------------------------------------------------------------
// Namespaces and topologies.

/** Creates a namespace named vxlt-<tag>-<label>, brings lo up, registers its
 *  deletion with t.teardown and the exit hooks. Returns the name. */
export async function createNamespace(t: TapLike, label: string, tag = uniqueTag(), opts: { disableIpv6?: boolean } = {}): Promise<string> {
  installExitHooks();
  const ns = `${NS_PREFIX}${tag}-${label}`;
  liveNamespaces.add(ns);
  t.teardown(() => deleteNamespace(ns));
  await exec(null, ['ip', 'netns', 'add', ns]);
  if (opts.disableIpv6 ?? true) await disableIpv6(ns);
  await ip(ns, 'link', 'set', 'lo', 'up');
  return ns;
}

/** Deletes a namespace (and with it every link inside); idempotent. */
export async function deleteNamespace(ns: string): Promise<void> {
  // Stop our processes in it gracefully, then kill whatever else remains, so
  // the namespace really goes away.
  await Promise.all([...(processesByNs.get(ns) ?? [])].map((p) => p.stop(2000)));
  processesByNs.delete(ns);
  await exec(null, ['ip', 'netns', 'pids', ns], { allowFail: true, timeoutMs: 5000 }).then(async (r) => {
    for (const pid of r.stdout.split(/\s+/).filter(Boolean).map(Number)) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
  });
  await exec(null, ['ip', 'netns', 'del', ns], { allowFail: true, timeoutMs: 5000 });
  liveNamespaces.delete(ns);
}

/** Lists namespace names (`ip netns list`), optionally only ours. */
export async function listNamespaces(onlyOurs = false): Promise<string[]> {
  const r = await exec(null, ['ip', 'netns', 'list']);
  const names = r.stdout.split('\n').map((l) => l.trim().split(/\s+/)[0]).filter(Boolean);
  return onlyOurs ? names.filter((n) => n.startsWith(NS_PREFIX)) : names;
}

/** Deletes vxlt-* namespaces whose creating pid is dead (left by a SIGKILL). */
export async function sweepStaleNamespaces(): Promise<string[]> {
  const swept: string[] = [];
  for (const ns of await listNamespaces(true)) {
    const m = /^vxlt-([0-9a-z]{4})[0-9a-f]{4}-/.exec(ns);
    if (!m) continue;
    const pid = parseInt(m[1], 36);
    // The tag keeps only the last 4 base36 digits of the pid: only sweep when
    // no live process matches those digits, to never touch a live run's.
    if (pid === process.pid % 36 ** 4) continue;
    if (anyPidMatching(pid)) continue;
    await deleteNamespace(ns);
    swept.push(ns);
  }
  return swept;
}

function anyPidMatching(pidMod: number): boolean {
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) % 36 ** 4 !== pidMod) continue;
    try {
      // A zombie (state Z) is dead: its namespaces are fair game.
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z') return true;
    } catch { /* exited meanwhile */ }
  }
  return false;
}

export interface Host {
  /** 0-based index in the topology. */
  index: number;
  /** Namespace name, for exec()/ip -n. */
  ns: string;
  /** Underlay interface name inside ns (unique: u<tag>). */
  dev: string;
  /** Underlay IPv4 address (no prefix length), 198.18.<subnet>.<index+1>. */
  ip: string;
  /** `${ip}/24`. */
  cidr: string;
}

export interface TopologySpec {
  /** Number of hosts (>= 2). */
  hosts: number;
  /** 'p2p' (veth pair; only for 2 hosts) or 'bridge' (a Linux bridge in an
   *  extra switch namespace). Default: p2p for 2 hosts, bridge otherwise. */
  kind?: 'p2p' | 'bridge';
  /** Third octet of the underlay /24 in 198.18.0.0/16; default 1. */
  subnet?: number;
  /** Underlay MTU; default 1500. */
  mtu?: number;
  /** Disable IPv6 in every namespace; default true (quiet counters). */
  disableIpv6?: boolean;
}

export interface Topology {
  tag: string;
  kind: 'p2p' | 'bridge';
  hosts: Host[];
  /** Switch namespace (bridge kind only). */
  switchNs?: string;
  /** Bridge device inside switchNs (bridge kind only). */
  bridge?: string;
  /** All namespaces of the topology (hosts, then switch). */
  namespaces: string[];
  /** Deletes every namespace now (teardown does it anyway). */
  destroy(): Promise<void>;
}

/** Builds N host namespaces joined over veth (pair or bridge), with underlay
 *  addresses and lo up; everything is removed at t.teardown / process exit. */
export async function createTopology(t: TapLike, spec: TopologySpec): Promise<Topology> {
  const n = spec.hosts;
  if (!Number.isInteger(n) || n < 2 || n > 250) throw new Error(`hosts must be 2..250, got ${n}`);
  const kind = spec.kind ?? (n === 2 ? 'p2p' : 'bridge');
  if (kind === 'p2p' && n !== 2) throw new Error('p2p topology needs exactly 2 hosts');
  const subnet = spec.subnet ?? 1;
  if (!Number.isInteger(subnet) || subnet < 0 || subnet > 255) throw new Error(`bad subnet ${subnet}`);
  const mtu = String(spec.mtu ?? 1500);
  const nsOpts = { disableIpv6: spec.disableIpv6 ?? true };

  installExitHooks();
  await sweepStaleNamespaces().catch(() => []);
  const tag = uniqueTag();
  const dev = `u${tag}`;
  const hosts: Host[] = [];
  for (let i = 0; i < n; i++) {
    const ns = await createNamespace(t, `h${i}`, tag, nsOpts);
    const hostIp = `198.18.${subnet}.${i + 1}`;
    hosts.push({ index: i, ns, dev, ip: hostIp, cidr: `${hostIp}/${UNDERLAY_PREFIX_LEN}` });
  }
  const namespaces = hosts.map((h) => h.ns);
  let switchNs: string | undefined;
  let bridge: string | undefined;

  if (kind === 'p2p') {
    await ip(null, 'link', 'add', dev, 'netns', hosts[0].ns, 'mtu', mtu, 'type', 'veth',
      'peer', 'name', dev, 'netns', hosts[1].ns, 'mtu', mtu);
  } else {
    switchNs = await createNamespace(t, 'sw', tag, nsOpts);
    namespaces.push(switchNs);
    bridge = `br${tag}`;
    await ip(switchNs, 'link', 'add', bridge, 'mtu', mtu, 'type', 'bridge', 'stp_state', '0');
    await ip(switchNs, 'link', 'set', bridge, 'up');
    for (const h of hosts) {
      const port = `p${h.index}${tag}`;
      await ip(null, 'link', 'add', port, 'netns', switchNs, 'mtu', mtu, 'type', 'veth',
        'peer', 'name', dev, 'netns', h.ns, 'mtu', mtu);
      await ip(switchNs, 'link', 'set', port, 'master', bridge);
      await ip(switchNs, 'link', 'set', port, 'up');
    }
  }
  for (const h of hosts) {
    await ip(h.ns, 'addr', 'add', h.cidr, 'dev', h.dev);
    await ip(h.ns, 'link', 'set', h.dev, 'up');
  }
  const topo: Topology = {
    tag, kind, hosts, switchNs, bridge, namespaces,
    async destroy() { for (const ns of namespaces) await deleteNamespace(ns); },
  };
  return topo;
}

/** Disables IPv6 in a namespace (all + default), so no DAD/RS/MLD packets
 *  disturb the counters. Links created afterwards inherit it. */
export async function disableIpv6(ns: string): Promise<void> {
  await exec(ns, ['sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1']);
  await exec(ns, ['sysctl', '-q', '-w', 'net.ipv6.conf.default.disable_ipv6=1']);
}

// ---------------------------------------------------------------------------
// Kernel vxlan.
export interface KernelVxlanOptions {
  /** Device name inside the namespace; default 'vxk0'. */
  name?: string;
  vni: number;
  /** Local underlay IPv4; default host.ip when a Host is given. */
  local?: string;
  /** Underlay device; default host.dev when a Host is given. */
  dev?: string;
  /** UDP destination (and listening) port; default 4789. */
  dstport?: number;
  /** Flood list: one all-zeros FDB entry per remote VTEP (head-end replication). */
  remotes: string[];
  /** Default 1450 (1500 - 50 bytes of VXLAN over IPv4 overhead). */
  mtu?: number;
  /** Overlay address with prefix, e.g. '10.42.0.1/24'. */
  address?: string;
  /** Source MAC learning; default true (the kernel default). */
  learning?: boolean;
  /** Fixed overlay MAC address (else random). */
  mac?: string;
  /** Extra `ip link add ... type vxlan` arguments (e.g. ['srcport','4789','4790']). */
  extra?: string[];
}

export interface KernelVxlan { ns: string; name: string; vni: number; mac: string }

/** Creates a Linux kernel vxlan device with a static flood list, MTU,
 *  address, and sets it up. Removed with its namespace. */
export async function addKernelVxlan(host: string | Host, o: KernelVxlanOptions): Promise<KernelVxlan> {
  const ns = typeof host === 'string' ? host : host.ns;
  const local = o.local ?? (typeof host === 'string' ? undefined : host.ip);
  const dev = o.dev ?? (typeof host === 'string' ? undefined : host.dev);
  const name = o.name ?? 'vxk0';
  const args = ['link', 'add', name];
  if (o.mac) args.push('address', o.mac);
  args.push('type', 'vxlan', 'id', String(o.vni), 'dstport', String(o.dstport ?? 4789));
  if (local) args.push('local', local);
  if (dev) args.push('dev', dev);
  if (o.learning === false) args.push('nolearning');
  if (o.extra) args.push(...o.extra);
  await ip(ns, ...args);
  // Over a veth underlay the kernel vxlan device hands out inner TCP/UDP
  // checksums still partial (local checksum offload expects the NIC to finish
  // them, and veth never does). A kernel receiver accepts that; a user-space
  // VTEP sees the unfinished checksum and the inner stack drops the segment.
  // A physical NIC without tunnel offload makes the stack finish them, which
  // is what turning tx checksumming off on the veth does here.
  if (dev) await exec(ns, ['ethtool', '-K', dev, 'tx', 'off'], { allowFail: true });
  for (const r of o.remotes) {
    await exec(null, ['bridge', '-n', ns, 'fdb', 'append', '00:00:00:00:00:00', 'dev', name, 'dst', r]);
  }
  await ip(ns, 'link', 'set', name, 'mtu', String(o.mtu ?? 1450));
  if (o.address) await ip(ns, 'addr', 'add', o.address, 'dev', name);
  await ip(ns, 'link', 'set', name, 'up');
  const info = await execJson<Array<{ address: string }>>(null, ['ip', '-n', ns, '-j', 'link', 'show', 'dev', name]);
  return { ns, name, vni: o.vni, mac: info[0].address };
}

/** `bridge fdb show dev DEV` as JSON. */
export function fdbShow(ns: string, dev: string): Promise<Array<Record<string, unknown>>> {
  return execJson(null, ['bridge', '-n', ns, '-j', 'fdb', 'show', 'dev', dev]);
}

// ---------------------------------------------------------------------------
// Counters.
export interface LinkStats {
  rxPackets: number; rxBytes: number; rxErrors: number; rxDropped: number;
  txPackets: number; txBytes: number; txErrors: number; txDropped: number;
}

/** Interface counters from `ip -j -s link show dev DEV` in ns. */
export async function linkStats(ns: string, dev: string): Promise<LinkStats> {
  type Dir = { bytes: number; packets: number; errors: number; dropped: number };
  const j = await execJson<Array<{ stats64?: { rx: Dir; tx: Dir }; stats?: { rx: Dir; tx: Dir } }>>(
    null, ['ip', '-n', ns, '-j', '-s', 'link', 'show', 'dev', dev]);
  const s = j[0].stats64 ?? j[0].stats;
  if (!s) throw new Error(`no stats for ${dev} in ${ns}`);
  return {
    rxPackets: s.rx.packets, rxBytes: s.rx.bytes, rxErrors: s.rx.errors, rxDropped: s.rx.dropped,
    txPackets: s.tx.packets, txBytes: s.tx.bytes, txErrors: s.tx.errors, txDropped: s.tx.dropped,
  };
}

// ---------------------------------------------------------------------------
// Ping.
export interface PingOptions {
  count?: number; intervalS?: number; timeoutS?: number; size?: number; dontFragment?: boolean;
  /** IPv4 TOS byte of the echoes (ping -Q), ECN bits included. */
  tos?: number;
}
export interface PingResult { transmitted: number; received: number; output: string }

/** Sends exactly `count` (default 3, max 1000) ICMP echoes from ns to ip,
 *  `intervalS` apart, and waits up to timeoutS (at most 5 s; default
 *  count*interval + 3 s) after the last for replies. */
export async function ping(ns: string, dst: string, o: PingOptions = {}): Promise<PingResult> {
  const count = Math.min(o.count ?? 3, 1000);
  const intervalS = o.intervalS ?? 0.2;
  const timeoutS = o.timeoutS ?? Math.ceil(count * intervalS + 3);
  // No -w deadline: with one, ping keeps sending until `count` replies arrive,
  // and replies delayed by ARP then arrive together, so `received` could
  // exceed `count`. -c with -W ends after the last echo plus the wait; the
  // exec timeout below bounds the whole run.
  const argv = ['ping', '-n', '-q', '-c', String(count), '-i', String(intervalS), '-W', String(Math.max(1, Math.min(timeoutS, 5)))];
  if (o.size !== undefined) argv.push('-s', String(o.size));
  if (o.dontFragment) argv.push('-M', 'do');
  if (o.tos !== undefined) argv.push('-Q', String(o.tos));
  argv.push(dst);
  const r = await exec(ns, argv, { allowFail: true, timeoutMs: (count * intervalS + timeoutS + 5) * 1000 });
  const m = /(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(r.stdout);
  if (!m) throw new Error(`ping ${dst} in ${ns}: unparsable output: ${r.stdout}${r.stderr}`);
  return { transmitted: Number(m[1]), received: Number(m[2]), output: r.stdout };
}

// ---------------------------------------------------------------------------
// Verified TCP transfer.
export interface TransferOptions {
  serverNs: string;
  serverIp: string;
  clientNs: string;
  bytes: number;
  /** Overall bound; both processes are killed when it expires. Default 60 s. */
  timeoutMs?: number;
  /** Default 5201 + random; use 0 to let the sink pick. */
  port?: number;
  /** PRNG seed; default 1. */
  seed?: number;
  /** Pace the source to at most this many bytes per second; default unpaced. */
  rateBytesPerS?: number;
}

export interface TransferSide { bytes: number; sha256: string }
export interface TransferResult {
  sent: TransferSide;
  received: TransferSide;
  /** sha256 of the expected stream computed in this process. */
  expectedSha256: string;
  durationMs: number;
}

/** Streams `bytes` seeded pseudo-random bytes over TCP from clientNs to
 *  serverIp in serverNs; returns both sides' byte counts and sha256 (the
 *  caller asserts they match). Rejects on failure or timeout. */
export async function verifiedTcpTransfer(o: TransferOptions): Promise<TransferResult> {
  const timeoutMs = o.timeoutMs ?? 60_000;
  const seed = o.seed ?? 1;
  const start = Date.now();
  const deadline = start + timeoutMs;
  const sink = startProcess(o.serverNs, [process.execPath, path.join(FIXTURES_DIR, 'tcp-sink.js'),
    '--host', o.serverIp, '--port', String(o.port ?? 5201 + Math.floor(Math.random() * 1000))]);
  let source: LineProcess | undefined;
  try {
    const listening = await sink.waitForJson((j) => j.event === 'listening', deadline - Date.now());
    source = startProcess(o.clientNs, [process.execPath, path.join(FIXTURES_DIR, 'tcp-source.js'),
      '--host', o.serverIp, '--port', String(listening.port), '--bytes', String(o.bytes), '--seed', String(seed),
      '--connect-timeout-ms', String(Math.max(1000, Math.min(10_000, deadline - Date.now()))),
      '--rate-bytes-per-s', String(o.rateBytesPerS ?? 0)]);
    const [sent, received] = await Promise.all([
      source.waitForJson((j) => j.event === 'done', deadline - Date.now()),
      sink.waitForJson((j) => j.event === 'done', deadline - Date.now()),
    ]);
    return {
      sent: { bytes: sent.bytes as number, sha256: sent.sha256 as string },
      received: { bytes: received.bytes as number, sha256: received.sha256 as string },
      expectedSha256: expectedDigest(o.bytes, seed),
      durationMs: Date.now() - start,
    };
  } finally {
    sink.kill();
    source?.kill();
  }
}

// ---------------------------------------------------------------------------
// Long-running processes.
type Json = Record<string, unknown>;

/** Resident set size of a live process, in kB. */
export function vmRssKb(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]);
}

/** A child process whose stdout is split into lines (and JSON lines parsed). */
export class LineProcess {
  readonly lines: string[] = [];
  /** Parsed JSON stdout lines (pino logs), in order. */
  readonly logs: Json[] = [];
  readonly stderrLines: string[] = [];
  exitCode: number | null = null;
  exitSignal: NodeJS.Signals | null = null;
  readonly exited: Promise<void>;
  private waiters = new Set<() => void>();

  constructor(readonly proc: ChildProcess, readonly argv: string[], readonly ns: string | null = null, readonly maxLines = 100_000) {
    liveChildren.add(proc);
    if (ns) {
      let set = processesByNs.get(ns);
      if (!set) processesByNs.set(ns, (set = new Set()));
      set.add(this);
    }
    const split = (stream: NodeJS.ReadableStream, onLine: (l: string) => void) => {
      let buf = '';
      stream.setEncoding('utf8');
      stream.on('data', (d: string) => {
        buf += d;
        let i: number;
        while ((i = buf.indexOf('\n')) >= 0) { onLine(buf.slice(0, i)); buf = buf.slice(i + 1); }
      });
      stream.on('end', () => { if (buf) onLine(buf); buf = ''; });
    };
    split(proc.stdout!, (l) => {
      if (this.lines.length >= this.maxLines) { this.lines.shift(); }
      this.lines.push(l);
      if (l.startsWith('{')) {
        try { const j = JSON.parse(l); if (this.logs.length >= this.maxLines) this.logs.shift(); this.logs.push(j); } catch { /* not JSON */ }
      }
      this.notify();
    });
    split(proc.stderr!, (l) => {
      if (this.stderrLines.length >= this.maxLines) this.stderrLines.shift();
      this.stderrLines.push(l);
    });
    this.exited = new Promise((resolve) => {
      const done = (code: number | null, signal: NodeJS.Signals | null) => {
        this.exitCode = code; this.exitSignal = signal;
        liveChildren.delete(proc);
        if (ns) processesByNs.get(ns)?.delete(this);
        this.notify();
        resolve();
      };
      proc.on('close', done);
      proc.on('error', (err) => { this.stderrLines.push(`spawn error: ${err.message}`); done(null, null); });
    });
  }

  get pid(): number | undefined { return this.proc.pid; }
  get running(): boolean { return this.exitCode === null && this.exitSignal === null && this.proc.pid !== undefined; }

  private notify(): void { for (const w of [...this.waiters]) w(); }

  /** Resolves with the first JSON stdout line (past or future) matching pred;
   *  rejects after timeoutMs or if the process exits first. */
  waitForJson(pred: (j: Json) => boolean, timeoutMs = 10_000): Promise<Json> {
    return this.waitFor(() => this.logs.find(pred), timeoutMs, 'JSON line');
  }

  /** Like waitForJson for raw stdout lines (string contains or predicate). */
  waitForLine(pred: string | RegExp | ((l: string) => boolean), timeoutMs = 10_000): Promise<string> {
    const f = typeof pred === 'function' ? pred : typeof pred === 'string' ? (l: string) => l.includes(pred) : (l: string) => pred.test(l);
    return this.waitFor(() => this.lines.find(f), timeoutMs, 'line');
  }

  private waitFor<T>(find: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const hit = find();
        if (hit !== undefined) { cleanup(); resolve(hit); return; }
        if (!this.running) {
          cleanup();
          reject(new Error(`${this.describe()} exited (${this.exitCode ?? this.exitSignal}) before the expected ${what}; stderr: ${this.stderrLines.slice(-5).join(' | ')}`));
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for a ${what} from ${this.describe()}; last stdout: ${this.lines.slice(-3).join(' | ')}; stderr: ${this.stderrLines.slice(-5).join(' | ')}`));
      }, Math.max(0, timeoutMs));
      const cleanup = () => { clearTimeout(timer); this.waiters.delete(check); };
      this.waiters.add(check);
      check();
    });
  }

  describe(): string { return `[${this.argv.join(' ')}] pid ${this.pid}`; }

  /** SIGTERM, then SIGKILL after graceMs; resolves once exited. */
  async stop(graceMs = 3000): Promise<void> {
    if (!this.running) { await this.exited; return; }
    this.proc.kill('SIGTERM');
    const t = setTimeout(() => { try { this.proc.kill('SIGKILL'); } catch { /* gone */ } }, graceMs);
    await this.exited;
    clearTimeout(t);
  }

  /** Immediate SIGKILL (no wait). */
  kill(): void {
    if (this.running) { try { this.proc.kill('SIGKILL'); } catch { /* gone */ } }
  }
}

function startProcess(ns: string | null, argv: string[], env?: NodeJS.ProcessEnv): LineProcess {
  installExitHooks();
  const full = nsArgv(ns, argv);
  // `ip netns exec` execs the command in place (no fork), so signals sent to
  // this pid reach the program itself.
  const proc = spawn(full[0], full.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env });
  return new LineProcess(proc, full, ns);
}

export interface SpawnDaemonOptions {
  env?: NodeJS.ProcessEnv;
  /** SIGTERM→SIGKILL grace in teardown; default 3000 ms. */
  stopGraceMs?: number;
}

/** Starts argv as a long-running process inside ns (null: the current
 *  namespace, for loopback-only daemons such as a test etcd) (e.g.
 *  `spawnDaemon(t, ns, vxlandArgv('run', ...))`), collecting its stdout lines
 *  and JSON logs; stopped (SIGTERM then SIGKILL) at t.teardown and on exit. */
export function spawnDaemon(t: TapLike, ns: string | null, argv: string[], opts: SpawnDaemonOptions = {}): LineProcess {
  const p = startProcess(ns, argv, opts.env);
  t.teardown(() => p.stop(opts.stopGraceMs ?? 3000));
  return p;
}

/** [node, dist/src/cli.js, ...args]: argv for the vxland CLI. */
export function vxlandArgv(...args: string[]): string[] {
  return [process.execPath, CLI_PATH, ...args];
}

/** Runs a one-shot vxland CLI command (e.g. `status --socket S --json`)
 *  inside ns and parses its JSON stdout. */
export function vxlandJson<T = unknown>(ns: string, args: string[], opts: ExecOptions = {}): Promise<T> {
  return execJson<T>(ns, vxlandArgv(...args), opts);
}

/** Sets ethtool offloads, e.g. setOffloads(ns, dev, { tx: 'off' }). */
export async function setOffloads(ns: string, dev: string, features: Record<string, 'on' | 'off'>): Promise<void> {
  const args = Object.entries(features).flat();
  await exec(ns, ['ethtool', '-K', dev, ...args]);
}
