// The daemon's answers to control requests. A per-network request selects
// its network first (control/networks.ts); each change is applied to that
// network's live FDB at once and saved atomically to its state file before
// it is acknowledged; if saving fails the change is undone and the client
// gets the error. Adding and removing networks is the daemon's (it opens and
// closes the TAP); the handler validates the request and asks it.

import type { MembershipView } from '../ports/membership.js';
import type { Logger } from 'pino';
import { checkNeighbour, describeAccept, hostToFile, networkFromFlags, networkLabel, networkToFile, type DatapathKind, type HostConfig, type LogLevel, type NetworkConfig, type NetworkFlags } from '../config/config.js';
import { ipFamily } from '../config/validate.js';
import { diagnose, type DoctorReport, type NetworkObservations } from '../doctor.js';
import { VxlandError } from '../errors.js';
import { FLOOD_MAC } from '../fdb/fdb.js';
import type { ForeignVniSender, StatsReader, StatsSnapshot } from '../ports/counters.js';
import { exists, type Networks, type ServedNetwork } from './networks.js';
import {
  matchesFdbFilter,
  type ConfigShowResult,
  type ControlHandler,
  type FdbChangeResult,
  type FdbFilter,
  type FdbGetResult,
  type FdbFlushResult,
  type FdbShowResult,
  type LogLevelResult,
  type MonitorEvent,
  type NeighChangeResult,
  type NeighShowResult,
  type NetworkChangeResult,
  type NetworkListResult,
  type NetworkSelector,
  type NetworkShowResult,
  type NetworkStatus,
  type PeerChangeResult,
  type PeerListResult,
  type ReloadResult,
  type StatsResult,
  type StatusResult,
} from './protocol.js';

export type { AcceptDescription, ServedNetwork } from './networks.js';

/** What status shows of the running data path. */
export interface DatapathInfo {
  kind: DatapathKind;
  /** The offloads in effect now (they can drop out at run time). */
  offloads(): string[];
  /** The outer source ports sends leave from. */
  srcPorts: readonly number[];
  /** The outer header it writes (config/config.ts describeEnvelope). */
  envelope: string;
}

/** The host's settings every network shares. */
export interface HostInfo {
  port: number;
  local: string | null;
  family: 'udp4' | 'udp6';
  /** The outer source port range (RFC 7348 §5), as configured or defaulted. */
  srcPorts: { min: number; max: number };
}

/** What doctor asks the host about the underlay (src/io/host.ts answers);
 *  each answers null when the host cannot tell. Passed in by the daemon so
 *  that control/ never loads the io layer. */
export interface HostFacts {
  interfaceWithAddress(address: string): string | null;
  interfaceTowards(destination: string): string | null;
  interfaceMtu(name: string): number | null;
  tcpInCsumErrors(): number | null;
}

/** The daemon's side of `network add` / `network del`. */
export interface NetworkLifecycle {
  /** Opens and serves the network, persisted as added at run time. Throws a
   *  VxlandError and leaves nothing behind (no TAP, no entry) on failure. */
  add(config: NetworkConfig): Promise<ServedNetwork>;
  /** Stops serving a network added at run time and forgets it. */
  remove(network: ServedNetwork): Promise<void>;
}

export interface DaemonControlOptions {
  host: HostInfo;
  datapath: DatapathInfo;
  networks: Networks;
  lifecycle: NetworkLifecycle;
  /** Host-level drops and foreign-VNI senders (the data plane's hostStats). */
  hostStats: StatsReader;
  hostFacts: HostFacts;
  log: Logger;
  startedMs: number;
  /** The etcd membership, when configured. */
  membership?: MembershipView | null;
  /** The daemon's config reload (the one SIGHUP runs, taking its turn with it). */
  reload?: () => Promise<ReloadResult>;
  /** The host's configuration as last (re)loaded; its networks are not
   *  used (the served networks are). */
  hostConfig: () => HostConfig;
}

/** The control-plane operations, applied to the live FDBs and persisted. */
export class DaemonControl implements ControlHandler {
  constructor(private readonly o: DaemonControlOptions) {}

