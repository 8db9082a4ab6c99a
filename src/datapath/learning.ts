// Learning from a received frame, as both data paths do it: the FDB decides,
// this maps its answer to a drop reason or a counter. The native engine's
// observations go through here too.

import { LearnOutcome, type Fdb } from '../fdb/fdb';
import { DropReason } from '../ports/drops';
import type { Stats } from './stats';

/** Learns `key` behind `vtep`; returns the reason to drop the frame, or null to deliver it. */
export function learnSource(fdb: Fdb, stats: Stats, vni: number, key: number, vtep: string, nowMs: number): DropReason | null {
  switch (fdb.learn(vni, key, vtep, nowMs)) {
    case LearnOutcome.NotLearnable:
      return DropReason.RxBadSourceMac;
    case LearnOutcome.StaticConflict:
      return DropReason.RxStaticMacConflict;
    case LearnOutcome.RefusedFull:
      stats.learnRefused('fdbFull', vni, key, nowMs);
      return null;
    case LearnOutcome.RefusedVtepFull:
      stats.learnRefused('vtepFull', vni, key, nowMs);
      return null;
    case LearnOutcome.RefusedRate:
      stats.learnRefused('rate', vni, key, nowMs);
      return null;
    default:
      return null;
  }
}
