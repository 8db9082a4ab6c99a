// The native data path: the packet loops run on the engine's threads
// (src/io/engine.ts: one engine per host, any number of networks); this class
// keeps the JS side of the contract. Per network it mirrors the Fdb and the
// source policy into the engine's core context (CoreSync, as the dgram path
// does into its PacketCore); it applies the engine's learning observations
// through learnSource() (the one mapping of Fdb outcomes to counters, as the
// dgram path uses it), logs foreign-VNI senders rate-limited and fallbacks
// once, and adds the engine's counters (totals, drops, per-VTEP counts,
// refused senders) into each network's Stats and the host's, so status and
// stats show one set of numbers whichever path runs. Counts are pulled
// (syncStats), not pushed: a push would wake the JS thread while packets are
// in flight.

import type { Logger } from 'pino';

import { VxlandError, toVxlandError } from '../errors';
import type { Fdb } from '../fdb/fdb';
import { RateLimitedLog } from '../util/rate-limit';
import type { SourceFilter } from './accept';
import { CoreSync } from './core-sync';
import { NeighSync } from './neigh-sync';
import type { Neighbours } from '../fdb/neighbours';
import { DROP_REASON_COUNT, DropReason } from '../ports/drops';
import type { NativeEngineEvent, PacketEngine } from '../ports/engine';
import { NET_EVENT_COUNT, type NetEvent } from '../tables/net-events.generated';
import { learnSource } from './learning';
import { OTHER_VTEP, type Stats } from './stats';

/** How long removeNetwork() waits for the engine to close the TAP (it does
 *  at the workers' next wake-up, well within this). */
export const TAP_CLOSE_TIMEOUT_MS = 2_000;

export interface NativeDatapathOptions {
  /** Opened with NativeEngine.open(); owned (stopped) by the data path once started. */
  engine: PacketEngine;
  /** Host-level drops (before a datagram's network is known) and foreign-VNI senders. */
  hostStats: Stats;
  log: Logger;
  now?: () => number;
}

/** One network on the native path; its TAP is the engine's already (slot). */
export interface NativeNetworkOptions {
  vni: number;
  /** PacketEngine.addNetwork()'s answer for this network's TAP. */
  slot: number;
  /** The token its TAP was given (PacketEngine.addNetwork; default 0): a
   *  'tapFailed' for this VNI with another token is about a removed
   *  network's TAP (re-added with the same VNI meanwhile) and is ignored. */
  token?: number;
  fdb: Fdb;
  stats: Stats;
  /** Who may send (--accept); mirrored into the engine on every change. */
  sources: SourceFilter;
  /** Deliver and send VLAN-tagged inner frames (RFC 7348 §6.1: off by default). */
  allowVlan: boolean;
  /** ARP/ND suppression: the table (and per-network flag) the engine answers from. */
  neighbours?: Neighbours;
  /** Its TAP failed (read error; the device deleted): VxlandError
   *  VXLAND_DEVICE with errno/syscall, the device named. The network is
   *  still carried (its datagrams are dropped as TAP write errors) until
   *  removeNetwork(vni). Without it, the failure is the data path's onFatal. */
  onFailed?: (err: VxlandError) => void;
}

interface Network {
  readonly o: NativeNetworkOptions;
  readonly sync: CoreSync;
  readonly neighSync: NeighSync | null;
  /** Engine totals already added into the network's Stats. */
  readonly merged: Totals;
}

interface Totals { rxPackets: number; rxBytes: number; txPackets: number; txBytes: number; drops: Float64Array; events: Float64Array }

function newTotals(): Totals {
  return { rxPackets: 0, rxBytes: 0, txPackets: 0, txBytes: 0, drops: new Float64Array(DROP_REASON_COUNT), events: new Float64Array(NET_EVENT_COUNT) };
}

type DatapathState = 'idle' | 'running' | 'stopped';

export class NativeDatapath {
  private state: DatapathState = 'idle';
  private readonly now: () => number;
  private readonly limited: RateLimitedLog;
  private readonly networks = new Map<number, Network>();
  private readonly bySlot = new Map<number, Network>();
  /** Host-level engine totals already added into hostStats. */
  private readonly merged = newTotals();
  /** removeNetwork() calls waiting for their TAP to close, by vni. */
  private readonly closing = new Map<number, Array<() => void>>();
  private onFatal: (err: VxlandError) => void = () => undefined;
  private failed = false;

  constructor(private readonly o: NativeDatapathOptions) {
    this.now = o.now ?? Date.now;
    this.limited = new RateLimitedLog(o.log);
  }

