// Data-path counters. Plain numbers bumped in place (no allocation per
// packet); snapshot() builds the object the control plane shows.
//
// Per-VTEP counters exist for VTEPs the control plane tracks (peers, static
// and learned destinations): senders are taken from the network, so counting
// every source address would let anyone grow the table. Datagrams from
// untracked addresses are counted under OTHER_VTEP.

import type { ForeignVniSender, StatsSnapshot, VtepCounters } from '../ports/counters';
import { DROP_REASON_COUNT, DROP_REASON_NAMES, DropReason } from '../ports/drops';
import {
  LEARN_REPORT_INTERVAL_MS, LEARN_REPORT_MAX_MACS, MAX_FOREIGN_VNI_SENDERS, MAX_REFUSED_SENDERS, MAX_TRACKED_VTEPS,
} from '../tables/limits.generated';
import { NET_EVENT_COUNT, NET_EVENT_NAMES, type NetEvent } from '../tables/net-events.generated';

// The bounds are the engine's too (native/limits.h).
export { MAX_FOREIGN_VNI_SENDERS, MAX_REFUSED_SENDERS, MAX_TRACKED_VTEPS };
export const OTHER_VTEP = 'other';

/** The per-VTEP counter series a host may have, shared by the Stats of all
 *  its networks and the host's own: MAX_TRACKED_VTEPS in total, not per
 *  network (each tracked (network, VTEP) takes one). */
export class VtepBudget {
  private used = 0;

  constructor(readonly max: number = MAX_TRACKED_VTEPS) {}

  /** Takes one series; false when none is left. */
  take(): boolean {
    if (this.used >= this.max) return false;
    this.used++;
    return true;
  }

  /** Gives back n series (a network's Stats that is dropped). */
  release(n: number): void {
    this.used = Math.max(0, this.used - n);
  }

  get inUse(): number {
    return this.used;
  }
}

/** Why learning a MAC was refused (StatsSnapshot.learnRefused). */
export type LearnRefusal = 'fdbFull' | 'vtepFull' | 'rate';

export class Stats {
  rxPackets = 0;
  rxBytes = 0;
  txPackets = 0;
  txBytes = 0;
  learnRefusedFull = 0;
  learnRefusedVtepFull = 0;
  learnRefusedRate = 0;
  private readonly drops = new Float64Array(DROP_REASON_COUNT);
  private readonly events = new Float64Array(NET_EVENT_COUNT);
  private readonly vteps = new Map<string, VtepCounters>();
  private readonly other: VtepCounters = newCounters();
  private readonly foreign = new Map<string, ForeignVniSender>();
  private readonly refused = new Map<string, number>();
  /** `${vni}|${macKey}` -> when its last refusal was counted. */
  private readonly learnRefusedAt = new Map<string, number>();
  private pull: (() => void) | null = null;

  /** budget: shared by every Stats of the host (default: one of its own). */
  constructor(private readonly budget: VtepBudget = new VtepBudget()) {}

  /** Gives this Stats' per-VTEP series back to the budget (its network is gone). */
  releaseVteps(): void {
    this.budget.release(this.vteps.size);
    this.vteps.clear();
  }

  /** For a data path that counts elsewhere (the native engine): `pull`
   *  brings its counts in and runs before every snapshot, so what status
   *  and stats show is current. null removes it. */
  pullFrom(pull: (() => void) | null): void {
    this.pull = pull;
  }

  drop(reason: DropReason): void {
    this.drops[reason]++;
  }

  /** Counts n drops of one reason at once (n >= 0; the native engine's totals). */
  addDrops(reason: DropReason, n: number): void {
    this.drops[reason] += n;
  }

  /** Counts n (>= 0) events of one kind (ARP/ND suppression). */
  addEvents(event: NetEvent, n = 1): void {
    this.events[event] += n;
  }

  dropCount(reason: DropReason): number {
    return this.drops[reason];
  }

