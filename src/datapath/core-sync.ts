// Feeds one network of a packet core context (ports/core.ts CoreMirror: the
// native engine's or the dgram path's PacketCore) from that network's Fdb and
// SourceFilter: seeded at start, then on every change. One per network. The one copy of this sync, for both data
// paths; the core only mirrors, the Fdb stays the authority.

import type { Fdb, FdbEvent } from '../fdb/fdb';
import { FLOOD_MAC, macKeyOf } from '../wire/mac';
import type { CoreMirror } from '../ports/core';
import type { SourceFilter } from './accept';

export class CoreSync {
  private unsubscribeFdb: (() => void) | null = null;
  private unsubscribeSources: (() => void) | null = null;
  private floodListPushPending = false;

  constructor(
    private readonly core: CoreMirror,
    private readonly fdb: Fdb,
    private readonly sources: SourceFilter,
    private readonly vni: number,
  ) {}

  /** Seeds the core (VLAN option, policy, flood list, entries) and follows changes until stop(). */
  start(allowVlan: boolean): void {
    const { core, fdb, vni, sources } = this;
    core.setAllowVlan(vni, allowVlan);
    this.pushSourcePolicy();
    this.unsubscribeSources = sources.subscribe(() => this.pushSourcePolicy());
    core.setFloodList(vni, fdb.peers(vni));
    for (const e of fdb.entries()) {
      if (e.vni === vni && e.mac !== FLOOD_MAC) core.fdbSet(vni, macKeyOf(e.mac), e.vtep, e.kind !== 'learned');
    }
    this.unsubscribeFdb = fdb.subscribe((event) => this.onFdbEvent(event));
  }

  /** Stops following. Idempotent. */
  stop(): void {
    this.unsubscribeFdb?.();
    this.unsubscribeFdb = null;
    this.unsubscribeSources?.();
    this.unsubscribeSources = null;
  }

  private pushSourcePolicy(): void {
    const p = this.sources.snapshot();
    this.core.setSourcePolicy(this.vni, p.kind, p.named, p.cidrs.map((c) => `${c.address}/${c.prefixLength}`));
  }

  private onFdbEvent(e: FdbEvent): void {
    const { core, fdb, vni } = this;
    if (e.vni !== vni) return;
    if (e.mac === FLOOD_MAC) {
      // One push per burst (a reload may add thousands of peers in one go):
      // the core copies the whole list each time. Until it lands, the core
      // floods to the previous list.
      if (this.floodListPushPending) return;
      this.floodListPushPending = true;
      queueMicrotask(() => {
        this.floodListPushPending = false;
        if (this.unsubscribeFdb !== null) core.setFloodList(vni, fdb.peers(vni));
      });
      return;
    }
    switch (e.type) {
      case 'learned':
      case 'moved':
      case 'added':
        core.fdbSet(vni, macKeyOf(e.mac), e.vtep, e.kind !== 'learned');
        break;
      case 'aged':
      case 'deleted':
        core.fdbDelete(vni, macKeyOf(e.mac));
        break;
    }
  }
}