  get engine(): PacketEngine {
    return this.o.engine;
  }

  /** Carries a network whose TAP the engine holds already (slot). Throws
   *  VxlandError VXLAND_NETWORK_EXISTS when the VNI is served here. */
  addNetwork(n: NativeNetworkOptions): void {
    if (this.state === 'stopped') throw new VxlandError('VXLAND_INTERNAL', 'internal error: data path is stopped');
    if (this.networks.has(n.vni)) throw new VxlandError('VXLAND_NETWORK_EXISTS', `network already exists: vni ${n.vni} is served already`);
    const neighSync = n.neighbours === undefined ? null : new NeighSync(this.o.engine, n.neighbours, n.vni);
    const network: Network = { o: n, sync: new CoreSync(this.o.engine, n.fdb, n.sources, n.vni), neighSync, merged: newTotals() };
    this.networks.set(n.vni, network);
    this.bySlot.set(n.slot, network);
    network.sync.start(n.allowVlan);
    neighSync?.start();
    n.stats.pullFrom(() => this.syncStats());
  }

  /** Stops carrying the network; resolves once its TAP is closed (the
   *  device is gone). Its final counts are in its Stats by then. Unknown
   *  vni: no-op. */
  async removeNetwork(vni: number): Promise<void> {
    const n = this.networks.get(vni);
    if (n === undefined) return;
    this.syncStats();
    n.sync.stop();
    n.neighSync?.stop();
    this.networks.delete(vni);
    const closed = this.state === 'running' ? this.tapClosed(vni) : Promise.resolve();
    this.o.engine.removeNetwork(vni);
    await closed;
    // The workers let go of the network before its TAP closed: nothing
    // more is counted into its slot.
    this.syncNetwork(n);
    this.bySlot.delete(n.o.slot);
    n.o.stats.pullFrom(null);
  }

  /** Starts the threads. onFatal runs at most once (VxlandError with
   *  errno/syscall: VXLAND_SOCKET for the socket, VXLAND_DEVICE for the
   *  TAP of a network without onFailed). */
  start(onFatal: (err: Error) => void): void {
    if (this.state !== 'idle') throw new VxlandError('VXLAND_INTERNAL', `internal error: data path cannot start when ${this.state}`);
    this.state = 'running';
    this.onFatal = onFatal;
    this.o.engine.start((event) => {
      if (event.type === 'tapClosed') return this.onTapClosed(event.vni);
      if (this.state !== 'running' && event.type !== 'observations') return;
      if (event.type === 'fatal') {
        const code = /^(recv|send|socket|bind)/.test(event.error.syscall) ? 'VXLAND_SOCKET' : 'VXLAND_DEVICE';
        this.fatal(toVxlandError(event.error, code));
      } else if (event.type === 'tapFailed') {
        const n = this.networks.get(event.vni);
        if (n === undefined || event.token !== (n.o.token ?? 0)) return;
        const err = toVxlandError(event.error, 'VXLAND_DEVICE');
        if (n.o.onFailed !== undefined) n.o.onFailed(err);
        else this.fatal(err);
      } else {
        this.onEngineEvent(event);
      }
    });
    this.o.hostStats.pullFrom(() => this.syncStats());
  }

  /** The engine's offloads in effect now (StatusResult.offloads): GSO can
   *  drop out at run time (EIO from a send). */
  offloads(): string[] {
    const info = this.o.engine.info();
    const on: Array<[boolean, string]> = [[info.offload, 'tso'], [info.uso, 'uso'], [info.gso, 'udp-gso'], [info.gro, 'udp-gro'], [info.coalesce, 'tcp-coalesce']];
    return on.filter(([enabled]) => enabled).map(([, name]) => name);
  }

