// What an operator reads of a running daemon, as the tests read it: the
// doctor's report (whatever its exit code), a waited-for doctor finding, and
// a Prometheus scrape of /metrics parsed into metrics and labels.
import type { DoctorReport, Finding } from '../../src/doctor';
import { DOCTOR_PEER_GRACE_MS } from '../../src/doctor';
import { eventually } from './eventually';
import { exec } from './netns';
import type { VxlandHandle } from './vxland';

/** How long after the grace period doctor may take to name a silent peer. */
const DOCTOR_GRACE_SLACK_MS = 10_000;
/** Doctor starts a process each probe: a slower pace than eventually's default. */
const DOCTOR_PROBE_INTERVAL_MS = 250;

/** `vxland doctor --json`: the report, exit code 0 (no findings) or 1 (findings). */
export async function doctorReport(v: VxlandHandle): Promise<DoctorReport & { code: number | null }> {
  const r = await v.cli('doctor', '--json');
  if (r.code !== 0 && r.code !== 1) throw new Error(`vxland doctor exited ${r.code}: ${r.stderr.trim()}`);
  return { ...(JSON.parse(r.stdout) as DoctorReport), code: r.code };
}

/** Asks doctor until a finding matches `wanted`; each round first calls
 *  `stimulate` (e.g. a few pings that make the condition observable). */
export async function awaitFinding(v: VxlandHandle, wanted: (f: Finding) => boolean, o: {
  what: string; timeoutMs?: number; stimulate?: () => Promise<unknown>;
}): Promise<DoctorReport & { code: number | null }> {
  return eventually(async () => {
    await o.stimulate?.();
    return doctorReport(v);
  }, {
    until: (r) => r.findings.some(wanted),
    timeoutMs: o.timeoutMs ?? DOCTOR_PEER_GRACE_MS + DOCTOR_GRACE_SLACK_MS,
    intervalMs: DOCTOR_PROBE_INTERVAL_MS,
    what: o.what,
    describe: (r) => JSON.stringify(r.findings),
  });
}

/** A silent-peer finding about `peer`. */
export function silentPeer(peer: string): (f: Finding) => boolean {
  return (f) => f.check === 'peer' && f.problem.includes(`nothing was ever received from peer ${peer}`);
}

export interface ScrapedMetric {
  name: string;
  type: string;
  /** Each label name with the values its samples carry. */
  labels: Map<string, Set<string>>;
  samples: Array<{ labels: Record<string, string>; value: number }>;
}

/** GET http://<address>/metrics from inside ns, as text. */
export async function scrapeMetrics(ns: string, address: string): Promise<string> {
  const fetchIt = `fetch('http://${address}/metrics').then((r) => r.text()).then((b) => process.stdout.write(b))`;
  return (await exec(ns, [process.execPath, '-e', fetchIt], { timeoutMs: 10_000 })).stdout;
}

const SAMPLE_LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/;
const LABEL_PAIR = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** Parses the Prometheus text format: every metric that has a # TYPE line, with its samples. */
export function parseMetrics(text: string): Map<string, ScrapedMetric> {
  const metrics = new Map<string, ScrapedMetric>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) {
      metrics.set(type[1], { name: type[1], type: type[2], labels: new Map(), samples: [] });
      continue;
    }
    const sample = SAMPLE_LINE.exec(line);
    if (!sample) continue;
    const metric = metrics.get(sample[1]);
    if (!metric) continue; // a histogram's _bucket/_sum/_count lines: not needed here
    const labels: Record<string, string> = {};
    for (const [, key, value] of (sample[2] ?? '').matchAll(LABEL_PAIR)) {
      labels[key] = value;
      if (!metric.labels.has(key)) metric.labels.set(key, new Set());
      metric.labels.get(key)!.add(value);
    }
    metric.samples.push({ labels, value: Number(sample[3]) });
  }
  return metrics;
}
