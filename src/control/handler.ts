// The daemon's answers to control requests: each change is applied to the
// live FDB at once and saved atomically before it is acknowledged; if saving
// fails the change is undone and the client gets the error.

import type { Logger } from 'pino';
import type { Config, DatapathKind } from '../config/config.js';
import { ipFamily } from '../config/validate.js';
import { diagnose, type DoctorReport } from '../doctor.js';
import { VxlandError } from '../errors.js';
import type { Fdb } from '../fdb/fdb.js';
import type { StatsReader } from '../ports/counters.js';
import type { TapCondition } from '../ports/tap-condition.js';
import type { StateStore } from '../state/store.js';
import type {
  ControlHandler,
  FdbChangeResult,
  FdbFlushResult,
  FdbShowResult,
  LogLevelResult,
  MonitorEvent,
  PeerChangeResult,
  PeerListResult,
  StatsResult,
  StatusResult,
} from './protocol.js';

/** What status shows of the running data path. */
export interface DatapathInfo {
  kind: DatapathKind;
  /** The TAP device's own MAC address. */
  mac: string;
  /** The offloads in effect now (they can drop out at run time). */
  offloads(): string[];
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

/** What status and doctor show of the source policy (SourceFilter.describe). */
export interface AcceptDescription {
  describe(): string;
}

/** The control-plane operations, applied to the live FDB and persisted. */
export class DaemonControl implements ControlHandler {
  constructor(
    private readonly config: Config,
    private readonly datapath: DatapathInfo,
    private readonly fdb: Fdb,
    private readonly counters: StatsReader,
    private readonly store: StateStore,
    private readonly log: Logger,
    private readonly startedMs: number,
    private readonly monitors: Set<(event: MonitorEvent) => void>,
    private readonly sources: AcceptDescription,
    private readonly host: HostFacts,
    private readonly tapCondition: () => TapCondition = () => ({ dev: config.dev, down: false, unrestored: [] }),
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
      const name = local !== null ? this.host.interfaceWithAddress(address) : this.host.interfaceTowards(address);
      const underlayMtu = name === null ? null : this.host.interfaceMtu(name);
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
      tcpInCsumErrors: this.host.tcpInCsumErrors(),
      tap: this.tapCondition(),
    });
  }

  status(): StatusResult {
    const { dev, vni, port, local, mtu } = this.config;
    return {
      dev, mac: this.datapath.mac, vni, port, local, mtu,
      datapath: this.datapath.kind,
      offloads: this.datapath.offloads(),
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
      mac: this.datapath.mac,
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