  /** Stops the threads (every TAP disappears, the socket closes),
   *  unsubscribes from the Fdbs and adds the final counts into the Stats.
   *  Idempotent. */
  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    const wasRunning = this.state === 'running';
    this.state = 'stopped';
    for (const n of this.networks.values()) {
      n.sync.stop();
      n.neighSync?.stop();
    }
    this.o.engine.stop();
    if (wasRunning) this.syncStats();
    for (const n of this.networks.values()) n.o.stats.pullFrom(null);
    this.o.hostStats.pullFrom(null);
    this.networks.clear();
    for (const waiters of this.closing.values()) for (const done of waiters) done();
    this.closing.clear();
  }

  private fatal(err: VxlandError): void {
    if (this.failed) return;
    this.failed = true;
    this.onFatal(err);
  }

  private tapClosed(vni: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, TAP_CLOSE_TIMEOUT_MS);
      timer.unref();
      const waiters = this.closing.get(vni) ?? [];
      waiters.push(done);
      this.closing.set(vni, waiters);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
    });
  }

  private onTapClosed(vni: number): void {
    const waiters = this.closing.get(vni);
    const done = waiters?.shift();
    if (waiters?.length === 0) this.closing.delete(vni);
    done?.();
  }

  /** Adds what the engine counted since the last call into the Stats
   *  (totals, drops, per-VTEP counts). Every Stats snapshot calls it first. */
  private syncStats(): void {
    const { engine, hostStats } = this.o;
    const nowMs = this.now();
    for (const v of engine.takeVtepCounts()) {
      const stats = v.slot < 0 ? hostStats : this.bySlot.get(v.slot)?.o.stats;
      if (stats === undefined) continue;  // a network removed meanwhile
      const c = stats.vtep(v.vtep ?? OTHER_VTEP);
      c.rxPackets += v.rxPackets;
      c.rxBytes += v.rxBytes;
      c.txPackets += v.txPackets;
      c.txBytes += v.txBytes;
      c.drops += v.drops;
      if (v.lastRxAgoMs >= 0) c.lastRxMs = Math.max(c.lastRxMs, nowMs - v.lastRxAgoMs);
    }
    const h = engine.counters();
    // Host-level: only drops (the totals are the networks').
    for (let reason = 0; reason < DROP_REASON_COUNT; reason++) {
      const d = h.drops[reason] - this.merged.drops[reason];
      if (d > 0) hostStats.addDrops(reason as DropReason, d);
      this.merged.drops[reason] = h.drops[reason];
    }
    for (const n of this.networks.values()) this.syncNetwork(n);
  }

  private syncNetwork(n: Network): void {
    const c = this.o.engine.netCounters(n.o.slot);
    const { stats } = n.o;
    const m = n.merged;
    stats.rxPackets += c.rxPackets - m.rxPackets;
    stats.rxBytes += c.rxBytes - m.rxBytes;
    stats.txPackets += c.txPackets - m.txPackets;
    stats.txBytes += c.txBytes - m.txBytes;
    m.rxPackets = c.rxPackets;
    m.rxBytes = c.rxBytes;
    m.txPackets = c.txPackets;
    m.txBytes = c.txBytes;
    for (let reason = 0; reason < DROP_REASON_COUNT; reason++) {
      const d = c.drops[reason] - m.drops[reason];
      if (d > 0) stats.addDrops(reason as DropReason, d);
      m.drops[reason] = c.drops[reason];
    }
    for (let event = 0; event < NET_EVENT_COUNT; event++) {
      const d = c.events[event] - m.events[event];
      if (d > 0) stats.addEvents(event as NetEvent, d);
      m.events[event] = c.events[event];
    }
  }

  private onEngineEvent(event: Exclude<NativeEngineEvent, { type: 'fatal' | 'tapClosed' | 'tapFailed' }>): void {
    if (event.type === 'fallback') {
      this.o.log.warn({ feature: event.feature, errno: event.errno }, `native data path: ${event.message}`);
      return;
    }
    const nowMs = this.now();
    // Refusals are facts about traffic already handled: they are added even
    // when they arrive after stop() (the threads' last reports).
    for (const r of event.refused) this.networkOf(r.vni)?.o.stats.refusedSender(r.from, r.count);
    for (const f of event.foreign) {
      this.o.hostStats.foreignVni(f.from, f.vni, nowMs, f.count);
      this.limited.warn(`vni:${f.from}:${f.vni}`, { vni: f.vni, from: f.from, served: [...this.networks.keys()] }, 'dropped datagram with a VNI no network has');
    }
    if (this.state !== 'running') return;
    for (const l of event.learn) {
      // The engine reports only learnable, non-own source MACs, and each one
      // once per second at most while the mirror lacks it (not per frame);
      // Stats counts a refused MAC that often on both paths. The frames
      // were already delivered, so a drop reason returned here (a static
      // entry the mirror had not seen yet) is not counted; the mirror
      // refuses the MAC's next frames.
      const n = this.networkOf(l.vni);
      if (n !== undefined) learnSource(n.o.fdb, n.o.stats, l.vni, l.mac, l.vtep, nowMs);
    }
    // The engine forwards from its mirror, so it tells which entries it
    // sent to (each at most once a second): the table's USED time.
    for (const u of event.used) this.networkOf(u.vni)?.o.fdb.markUsed(u.vni, u.mac, nowMs);
  }

  private networkOf(vni: number): Network | undefined {
    return this.networks.get(vni);
  }
}
