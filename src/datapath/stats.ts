// Data-path counters. Plain numbers bumped in place (no allocation per
// packet); snapshot() builds the object the control plane shows.

import { DROP_REASON_COUNT, DROP_REASON_NAMES, DropReason } from './drops';

export interface StatsSnapshot {
  rxPackets: number;
  rxBytes: number;
  txPackets: number;
  txBytes: number;
  /** Drops by reason name; only reasons that occurred. */
  drops: Record<string, number>;
  dropsTotal: number;
  /** New MACs not learned because the FDB was full. */
  learnRefusedFull: number;
}

export class Stats {
  rxPackets = 0;
  rxBytes = 0;
  txPackets = 0;
  txBytes = 0;
  learnRefusedFull = 0;
  private readonly drops = new Float64Array(DROP_REASON_COUNT);

  drop(reason: DropReason): void {
    this.drops[reason]++;
  }

  dropCount(reason: DropReason): number {
    return this.drops[reason];
  }

  snapshot(): StatsSnapshot {
    const drops: Record<string, number> = {};
    let dropsTotal = 0;
    for (let i = 0; i < DROP_REASON_COUNT; i++) {
      if (this.drops[i] > 0) drops[DROP_REASON_NAMES[i]] = this.drops[i];
      dropsTotal += this.drops[i];
    }
    return {
      rxPackets: this.rxPackets,
      rxBytes: this.rxBytes,
      txPackets: this.txPackets,
      txBytes: this.txBytes,
      drops,
      dropsTotal,
      learnRefusedFull: this.learnRefusedFull,
    };
  }
}
