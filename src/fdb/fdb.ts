// The one forwarding table. Semantics follow the Linux vxlan driver's FDB
// (drivers/net/vxlan/vxlan_core.c):
// - entries are keyed by (VNI, MAC) and remember when they were last updated
//   (learned or refreshed) and last used (a frame was sent to them);
// - learning maps an inner source MAC to the outer source IP of its datagram;
// - static entries are never moved or aged by learning; a frame that claims a
//   static MAC from another VTEP is refused, as the kernel does;
// - ageing removes learned entries not refreshed for ageingMs; static ones stay;
// - the all-zeros MAC holds the flood list ("peers"): broadcast, multicast and
//   unknown unicast go to every peer (head-end replication);
// - at most maxLearned learned entries, at most maxLearnedPerVtep behind one
//   VTEP, and at most learnRatePerS new or moved MACs per second per VTEP;
//   past a limit nothing new is learned and existing entries keep working.
// - entries of kind `etcd` come from the membership (src/membership/): peers
//   in the flood list and MAC entries pinned like static ones (never moved or
//   aged by learning), never persisted (staticEntries() and configuredPeers()
//   leave them out). Configured entries win on conflict: a static entry for a
//   MAC keeps its VTEP while etcd names another (the etcd claim is kept aside
//   and takes effect if the static entry is removed), and a configured peer
//   stays in the flood list when etcd drops it. Reason: what an admin typed
//   or wrote in the config is deliberate; etcd is what other hosts claim.
//   (The kernel has only the global limit; the others keep one noisy or
//   hostile VTEP from crowding out the rest, see RFC 7348 §7.)
// Both data paths (dgram and the native engine) apply these rules through this
// class; neither has a copy of them.

import { FLOOD_MAC, formatMacKey, isLearnableMacKey, macKeyOf } from '../wire/mac';

export { FLOOD_MAC, parseMac } from '../wire/mac';

export const FDB_AGEING_DEFAULT_MS = 300_000;
export const FDB_MAX_LEARNED_DEFAULT = 16_384;
export const FDB_MAX_LEARNED_PER_VTEP_DEFAULT = 4_096;
export const FDB_LEARN_RATE_PER_VTEP_DEFAULT_PER_S = 500;

export type FdbEntryKind = 'static' | 'learned' | 'peer' | 'etcd';

export interface FdbEntry {
  vni: number;
  mac: string;
  vtep: string;
  kind: FdbEntryKind;
  updatedAgoMs: number;
  usedAgoMs: number;
}

export type FdbEventType = 'learned' | 'moved' | 'aged' | 'added' | 'deleted';

export interface FdbEvent {
  type: FdbEventType;
  vni: number;
  mac: string;
  vtep: string;
  kind: FdbEntryKind;
  /** Set on 'moved': the VTEP the MAC was at before. */
  previousVtep?: string;
}

export interface FdbOptions {
  /** Learned entries not refreshed for this long are removed by sweep(); 0 = never. */
  ageingMs: number;
  maxLearned: number;
  /** Learned entries behind one VTEP; default FDB_MAX_LEARNED_PER_VTEP_DEFAULT. */
  maxLearnedPerVtep?: number;
  /** New or moved MACs learned per second per VTEP (bursts of as many);
   *  0 = no limit; default FDB_LEARN_RATE_PER_VTEP_DEFAULT_PER_S. */
  learnRatePerS?: number;
  now?: () => number;
}

/** What learn() did. The data path counts these; only STATIC_CONFLICT drops the frame. */
export const enum LearnOutcome {
  Refreshed = 0,
  Learned = 1,
  Moved = 2,
  /** The source MAC is a static entry at another VTEP: the frame must be dropped. */
  StaticConflict = 3,
  /** The table is full: not learned, the frame still goes through. */
  RefusedFull = 4,
  /** Multicast, broadcast or all-zeros source: never learned. */
  NotLearnable = 5,
  /** Static entry at this very VTEP: nothing to do. */
  Static = 6,
  /** The VTEP has maxLearnedPerVtep entries: not learned, the frame goes through. */
  RefusedVtepFull = 7,
  /** The VTEP exceeded learnRatePerS: not learned, the frame goes through. */
  RefusedRate = 8,
}

