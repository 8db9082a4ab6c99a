// Soak: vxland ↔ vxland in two network namespaces for a while (10 minutes by
// default), with verified TCP transfers back to back in both directions, peer
// churn (`vxland peer del`/`add` every few seconds) and static FDB entries
// added and removed. Every 10 s it samples each daemon's RSS (VmRSS) and open
// file descriptors (/proc/PID/fd); at the end it prints the samples and a
// verdict: PASS when every transfer arrived intact, both daemons are still
// running, and RSS and fd count are flat (the last third's maximum within
// RSS_TOLERANCE_MB and FD_TOLERANCE of the first third's maximum).
//
// Not part of `npm test`. Run as root: `npm run soak` or
// `node dist/scripts/soak.js [--minutes N] [--datapath dgram|native]`.
// Exit code: 0 PASS, 1 FAIL, 2 cannot run here.
// Everything it creates lives in namespaces removed at the end, also on
// failure and on SIGINT/SIGTERM (test/helpers/netns.ts takes care of that).
import { readdirSync, readFileSync } from 'node:fs';
import { createTopology, rootSkipReason, verifiedTcpTransfer } from '../test/helpers/netns';
import { Teardowns } from '../test/helpers/teardowns';
import { startVxland, type VxlandHandle } from '../test/helpers/vxland';

const SAMPLE_INTERVAL_MS = 10_000;
const RSS_TOLERANCE_MB = 20;
const FD_TOLERANCE = 5;
const TRANSFER_BYTES = 20 * 1024 * 1024;
const TRANSFER_TIMEOUT_MS = 60_000;
const CHURN_INTERVAL_MS = 3_000;
/** Every this many churns, a static entry is added, and removed on the next. */
const STATIC_EVERY = 4;

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Sample {
  elapsedS: number;
  rssKb: [number, number];
  fds: [number, number];
  transfers: number;
  churns: number;
}

