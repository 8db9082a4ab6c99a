// `vxland run`: wires a validated Config to the TAP device, the UDP socket,
// the FDB, the data path and the control socket, and owns the process's life:
// SIGTERM/SIGINT shut down cleanly (exit 0), a fatal data-path error exits 1.
//
// Peers and static FDB entries come from the config file and from the state
// file (what `vxland peer add` / `fdb add` changed at runtime; the union of
// both is used). Every control-plane change is applied at once and saved
// atomically before it is acknowledged; if saving fails the change is undone.

import pino, { type Logger } from 'pino';
import { resolveDatapath, type Config, type DatapathKind } from './config/config.js';
import { planReload } from './config/reload.js';
import { ipFamily } from './config/validate.js';
import { ControlServer } from './control/server.js';
import type {
  ControlHandler,
  LogLevelResult,
  MonitorEvent,
  StatsResult,
  FdbChangeResult,
  FdbFlushResult,
  FdbShowResult,
  PeerChangeResult,
  PeerListResult,
  StatusResult,
} from './control/protocol.js';
import { MetricsServer, buildRegistry } from './control/metrics.js';
import { SourceFilter } from './datapath/accept.js';
import { Datapath } from './datapath/datapath.js';
import { diagnose, type DoctorReport } from './doctor.js';
import { groupId, interfaceMtu, interfaceTowards, interfaceWithAddress, tcpInCsumErrors } from './io/host.js';
import { Stats } from './datapath/stats.js';
import { VxlandError } from './errors.js';
import { Fdb } from './fdb/fdb.js';
import { notifySystemd, watchdogIntervalMs } from './io/notify.js';
import { NativeEngine } from './io/engine.js';
import { TapDevice } from './io/tap.js';
import { NativeDatapath } from './datapath/native-datapath.js';
import { formatMacKey, macKeyAt } from './wire/mac.js';
import { UdpBind } from './io/udp.js';
import { StateStore } from './state/store.js';
import { RateLimitedLog } from './util/rate-limit.js';

/** How often learned entries are checked for ageing. */
export const FDB_SWEEP_INTERVAL_MS = 1_000;

export interface RunningDaemon {
  /** Shuts down as on SIGTERM, but resolves instead of exiting. Idempotent. */
  stop(): Promise<void>;
}

/** Starts the daemon. Resolves once the TAP device, the UDP socket and the
 *  control socket are up and systemd has been told READY=1. Rejects with a
 *  VxlandError (leaving nothing open) when startup fails. After that the
 *  process exits by itself: 0 on SIGTERM/SIGINT, 1 on a fatal data-path error. */