  stats(selector: NetworkSelector): StatsResult {
    const n = this.o.networks.select(selector);
    const vteps = n.stats.vtepSnapshot();
    return {
      stats: this.oneNetworkView(n.stats.snapshot()),
      vteps: this.o.networks.size === 1 ? addVteps(vteps, this.o.hostStats.vtepSnapshot()) : vteps,
    };
  }

  /** A daemon with one network shows its counters as a single-network
   *  daemon did: with the host's drops (truncated, no I flag, wrong VNI,
   *  send errors). */
  private oneNetworkView(network: StatsSnapshot): StatsSnapshot {
    return this.o.networks.size === 1 ? withHostDrops(network, this.o.hostStats.snapshot()) : network;
  }

  logLevel(level: string | undefined): LogLevelResult {
    const { log } = this.o;
    const previous = log.level;
    if (level !== undefined && level !== previous) {
      log.level = level;
      log.warn({ level, previous }, 'log level changed');
    }
    return { level: log.level, previous };
  }

  async reload(): Promise<ReloadResult> {
    if (this.o.reload === undefined) throw new VxlandError('VXLAND_CONFIG_FILE', 'this daemon has no config to reload');
    return this.o.reload();
  }

  monitor(selector: NetworkSelector, emit: (event: MonitorEvent) => void): () => void {
    const { monitors } = this.o.networks.select(selector);
    monitors.add(emit);
    return () => monitors.delete(emit);
  }

  doctor(selector: NetworkSelector): DoctorReport {
    const all = this.o.networks.all();
    const chosen = selector.vni === undefined && selector.dev === undefined ? all : [this.o.networks.select(selector)];
    // The host's stats hold the foreign-VNI senders; a data plane that
    // counts them per network has them there: both are read.
    const foreign = mergeForeign([this.o.hostStats, ...all.map((n) => n.stats)].flatMap((s) => s.foreignVniSenders()));
    return diagnose(
      {
        port: this.o.host.port,
        srcPorts: { ...this.o.host.srcPorts, bound: this.o.datapath.srcPorts.length },
        served: all.map((n) => ({ vni: n.config.vni, dev: n.config.dev })),
        foreignVnis: foreign,
        stats: this.o.hostStats.snapshot(),
        tcpInCsumErrors: this.o.hostFacts.tcpInCsumErrors(),
        etcd: this.o.membership?.status() ?? null,
      },
      chosen.map((n) => this.observe(n)),
    );
  }

  private observe(n: ServedNetwork): NetworkObservations {
    const { port, local, family } = this.o.host;
    const facts = this.o.hostFacts;
    const peers = n.fdb.peers(n.config.vni);
    const underlay: { interface: string; mtu: number; towards: string }[] = [];
    for (const address of local !== null ? [local] : peers) {
      const name = local !== null ? facts.interfaceWithAddress(address) : facts.interfaceTowards(address);
      const underlayMtu = name === null ? null : facts.interfaceMtu(name);
      if (name !== null && underlayMtu !== null) underlay.push({ interface: name, mtu: underlayMtu, towards: address });
    }
    return {
      dev: n.config.dev, vni: n.config.vni, port, local, family, mtu: n.config.mtu, peers, underlay,
      uptimeMs: Date.now() - this.o.startedMs,
      vteps: n.stats.vtepSnapshot(),
      refusedSenders: n.stats.refusedSenders(),
      accept: n.sources.describe(),
      stats: n.stats.snapshot(),
      tap: n.tapCondition(),
    };
  }

  status(selector: NetworkSelector): StatusResult {
    const { host, datapath, networks, hostStats, startedMs } = this.o;
    const chosen = selector.vni === undefined && selector.dev === undefined ? networks.all() : [networks.select(selector)];
    const blocks = chosen.map((n) => this.networkStatus(n));
    const hostSnapshot = hostStats.snapshot();
    const result: StatusResult = {
      pid: process.pid,
      uptimeS: Math.floor((Date.now() - startedMs) / 1000),
      datapath: datapath.kind,
      offloads: datapath.offloads(),
      envelope: datapath.envelope,
      port: host.port,
      srcport: { ...host.srcPorts, ports: [...datapath.srcPorts] },
      local: host.local,
      host: { drops: hostSnapshot.drops, dropsTotal: hostSnapshot.dropsTotal },
      etcd: this.o.membership?.status() ?? null,
      networks: blocks,
    };
    if (blocks.length !== 1) return result;
    return { ...blocks[0], ...result, stats: this.oneNetworkView(blocks[0].stats) };
  }

