// `vxland run`: one daemon per host. It opens the data plane once (one UDP
// socket for every network), then serves each network of the config (and
// those added at run time with `vxland network add`, saved in the state
// dir): its Fdb, SourceFilter, Stats, state file, TAP MAC, TAP, announcer
// and TAP watcher. It owns the process's life: SIGTERM/SIGINT shut down
// cleanly (exit 0), a fatal data-path error exits 1, SIGHUP (and the control
// op `reload`, which answers what changed) re-reads the config file and
// applies the difference (config/reload.ts). It tells systemd READY=1,
// WATCHDOG=1, STOPPING=1 and a STATUS= line kept up to date.
//
// A network's peers and static FDB entries come from the config and from its
// state file (what `vxland peer add` / `fdb add` changed at run time; the
// union of both is used). The control requests themselves are answered by
// control/handler.ts.

import type { Logger } from 'pino';
import { checkEnvelopeFor, describeEnvelope, effectiveSuppress, networkLabel, resolveDatapath, type HostConfig, type NetworkConfig } from './config/config.js';
import { appliedConfig, planReload, type NetworkReloadPlan } from './config/reload.js';
import { ipFamily, parseCidr } from './config/validate.js';
import { DaemonControl, saveNetworkState, type NetworkLifecycle } from './control/handler.js';
import { Networks, type ServedNetwork } from './control/networks.js';
import type { MonitorEvent, ReloadResult } from './control/protocol.js';
import { ControlServer } from './control/server.js';
import { MetricsServer, buildRegistry } from './control/metrics.js';
import { SourceFilter } from './datapath/accept.js';
import { followFdbEvent } from './datapath/follow-fdb.js';
import type { DataPlane, NetworkPlane } from './datapath/plane.js';
import { Stats, VtepBudget } from './datapath/stats.js';
import { VxlandError } from './errors.js';
import { Fdb } from './fdb/fdb.js';
import { Neighbours } from './fdb/neighbours.js';
import * as hostFacts from './io/host.js';
import { notifySystemd, StatusNotifier, watchdogIntervalMs } from './io/notify.js';
import { nativeEngineSupported } from './io/engine-support.js';
import { NeighbourAnnouncer } from './io/announce.js';
import { TapWatch } from './io/tap-watch.js';
import { enslaveToBridge } from './io/bridge.js';
import { StateLock } from './io/state-lock.js';
import { openEtcdStore } from './io/etcd.js';
import { neighbourBindings } from './membership/bindings.js';
import { Membership, type MemberNetwork } from './membership/membership.js';
import { openDataPlane } from './open-plane.js';
import { NetworksStore } from './state/networks-store.js';
import { StateStore, type PersistedState } from './state/store.js';
import { chooseTapMac, stateWithMac, type TapMacChoice } from './state/tap-mac.js';
import { createLogger } from './util/log.js';
import type { LogFormat } from './util/log-format.js';
import { RateLimitedLog } from './util/rate-limit.js';
import { packageVersion } from './util/version.js';
import { formatMacKey, macKeyAt } from './wire/mac.js';

/** How often learned entries are checked for ageing. */
export const FDB_SWEEP_INTERVAL_MS = 1_000;
/** How long startup waits for the first etcd listing before it runs on and
 *  keeps retrying in the background. */
export const ETCD_STARTUP_WAIT_MS = 3_000;
/** The daemon's lock in the state dir: one daemon per state dir. */
export const DAEMON_LOCK_NAME = 'vxland';
/** Linux's default ip_local_port_range: the source ports when the namespace's cannot be read. */
export const FALLBACK_SRC_PORTS = { min: 32768, max: 60999 };

/** How the daemon runs, besides its config. */
export interface DaemonOptions {
  /** --log-format; default pretty on a TTY, json otherwise (util/log.ts). */
  logFormat?: LogFormat;
}

export interface RunningDaemon {
  /** Shuts down as on SIGTERM, but resolves instead of exiting. Idempotent. */
  stop(): Promise<void>;
}

/** Starts the daemon. Resolves once the UDP socket, every network's TAP and
 *  the control socket are up and systemd has been told READY=1. Rejects
 *  with a VxlandError (leaving nothing open) when startup fails. After that
 *  the process exits by itself: 0 on SIGTERM/SIGINT, 1 on a fatal data-path
 *  error. */
