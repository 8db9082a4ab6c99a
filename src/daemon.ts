// `vxland run`: wires a validated Config to the TAP device, the UDP socket,
// the FDB, the data path and the control socket, and owns the process's life:
// SIGTERM/SIGINT shut down cleanly (exit 0), a fatal data-path error exits 1.
//
// Peers and static FDB entries come from the config file and from the state
// file (what `vxland peer add` / `fdb add` changed at runtime; the union of
// both is used). The control requests themselves are answered by
// control/handler.ts.

import pino, { type Logger } from 'pino';
import { resolveDatapath, type Config, type DatapathKind } from './config/config.js';
import { planReload } from './config/reload.js';
import { ipFamily, parseCidr } from './config/validate.js';
import { DaemonControl } from './control/handler.js';
import type { MonitorEvent } from './control/protocol.js';
import { ControlServer } from './control/server.js';
import { MetricsServer, buildRegistry } from './control/metrics.js';
import { SourceFilter } from './datapath/accept.js';
import { Datapath } from './datapath/datapath.js';
import { followFdbEvent } from './datapath/follow-fdb.js';
import * as hostFacts from './io/host.js';
import { Stats } from './datapath/stats.js';
import { VxlandError } from './errors.js';
import { Fdb } from './fdb/fdb.js';
import { notifySystemd, watchdogIntervalMs } from './io/notify.js';
import { NativeEngine } from './io/engine.js';
import { nativeEngineSupported } from './io/engine-support.js';
import { TapDevice } from './io/tap.js';
import { NativeDatapath } from './datapath/native-datapath.js';
import { formatMacKey, macKeyAt } from './wire/mac.js';
import { UdpBind } from './io/udp.js';
import { openPacketCore } from './io/core.js';
import type { PacketClassifier } from './ports/core.js';
import { StateStore, type PersistedState } from './state/store.js';
import { chooseTapMac, stateWithMac, type TapMacChoice } from './state/tap-mac.js';
import { NeighbourAnnouncer } from './io/announce.js';
import { TapWatch } from './io/tap-watch.js';
import { enslaveToBridge } from './io/bridge.js';
import { StateLock } from './io/state-lock.js';
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
  const datapathKind = resolveDatapath(config.datapath, nativeEngineSupported);
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
  });
  fdb.subscribe((e) => {
    followFdbEvent(e, stats, sources);
    const fields = { fdb: e.type, vni: e.vni, mac: e.mac, vtep: e.vtep, previousVtep: e.previousVtep, kind: e.kind };
    if (e.type === 'moved') fdbLog.warn(`moved:${e.mac}`, fields, 'learned MAC moved to another VTEP');
    else log.debug(fields, 'fdb change');
    if (monitors.size > 0) {
      const event: MonitorEvent = { time: new Date().toISOString(), ...e };
      for (const emit of monitors) emit(event);
    }
  });
  // Before anything reads or writes the state: a second daemon on the same
  // state file must refuse here, not overwrite the first one's changes.
  const stateLock = StateLock.acquire(config.stateDir, config.dev);
  let saved: PersistedState | null;
  try {
    store.removeStaleTemps();
    saved = store.load();
  } catch (err) {
    stateLock.release();
    throw err;
  }
  seedFdb(fdb, config, saved, log);
  const tapMac = chooseTapMac(config.mac, saved);

  const cleanups: (() => Promise<void> | void)[] = [() => stateLock.release()];
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
    datapath = await openDataPlane(datapathKind, config, { fdb, stats, log, sources, mac: Buffer.from(tapMac.mac.replace(/:/g, ''), 'hex') });
    cleanups.push(() => datapath.stop());
    // Before start(): the bridge's ports reach the overlay from the first frame.
    if (config.bridge !== null) {
      enslaveToBridge(config.dev, config.bridge);
      log.info({ bridge: config.bridge }, `${config.dev} is a port of bridge ${config.bridge}`);
    }
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
  keepTapMac(store, stateWithMac(saved, config.vni, deviceMac), tapMac.source, log);
  const tapAddresses = config.addresses.map((text) => parseCidr(text)!);
  const announcer = new NeighbourAnnouncer({ dev: config.dev, mac: datapath.mac, addresses: tapAddresses, log, canFlood: () => fdb.peers(config.vni).length > 0 });
  announcer.start();
  cleanups.push(() => announcer.stop());
  const tapWatch = new TapWatch({ dev: config.dev, mtu: config.mtu, addresses: tapAddresses, log });
  tapWatch.start();
  cleanups.push(() => tapWatch.stop());
  const datapathInfo = { kind: datapathKind, mac: deviceMac, offloads: () => datapath.offloads() };
  const handler = new DaemonControl(config, datapathInfo, fdb, stats, store, log, startedMs, monitors, sources, hostFacts, () => tapWatch.condition());
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
      const staticMacs = new Set(fdb.staticEntries().map((e) => e.mac));
      for (const mac of plan.removeStatic) {
        if (staticMacs.has(mac)) fdb.remove(config.vni, mac);
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
  /** The offloads in effect now (StatusResult.offloads). */
  offloads(): string[];
}

