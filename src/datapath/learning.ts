// Learning from a received frame, as both data paths do it: the packet core
// (native/core_rx.h) decides which source MACs to offer, the Fdb decides
// whether to learn them, and this counts its refusals. The core has already
// dropped frames whose source MAC is not learnable or a static entry's at
// another VTEP; an offer the Fdb still answers that way (a static entry the
// native engine's mirror had not seen yet) is not counted: the frame was
// delivered, and the mirror refuses the MAC's next frames.

import { LearnOutcome, type Fdb } from '../fdb/fdb';
import type { Stats } from './stats';

/** Offers `key` behind `vtep` to the Fdb and counts a refusal. */
export function learnSource(fdb: Fdb, stats: Stats, vni: number, key: number, vtep: string, nowMs: number): void {
  switch (fdb.learn(vni, key, vtep, nowMs)) {
    case LearnOutcome.RefusedFull:
      stats.learnRefused('fdbFull', vni, key, nowMs);
      return;
    case LearnOutcome.RefusedVtepFull:
      stats.learnRefused('vtepFull', vni, key, nowMs);
      return;
    case LearnOutcome.RefusedRate:
      stats.learnRefused('rate', vni, key, nowMs);
      return;
    default:
      return;
  }
}