export async function runDaemon(config: HostConfig, reloadConfig?: () => HostConfig, options: DaemonOptions = {}): Promise<RunningDaemon> {
  const datapathKind = resolveDatapath(config.datapath, nativeEngineSupported);
  checkEnvelopeFor(config, datapathKind);
  const log = createLogger({ level: config.logLevel, format: options.logFormat });
  const startedMs = Date.now();

  const cleanups: Cleanup[] = [];
  const runCleanups = (): Promise<void> => runInReverse(cleanups, log, 'error during shutdown');
  const startOrUndo = async <T>(step: () => Promise<T> | T): Promise<T> => {
    try {
      return await step();
    } catch (err) {
      await runCleanups();
      throw err;
    }
  };

  // Before anything reads or writes the state: a second daemon on the same
  // state dir must refuse here, not overwrite the first one's changes.
  const stateLock = StateLock.acquire(config.stateDir, DAEMON_LOCK_NAME);
  cleanups.push(() => stateLock.release());
  const networksStore = new NetworksStore({ stateDir: config.stateDir, family: config.family, log });
  const runtime: NetworkConfig[] = await startOrUndo(() => {
    networksStore.removeStaleTemps();
    return [...(networksStore.load() ?? [])];
  });

  // One budget of per-VTEP series for all networks: bounded in total, not
  // per network. The host's per-VTEP counters (send errors) have their own:
  // they mirror the networks' VTEPs and are exported as no series of their own.
  const vtepBudget = new VtepBudget();
  const newStats = (): Stats => new Stats(vtepBudget);
  const hostStats = new Stats(new VtepBudget());
  // The kernel vxlan's default too: the namespace's ephemeral range.
  const srcPorts = config.srcport ?? hostFacts.localPortRange() ?? FALLBACK_SRC_PORTS;
  const plane: DataPlane = await startOrUndo(() =>
    openDataPlane({
      kind: datapathKind, local: config.local, family: config.family, port: config.port, srcPorts, hostStats, log,
      envelope: { ttl: config.ttl, tos: config.tos, df: config.df },
    }));
  cleanups.push(() => plane.stop());

  const networks = new Networks();
  // What `systemctl status` shows, from the first network on, as it changes.
  const statusLine = new StatusNotifier({ describe: () => describeStatus(networks.all(), datapathKind), send: (state) => tellSystemd(state, log) });
  // Runs after every network has closed (cleanups run last first): no line is left pending.
  cleanups.push(() => statusLine.stop());

  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      statusLine.stop();
      tellSystemd('STOPPING=1', log);
      await runCleanups();
    })();
    return stopping;
  };
  const failFatally = (err: Error): void => {
    log.fatal({ err }, 'data path failed; exiting');
    void stop().finally(() => process.exit(1));
  };

  // One neighbour table for the host, keyed by VNI: static entries (config,
  // state file, `vxland neigh add`) and the etcd bindings of remote VTEPs.
  const neighbours = new Neighbours();
  const hasEtcd = config.etcd !== null;
  const tapWatcher = new TapWatch();
  const closers = new Map<number, () => Promise<void>>();
  const fdbLog = new RateLimitedLog(log);
  // Set once the initial networks are up; networks opened later join it as they open.
  let membership: Membership | null = null;
  const memberNetwork = (n: NetworkConfig, fdb: Fdb, mac: string): MemberNetwork => ({
    vni: n.vni,
    fdb,
    self: () => ({
      vtep: config.local!,
      port: config.port,
      mac,
      bindings: n.addresses.map((text) => ({ ip: parseCidr(text)!.address, mac })),
    }),
  });

  /** Serves one network; on failure nothing of it stays open. */
  const openNetwork = async (n: NetworkConfig, origin: ServedNetwork['origin']): Promise<ServedNetwork> => {
    const nlog = log.child({ vni: n.vni, dev: n.dev });
    const store = new StateStore({ stateDir: config.stateDir, dev: n.dev, log: nlog });
    store.removeStaleTemps();
    const saved = store.load();
    const stats = newStats();
    const sources = new SourceFilter(n.accept);
    const monitors = new Set<(event: MonitorEvent) => void>();
    const fdb = new Fdb({ ageingMs: n.ageingS * 1000, maxLearned: n.maxFdb, maxLearnedPerVtep: n.maxFdbPerVtep, learnRatePerS: n.learnRatePerS });
    fdb.subscribe((e) => {
      followFdbEvent(e, stats, sources);
      statusLine.changed();
      // Send errors are the host's (a VTEP may serve several networks); they
      // are counted against the VTEP when some network names it.
      if (e.type !== 'aged' && e.type !== 'deleted') hostStats.track(e.vtep);
      const fields = { fdb: e.type, vni: e.vni, mac: e.mac, vtep: e.vtep, previousVtep: e.previousVtep, kind: e.kind };
      if (e.type === 'moved') fdbLog.warn(`moved:${e.vni}:${e.mac}`, fields, 'learned MAC moved to another VTEP');
      else log.debug(fields, 'fdb change');
      if (monitors.size > 0) {
        const event: MonitorEvent = { time: new Date().toISOString(), ...e };
        for (const emit of monitors) emit(event);
      }
    });
    seedFdb(fdb, n, config.family, saved, nlog);
    seedNeighbours(neighbours, n, saved, hasEtcd);
    const tapMac = chooseTapMac(n.mac, saved);
    const tapAddresses = n.addresses.map((text) => parseCidr(text)!);
    const tapWatch = tapWatcher.watch({ dev: n.dev, mtu: n.mtu, addresses: tapAddresses, log: nlog });
    let announcer: NeighbourAnnouncer | null = null;
    let opened: NetworkPlane;
    try {
      opened = await plane.addNetwork({
        vni: n.vni, dev: n.dev, mtu: n.mtu, addresses: n.addresses, mac: Buffer.from(tapMac.mac.replace(/:/g, ''), 'hex'),
        fdb, sources, stats, allowVlan: n.allowVlan, neighbours,
        // One network's TAP gone (ip link del) stops that network alone; it
        // stays listed, and doctor says so, until network del or a restart.
        onFailed: (err) => {
          nlog.error({ err }, `${n.dev} failed; network ${networkLabel(n)} is no longer carried, the others are`);
          announcer?.stop();
          tapWatch.failed(err.message);
          statusLine.changed();
          // A daemon whose every network failed carries nothing: exit so
          // that systemd restarts it and the TAPs are made again.
          if (networks.all().every((s) => s.tapCondition().failed !== null)) failFatally(err);
        },
      });
    } catch (err) {
      tapWatch.stop();
      neighbours.removeVni(n.vni);
      throw err;
    }
    const undo: Cleanup[] = [() => neighbours.removeVni(n.vni), () => tapWatch.stop(), () => plane.removeNetwork(n.vni)];
    const close = (): Promise<void> => runInReverse(undo, nlog, 'error while closing the network');
    try {
      // Right after the TAP is up: the bridge's ports reach the overlay from the first frame.
      if (n.bridge !== null) {
        enslaveToBridge(n.dev, n.bridge);
        nlog.info({ bridge: n.bridge }, `${n.dev} is a port of bridge ${n.bridge}`);
      }
      const deviceMac = formatMacKey(macKeyAt(opened.mac, 0));
      keepTapMac(store, stateWithMac(saved, n.vni, deviceMac), tapMac.source, nlog);
      const announcing = new NeighbourAnnouncer({ dev: n.dev, mac: opened.mac, addresses: tapAddresses, log: nlog, canFlood: () => fdb.peers(n.vni).length > 0 });
      announcer = announcing;
      announcing.start();
      undo.push(() => announcing.stop());
      const served: ServedNetwork = {
        config: n, origin, mac: deviceMac, fdb, neighbours, stats, sources, store, monitors, tapCondition: () => tapWatch.condition(),
      };
      networks.add(served);
      statusLine.changed();
      undo.push(() => {
        networks.delete(n.vni);
        statusLine.changed();
      });
      if (membership !== null) {
        const m = membership;
        m.addNetwork(memberNetwork(n, fdb, deviceMac));
        undo.push(() => m.removeNetwork(n.vni));
      }
      closers.set(n.vni, close);
      nlog.info({ mac: deviceMac, mtu: n.mtu, peers: fdb.peers(n.vni).length, state: store.path, origin }, 'network up');
      return served;
    } catch (err) {
      await close();
      throw err;
    }
  };
  const closeNetwork = async (vni: number): Promise<void> => {
    const close = closers.get(vni);
    closers.delete(vni);
    await close?.();
  };
  cleanups.push(async () => {
    for (const vni of [...closers.keys()].reverse()) await closeNetwork(vni);
  });

  await startOrUndo(async () => {
    for (const n of config.networks) await openNetwork(n, 'config');
    for (const n of runtime) {
      const clash = networks.clash(n);
      if (clash !== undefined) {
        log.warn({ vni: n.vni, dev: n.dev, clashesWith: networkLabel(clash.config) }, 'a network added at run time is now in the config file too; the config file\'s is used');
        continue;
      }
      await openNetwork(n, 'runtime');
    }
  });


  plane.start(failFatally);

  if (config.etcd !== null) {
    const etcd = config.etcd;
    const store = await startOrUndo(() => openEtcdStore({
      endpoints: etcd.endpoints,
      ...(etcd.tls === null ? {} : { tls: { ca: etcd.tls.ca, ...(etcd.tls.cert === null ? {} : { cert: etcd.tls.cert }), ...(etcd.tls.key === null ? {} : { key: etcd.tls.key }) } }),
    }));
    const m = new Membership({ store, endpoints: etcd.endpoints, prefix: etcd.prefix, leaseTtlS: etcd.leaseTtlS, localVtep: config.local!, log: log.child({ etcd: etcd.endpoints.join(',') }), bindings: neighbourBindings(neighbours) });
    for (const n of networks.all()) {
      m.addNetwork(memberNetwork(n.config, n.fdb, n.mac));
      const vni = n.config.vni;
      const close = closers.get(vni);
      if (close !== undefined) {
        closers.set(vni, async () => {
          m.removeNetwork(vni);
          await close();
        });
      }
    }
    membership = m;
    // Before the networks close (cleanups run last first): the lease is
    // revoked and our keys vanish from every other host at once.
    cleanups.push(async () => {
      await m.stop();
      await store.close();
    });
    m.start();
    if (!(await m.synced(ETCD_STARTUP_WAIT_MS))) {
      log.warn({ endpoints: etcd.endpoints, waitedMs: ETCD_STARTUP_WAIT_MS }, 'etcd not reached at startup; running with configured peers only and retrying');
    }
  }

  const saveRuntime = (next: NetworkConfig[]): void => {
    networksStore.save(next);
    runtime.splice(0, runtime.length, ...next);
  };
  const lifecycle: NetworkLifecycle = {
    async add(n) {
      const hadState = new StateStore({ stateDir: config.stateDir, dev: n.dev }).load() !== null;
      const served = await openNetwork(n, 'runtime');
      try {
        saveRuntime([...runtime, n]);
      } catch (err) {
        await closeNetwork(n.vni);
        if (!hadState) served.store.discard();
        throw err;
      }
      return served;
    },
    async remove(served) {
      saveRuntime(runtime.filter((r) => r.vni !== served.config.vni));
      await closeNetwork(served.config.vni);
      try {
        served.store.discard();
      } catch (err) {
        log.warn({ err, vni: served.config.vni }, 'cannot remove the state file of a deleted network');
      }
    },
  };

  // What the config file said at the last (re)load; networks added at run
  // time are not the file's and never in it.
  let current = config;
  /** Throws (and logs) when the file cannot be read or is invalid: then nothing changes. */
  const reload = async (): Promise<ReloadResult> => {
    if (reloadConfig === undefined) {
      log.warn('reload ignored: no config to reload');
      throw new VxlandError('VXLAND_CONFIG_FILE', 'this daemon has no config to reload');
    }
    let next: HostConfig;
    try {
      next = reloadConfig();
    } catch (err) {
      log.error({ err: err instanceof Error ? err.message : String(err) }, 'config reload failed; keeping the running configuration');
      throw err;
    }
    const plan = planReload(current, next);
    if (plan.logLevel !== null) log.level = plan.logLevel;
    const failed: ReloadResult['failed'] = [];
    const removed = plan.removeNetworks.filter((vni) => networks.get(vni)?.origin === 'config');
    for (const vni of removed) await closeNetwork(vni);
    for (const p of plan.networks) {
      const served = networks.get(p.vni);
      if (served === undefined) continue;
      try {
        applyNetworkPlan(served, p, hasEtcd);
      } catch (err) {
        failed.push({ vni: p.vni, error: err instanceof Error ? err.message : String(err) });
      }
    }
    const added: NetworkConfig[] = [];
    for (const n of plan.addNetworks) {
      try {
        await openNetwork(n, 'config');
        added.push(n);
      } catch (err) {
        failed.push({ vni: n.vni, error: err instanceof Error ? err.message : String(err) });
      }
    }
    const applied = appliedConfig(current, next, plan);
    // A network that could not be opened is not running: the next reload tries it again.
    current = { ...applied, networks: applied.networks.filter((n) => networks.get(n.vni)?.origin === 'config') };
    for (const n of current.networks) networks.get(n.vni)!.config = n;
    statusLine.changed();
    log.info(
      {
        addNetworks: added.map((n) => n.vni), removeNetworks: removed, logLevel: plan.logLevel,
        networks: plan.networks.map((p) => ({
          vni: p.vni, addPeers: p.addPeers, removePeers: p.removePeers, addStatic: p.addStatic.map((e) => e.mac), removeStatic: p.removeStatic,
          accept: p.accept === null ? null : networks.get(p.vni)?.sources.describe() ?? null,
          addNeigh: p.addNeigh.map((e) => e.ip), removeNeigh: p.removeNeigh,
          ...(p.suppress === undefined ? {} : { suppress: neighbours.suppresses(p.vni) }),
        })),
      },
      'config reloaded',
    );
    if (failed.length > 0) log.error({ failed }, 'config reload: some networks could not be changed; they keep running as they were');
    if (plan.needRestart.length > 0) log.warn({ keys: plan.needRestart }, 'these settings changed but apply only after a restart');
    const failedVnis = new Set(failed.map((f) => f.vni));
    return {
      addedNetworks: added.map((n) => n.vni), removedNetworks: removed,
      changedNetworks: plan.networks.map((p) => p.vni).filter((vni) => !failedVnis.has(vni)),
      logLevel: plan.logLevel, needRestart: plan.needRestart, failed,
    };
  };
  // One reload at a time, SIGHUP's and `vxland reload`'s in the order asked.
  let reloading: Promise<unknown> = Promise.resolve();
  const reloadInTurn = (): Promise<ReloadResult> => {
    const result = reloading.then(reload);
    reloading = result.catch(() => undefined);
    return result;
  };
  const onReload = (): void => {
    reloadInTurn().catch((err: unknown) => {
      // A rejected file was logged by reload itself.
      if (!(err instanceof VxlandError)) log.error({ err }, 'config reload failed');
    });
  };

  const handler = new DaemonControl({
    host: { port: config.port, local: config.local, family: config.family, srcPorts },
    datapath: { kind: datapathKind, offloads: () => plane.offloads(), srcPorts: plane.srcPorts, envelope: describeEnvelope(config, datapathKind) },
    networks, lifecycle, hostStats, hostFacts, log, startedMs, membership, reload: reloadInTurn,
    hostConfig: () => current,
  });
  const control = await startOrUndo(() => ControlServer.listen(config.socket, handler, log, controlAccess(config.controlGroup)));
  cleanups.push(() => control.close());

  if (config.metrics !== null) {
    const { host, port } = config.metrics;
    const registry = buildRegistry({
      version: packageVersion(), datapath: datapathKind, offloads: () => plane.offloads(), hostStats,
      networks: () => networks.all().map((n) => ({ vni: n.config.vni, dev: n.config.dev, stats: n.stats, fdb: n.fdb })),
      membership,
    });
    const metrics = await startOrUndo(() => MetricsServer.listen(host, port, registry));
    cleanups.push(() => metrics.close());
    log.info({ metrics: metrics.address }, 'serving Prometheus metrics on /metrics');
  }

  const sweep = setInterval(() => {
    for (const n of networks.all()) n.fdb.sweep();
  }, FDB_SWEEP_INTERVAL_MS);
  sweep.unref();
  cleanups.push(() => clearInterval(sweep));
  const watchdogMs = watchdogIntervalMs();
  if (watchdogMs !== null) {
    const watchdog = setInterval(() => tellSystemd('WATCHDOG=1', log), watchdogMs);
    watchdog.unref();
    cleanups.push(() => clearInterval(watchdog));
  }

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
      port: config.port, srcport: `${srcPorts.min}-${srcPorts.max}`, local: config.local, datapath: datapathKind, socket: control.path,
      networks: networks.all().map((n) => ({ vni: n.config.vni, dev: n.config.dev, origin: n.origin })),
    },
    'vxland started',
  );
  tellSystemd('READY=1', log);
  statusLine.flush();
  return { stop };
}

