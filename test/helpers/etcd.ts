// A real etcd v3 (the Debian package etcd-server) for tests and the bench:
// one member or a cluster, started inside a test namespace (on an address of
// that namespace) or on the root namespace's loopback, each member with a
// data dir under a temp dir; optionally serving clients over TLS with client
// certificates required (EtcdOptions.tls). Everything (processes, data dirs) is removed at
// t.teardown, also when the test fails, and on process exit (the member
// processes are LineProcesses, killed by netns.ts's exit hooks).
//
// Talks to etcd only through etcdctl run in the member's namespace, so the
// harness shares no code with vxland's own etcd client (src/io/).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { eventually } from './eventually';
import type { KeyPair } from './pki';
import { exec, skipIf, spawnDaemon, uniqueTag, type LineProcess, type TapLike } from './netns';

/** How long a started (or restarted) member may take to report healthy. */
export const ETCD_START_TIMEOUT_MS = 20_000;
/** Bound on one etcdctl call. */
const ETCDCTL_TIMEOUT_MS = 10_000;
/** SIGTERM → SIGKILL grace when stopping a member. */
const STOP_GRACE_MS = 3_000;
/** etcd's default --max-txn-ops is 128: puts go in transactions of this many. */
const PUT_BATCH = 100;
/** First client port inside a namespace; member i uses BASE + 10 i (peer +1). */
const NS_BASE_PORT = 2379;
/** The key layout of design11.md (prefix default). */
export const DEFAULT_PREFIX = '/vxland';

/** Why etcd tests cannot run here, or false if they can. */
export function etcdSkipReason(): string | false {
  try {
    execFileSync('etcd', ['--version'], { stdio: 'ignore', timeout: 5_000 });
    execFileSync('etcdctl', ['version'], { stdio: 'ignore', timeout: 5_000 });
    return false;
  } catch {
    return 'etcd / etcdctl not installed (scripts/system-deps.sh test installs etcd-server and etcd-client)';
  }
}

/** Like skipUnlessRoot: if etcd is missing, prints why, plans 0 tests and
 *  returns true; the caller then returns. */
export function skipUnlessEtcd(t: TapLike): boolean {
  return skipIf(t, etcdSkipReason());
}

export interface EtcdOptions {
  /** Number of members (1 or an odd cluster size); default 1. */
  members?: number;
  /** Namespace to run in (null: the root namespace, which then needs
   *  ip 127.0.0.1); default null. */
  ns?: string | null;
  /** Address the members listen on; default 127.0.0.1. In a namespace, an
   *  address of that namespace (e.g. its underlay Host.ip). */
  ip?: string;
  /** Serve clients over TLS and require a client certificate signed by
   *  `ca` (etcd --client-cert-auth): the client URLs are https, and the
   *  harness's etcdctl presents `client` (with auth enabled, its CN is the
   *  etcd user it acts as). Traffic between members stays plain http. */
  tls?: EtcdTls;
}

export interface EtcdTls {
  ca: string;
  server: KeyPair;
  client: KeyPair;
}

export interface EtcdMember {
  name: string;
  /** http://ip:port the clients use. */
  clientUrl: string;
  peerUrl: string;
  dataDir: string;
  /** The running process, or null while stopped/killed. */
  proc: LineProcess | null;
}

export interface EtcdCluster {
  ns: string | null;
  /** The TLS flags ctl() gives etcdctl (empty without tls). */
  tlsArgs: string[];
  members: EtcdMember[];
  /** Every member's client URL (what `--etcd` takes, comma-joined). */
  endpoints: string[];
  /** Runs `etcdctl --endpoints <all> <args>` in the cluster's namespace. */
  ctl(...args: string[]): Promise<string>;
  /** Runs etcdctl against every member presenting another client
   *  certificate (with tls), as that certificate's CN; never throws. */
  ctlAs(client: KeyPair, ...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }>;
  /** The same against member i alone. */
  ctlMember(i: number, ...args: string[]): Promise<string>;
  /** Resolves once member i (default: every running member) reports healthy. */
  waitHealthy(i?: number): Promise<void>;
  /** SIGTERM, and waits for its exit. */
  stop(i: number): Promise<void>;
  /** SIGKILL, and waits for its exit. */
  kill(i: number): Promise<void>;
  /** Starts a stopped member again on its data dir and waits until healthy. */
  restart(i: number): Promise<void>;
  /** Index of the member that is the raft leader now. */
  leader(): Promise<number>;
  /** Pids of the member processes still running (teardown leaves none). */
  pids(): number[];
}