export async function runDaemon(config: Config, reloadConfig?: () => Config): Promise<RunningDaemon> {
  const datapathKind = resolveDatapath(config.datapath);
  const log = pino({ level: config.logLevel, base: { pid: process.pid, dev: config.dev } });
  const startedMs = Date.now();

  const fdbLog = new RateLimitedLog(log);
  const store = new StateStore({ stateDir: config.stateDir, dev: config.dev, log });
  const stats = new Stats();
  const sources = new SourceFilter(config.accept);
  const monitors = new Set<(event: MonitorEvent) => void>();
  const fdb = new Fdb({
    ageingMs: config.ageingS * 1000,
    maxLearned: config.maxFdb,
    maxLearnedPerVtep: config.maxFdbPerVtep,
    learnRatePerS: config.learnRatePerS,
    onEvent: (e) => {
      if (e.type !== 'aged' && e.type !== 'deleted') stats.track(e.vtep);
      if (e.kind !== 'learned') {
        if (e.type === 'added') sources.name(e.vtep);
        else if (e.type === 'deleted') sources.unname(e.vtep);
      }
      const fields = { fdb: e.type, vni: e.vni, mac: e.mac, vtep: e.vtep, previousVtep: e.previousVtep, kind: e.kind };
      if (e.type === 'moved') fdbLog.warn(`moved:${e.mac}`, fields, 'learned MAC moved to another VTEP');
      else log.debug(fields, 'fdb change');
      if (monitors.size > 0) {
        const event: MonitorEvent = { time: new Date().toISOString(), ...e };
        for (const emit of monitors) emit(event);
      }
    },
  });
  seedFdb(fdb, config, store.load(), log);

  const cleanups: (() => Promise<void> | void)[] = [];
  const runCleanups = async (): Promise<void> => {
    for (const cleanup of cleanups.splice(0).reverse()) {
      try {
        await cleanup();
      } catch (err) {
        log.warn({ err }, 'error during shutdown');
      }
    }
  };

  let datapath: DataPlane;
  try {
    datapath = await openDataPlane(datapathKind, config, { fdb, stats, log, sources });
    cleanups.push(() => datapath.stop());
  } catch (err) {
    await runCleanups();
    throw err;
  }

  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      tellSystemd('STOPPING=1', log);
      await runCleanups();
    })();
    return stopping;
  };

  datapath.start((err) => {
    log.fatal({ err }, 'data path failed; exiting');
    void stop().finally(() => process.exit(1));
  });

  const deviceMac = formatMacKey(macKeyAt(datapath.mac, 0));
  const handler = new DaemonControl(config, deviceMac, datapathKind, fdb, stats, store, log, startedMs, monitors, sources);
  let control: ControlServer;
  try {
    control = await ControlServer.listen(config.socket, handler, log, controlAccess(config.controlGroup));
  } catch (err) {
    await runCleanups();
    throw err;
  }
  cleanups.push(() => control.close());

  if (config.metrics !== null) {
    const { host, port } = config.metrics;
    let metrics: MetricsServer;
    try {
      metrics = await MetricsServer.listen(host, port, buildRegistry({ dev: config.dev, vni: config.vni, datapath: datapathKind, stats, fdb }));
    } catch (err) {
      await runCleanups();
      throw err;
    }
    cleanups.push(() => metrics.close());
    log.info({ metrics: metrics.address }, 'serving Prometheus metrics on /metrics');
  }

  if (config.ageingS > 0) {
    const sweep = setInterval(() => fdb.sweep(), FDB_SWEEP_INTERVAL_MS);
    sweep.unref();
    cleanups.push(() => clearInterval(sweep));
  }
  const watchdogMs = watchdogIntervalMs();
  if (watchdogMs !== null) {
    const watchdog = setInterval(() => tellSystemd('WATCHDOG=1', log), watchdogMs);
    watchdog.unref();
    cleanups.push(() => clearInterval(watchdog));
  }

  let current = config;
  const onReload = (): void => {
    if (reloadConfig === undefined) return void log.warn('SIGHUP ignored: no config to reload');
    try {
      const next = reloadConfig();
      const plan = planReload(current, next);
      for (const ip of plan.removePeers) fdb.removePeer(config.vni, ip);
      for (const ip of plan.addPeers) fdb.addPeer(config.vni, ip);
      for (const mac of plan.removeStatic) {
        if (fdb.staticEntries().some((e) => e.mac === mac)) fdb.remove(config.vni, mac);
      }
      for (const entry of plan.addStatic) fdb.addStatic(config.vni, entry.mac, entry.vtep);
      if (plan.logLevel !== null) log.level = plan.logLevel;
      if (plan.accept !== null) sources.setPolicy(plan.accept);
      handler.saveState();
      current = { ...next, ...Object.fromEntries(plan.needRestart.map((key) => [key, current[key as keyof Config]])) } as Config;
      log.info(
        { addPeers: plan.addPeers, removePeers: plan.removePeers, addStatic: plan.addStatic.map((e) => e.mac), removeStatic: plan.removeStatic,
          logLevel: plan.logLevel, accept: plan.accept === null ? null : sources.describe() },
        'config reloaded',
      );
      if (plan.needRestart.length > 0) log.warn({ keys: plan.needRestart }, 'these settings changed but apply only after a restart');
    } catch (err) {
      log.error({ err: err instanceof Error ? err.message : String(err) }, 'config reload failed; keeping the running configuration');
    }
  };
  process.on('SIGHUP', onReload);
  cleanups.unshift(() => {
    process.off('SIGHUP', onReload);
  });

  const onSignal = (signal: NodeJS.Signals): void => {
    log.info({ signal }, 'shutting down');
    void stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  cleanups.unshift(() => {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  });

  log.info(
    {
      vni: config.vni, port: config.port, local: config.local, datapath: datapathKind, mtu: config.mtu, mac: deviceMac,
      peers: fdb.peers(config.vni).length, socket: control.path, state: store.path,
    },
    'vxland started',
  );
  tellSystemd('READY=1', log);
  return { stop };
}

/** What the daemon needs of either data path. */
interface DataPlane {
  /** The TAP device's own MAC. */
  readonly mac: Buffer;
  start(onFatal: (err: Error) => void): void;
  /** Stops traffic and closes the TAP and the socket. Idempotent. */
  stop(): Promise<void>;
}

/** Opens the TAP and the UDP side of the chosen data path; nothing is left
 *  open when it throws. */