type Cleanup = () => Promise<void> | void;

/** Runs and empties steps, last first; a step that throws is logged and the rest still run. */
async function runInReverse(steps: Cleanup[], log: Logger, message: string): Promise<void> {
  for (const step of steps.splice(0).reverse()) {
    try {
      await step();
    } catch (err) {
      log.warn({ err }, message);
    }
  }
}

/** A reload's changes to one running network, saved to its state file. */
function applyNetworkPlan(n: ServedNetwork, p: NetworkReloadPlan, hasEtcd: boolean): void {
  const { fdb } = n;
  for (const ip of p.removePeers) fdb.removePeer(p.vni, ip);
  for (const ip of p.addPeers) fdb.addPeer(p.vni, ip);
  const staticMacs = new Set(fdb.staticEntries().map((e) => e.mac));
  for (const mac of p.removeStatic) {
    if (staticMacs.has(mac)) fdb.remove(p.vni, mac);
  }
  for (const entry of p.addStatic) fdb.addStatic(p.vni, entry.mac, entry.vtep);
  if (p.accept !== null) n.sources.setPolicy(p.accept);
  const { neighbours } = n;
  for (const ip of p.removeNeigh) neighbours.removeStatic(p.vni, ip);
  for (const e of p.addNeigh) neighbours.addStatic(p.vni, e.ip, e.mac);
  if (p.suppress !== undefined) neighbours.setSuppress(p.vni, effectiveSuppress({ suppress: p.suppress }, hasEtcd));
  saveNetworkState(n);
}