  /** Gives `address` counters of its own (idempotent; bounded by the shared budget). */
  track(address: string): void {
    if (!this.vteps.has(address) && this.budget.take()) this.vteps.set(address, newCounters());
  }

  /** The counters of a tracked VTEP, or the shared OTHER_VTEP ones. */
  vtep(address: string): VtepCounters {
    return this.vteps.get(address) ?? this.other;
  }

  /** Counts a refused learning of (vni, macKey), at most once per
   *  LEARN_REPORT_INTERVAL_MS per MAC: the native engine offers a MAC that
   *  often, the dgram path on every frame, and both count the same. */
  learnRefused(why: LearnRefusal, vni: number, macKey: number, nowMs: number): void {
    const key = `${vni}|${macKey}`;
    const last = this.learnRefusedAt.get(key);
    if (last !== undefined && nowMs - last < LEARN_REPORT_INTERVAL_MS) return;
    if (last === undefined && this.learnRefusedAt.size >= LEARN_REPORT_MAX_MACS) this.learnRefusedAt.clear();
    this.learnRefusedAt.set(key, nowMs);
    if (why === 'fdbFull') this.learnRefusedFull++;
    else if (why === 'vtepFull') this.learnRefusedVtepFull++;
    else this.learnRefusedRate++;
  }

  /** Remembers datagrams (count of them) with a VNI that is not ours, for `vxland doctor`. */
  foreignVni(address: string, vni: number, nowMs: number, count = 1): void {
    const key = `${address}|${vni}`;
    let seen = this.foreign.get(key);
    if (seen === undefined) {
      if (this.foreign.size >= MAX_FOREIGN_VNI_SENDERS) return;
      seen = { address, vni, count: 0, lastMs: nowMs };
      this.foreign.set(key, seen);
    }
    seen.count += count;
    seen.lastMs = nowMs;
  }

  /** Remembers a sender refused by the source policy, for `vxland doctor`;
   *  count datagrams at once (the native engine reports them in batches). */
  refusedSender(address: string, count = 1): void {
    const n = this.refused.get(address);
    if (n !== undefined) this.refused.set(address, n + count);
    else if (this.refused.size < MAX_REFUSED_SENDERS) this.refused.set(address, count);
  }

  refusedSenders(): Array<{ address: string; count: number }> {
    return [...this.refused].map(([address, count]) => ({ address, count }));
  }

  foreignVniSenders(): ForeignVniSender[] {
    return [...this.foreign.values()].map((s) => ({ ...s }));
  }

  /** Per-VTEP counters, tracked ones first, OTHER_VTEP last when it saw anything. */
  vtepSnapshot(): Array<VtepCounters & { vtep: string }> {
    this.pull?.();
    const out = [...this.vteps].map(([vtep, c]) => ({ vtep, ...c }));
    const o = this.other;
    if (o.rxPackets + o.txPackets + o.drops + o.lastRxMs > 0) out.push({ vtep: OTHER_VTEP, ...o });
    return out;
  }

  snapshot(): StatsSnapshot {
    this.pull?.();
    const drops: Record<string, number> = {};
    let dropsTotal = 0;
    for (let i = 0; i < DROP_REASON_COUNT; i++) {
      if (this.drops[i] > 0) drops[DROP_REASON_NAMES[i]] = this.drops[i];
      dropsTotal += this.drops[i];
    }
    const events: Record<string, number> = {};
    for (let i = 0; i < NET_EVENT_COUNT; i++) events[NET_EVENT_NAMES[i]] = this.events[i];
    return {
      rxPackets: this.rxPackets,
      rxBytes: this.rxBytes,
      txPackets: this.txPackets,
      txBytes: this.txBytes,
      drops,
      dropsTotal,
      learnRefused: { fdbFull: this.learnRefusedFull, vtepFull: this.learnRefusedVtepFull, rate: this.learnRefusedRate },
      events,
    };
  }
}

function newCounters(): VtepCounters {
  return { rxPackets: 0, rxBytes: 0, txPackets: 0, txBytes: 0, drops: 0, lastRxMs: 0 };
}