interface VtepLearning {
  entries: number;
  tokens: number;
  refilledMs: number;
}

type MacEntryKind = 'static' | 'learned' | 'etcd';

interface Entry {
  readonly key: number;
  vtep: string;
  kind: MacEntryKind;
  updatedMs: number;
  usedMs: number;
}

interface VniTable {
  readonly entries: Map<number, Entry>;
  /** The flood list in insertion order; membership in O(1), so seeding or
   *  reloading tens of thousands of peers stays linear. */
  readonly peerSet: Set<string>;
  /** Which of peerSet are configured (CLI, config, state file) and which
   *  etcd lists; a VTEP may be both, and stays while either holds it. */
  readonly configPeers: Set<string>;
  readonly etcdPeers: Set<string>;
  /** MAC -> VTEP as etcd claims it, whether in effect or shadowed by a static entry. */
  readonly etcdMacs: Map<number, string>;
  /** peerSet as an array, built on first use after a change and then never
   *  mutated in place (the data path iterates it while sending). */
  peerList: readonly string[] | null;
  peersUsedMs: number;
}

export class Fdb {
  private readonly tables = new Map<number, VniTable>();
  private readonly ageingMs: number;
  private readonly maxLearned: number;
  private readonly now: () => number;
  private readonly listeners = new Set<(event: FdbEvent) => void>();
  private readonly maxLearnedPerVtep: number;
  private readonly learnRatePerMs: number;
  private readonly learnBurst: number;
  /** Only VTEPs with learned entries or recent learning; bounded by the table. */
  private readonly perVtep = new Map<string, VtepLearning>();
  private learned = 0;
  private statics = 0;
  private etcds = 0;

  constructor(options: FdbOptions) {
    this.ageingMs = options.ageingMs;
    this.maxLearned = options.maxLearned;
    this.maxLearnedPerVtep = options.maxLearnedPerVtep ?? FDB_MAX_LEARNED_PER_VTEP_DEFAULT;
    const ratePerS = options.learnRatePerS ?? FDB_LEARN_RATE_PER_VTEP_DEFAULT_PER_S;
    this.learnRatePerMs = ratePerS / 1000;
    this.learnBurst = ratePerS;
    this.now = options.now ?? Date.now;
  }