async function openDataPlane(
  kind: DatapathKind,
  config: Config,
  shared: { fdb: Fdb; stats: Stats; log: Logger; sources: SourceFilter },
): Promise<DataPlane> {
  const { fdb, stats, log, sources } = shared;
  if (kind === 'native') {
    const engine = NativeEngine.open({
      name: config.dev, mtu: config.mtu, addresses: [...config.addresses], vni: config.vni,
      local: config.local ?? (config.family === 'udp6' ? '::' : '0.0.0.0'), port: config.port,
    });
    const native = new NativeDatapath({ vni: config.vni, fdb, engine, stats, log, sources, allowVlan: config.allowVlan });
    return { mac: engine.mac, start: (onFatal) => native.start(onFatal), stop: () => native.stop() };
  }
  const device = TapDevice.open({ name: config.dev, mtu: config.mtu, addresses: [...config.addresses] });
  let bind: UdpBind;
  try {
    bind = await UdpBind.open({ port: config.port, address: config.local ?? undefined, family: config.family });
  } catch (err) {
    device.close();
    throw err;
  }
  const dgram = new Datapath({
    vni: config.vni, dstPort: config.port, fdb, device, bind, stats, log, sources, allowVlan: config.allowVlan,
  });
  return { mac: device.mac, start: (onFatal) => dgram.start(onFatal), stop: () => dgram.stop() };
}

/** Root only, or root and the members of --control-group. */
function controlAccess(group: string | null): { gid?: number } {
  if (group === null) return {};
  const gid = groupId(group);
  if (gid === null) throw new VxlandError('VXLAND_CONFIG_INVALID', `control-group ${group} does not exist (see /etc/group)`);
  return { gid };
}

function seedFdb(fdb: Fdb, config: Config, saved: ReturnType<StateStore['load']>, log: Logger): void {
  for (const peer of config.peers) fdb.addPeer(config.vni, peer);
  for (const entry of config.fdb) fdb.addStatic(config.vni, entry.mac, entry.vtep);
  if (saved === null) return;
  if (saved.vni !== config.vni) {
    log.warn({ savedVni: saved.vni, vni: config.vni }, 'state file belongs to another VNI; its entries are not used and will be replaced');
    return;
  }
  const family = config.family === 'udp6' ? 6 : 4;
  const reachable = (vtep: string): boolean => {
    if (ipFamily(vtep) === family) return true;
    log.warn({ vtep, family: config.family }, 'saved VTEP does not match the socket family; ignored');
    return false;
  };
  for (const peer of saved.peers) if (reachable(peer)) fdb.addPeer(config.vni, peer);
  for (const entry of saved.fdb) if (reachable(entry.vtep)) fdb.addStatic(config.vni, entry.mac, entry.vtep);
}

function tellSystemd(state: string, log: Logger): void {
  try {
    notifySystemd(state);
  } catch (err) {
    log.error({ err, state }, 'cannot notify systemd');
  }
}

/** The control-plane operations, applied to the live FDB and persisted. */
class DaemonControl implements ControlHandler {
  constructor(
    private readonly config: Config,
    private readonly deviceMac: string,
    private readonly datapathKind: DatapathKind,
    private readonly fdb: Fdb,
    private readonly counters: Stats,
    private readonly store: StateStore,
    private readonly log: Logger,
    private readonly startedMs: number,
    private readonly monitors: Set<(event: MonitorEvent) => void>,
    private readonly sources: SourceFilter,
  ) {}

  stats(): StatsResult {
    return { stats: this.counters.snapshot(), vteps: this.counters.vtepSnapshot() };
  }

  logLevel(level: string | undefined): LogLevelResult {
    const previous = this.log.level;
    if (level !== undefined && level !== previous) {
      this.log.level = level;
      this.log.warn({ level, previous }, 'log level changed');
    }
    return { level: this.log.level, previous };
  }

  monitor(emit: (event: MonitorEvent) => void): () => void {
    this.monitors.add(emit);
    return () => this.monitors.delete(emit);
  }

  doctor(): DoctorReport {
    const { dev, vni, port, local, family, mtu } = this.config;
    const peers = this.fdb.peers(vni);
    const underlay: { interface: string; mtu: number; towards: string }[] = [];
    const towards = local !== null ? [local] : peers;
    for (const address of towards) {
      const name = local !== null ? interfaceWithAddress(address) : interfaceTowards(address);
      const underlayMtu = name === null ? null : interfaceMtu(name);
      if (name !== null && underlayMtu !== null) underlay.push({ interface: name, mtu: underlayMtu, towards: address });
    }
    return diagnose({
      dev, vni, port, local, family, mtu, peers, underlay,
      uptimeMs: Date.now() - this.startedMs,
      vteps: this.counters.vtepSnapshot(),
      foreignVnis: this.counters.foreignVniSenders(),
      refusedSenders: this.counters.refusedSenders(),
      accept: this.sources.describe(),
      stats: this.counters.snapshot(),
      tcpInCsumErrors: tcpInCsumErrors(),
    });
  }