  private networkStatus(n: ServedNetwork): NetworkStatus {
    const { vni, dev, mtu, addresses, bridge } = n.config;
    return {
      vni, dev, mac: n.mac, mtu, addresses: [...addresses], bridge, origin: n.origin,
      stats: n.stats.snapshot(),
      fdb: { size: n.fdb.size, learned: n.fdb.learnedCount, peers: n.fdb.peers(vni).length },
      accept: n.sources.describe(),
      suppress: { on: n.neighbours.suppresses(vni), neighbours: n.neighbours.entries(vni).length },
    };
  }

  neighShow(selector: NetworkSelector): NeighShowResult {
    const { networks } = this.o;
    const chosen = selector.vni === undefined && selector.dev === undefined ? networks.all() : [networks.select(selector)];
    return {
      networks: chosen.map((n) => ({ vni: n.config.vni, dev: n.config.dev, suppress: n.neighbours.suppresses(n.config.vni) })),
      entries: chosen.flatMap((n) => n.neighbours.entries(n.config.vni).map((e) => ({ ...e, dev: n.config.dev }))),
    };
  }

  neighAdd(selector: NetworkSelector, ip: string, mac: string): NeighChangeResult {
    const n = this.o.networks.select(selector);
    const { vni } = n.config;
    const checked = checkNeighbour(ip, mac);
    if ('problem' in checked) throw new VxlandError('VXLAND_BAD_ARGUMENT', checked.problem);
    const previous = n.neighbours.staticEntries(vni).find((e) => e.ip === checked.ip);
    n.neighbours.addStatic(vni, checked.ip, checked.mac);
    this.persistOrUndo(n, () => {
      if (previous) n.neighbours.addStatic(vni, previous.ip, previous.mac);
      else n.neighbours.removeStatic(vni, checked.ip);
    });
    this.o.log.info({ vni, ip: checked.ip, mac: checked.mac }, 'static neighbour added');
    return { vni, ...checked };
  }

  neighDel(selector: NetworkSelector, ip: string): NeighChangeResult {
    const n = this.o.networks.select(selector);
    const { vni, dev } = n.config;
    const previous = n.neighbours.staticEntries(vni).find((e) => e.ip === ip);
    if (previous === undefined) {
      const etcd = n.neighbours.lookup(vni, ip);
      const why = etcd === undefined ? '' : `; ${ip} is an etcd binding of VTEP ${etcd.vtep}, which goes when that host drops it`;
      throw new VxlandError('VXLAND_NOT_FOUND', `no static neighbour ${ip} on ${dev} (vni ${vni})${why}`);
    }
    n.neighbours.removeStatic(vni, ip);
    this.persistOrUndo(n, () => n.neighbours.addStatic(vni, previous.ip, previous.mac));
    this.o.log.info({ vni, ip }, 'static neighbour deleted');
    return { vni, ip };
  }

  networkList(): NetworkListResult {
    return this.o.networks.all().map((n) => ({
      vni: n.config.vni, dev: n.config.dev, mac: n.mac, mtu: n.config.mtu, peers: n.fdb.peers(n.config.vni).length,
      bridge: n.config.bridge, origin: n.origin,
    }));
  }

  networkShow(selector: NetworkSelector): NetworkShowResult {
    const n = this.o.networks.select(selector);
    return { ...this.networkStatus(n), settings: networkToFile(runningNetwork(n)) };
  }

  configShow(): ConfigShowResult {
    const running = { ...this.o.hostConfig(), logLevel: this.o.log.level as LogLevel, networks: this.o.networks.all().map(runningNetwork) };
    return hostToFile(running);
  }

  async networkAdd(flags: Record<string, unknown>): Promise<NetworkChangeResult> {
    const config = networkFromFlags(flags as NetworkFlags, this.o.host.family, this.o.host.local);
    const clash = this.o.networks.clash(config);
    if (clash !== undefined) throw exists(config, clash.config);
    const n = await this.o.lifecycle.add(config);
    this.o.log.info({ vni: config.vni, dev: config.dev }, 'network added');
    return { vni: n.config.vni, dev: n.config.dev };
  }