  /** Adds a listener that receives every event from now on, after the
   *  listeners added before it. Returns the function that removes it. */
  subscribe(listener: (event: FdbEvent) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  private emit(event: FdbEvent): void {
    for (const listener of this.listeners) listener(event);
  }

  get learnedCount(): number {
    return this.learned;
  }

  /** Entries of all kinds, peers included (as the kernel lists its all-zeros entries). */
  get size(): number {
    let peers = 0;
    for (const table of this.tables.values()) peers += table.peerSet.size;
    return this.learned + this.statics + this.etcds + peers;
  }

  // ---- data path: called per frame with a clock read once per batch ----

  /** The VTEP for unicast MAC `key` in `vni`, or undefined (flood). Marks the entry used. */
  lookup(vni: number, key: number, nowMs: number): string | undefined {
    const entry = this.tables.get(vni)?.entries.get(key);
    if (entry === undefined) return undefined;
    entry.usedMs = nowMs;
    return entry.vtep;
  }

  /** The flood list of `vni` (never mutated in place: safe to iterate while sending). */
  floodList(vni: number, nowMs: number): readonly string[] {
    const table = this.tables.get(vni);
    if (table === undefined) return EMPTY;
    table.peersUsedMs = nowMs;
    return peerList(table);
  }

  /** Marks the entry of `key` in `vni` used at nowMs, as lookup() and
   *  floodList() do (for a data path that forwards from a mirror of the
   *  table); key 0 (FLOOD_MAC) is the flood list. Unknown keys are ignored. */
  markUsed(vni: number, key: number, nowMs: number): void {
    const table = this.tables.get(vni);
    if (table === undefined) return;
    if (key === 0) {
      table.peersUsedMs = Math.max(table.peersUsedMs, nowMs);
      return;
    }
    const entry = table.entries.get(key);
    if (entry !== undefined) entry.usedMs = Math.max(entry.usedMs, nowMs);
  }

  /** Learns that source MAC `key` in `vni` sits behind `vtep`. */
  learn(vni: number, key: number, vtep: string, nowMs: number): LearnOutcome {
    if (!isLearnableMacKey(key)) return LearnOutcome.NotLearnable;
    const table = this.table(vni);
    const entry = table.entries.get(key);
    if (entry !== undefined) {
      if (entry.kind !== 'learned') return entry.vtep === vtep ? LearnOutcome.Static : LearnOutcome.StaticConflict;
      if (entry.vtep === vtep) {
        entry.updatedMs = nowMs;
        return LearnOutcome.Refreshed;
      }
      const refused = this.admit(vtep, nowMs);
      if (refused !== null) return refused;
      const previousVtep = entry.vtep;
      this.release(previousVtep);
      this.vtepLearning(vtep, nowMs).entries++;
      entry.vtep = vtep;
      entry.updatedMs = nowMs;
      this.emit({ type: 'moved', vni, mac: formatMacKey(key), vtep, kind: 'learned', previousVtep });
      return LearnOutcome.Moved;
    }
    if (this.learned >= this.maxLearned) return LearnOutcome.RefusedFull;
    const refused = this.admit(vtep, nowMs);
    if (refused !== null) return refused;
    table.entries.set(key, { key, vtep, kind: 'learned', updatedMs: nowMs, usedMs: nowMs });
    this.learned++;
    this.vtepLearning(vtep, nowMs).entries++;
    this.emit({ type: 'learned', vni, mac: formatMacKey(key), vtep, kind: 'learned' });
    return LearnOutcome.Learned;
  }

  /** Checks the per-VTEP limits for one more learned MAC and takes a token. */
  private admit(vtep: string, nowMs: number): LearnOutcome | null {
    const v = this.vtepLearning(vtep, nowMs);
    if (v.entries >= this.maxLearnedPerVtep) return LearnOutcome.RefusedVtepFull;
    if (this.learnRatePerMs > 0) {
      v.tokens = Math.min(this.learnBurst, v.tokens + (nowMs - v.refilledMs) * this.learnRatePerMs);
      v.refilledMs = nowMs;
      if (v.tokens < 1) return LearnOutcome.RefusedRate;
      v.tokens--;
    }
    return null;
  }

  private vtepLearning(vtep: string, nowMs: number): VtepLearning {
    let v = this.perVtep.get(vtep);
    if (v === undefined) {
      v = { entries: 0, tokens: this.learnBurst, refilledMs: nowMs };
      this.perVtep.set(vtep, v);
    }
    return v;
  }

  /** One learned entry less behind vtep; forgets the VTEP once it has none
   *  and a full bucket, so the map never outgrows the table. */
  private release(vtep: string): void {
    const v = this.perVtep.get(vtep);
    if (v === undefined) return;
    v.entries--;
    if (v.entries <= 0 && (this.learnRatePerMs === 0 || v.tokens + (this.now() - v.refilledMs) * this.learnRatePerMs >= this.learnBurst)) {
      this.perVtep.delete(vtep);
    }
  }

  // ---- control plane ----

  /** Appends configured peer `vtep` to the flood list; false if it is a
   *  configured peer already (one etcd lists becomes configured too). */
  addPeer(vni: number, vtep: string): boolean {
    return this.addFloodOrigin(vni, vtep, 'peer');
  }

  /** Removes configured peer `vtep`; it stays in the flood list while etcd lists it. */
  removePeer(vni: number, vtep: string): boolean {
    return this.removeFloodOrigin(vni, vtep, 'peer');
  }

  /** Adds `vtep` to the flood list as listed by etcd; false if etcd listed it already. */
  addEtcdPeer(vni: number, vtep: string): boolean {
    return this.addFloodOrigin(vni, vtep, 'etcd');
  }

  /** Etcd no longer lists `vtep`; it leaves the flood list unless it is a configured peer too. */
  removeEtcdPeer(vni: number, vtep: string): boolean {
    return this.removeFloodOrigin(vni, vtep, 'etcd');
  }

  /** Each origin of a VTEP emits its own added/deleted pair, so listeners that
   *  count (SourceFilter.name/unname) stay balanced. */
  private addFloodOrigin(vni: number, vtep: string, kind: 'peer' | 'etcd'): boolean {
    const table = this.table(vni);
    const origin = kind === 'peer' ? table.configPeers : table.etcdPeers;
    if (origin.has(vtep)) return false;
    origin.add(vtep);
    if (!table.peerSet.has(vtep)) {
      table.peerSet.add(vtep);
      table.peerList = null;
    }
    this.emit({ type: 'added', vni, mac: FLOOD_MAC, vtep, kind });
    return true;
  }

  private removeFloodOrigin(vni: number, vtep: string, kind: 'peer' | 'etcd'): boolean {
    const table = this.tables.get(vni);
    if (table === undefined) return false;
    const origin = kind === 'peer' ? table.configPeers : table.etcdPeers;
    if (!origin.delete(vtep)) return false;
    if (!table.configPeers.has(vtep) && !table.etcdPeers.has(vtep)) {
      table.peerSet.delete(vtep);
      table.peerList = null;
    }
    this.emit({ type: 'deleted', vni, mac: FLOOD_MAC, vtep, kind });
    return true;
  }

  /** The flood list of `vni`: configured and etcd peers. */
  peers(vni: number): readonly string[] {
    const table = this.tables.get(vni);
    return table === undefined ? EMPTY : peerList(table);
  }

  /** The configured peers of `vni` (what the state file keeps), without those only etcd lists. */
  configuredPeers(vni: number): readonly string[] {
    const table = this.tables.get(vni);
    return table === undefined ? EMPTY : [...table.configPeers];
  }

  /** The VTEPs etcd lists for `vni`. */
  etcdPeers(vni: number): readonly string[] {
    const table = this.tables.get(vni);
    return table === undefined ? EMPTY : [...table.etcdPeers];
  }

  /** Records etcd's claim that `mac` (normalised) sits behind `vtep` and puts
   *  it in effect unless a static entry holds the MAC (configured wins).
   *  Replaces a learned entry. False if nothing changed in the table. */
  addEtcd(vni: number, mac: string, vtep: string): boolean {
    const key = macKeyOf(mac);
    const table = this.table(vni);
    table.etcdMacs.set(key, vtep);
    const old = table.entries.get(key);
    if (old?.kind === 'static' || (old?.kind === 'etcd' && old.vtep === vtep)) return false;
    this.installEtcd(vni, table, key, vtep, old);
    return true;
  }

  /** Withdraws etcd's claim on `mac` if it names `vtep`; removes the entry
   *  if it is that claim in effect. False if there was no such claim. */
  removeEtcd(vni: number, mac: string, vtep: string): boolean {
    const key = macKeyOf(mac);
    const table = this.tables.get(vni);
    if (table === undefined || table.etcdMacs.get(key) !== vtep) return false;
    table.etcdMacs.delete(key);
    const entry = table.entries.get(key);
    if (entry?.kind === 'etcd') this.drop(vni, table, entry, 'deleted');
    return true;
  }

  private installEtcd(vni: number, table: VniTable, key: number, vtep: string, old: Entry | undefined): void {
    const nowMs = this.now();
    if (old !== undefined) this.drop(vni, table, old, 'deleted');
    table.entries.set(key, { key, vtep, kind: 'etcd', updatedMs: nowMs, usedMs: old?.usedMs ?? nowMs });
    this.etcds++;
    this.emit({ type: 'added', vni, mac: formatMacKey(key), vtep, kind: 'etcd' });
  }

  /** Pins `mac` (normalised, see parseMac) to `vtep`, replacing any learned or static entry. */
  addStatic(vni: number, mac: string, vtep: string): void {
    const key = macKeyOf(mac);
    const table = this.table(vni);
    const old = table.entries.get(key);
    if (old?.kind === 'learned') {
      this.learned--;
      this.release(old.vtep);
    }
    if (old?.kind === 'etcd') this.etcds--;
    if (old?.kind !== 'static') this.statics++;
    const nowMs = this.now();
    table.entries.set(key, { key, vtep, kind: 'static', updatedMs: nowMs, usedMs: old?.usedMs ?? nowMs });
    if (old !== undefined) this.emit({ type: 'deleted', vni, mac, vtep: old.vtep, kind: old.kind });
    this.emit({ type: 'added', vni, mac, vtep, kind: 'static' });
  }

  /** Removes the static or learned entry for `mac`; false if there is none
   *  (etcd entries belong to the membership). An etcd claim a static entry
   *  shadowed takes effect. */
  remove(vni: number, mac: string): boolean {
    const table = this.tables.get(vni);
    const entry = table?.entries.get(macKeyOf(mac));
    if (table === undefined || entry === undefined || entry.kind === 'etcd') return false;
    this.drop(vni, table, entry, 'deleted');
    this.restoreEtcd(vni, table, entry);
    return true;
  }

  private restoreEtcd(vni: number, table: VniTable, removed: Entry): void {
    const claim = removed.kind === 'static' ? table.etcdMacs.get(removed.key) : undefined;
    if (claim !== undefined) this.installEtcd(vni, table, removed.key, claim, undefined);
  }

  /** Removes learned entries, and static ones too unless learnedOnly. Peers and etcd entries stay. */
  flush(options: { learnedOnly: boolean }): number {
    let removed = 0;
    for (const [vni, table] of this.tables) {
      for (const entry of [...table.entries.values()]) {
        if (entry.kind === 'etcd' || (entry.kind === 'static' && options.learnedOnly)) continue;
        this.drop(vni, table, entry, 'deleted');
        this.restoreEtcd(vni, table, entry);
        removed++;
      }
    }
    return removed;
  }

  /** Ages out learned entries not updated within ageingMs. Returns how many went. */
  sweep(): number {
    for (const [vtep, v] of this.perVtep) if (v.entries <= 0) this.perVtep.delete(vtep);
    if (this.ageingMs === 0) return 0;
    const deadline = this.now() - this.ageingMs;
    let removed = 0;
    for (const [vni, table] of this.tables) {
      for (const entry of table.entries.values()) {
        if (entry.kind === 'learned' && entry.updatedMs <= deadline) {
          this.drop(vni, table, entry, 'aged');
          removed++;
        }
      }
    }
    return removed;
  }

  entries(): FdbEntry[] {
    const nowMs = this.now();
    const out: FdbEntry[] = [];
    for (const [vni, table] of this.tables) {
      for (const vtep of table.peerSet) {
        const usedAgoMs = Math.max(0, nowMs - table.peersUsedMs);
        const kind = table.configPeers.has(vtep) ? 'peer' : 'etcd';
        out.push({ vni, mac: FLOOD_MAC, vtep, kind, updatedAgoMs: 0, usedAgoMs });
      }
      for (const e of table.entries.values()) {
        out.push({
          vni,
          mac: formatMacKey(e.key),
          vtep: e.vtep,
          kind: e.kind,
          updatedAgoMs: Math.max(0, nowMs - e.updatedMs),
          usedAgoMs: Math.max(0, nowMs - e.usedMs),
        });
      }
    }
    return out;
  }

  staticEntries(): { vni: number; mac: string; vtep: string }[] {
    return this.entries()
      .filter((e) => e.kind === 'static')
      .map(({ vni, mac, vtep }) => ({ vni, mac, vtep }));
  }

  private table(vni: number): VniTable {
    let table = this.tables.get(vni);
    if (table === undefined) {
      table = { entries: new Map(), peerSet: new Set(), configPeers: new Set(), etcdPeers: new Set(), etcdMacs: new Map(), peerList: EMPTY, peersUsedMs: this.now() };
      this.tables.set(vni, table);
    }
    return table;
  }

  private drop(vni: number, table: VniTable, entry: Entry, type: 'aged' | 'deleted'): void {
    table.entries.delete(entry.key);
    if (entry.kind === 'learned') {
      this.learned--;
      this.release(entry.vtep);
    } else if (entry.kind === 'etcd') {
      this.etcds--;
    } else {
      this.statics--;
    }
    this.emit({ type, vni, mac: formatMacKey(entry.key), vtep: entry.vtep, kind: entry.kind });
  }
}

const EMPTY: readonly string[] = Object.freeze([]);

function peerList(table: VniTable): readonly string[] {
  table.peerList ??= [...table.peerSet];
  return table.peerList;
}