  status(): StatusResult {
    const { dev, vni, port, local, mtu } = this.config;
    return {
      dev, mac: this.deviceMac, vni, port, local, mtu,
      datapath: this.datapathKind,
      uptimeS: Math.floor((Date.now() - this.startedMs) / 1000),
      pid: process.pid,
      stats: this.counters.snapshot(),
      fdb: { size: this.fdb.size, learned: this.fdb.learnedCount, peers: this.fdb.peers(vni).length },
      accept: this.sources.describe(),
    };
  }

  peerAdd(ip: string): PeerChangeResult {
    this.requireReachable(ip);
    const changed = this.fdb.addPeer(this.config.vni, ip);
    if (changed) this.persistOrUndo(() => this.fdb.removePeer(this.config.vni, ip));
    this.log.info({ peer: ip, changed }, 'peer add');
    return { ip, changed };
  }

  peerDel(ip: string): PeerChangeResult {
    if (!this.fdb.removePeer(this.config.vni, ip)) {
      throw new VxlandError('VXLAND_NOT_FOUND', `${ip} is not a peer of ${this.config.dev} (vni ${this.config.vni})`);
    }
    this.persistOrUndo(() => this.fdb.addPeer(this.config.vni, ip));
    this.log.info({ peer: ip }, 'peer deleted');
    return { ip, changed: true };
  }

  peerList(): PeerListResult {
    return [...this.fdb.peers(this.config.vni)];
  }

  fdbShow(): FdbShowResult {
    return this.fdb.entries();
  }

  fdbAdd(mac: string, ip: string): FdbChangeResult {
    this.requireReachable(ip);
    const previous = this.staticEntry(mac);
    this.fdb.addStatic(this.config.vni, mac, ip);
    this.persistOrUndo(() => {
      if (previous) this.fdb.addStatic(this.config.vni, mac, previous.vtep);
      else this.fdb.remove(this.config.vni, mac);
    });
    this.log.info({ mac, vtep: ip }, 'static fdb entry added');
    return { mac, ip };
  }

  fdbDel(mac: string): FdbChangeResult {
    const previous = this.staticEntry(mac);
    if (!this.fdb.remove(this.config.vni, mac)) {
      throw new VxlandError('VXLAND_NOT_FOUND', `no fdb entry for ${mac} on ${this.config.dev} (vni ${this.config.vni})`);
    }
    if (previous) this.persistOrUndo(() => this.fdb.addStatic(this.config.vni, mac, previous.vtep));
    this.log.info({ mac }, 'fdb entry deleted');
    return { mac };
  }

  fdbFlush(learnedOnly: boolean): FdbFlushResult {
    const statics = this.fdb.staticEntries();
    const removed = this.fdb.flush({ learnedOnly });
    if (!learnedOnly && statics.length > 0) {
      this.persistOrUndo(() => {
        for (const entry of statics) this.fdb.addStatic(entry.vni, entry.mac, entry.vtep);
      });
    }
    this.log.info({ removed, learnedOnly }, 'fdb flushed');
    return { removed };
  }

  private staticEntry(mac: string): { vtep: string } | undefined {
    return this.fdb.staticEntries().find((e) => e.vni === this.config.vni && e.mac === mac);
  }

  /** All peers share the UDP socket, so they must be of its family. */
  private requireReachable(ip: string): void {
    const family = this.config.family === 'udp6' ? 6 : 4;
    if (ipFamily(ip) !== family) {
      throw new VxlandError(
        'VXLAND_BAD_ARGUMENT',
        `${ip} is IPv${ipFamily(ip)} but ${this.config.dev} sends VXLAN over IPv${family}`,
      );
    }
  }

  /** Saves the peers and static entries now in the FDB; throws VXLAND_STATE_IO. */
  saveState(): void {
    this.store.save({
      vni: this.config.vni,
      peers: this.fdb.peers(this.config.vni),
      fdb: this.fdb.staticEntries().filter((e) => e.vni === this.config.vni).map(({ mac, vtep }) => ({ mac, vtep })),
    });
  }

  private persistOrUndo(undo: () => void): void {
    try {
      this.saveState();
    } catch (err) {
      undo();
      this.log.error({ err }, 'cannot save state; change undone');
      throw err;
    }
  }
}