/** Opens the TAP and the UDP side of the chosen data path; nothing is left
 *  open when it throws. */
async function openDataPlane(
  kind: DatapathKind,
  config: Config,
  shared: { fdb: Fdb; stats: Stats; log: Logger; sources: SourceFilter; mac: Buffer },
): Promise<DataPlane> {
  const { fdb, stats, log, sources, mac } = shared;
  if (kind === 'native') {
    const engine = NativeEngine.open({
      name: config.dev, mtu: config.mtu, addresses: [...config.addresses], mac, vni: config.vni,
      local: config.local ?? (config.family === 'udp6' ? '::' : '0.0.0.0'), port: config.port,
    });
    const native = new NativeDatapath({ vni: config.vni, fdb, engine, stats, log, sources, allowVlan: config.allowVlan });
    return { mac: engine.mac, start: (onFatal) => native.start(onFatal), stop: () => native.stop(), offloads: () => native.offloads() };
  }
  const device = TapDevice.open({ name: config.dev, mtu: config.mtu, addresses: [...config.addresses], mac });
  let bind: UdpBind;
  try {
    bind = await UdpBind.open({ port: config.port, address: config.local ?? undefined, family: config.family });
  } catch (err) {
    device.close();
    throw err;
  }
  let core: PacketClassifier;
  try {
    core = openPacketCore({ vni: config.vni, mtu: config.mtu, ownMac: device.mac, family: config.family === 'udp6' ? 6 : 4, dstPort: config.port });
  } catch (err) {
    device.close();
    await bind.close();
    throw err;
  }
  const dgram = new Datapath({
    vni: config.vni, dstPort: config.port, fdb, device, bind, core, stats, log, sources, allowVlan: config.allowVlan,
  });
  return { mac: device.mac, start: (onFatal) => dgram.start(onFatal), stop: () => dgram.stop(), offloads: () => [] };
}

/** Root only, or root and the members of --control-group. */
function controlAccess(group: string | null): { gid?: number } {
  if (group === null) return {};
  const gid = hostFacts.groupId(group);
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

/** Saves the TAP's MAC on first start so that it survives restarts. A state
 *  dir that cannot be written costs only that: the daemon runs on. */
function keepTapMac(store: StateStore, next: PersistedState | null, source: TapMacChoice['source'], log: Logger): void {
  if (next === null) return;
  try {
    store.save(next);
    log.info({ mac: next.mac, source, state: store.path }, 'saved the TAP MAC; it is kept across restarts');
  } catch (err) {
    log.warn({ err, mac: next.mac }, 'cannot save the TAP MAC; the next start may get another one');
  }
}

function tellSystemd(state: string, log: Logger): void {
  try {
    notifySystemd(state);
  } catch (err) {
    log.error({ err, state }, 'cannot notify systemd');
  }
}