  async networkDel(selector: NetworkSelector): Promise<NetworkChangeResult> {
    const n = this.o.networks.select(selector);
    if (n.origin === 'config') {
      throw new VxlandError(
        'VXLAND_BAD_ARGUMENT',
        `network ${networkLabel(n.config)} comes from the config file (or the flags of vxland run), not from "network add"; remove it there and reload (kill -HUP, systemctl reload vxland)`,
      );
    }
    await this.o.lifecycle.remove(n);
    this.o.log.info({ vni: n.config.vni, dev: n.config.dev }, 'network deleted');
    return { vni: n.config.vni, dev: n.config.dev };
  }

  peerAdd(selector: NetworkSelector, ip: string): PeerChangeResult {
    const n = this.o.networks.select(selector);
    const { vni } = n.config;
    this.requireReachable(n, ip);
    const changed = n.fdb.addPeer(vni, ip);
    if (changed) this.persistOrUndo(n, () => n.fdb.removePeer(vni, ip));
    this.o.log.info({ vni, peer: ip, changed }, 'peer add');
    return { ip, changed };
  }

  peerDel(selector: NetworkSelector, ip: string): PeerChangeResult {
    const n = this.o.networks.select(selector);
    const { vni } = n.config;
    if (!n.fdb.removePeer(vni, ip)) throw new VxlandError('VXLAND_NOT_FOUND', `${ip} is not a peer of ${n.config.dev} (vni ${vni})`);
    this.persistOrUndo(n, () => n.fdb.addPeer(vni, ip));
    this.o.log.info({ vni, peer: ip }, 'peer deleted');
    return { ip, changed: true };
  }

  peerList(selector: NetworkSelector): PeerListResult {
    const n = this.o.networks.select(selector);
    // The flood-list rows of fdb show, so both commands name a peer's kind by
    // the one rule of the Fdb (configured wins over etcd).
    return n.fdb.entries()
      .filter((e) => e.vni === n.config.vni && e.mac === FLOOD_MAC)
      .map((e) => ({ ip: e.vtep, kind: e.kind === 'etcd' ? 'etcd' : 'peer' }));
  }

  fdbShow(selector: NetworkSelector, filter: FdbFilter): FdbShowResult {
    return this.o.networks.select(selector).fdb.entries().filter((e) => matchesFdbFilter(e, filter));
  }

  fdbGet(selector: NetworkSelector, mac: string): FdbGetResult {
    const n = this.o.networks.select(selector);
    const entry = n.fdb.entries().find((e) => e.mac === mac);
    if (entry === undefined) throw new VxlandError('VXLAND_NOT_FOUND', `no fdb entry for ${mac} on ${n.config.dev} (vni ${n.config.vni})`);
    return entry;
  }

  fdbAdd(selector: NetworkSelector, mac: string, ip: string): FdbChangeResult {
    const n = this.o.networks.select(selector);
    const { vni } = n.config;
    this.requireReachable(n, ip);
    const previous = staticEntry(n, mac);
    n.fdb.addStatic(vni, mac, ip);
    this.persistOrUndo(n, () => {
      if (previous) n.fdb.addStatic(vni, mac, previous.vtep);
      else n.fdb.remove(vni, mac);
    });
    this.o.log.info({ vni, mac, vtep: ip }, 'static fdb entry added');
    return { mac, ip };
  }

  fdbDel(selector: NetworkSelector, mac: string): FdbChangeResult {
    const n = this.o.networks.select(selector);
    const { vni } = n.config;
    const previous = staticEntry(n, mac);
    if (!n.fdb.remove(vni, mac)) throw new VxlandError('VXLAND_NOT_FOUND', `no fdb entry for ${mac} on ${n.config.dev} (vni ${vni})`);
    if (previous) this.persistOrUndo(n, () => n.fdb.addStatic(vni, mac, previous.vtep));
    this.o.log.info({ vni, mac }, 'fdb entry deleted');
    return { mac };
  }

