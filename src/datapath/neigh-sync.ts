// Feeds one network's neighbour mirror and suppression flag in a packet core
// context (ports/core.ts CoreMirror: the native engine's or the dgram path's
// PacketCore) from the Neighbours table: seeded at start, then on every
// change, the same way for both data paths (as CoreSync does for the Fdb).

import type { Neighbours, NeighbourEvent } from '../fdb/neighbours';
import type { CoreMirror } from '../ports/core';
import { macKeyOf } from '../wire/mac';

export class NeighSync {
  private unsubscribe: (() => void) | null = null;

  constructor(
    private readonly core: CoreMirror,
    private readonly neighbours: Neighbours,
    private readonly vni: number,
  ) {}

  /** Seeds the core (flag, entries) and follows changes until stop(). */
  start(): void {
    const { core, neighbours, vni } = this;
    for (const e of neighbours.entries(vni)) core.neighSet(vni, e.ip, macKeyOf(e.mac));
    core.setSuppress(vni, neighbours.suppresses(vni));
    this.unsubscribe = neighbours.subscribe((e) => this.onEvent(e));
  }

  /** Stops following. Idempotent. */
  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = null;
  }

  private onEvent(e: NeighbourEvent): void {
    if (e.vni !== this.vni) return;
    if (e.kind === 'suppress') this.core.setSuppress(e.vni, e.on);
    else if (e.mac === null) this.core.neighDelete(e.vni, e.ip);
    else this.core.neighSet(e.vni, e.ip, macKeyOf(e.mac));
  }
}
