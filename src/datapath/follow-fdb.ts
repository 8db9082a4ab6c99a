// What the data path derives from FDB changes, in one place for the daemon
// and every test harness: VTEPs the FDB names get counters of their own
// (Stats.track), and peers and static destinations are the senders the
// default source policy accepts (learned entries never widen it).

import type { FdbEvent } from '../fdb/fdb';
import type { SourceFilter } from './accept';
import type { Stats } from './stats';

export function followFdbEvent(event: FdbEvent, stats: Stats, sources: SourceFilter): void {
  if (event.type !== 'aged' && event.type !== 'deleted') stats.track(event.vtep);
  if (event.kind === 'learned') return;
  if (event.type === 'added') sources.name(event.vtep);
  else if (event.type === 'deleted') sources.unname(event.vtep);
}