  fdbFlush(selector: NetworkSelector, learnedOnly: boolean): FdbFlushResult {
    const n = this.o.networks.select(selector);
    const statics = n.fdb.staticEntries();
    const removed = n.fdb.flush({ learnedOnly });
    if (!learnedOnly && statics.length > 0) {
      this.persistOrUndo(n, () => {
        for (const entry of statics) n.fdb.addStatic(entry.vni, entry.mac, entry.vtep);
      });
    }
    this.o.log.info({ vni: n.config.vni, removed, learnedOnly }, 'fdb flushed');
    return { removed };
  }

  /** All peers share the UDP socket, so they must be of its family. */
  private requireReachable(n: ServedNetwork, ip: string): void {
    const family = this.o.host.family === 'udp6' ? 6 : 4;
    if (ipFamily(ip) !== family) {
      throw new VxlandError('VXLAND_BAD_ARGUMENT', `${ip} is IPv${ipFamily(ip)} but ${n.config.dev} sends VXLAN over IPv${family}`);
    }
  }

  private persistOrUndo(n: ServedNetwork, undo: () => void): void {
    try {
      saveNetworkState(n);
    } catch (err) {
      undo();
      this.o.log.error({ err, vni: n.config.vni }, 'cannot save state; change undone');
      throw err;
    }
  }
}

/** Saves the network's peers and static entries now in its FDB, its static
 *  neighbours and its TAP MAC, to its state file; throws VXLAND_STATE_IO. */
export function saveNetworkState(n: ServedNetwork): void {
  const { vni } = n.config;
  const neigh = n.neighbours.staticEntries(vni).map(({ ip, mac }) => ({ ip, mac }));
  n.store.save({
    vni,
    peers: n.fdb.configuredPeers(vni),
    fdb: n.fdb.staticEntries().filter((e) => e.vni === vni).map(({ mac, vtep }) => ({ mac, vtep })),
    mac: n.mac,
    // Left out when empty: a state file without neighbours reads as one of an older daemon.
    ...(neigh.length === 0 ? {} : { neigh }),
  });
}

/** The network as it runs: its peers and static entries as they are now
 *  (changed at run time or not) and its TAP's MAC. */
function runningNetwork(n: ServedNetwork): NetworkConfig {
  const { vni } = n.config;
  return {
    ...n.config,
    peers: n.fdb.configuredPeers(vni),
    fdb: n.fdb.staticEntries().filter((e) => e.vni === vni).map(({ mac, vtep }) => ({ mac, vtep })),
    mac: n.mac,
  };
}

function staticEntry(n: ServedNetwork, mac: string): { vtep: string } | undefined {
  return n.fdb.staticEntries().find((e) => e.vni === n.config.vni && e.mac === mac);
}

/** A network's counters with the host's drops added, for the one-network view. */
function withHostDrops(network: StatsSnapshot, host: StatsSnapshot): StatsSnapshot {
  const drops = { ...network.drops };
  for (const [reason, count] of Object.entries(host.drops)) drops[reason] = (drops[reason] ?? 0) + count;
  return { ...network, drops, dropsTotal: network.dropsTotal + host.dropsTotal };
}

/** Per-VTEP rows of a network with the host's added in (same VTEP: summed). */
function addVteps(network: StatsResult['vteps'], host: StatsResult['vteps']): StatsResult['vteps'] {
  const byVtep = new Map(network.map((v) => [v.vtep, { ...v }]));
  for (const h of host) {
    const v = byVtep.get(h.vtep);
    if (v === undefined) {
      byVtep.set(h.vtep, { ...h });
      continue;
    }
    v.rxPackets += h.rxPackets;
    v.rxBytes += h.rxBytes;
    v.txPackets += h.txPackets;
    v.txBytes += h.txBytes;
    v.drops += h.drops;
    v.lastRxMs = Math.max(v.lastRxMs, h.lastRxMs);
  }
  return [...byVtep.values()];
}

/** One entry per (sender, VNI), counts added. */
function mergeForeign(senders: ForeignVniSender[]): ForeignVniSender[] {
  const byKey = new Map<string, ForeignVniSender>();
  for (const s of senders) {
    const key = `${s.address}|${s.vni}`;
    const seen = byKey.get(key);
    if (seen === undefined) byKey.set(key, { ...s });
    else {
      seen.count += s.count;
      seen.lastMs = Math.max(seen.lastMs, s.lastMs);
    }
  }
  return [...byKey.values()];
}
