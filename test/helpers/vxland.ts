// Starting vxland daemons inside test namespaces and talking to them with the
// real CLI. Builds on helpers/netns.ts.

import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { nativeEngineSupported } from '../../src/io/engine-support';
import { eventually } from './eventually';
import { exec, execJson, spawnDaemon, vxlandArgv, type Host, type LineProcess, type TapLike } from './netns';
import type { PeerRow } from '../../src/control/protocol';

export const TEST_VNI = 42;
/** How long a daemon (or a monitor) may take to answer after its start. */
const START_TIMEOUT_MS = 15_000;
/** A MAC no test uses otherwise (locally administered). */
const MONITOR_SENTINEL_MAC = '02:00:5e:00:ee:01';
/** Where the sentinel entry points while it exists (TEST-NET-1: nobody). */
const MONITOR_SENTINEL_VTEP = '192.0.2.1';

/** The data paths the integration tests run on: every path this build offers. */
export function datapathsUnderTest(): string[] {
  const fromEnv = process.env.VXLAND_TEST_DATAPATHS;
  if (fromEnv) return fromEnv.split(',');
  const support = nativeEngineSupported();
  if (support !== true) {
    console.log(`# native data path not tested: ${support}`);
    return ['dgram'];
  }
  return ['dgram', 'native'];
}

export interface VxlandOptions {
  vni?: number;
  peers?: string[];
  /** Overlay address with prefix, e.g. 10.42.0.1/24. */
  address?: string;
  /** Required, so that no test runs on one data path by accident: loop over
   *  datapathsUnderTest(). */
  datapath: string;
  dev?: string;
  /** Reuse a state directory (to test restarts); default a fresh temp dir. */
  stateDir?: string;
  /** Control socket path; default <stateDir>/<dev>.sock. */
  socket?: string;
  extraArgs?: string[];
  env?: NodeJS.ProcessEnv;
  /** Run from this host file alone (`vxland run --config FILE`): no network
   *  flags; the file must name stateDir and socket, passed here too. */
  hostFile?: string;
  /** The vxland command, for the daemon and the handle's CLI calls
   *  (default vxlandArgv(): this checkout's dist/src/cli.js), e.g. an
   *  installed package's bin/vxland. */
  command?: string[];
}

export interface VxlandHandle {
  proc: LineProcess;
  host: Host;
  socket: string;
  stateDir: string;
  dev: string;
  /** Runs `vxland <args> --socket S --json` in the host namespace and parses the output. */
  json<T = any>(...args: string[]): Promise<T>;
  /** The flood list's IPs from `vxland peer list <args> --json` (kinds dropped). */
  peers(...args: string[]): Promise<string[]>;
  /** Runs `vxland <args> --socket S` and returns exit code, stdout and stderr. */
  cli(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }>;
}

export function tempDir(t: TapLike, label: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), `vxland-${label}-`));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Starts `vxland run` in host's namespace and resolves once its control socket answers. */
export async function startVxland(t: TapLike, host: Host, o: VxlandOptions): Promise<VxlandHandle> {
  const dev = o.dev ?? 'vxl0';
  const stateDir = o.stateDir ?? tempDir(t, 'state');
  const socket = o.socket ?? path.join(stateDir, `${dev}.sock`);
  const args = o.hostFile !== undefined
    ? ['run', '--config', o.hostFile, '--datapath', o.datapath]
    : ['run', '--dev', dev, '--vni', String(o.vni ?? TEST_VNI), '--local', host.ip,
      '--state-dir', stateDir, '--socket', socket, '--datapath', o.datapath, '--log-level', 'debug'];
  for (const p of o.peers ?? []) args.push('--peer', p);
  if (o.address) args.push('--address', o.address);
  args.push(...(o.extraArgs ?? []));
  const command = o.command ?? vxlandArgv();
  const proc = spawnDaemon(t, host.ns, [...command, ...args], { env: o.env });
  const handle: VxlandHandle = {
    proc,
    host,
    socket,
    stateDir,
    dev,
    json: (...a) => execJson(host.ns, [...command, ...a, '--socket', socket, '--json'], { timeoutMs: 10_000 }),
    peers: async (...a) => (await execJson<PeerRow[]>(host.ns, [...command, 'peer', 'list', ...a, '--socket', socket, '--json'], { timeoutMs: 10_000 })).map((p) => p.ip),
    cli: async (...a) => {
      const r = await exec(host.ns, [...command, ...a, '--socket', socket], { allowFail: true, timeoutMs: 10_000 });
      return { code: r.code, stdout: r.stdout, stderr: r.stderr };
    },
  };
  await eventually(async () => {
    if (!proc.running) {
      throw new Error(`vxland exited (${proc.exitCode ?? proc.exitSignal}): ${[...proc.lines, ...proc.stderrLines].slice(-8).join(' | ')}`);
    }
    if (!existsSync(socket)) return 'no control socket yet';
    return handle.json('status').then(() => 'answering', (err: Error) => `not answering: ${err.message}`);
  }, {
    until: (state) => state === 'answering',
    timeoutMs: START_TIMEOUT_MS,
    intervalMs: 100,
    what: `vxland answering on ${socket}`,
    describe: (state) => `${state}; last stdout: ${proc.lines.slice(-5).join(' | ')}`,
  });
  return handle;
}

/** Starts `vxland monitor --json` against v and resolves once it is
 *  subscribed: a sentinel static entry added and deleted until the monitor
 *  prints it (the CLI prints nothing on subscribing). Its events are in
 *  `monitor.logs`, the sentinel's first. */
export async function startMonitor(t: TapLike, v: VxlandHandle): Promise<LineProcess> {
  const monitor = spawnDaemon(t, v.host.ns, vxlandArgv('monitor', '--json', '--socket', v.socket));
  const sentinel = MONITOR_SENTINEL_MAC;
  await eventually(async () => {
    if (!monitor.running) throw new Error(`vxland monitor exited (${monitor.exitCode ?? monitor.exitSignal}): ${monitor.stderrLines.slice(-3).join(' | ')}`);
    for (const args of [['fdb', 'add', sentinel, MONITOR_SENTINEL_VTEP], ['fdb', 'del', sentinel]]) {
      const r = await v.cli(...args);
      if (r.code !== 0) throw new Error(`vxland ${args.join(' ')}: ${r.stderr.trim()}`);
    }
    return monitor.logs.some((e) => e.mac === sentinel);
  }, { timeoutMs: START_TIMEOUT_MS, intervalMs: 100, what: 'vxland monitor printing the sentinel entry' });
  return monitor;
}
