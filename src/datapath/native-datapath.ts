// The native data path: the packet loops run on the engine's threads
// (src/io/engine.ts); this class keeps the JS side of the contract. It
// mirrors the Fdb and the source policy into the engine's core context
// (CoreSync, as the dgram path does into its PacketCore), applies the engine's learning
// observations through learnSource() (the one mapping of Fdb outcomes to
// counters, as the dgram path uses it), logs
// foreign-VNI senders rate-limited and fallbacks once, and adds the engine's
// counters (totals, drops, per-VTEP counts, refused senders) into Stats so
// status and stats show one set of numbers whichever path runs. Counts are
// pulled (syncStats), not pushed: a push would wake the JS thread while
// packets are in flight.

import type { Logger } from 'pino';

import { VxlandError, toVxlandError } from '../errors';
import type { Fdb } from '../fdb/fdb';
import { RateLimitedLog } from '../util/rate-limit';
import type { SourceFilter } from './accept';
import { CoreSync } from './core-sync';
import { DROP_REASON_COUNT, DropReason } from '../ports/drops';
import type { NativeEngineEvent, PacketEngine } from '../ports/engine';
import { learnSource } from './learning';
import { OTHER_VTEP, type Stats } from './stats';

export interface NativeDatapathOptions {
  vni: number;
  fdb: Fdb;
  /** Opened with NativeEngine.open(); owned (stopped) by the data path once started. */
  engine: PacketEngine;
  stats: Stats;
  log: Logger;
  /** Who may send (--accept); mirrored into the engine on every change. */
  sources: SourceFilter;
  /** Deliver and send VLAN-tagged inner frames (RFC 7348 §6.1: off by default). */
  allowVlan: boolean;
  now?: () => number;
}

type DatapathState = 'idle' | 'running' | 'stopped';

export class NativeDatapath {
  private state: DatapathState = 'idle';
  private readonly now: () => number;
  private readonly limited: RateLimitedLog;
  private readonly sync: CoreSync;
  /** Engine totals already added into Stats. */
  private readonly merged = { rxPackets: 0, rxBytes: 0, txPackets: 0, txBytes: 0, drops: new Float64Array(DROP_REASON_COUNT) };

  constructor(private readonly o: NativeDatapathOptions) {
    this.now = o.now ?? Date.now;
    this.limited = new RateLimitedLog(o.log);
    this.sync = new CoreSync(o.engine, o.fdb, o.sources, o.vni);
  }

  get engine(): PacketEngine {
    return this.o.engine;
  }

  /** Seeds the engine's mirror, subscribes to the Fdb and starts the
   *  threads. onFatal runs at most once (VxlandError with errno/syscall:
   *  VXLAND_DEVICE for the TAP, VXLAND_SOCKET for the socket). */
  start(onFatal: (err: Error) => void): void {
    if (this.state !== 'idle') throw new VxlandError('VXLAND_INTERNAL', `internal error: data path cannot start when ${this.state}`);
    this.state = 'running';
    const { engine } = this.o;
    this.sync.start(this.o.allowVlan);
    let failed = false;
    engine.start((event) => {
      if (this.state !== 'running' && event.type !== 'observations') return;
      if (event.type === 'fatal') {
        if (failed) return;
        failed = true;
        const code = /^(recv|send|socket|bind)/.test(event.error.syscall) ? 'VXLAND_SOCKET' : 'VXLAND_DEVICE';
        onFatal(toVxlandError(event.error, code));
      } else {
        this.onEngineEvent(event);
      }
    });
    this.o.stats.pullFrom(() => this.syncStats());
  }

  /** Adds what the engine counted since the last call into Stats (totals,
   *  drops, per-VTEP counts). Every Stats snapshot calls it first. */
  private syncStats(): void {
    const { engine, stats } = this.o;
    const nowMs = this.now();
    for (const v of engine.takeVtepCounts()) {
      const c = stats.vtep(v.vtep ?? OTHER_VTEP);
      c.rxPackets += v.rxPackets;
      c.rxBytes += v.rxBytes;
      c.txPackets += v.txPackets;
      c.txBytes += v.txBytes;
      c.drops += v.drops;
      if (v.lastRxAgoMs >= 0) c.lastRxMs = Math.max(c.lastRxMs, nowMs - v.lastRxAgoMs);
    }
    const c = engine.counters();
    const m = this.merged;
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
  }

  /** The engine's offloads in effect now (StatusResult.offloads): GSO can
   *  drop out at run time (EIO from a send). */
  offloads(): string[] {
    const info = this.o.engine.info();
    const on: Array<[boolean, string]> = [[info.offload, 'tso'], [info.gso, 'udp-gso'], [info.gro, 'udp-gro'], [info.coalesce, 'tcp-coalesce']];
    return on.filter(([enabled]) => enabled).map(([, name]) => name);
  }

  /** Stops the threads (the TAP disappears, the socket closes), unsubscribes
   *  from the Fdb and adds the final counts into Stats. Idempotent. */
  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    const wasRunning = this.state === 'running';
    this.state = 'stopped';
    this.sync.stop();
    this.o.engine.stop();
    if (wasRunning) this.syncStats();
    this.o.stats.pullFrom(null);
  }

  private onEngineEvent(event: Exclude<NativeEngineEvent, { type: 'fatal' }>): void {
    if (event.type === 'fallback') {
      this.o.log.warn({ feature: event.feature, errno: event.errno }, `native data path: ${event.message}`);
      return;
    }
    const { fdb, stats } = this.o;
    const nowMs = this.now();
    // Refusals are facts about traffic already handled: they are added even
    // when they arrive after stop() (the threads' last reports).
    for (const r of event.refused) stats.refusedSender(r.from, r.count);
    for (const f of event.foreign) {
      stats.foreignVni(f.from, f.vni, nowMs, f.count);
      this.limited.warn(`vni:${f.from}:${f.vni}`, { vni: f.vni, expectedVni: this.o.vni, from: f.from }, 'dropped datagram with a foreign VNI');
    }
    if (this.state !== 'running') return;
    for (const l of event.learn) {
      // The engine reports only learnable, non-own source MACs, and each one
      // once per second at most while the mirror lacks it (not per frame);
      // Stats counts a refused MAC that often on both paths. The frames
      // were already delivered, so a drop reason returned here (a static
      // entry the mirror had not seen yet) is not counted; the mirror
      // refuses the MAC's next frames.
      learnSource(fdb, stats, l.vni, l.mac, l.vtep, nowMs);
    }
    // The engine forwards from its mirror, so it tells which entries it
    // sent to (each at most once a second): the table's USED time.
    for (const u of event.used) fdb.markUsed(u.vni, u.mac, nowMs);
  }
}