function vmRssKb(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

async function main(): Promise<number> {
  const minutes = Number(arg('minutes', '10'));
  const datapath = arg('datapath', 'dgram');
  if (!(minutes > 0)) { console.error('soak: --minutes must be a positive number'); return 2; }
  const skip = rootSkipReason();
  if (skip !== false) { console.error(`soak: cannot run: ${skip}`); return 2; }

  const t = new Teardowns();
  try {
    const topo = await createTopology(t, { hosts: 2 });
    const [a, b] = topo.hosts;
    const info = ['--log-level', 'info'];
    const va = await startVxland(t, a, { peers: [b.ip], address: '10.42.0.1/24', datapath, extraArgs: info });
    const vb = await startVxland(t, b, { peers: [a.ip], address: '10.42.0.2/24', datapath, extraArgs: info });
    const daemons: [VxlandHandle, VxlandHandle] = [va, vb];
    const pids = daemons.map((d) => d.proc.pid!) as [number, number];
    console.log(`soak: ${minutes} min, datapath ${datapath}, vxland pids A ${pids[0]} B ${pids[1]}`);

    const endMs = Date.now() + minutes * 60_000;
    let transfers = 0;
    let transferredBytes = 0;
    let churns = 0;
    const failures: string[] = [];
    const samples: Sample[] = [];
    const startMs = Date.now();
    const sample = () => {
      samples.push({
        elapsedS: Math.round((Date.now() - startMs) / 1000),
        rssKb: [vmRssKb(pids[0]), vmRssKb(pids[1])],
        fds: [openFds(pids[0]), openFds(pids[1])],
        transfers,
        churns,
      });
    };
    const running = () => Date.now() < endMs && failures.length === 0 && va.proc.running && vb.proc.running;

    const traffic = (async () => {
      for (let round = 0; running(); round++) {
        const aToB = round % 2 === 0;
        try {
          const r = await verifiedTcpTransfer({
            serverNs: aToB ? b.ns : a.ns, serverIp: aToB ? '10.42.0.2' : '10.42.0.1', clientNs: aToB ? a.ns : b.ns,
            bytes: TRANSFER_BYTES, timeoutMs: TRANSFER_TIMEOUT_MS, seed: round + 1,
          });
          if (r.received.bytes !== TRANSFER_BYTES || r.received.sha256 !== r.expectedSha256) {
            failures.push(`transfer ${round + 1}: received ${r.received.bytes} bytes, sha256 ${r.received.sha256}, expected ${r.expectedSha256}`);
          }
          transfers++;
          transferredBytes += r.received.bytes;
        } catch (err) {
          failures.push(`transfer ${round + 1}: ${(err as Error).message}`);
        }
      }
    })();

    // Peer churn on A: its frames to B keep flowing through the learned entry
    // while B is briefly off the flood list. Static entries point at B too.
    const churn = (async () => {
      while (running()) {
        await sleep(CHURN_INTERVAL_MS);
        if (!running()) break;
        const steps: string[][] = [['peer', 'del', b.ip], ['peer', 'add', b.ip]];
        const mac = `02:00:00:00:cc:${(churns % 256).toString(16).padStart(2, '0')}`;
        if (churns % STATIC_EVERY === 0) steps.push(['fdb', 'add', mac, b.ip]);
        if (churns % STATIC_EVERY === 1) steps.push(['fdb', 'del', `02:00:00:00:cc:${((churns - 1) % 256).toString(16).padStart(2, '0')}`]);
        for (const [i, step] of steps.entries()) {
          const r = await va.cli(...step);
          if (r.code !== 0) failures.push(`vxland ${step.join(' ')}: exit ${r.code}: ${r.stderr.trim()}`);
          if (i === 0) await sleep(200);
        }
        churns++;
      }
    })();

    sample();
    while (running()) {
      await sleep(Math.min(SAMPLE_INTERVAL_MS, Math.max(0, endMs - Date.now())));
      if (va.proc.running && vb.proc.running) sample();
    }
    await Promise.all([traffic, churn]);
    if (!va.proc.running) failures.push(`vxland A exited (${va.proc.exitCode ?? va.proc.exitSignal})`);
    if (!vb.proc.running) failures.push(`vxland B exited (${vb.proc.exitCode ?? vb.proc.exitSignal})`);
    if (transfers === 0) failures.push('no transfer completed');
    const peers = await va.peers().catch(() => []);
    if (peers.length !== 1 || peers[0] !== b.ip) failures.push(`A's peers at the end: ${JSON.stringify(peers)}, expected [${b.ip}]`);

    const mb = (kb: number) => (kb / 1024).toFixed(1);
    console.log('');
    console.log('  time  A RSS MB  A fds  B RSS MB  B fds  transfers  churns');
    for (const s of samples) {
      console.log(`${String(s.elapsedS).padStart(5)}s  ${mb(s.rssKb[0]).padStart(8)}  ${String(s.fds[0]).padStart(5)}  ${mb(s.rssKb[1]).padStart(8)}  ${String(s.fds[1]).padStart(5)}  ${String(s.transfers).padStart(9)}  ${String(s.churns).padStart(6)}`);
    }
    console.log('');
    console.log(`transfers: ${transfers} of ${TRANSFER_BYTES / 1048576} MB (${(transferredBytes / 1048576).toFixed(0)} MB), peer churns: ${churns}`);

    if (samples.length < 3) {
      failures.push(`only ${samples.length} samples: run longer (--minutes)`);
    } else {
      const third = Math.max(1, Math.floor(samples.length / 3));
      const first = samples.slice(0, third);
      const last = samples.slice(-third);
      for (const [i, name] of ['A', 'B'].entries()) {
        const rssFirst = Math.max(...first.map((s) => s.rssKb[i]));
        const rssLast = Math.max(...last.map((s) => s.rssKb[i]));
        const fdFirst = Math.max(...first.map((s) => s.fds[i]));
        const fdLast = Math.max(...last.map((s) => s.fds[i]));
        const rssGrowthMb = (rssLast - rssFirst) / 1024;
        console.log(`${name}: RSS max first third ${mb(rssFirst)} MB, last third ${mb(rssLast)} MB (${rssGrowthMb >= 0 ? '+' : ''}${rssGrowthMb.toFixed(1)} MB, tolerance +${RSS_TOLERANCE_MB}); fds ${fdFirst} → ${fdLast} (tolerance +${FD_TOLERANCE})`);
        if (rssGrowthMb > RSS_TOLERANCE_MB) failures.push(`${name}: RSS grew ${rssGrowthMb.toFixed(1)} MB between the first and the last third`);
        if (fdLast - fdFirst > FD_TOLERANCE) failures.push(`${name}: open fds grew from ${fdFirst} to ${fdLast}`);
      }
    }
    for (const f of failures) console.log(`FAIL: ${f}`);
    console.log(`verdict: ${failures.length === 0 ? 'PASS' : 'FAIL'}`);
    return failures.length === 0 ? 0 : 1;
  } finally {
    await t.run();
  }
}

main().then(
  (code) => { process.exitCode = code; },
  (err) => { console.error(`soak: ${err && err.stack ? err.stack : err}`); process.exitCode = 1; },
);