/** Static neighbours of the config and the state file (the union), and the
 *  network's suppression setting. */
function seedNeighbours(neighbours: Neighbours, n: NetworkConfig, saved: PersistedState | null, hasEtcd: boolean): void {
  for (const e of n.neigh) neighbours.addStatic(n.vni, e.ip, e.mac);
  if (saved !== null && saved.vni === n.vni) for (const e of saved.neigh ?? []) neighbours.addStatic(n.vni, e.ip, e.mac);
  neighbours.setSuppress(n.vni, effectiveSuppress(n, hasEtcd));
}

/** Root only, or root and the members of --control-group. */
function controlAccess(group: string | null): { gid?: number; group?: string } {
  if (group === null) return {};
  const gid = hostFacts.groupId(group);
  if (gid === null) throw new VxlandError('VXLAND_CONFIG_INVALID', `control-group ${group} does not exist (see /etc/group)`);
  return { gid, group };
}

function seedFdb(fdb: Fdb, n: NetworkConfig, family: HostConfig['family'], saved: PersistedState | null, log: Logger): void {
  for (const peer of n.peers) fdb.addPeer(n.vni, peer);
  for (const entry of n.fdb) fdb.addStatic(n.vni, entry.mac, entry.vtep);
  if (saved === null) return;
  if (saved.vni !== n.vni) {
    log.warn({ savedVni: saved.vni, vni: n.vni }, 'state file belongs to another VNI; its entries are not used and will be replaced');
    return;
  }
  const want = family === 'udp6' ? 6 : 4;
  const reachable = (vtep: string): boolean => {
    if (ipFamily(vtep) === want) return true;
    log.warn({ vtep, family }, 'saved VTEP does not match the socket family; ignored');
    return false;
  };
  for (const peer of saved.peers) if (reachable(peer)) fdb.addPeer(n.vni, peer);
  for (const entry of saved.fdb) if (reachable(entry.vtep)) fdb.addStatic(n.vni, entry.mac, entry.vtep);
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

/** The STATUS= text: "2 networks, 3 peers, 120 learned MACs, native data path". */
export function describeStatus(served: readonly ServedNetwork[], datapath: string): string {
  const peers = served.reduce((sum, n) => sum + n.fdb.peers(n.config.vni).length, 0);
  const learned = served.reduce((sum, n) => sum + n.fdb.learnedCount, 0);
  const failed = served.filter((n) => n.tapCondition().failed !== null).length;
  return [
    count(served.length, 'network', 'networks'), count(peers, 'peer', 'peers'), count(learned, 'learned MAC', 'learned MACs'),
    ...(failed === 0 ? [] : [`${failed} failed`]), `${datapath} data path`,
  ].join(', ');
}

function count(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

function tellSystemd(state: string, log: Logger): void {
  try {
    notifySystemd(state);
  } catch (err) {
    log.error({ err, state }, 'cannot notify systemd');
  }
}
