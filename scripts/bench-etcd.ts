// The etcd membership benchmark (issue 11), run by scripts/bench.ts when
// BENCH_ONLY names "etcd" or in a full run: a real etcd (test/helpers/etcd.ts)
// in one namespace, one vxland in another with `--etcd` and no peer, and
// SIMULATED_VTEPS fake VTEP keys (design11.md layout, one lease) written by
// this script with etcdctl. Measured:
//   - watch: vxland already running; time from the first write until its
//     flood list (`fdb show`) holds every simulated VTEP;
//   - list: vxland started with the keys already there; time from its start
//     until the same;
//   - its RSS before the keys and with them;
//   - removal: REMOVED_VTEPS keys deleted; time until none of them is left in
//     its flood list.
// Not a timed test: the figures go to BENCHMARKS.md (its etcd section).
import { cpus, loadavg } from 'node:os';
import { deleteVteps, etcdSkipReason, fakeVtep, grantLease, putVteps, startEtcd } from '../test/helpers/etcd';
import { eventually } from '../test/helpers/eventually';
import { createTopology, rootSkipReason, vmRssKb } from '../test/helpers/netns';
import { Teardowns } from '../test/helpers/teardowns';
import { datapathsUnderTest, startVxland, TEST_VNI, type VxlandHandle } from '../test/helpers/vxland';

const SIMULATED_VTEPS = 500;
const REMOVED_VTEPS = 100;
/** Longer than any key can need to outlive the run. */
const LEASE_TTL_S = 600;
/** Bound on each convergence wait. */
const CONVERGE_TIMEOUT_MS = 120_000;
const POLL_INTERVAL_MS = 50;
const FLOOD_MAC = '00:00:00:00:00:00';

export const ETCD_BEGIN = '<!-- etcd benchmark: written by scripts/bench.ts -->';
export const ETCD_END = '<!-- end of etcd benchmark -->';

export interface EtcdBenchResult {
  datapath: string;
  vteps: number;
  writeMs: number;
  watchConvergeMs: number;
  listConvergeMs: number;
  rssBeforeMiB: number;
  rssAfterMiB: number;
  removed: number;
  removeMs: number;
  /** The 1-minute load average when the bench started and ended: other
   *  work on the machine (the figures are not alone in it). */
  loadStart: number;
  loadEnd: number;
}

/** Why the etcd bench cannot run here, or false. */
export function etcdBenchSkipReason(): string | false {
  return rootSkipReason() || etcdSkipReason();
}

async function etcdPeers(v: VxlandHandle): Promise<Set<string>> {
  const entries = await v.json<Array<{ mac: string; vtep: string; kind: string; vni: number }>>('fdb', 'show');
  return new Set(entries.filter((e) => e.mac === FLOOD_MAC && e.vni === TEST_VNI && e.kind === 'etcd').map((e) => e.vtep));
}

/** Resolves (with the ms since sinceMs) once pred holds on v's etcd peers. */
async function until(v: VxlandHandle, sinceMs: number, pred: (peers: Set<string>) => boolean, what: string): Promise<number> {
  await eventually(() => etcdPeers(v), {
    until: pred, timeoutMs: CONVERGE_TIMEOUT_MS, intervalMs: POLL_INTERVAL_MS, what,
    describe: (peers) => `${peers.size} etcd peers`,
  });
  return Date.now() - sinceMs;
}

export async function etcdBench(): Promise<EtcdBenchResult> {
  const t = new Teardowns();
  const loadStart = loadavg()[0];
  try {
    const datapath = datapathsUnderTest().includes('native') ? 'native' : 'dgram';
    const topo = await createTopology(t, { hosts: 3 });
    const [etcdHost, h1, h2] = topo.hosts;
    const etcd = await startEtcd(t, { ns: etcdHost.ns, ip: etcdHost.ip });
    const records = Array.from({ length: SIMULATED_VTEPS }, (_, i) => fakeVtep(TEST_VNI, i));
    const all = (peers: Set<string>) => records.every((r) => peers.has(r.vtep));
    const start = (host: typeof h1) => startVxland(t, host, {
      datapath, address: `10.42.0.${host.index}/24`,
      // warn: no log line per VTEP, which would measure the logger.
      extraArgs: ['--etcd', etcd.endpoints.join(','), '--log-level', 'warn'],
    });

    const watcher = await start(h1);
    await until(watcher, Date.now(), (p) => p.size === 0, 'an empty etcd membership');
    const rssBeforeMiB = vmRssKb(watcher.proc.pid!) / 1024;
    const lease = await grantLease(etcd, LEASE_TTL_S);
    const writeStart = Date.now();
    await putVteps(etcd, { vni: TEST_VNI, records, lease });
    const writeMs = Date.now() - writeStart;
    const watchConvergeMs = await until(watcher, writeStart, all, `all ${SIMULATED_VTEPS} VTEPs in the flood list (watch)`);
    const rssAfterMiB = vmRssKb(watcher.proc.pid!) / 1024;

    const listStart = Date.now();
    const lister = await start(h2);
    const listConvergeMs = await until(lister, listStart, all, `all ${SIMULATED_VTEPS} VTEPs in the flood list (list at start)`);

    const gone = records.slice(0, REMOVED_VTEPS).map((r) => r.vtep);
    const removeStart = Date.now();
    await deleteVteps(etcd, { vni: TEST_VNI, vteps: gone });
    const removeMs = await until(watcher, removeStart, (p) => gone.every((g) => !p.has(g)), `${REMOVED_VTEPS} removed VTEPs gone`);
    return { datapath, vteps: SIMULATED_VTEPS, writeMs, watchConvergeMs, listConvergeMs, rssBeforeMiB, rssAfterMiB, removed: REMOVED_VTEPS, removeMs, loadStart, loadEnd: loadavg()[0] };
  } finally {
    await t.run();
  }
}

export function etcdSection(r: EtcdBenchResult, machine: string): string {
  return `${ETCD_BEGIN}
## Membership from etcd: ${r.vteps} simulated VTEPs

Produced by \`npm run bench\` (or \`BENCH_ONLY=etcd\`) on ${new Date().toISOString()}; ${machine}.

A real etcd (one member) in one namespace, vxland (${r.datapath} data path,
\`--etcd\`, no peer) in another. scripts/bench-etcd.ts writes ${r.vteps} VTEP keys
(design11.md layout, one lease) with etcdctl in transactions of 100 puts,
and polls \`vxland fdb show --json\` every ${POLL_INTERVAL_MS} ms for the etcd peers.
Load average (1 min) at the start and the end: ${r.loadStart.toFixed(2)} and
${r.loadEnd.toFixed(2)} (on ${cpus().length} CPUs; above 1 per CPU, other work shared the machine).

| measure | value |
|---|---|
| writing the ${r.vteps} keys (etcdctl) | ${r.writeMs} ms |
| running daemon (watch): first write → all ${r.vteps} in its flood list | ${r.watchConvergeMs} ms |
| daemon started with the keys there (list): start → all ${r.vteps} in its flood list | ${r.listConvergeMs} ms |
| RSS before the keys → with them | ${r.rssBeforeMiB.toFixed(1)} → ${r.rssAfterMiB.toFixed(1)} MiB |
| ${r.removed} keys deleted → none left in its flood list | ${r.removeMs} ms |
${ETCD_END}
`;
}