/** A port free on the root namespace's loopback now (bind 0, read, close). */
async function freeLoopbackPort(ip: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, ip, () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Starts an etcd of o.members members and resolves once every member is healthy. */
export async function startEtcd(t: TapLike, o: EtcdOptions = {}): Promise<EtcdCluster> {
  const n = o.members ?? 1;
  if (!Number.isInteger(n) || n < 1 || n > 7) throw new Error(`members must be 1..7, got ${n}`);
  const ns = o.ns ?? null;
  const ip = o.ip ?? '127.0.0.1';
  const root = mkdtempSync(path.join(tmpdir(), 'vxland-etcd-'));
  const tag = uniqueTag();
  const members: EtcdMember[] = [];
  for (let i = 0; i < n; i++) {
    const [cp, pp] = ns === null
      ? [await freeLoopbackPort(ip), await freeLoopbackPort(ip)]
      : [NS_BASE_PORT + 10 * i, NS_BASE_PORT + 10 * i + 1];
    members.push({
      name: `m${i}-${tag}`,
      clientUrl: `${o.tls === undefined ? 'http' : 'https'}://${ip}:${cp}`,
      peerUrl: `http://${ip}:${pp}`,
      dataDir: path.join(root, `m${i}`),
      proc: null,
    });
  }
  const initialCluster = members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
  const endpoints = members.map((m) => m.clientUrl);
  // Registered before the first spawn: tap runs teardowns in reverse order,
  // so the member processes (spawnDaemon's own teardowns) stop first, then
  // this removes the data dirs.
  t.teardown(async () => {
    await Promise.all(members.map((m) => m.proc?.stop(STOP_GRACE_MS)));
    rmSync(root, { recursive: true, force: true });
  });

  const launch = (m: EtcdMember): void => {
    m.proc = spawnDaemon(t, ns, ['etcd',
      '--name', m.name, '--data-dir', m.dataDir,
      '--listen-client-urls', m.clientUrl, '--advertise-client-urls', m.clientUrl,
      '--listen-peer-urls', m.peerUrl, '--initial-advertise-peer-urls', m.peerUrl,
      '--initial-cluster', initialCluster, '--initial-cluster-state', 'new',
      '--initial-cluster-token', `vxland-test-${tag}`,
      // No metrics/pprof listeners beyond the client URL; logs on stderr.
      '--logger', 'zap', '--log-outputs', 'stderr',
      ...(o.tls === undefined ? [] : ['--client-cert-auth', '--trusted-ca-file', o.tls.ca, '--cert-file', o.tls.server.cert, '--key-file', o.tls.server.key]),
    ], { stopGraceMs: STOP_GRACE_MS });
  };

  const tlsArgs = o.tls === undefined ? [] : ['--cacert', o.tls.ca, '--cert', o.tls.client.cert, '--key', o.tls.client.key];
  const ctlAt = async (eps: string[], args: string[]): Promise<string> => {
    const r = await exec(ns, ['etcdctl', '--endpoints', eps.join(','), '--command-timeout=3s', ...tlsArgs, ...args],
      { timeoutMs: ETCDCTL_TIMEOUT_MS, env: { ...process.env, ETCDCTL_API: '3' } });
    return r.stdout;
  };

  const waitHealthy = async (i?: number): Promise<void> => {
    const which = i === undefined ? members.filter((m) => m.proc?.running) : [members[i]];
    for (const m of which) {
      await eventually(async () => {
        if (!m.proc?.running) {
          throw new Error(`etcd ${m.name} exited (${m.proc?.exitCode ?? m.proc?.exitSignal}): ${m.proc?.stderrLines.slice(-5).join(' | ')}`);
        }
        return ctlAt([m.clientUrl], ['endpoint', 'health']).then(() => 'healthy', (err: Error) => `not healthy: ${err.message.split('\n')[0]}`);
      }, {
        until: (s) => s === 'healthy',
        timeoutMs: ETCD_START_TIMEOUT_MS,
        intervalMs: 200,
        what: `etcd member ${m.name} healthy at ${m.clientUrl}`,
      });
    }
  };

  const stopWith = async (i: number, how: 'stop' | 'kill'): Promise<void> => {
    const p = members[i].proc;
    if (!p) return;
    if (how === 'kill') { p.kill(); await p.exited; } else await p.stop(STOP_GRACE_MS);
    members[i].proc = null;
  };

  for (const m of members) launch(m);
  const cluster: EtcdCluster = {
    ns,
    tlsArgs,
    members,
    endpoints,
    ctl: (...args) => ctlAt(endpoints, args),
    async ctlAs(client, ...args) {
      if (o.tls === undefined) throw new Error('ctlAs needs an etcd started with tls');
      const r = await exec(ns, ['etcdctl', '--endpoints', endpoints.join(','), '--command-timeout=3s',
        '--cacert', o.tls.ca, '--cert', client.cert, '--key', client.key, ...args],
      { allowFail: true, timeoutMs: ETCDCTL_TIMEOUT_MS, env: { ...process.env, ETCDCTL_API: '3' } });
      return { code: r.code, stdout: r.stdout, stderr: r.stderr };
    },
    ctlMember: (i, ...args) => ctlAt([members[i].clientUrl], args),
    waitHealthy,
    stop: (i) => stopWith(i, 'stop'),
    kill: (i) => stopWith(i, 'kill'),
    async restart(i) {
      if (members[i].proc?.running) throw new Error(`etcd ${members[i].name} is running`);
      // On an existing data dir etcd ignores the --initial-cluster flags.
      launch(members[i]);
      await waitHealthy(i);
    },
    async leader() {
      const status = parseEtcdctlJson<Array<{ Endpoint: string; Status: { header: { member_id: string }; leader: string } }>>(
        await ctlAt(members.filter((m) => m.proc?.running).map((m) => m.clientUrl), ['endpoint', 'status', '-w', 'json']));
      const url = status.find((e) => e.Status.header.member_id === e.Status.leader)?.Endpoint;
      const i = members.findIndex((m) => m.clientUrl === url);
      if (i < 0) throw new Error(`no leader among ${status.map((e) => e.Endpoint).join(', ')}`);
      return i;
    },
    pids: () => members.flatMap((m) => (m.proc?.running && m.proc.pid !== undefined ? [m.proc.pid] : [])),
  };
  await waitHealthy();
  return cluster;
}

/** etcdctl -w json output with every integer field as a string: ids
 *  (lease, member, leader) are 64-bit and JSON.parse would round them. */
function parseEtcdctlJson<T>(out: string): T {
  return JSON.parse(out.replace(/":(\d+)/g, '":"$1"')) as T;
}

// ---------------------------------------------------------------------------
// VTEP keys (design11.md layout).

export interface VtepBinding { ip: string; mac: string }
export interface VtepRecord {
  version: 1;
  vtep: string;
  port: number;
  mac: string;
  bindings: VtepBinding[];
}

export function vtepKey(prefix: string, vni: number, vtep: string): string {
  return `${prefix}/networks/${vni}/vteps/${vtep}`;
}

export function vtepPrefix(prefix: string, vni: number): string {
  return `${prefix}/networks/${vni}/vteps/`;
}

/** The i-th fake VTEP (0-based, i < 65_024): an underlay address in
 *  100.64.0.0/16 (no test namespace routes it, so frames flooded to it go
 *  nowhere), a locally administered MAC 02:fe:00:<hi>:<lo>:01, and one
 *  binding 10.<vni % 256>.<100 + hi>.<lo> with that MAC. */
export function fakeVtep(vni: number, i: number, port = 4789): VtepRecord {
  if (!Number.isInteger(i) || i < 0 || i >= 65_024) throw new Error(`fake VTEP index out of range: ${i}`);
  const hi = Math.floor(i / 254);
  const lo = (i % 254) + 1;
  const mac = `02:fe:00:${hi.toString(16).padStart(2, '0')}:${lo.toString(16).padStart(2, '0')}:01`;
  return {
    version: 1,
    vtep: `100.64.${hi}.${lo}`,
    port,
    mac,
    bindings: [{ ip: `10.${vni % 256}.${100 + hi}.${lo}`, mac }],
  };
}

/** Grants a lease of ttlS seconds and returns its id in hex without leading
 *  zeros (etcdctl prints it zero-padded to 16 digits; readVteps gives the
 *  same id without them). */
export async function grantLease(etcd: EtcdCluster, ttlS: number): Promise<string> {
  const out = await etcd.ctl('lease', 'grant', String(ttlS));
  const m = /lease ([0-9a-f]+) granted/.exec(out);
  if (!m) throw new Error(`etcdctl lease grant: unexpected output ${JSON.stringify(out)}`);
  return BigInt(`0x${m[1]}`).toString(16);
}

export async function revokeLease(etcd: EtcdCluster, lease: string): Promise<void> {
  await etcd.ctl('lease', 'revoke', lease);
}

/** Writes records under prefix/networks/vni/vteps/, attached to lease when
 *  given, in transactions of PUT_BATCH puts (one etcdctl process each). */
export async function putVteps(etcd: EtcdCluster, o: { prefix?: string; vni: number; records: VtepRecord[]; lease?: string }): Promise<void> {
  const prefix = o.prefix ?? DEFAULT_PREFIX;
  for (let i = 0; i < o.records.length; i += PUT_BATCH) {
    const ops = o.records.slice(i, i + PUT_BATCH).map((r) => {
      // etcdctl's txn reader splits on spaces and takes a quoted value as
      // JSON-style string: JSON.stringify gives exactly that quoting.
      const lease = o.lease ? ` --lease=${o.lease}` : '';
      return `put${lease} ${vtepKey(prefix, o.vni, r.vtep)} ${JSON.stringify(JSON.stringify(r))}`;
    });
    // Three sections, each ended by an empty line: compares (none), success ops, failure ops (none).
    await txn(etcd, `\n${ops.join('\n')}\n\n\n`);
  }
}

async function txn(etcd: EtcdCluster, script: string): Promise<void> {
  const r = await exec(etcd.ns, ['etcdctl', '--endpoints', etcd.endpoints.join(','), '--command-timeout=5s', ...etcd.tlsArgs, 'txn'],
    { timeoutMs: ETCDCTL_TIMEOUT_MS, input: script, env: { ...process.env, ETCDCTL_API: '3' } });
  if (!/^SUCCESS/m.test(r.stdout)) throw new Error(`etcdctl txn did not succeed: ${r.stdout.slice(0, 500)} ${r.stderr.slice(0, 500)}`);
}

/** Deletes the keys of these VTEPs (in transactions, as putVteps). */
export async function deleteVteps(etcd: EtcdCluster, o: { prefix?: string; vni: number; vteps: string[] }): Promise<void> {
  const prefix = o.prefix ?? DEFAULT_PREFIX;
  for (let i = 0; i < o.vteps.length; i += PUT_BATCH) {
    const ops = o.vteps.slice(i, i + PUT_BATCH).map((v) => `del ${vtepKey(prefix, o.vni, v)}`);
    await txn(etcd, `\n${ops.join('\n')}\n\n\n`);
  }
}

export interface VtepEntry { key: string; value: VtepRecord; lease: string | null }

/** Every key under prefix/networks/vni/vteps/, parsed, in key order. */
export async function readVteps(etcd: EtcdCluster, o: { prefix?: string; vni: number }): Promise<VtepEntry[]> {
  const out = await etcd.ctl('get', '--prefix', vtepPrefix(o.prefix ?? DEFAULT_PREFIX, o.vni), '-w', 'json');
  const j = parseEtcdctlJson<{ kvs?: Array<{ key: string; value: string; lease?: string }> }>(out);
  const b64 = (s: string) => Buffer.from(s, 'base64').toString('utf8');
  return (j.kvs ?? []).map((kv) => ({
    key: b64(kv.key),
    value: JSON.parse(b64(kv.value)) as VtepRecord,
    lease: kv.lease === undefined || kv.lease === '0' ? null : BigInt(kv.lease).toString(16),
  }));
}
