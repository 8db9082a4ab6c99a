// The neighbour table: per network, which MAC owns an IP address of the
// overlay. ARP/ND suppression (native/core_suppress.h) answers requests for
// these addresses on the TAP instead of flooding them; the data paths read a
// mirror of this table (src/datapath/neigh-sync.ts feeds it), this class is
// the authority.
// - `static` entries come from the config file (`"neigh"`) and `vxland neigh
//   add`; they persist with the network's state (as static FDB entries do).
// - `etcd` entries are the bindings other hosts publish in the membership
//   (src/membership/): replaced whole per (network, remote VTEP), never saved.
// - On conflict a static entry wins (the etcd claim is kept aside and takes
//   effect when the static one is removed), the same rule as the Fdb's: what
//   an admin typed is deliberate, etcd is what other hosts claim. Between two
//   etcd claims for one address the latest one wins.
// Inputs are canonical: IPs as config/validate.ts normalizeIp gives them,
// MACs as parseMac gives them.

export type NeighbourOwner = 'static' | 'etcd';

export interface NeighbourEntry {
  vni: number;
  ip: string;
  mac: string;
  owner: NeighbourOwner;
  /** etcd: the remote VTEP whose binding it is. */
  vtep?: string;
}

/** The effective entry of (vni, ip) changed (`mac` null: it is gone), or
 *  whether network vni answers from the table. */
export type NeighbourEvent =
  | { kind: 'entry'; vni: number; ip: string; mac: string | null }
  | { kind: 'suppress'; vni: number; on: boolean };

export interface NeighbourBinding {
  ip: string;
  mac: string;
}

type Key = string;
const keyOf = (vni: number, ip: string): Key => `${vni}|${ip}`;

export class Neighbours {
  private readonly statics = new Map<Key, NeighbourEntry>();
  /** (vni, ip) -> etcd claims by VTEP, the latest last. */
  private readonly claims = new Map<Key, Map<string, NeighbourEntry>>();
  /** `${vni}|${vtep}` -> the IPs that VTEP claims. */
  private readonly byVtep = new Map<string, Set<string>>();
  private readonly listeners = new Set<(event: NeighbourEvent) => void>();
  private readonly suppressing = new Set<number>();

  /** Whether network vni answers ARP/ND from this table (off until set). */
  suppresses(vni: number): boolean {
    return this.suppressing.has(vni);
  }

  setSuppress(vni: number, on: boolean): void {
    if (this.suppressing.has(vni) === on) return;
    if (on) this.suppressing.add(vni);
    else this.suppressing.delete(vni);
    this.emit({ kind: 'suppress', vni, on });
  }

  /** The listener sees every change of an effective entry; returns its unsubscribe. */
  subscribe(listener: (event: NeighbourEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The entry suppression answers with for (vni, ip). */
  lookup(vni: number, ip: string): NeighbourEntry | undefined {
    const k = keyOf(vni, ip);
    const s = this.statics.get(k);
    if (s !== undefined) return s;
    const c = this.claims.get(k);
    if (c === undefined) return undefined;
    return [...c.values()].at(-1);
  }

  /** Effective entries (static over etcd), by VNI then IP; of vni only when given. */
  entries(vni?: number): NeighbourEntry[] {
    const keys = new Set([...this.statics.keys(), ...this.claims.keys()]);
    const out: NeighbourEntry[] = [];
    for (const k of keys) {
      const [v, ip] = [Number(k.slice(0, k.indexOf('|'))), k.slice(k.indexOf('|') + 1)];
      if (vni !== undefined && v !== vni) continue;
      const e = this.lookup(v, ip);
      if (e !== undefined) out.push({ ...e });
    }
    return out.sort((a, b) => a.vni - b.vni || a.ip.localeCompare(b.ip));
  }

  /** The static entries (what is saved), of vni when given. */
  staticEntries(vni?: number): NeighbourEntry[] {
    return this.entries(vni).filter((e) => e.owner === 'static');
  }

  /** Adds or replaces the static entry of (vni, ip). */
  addStatic(vni: number, ip: string, mac: string): void {
    this.change(vni, ip, () => this.statics.set(keyOf(vni, ip), { vni, ip, mac, owner: 'static' }));
  }

  /** Removes the static entry (an etcd claim for the address, if any, takes
   *  effect); false when there was none. */
  removeStatic(vni: number, ip: string): boolean {
    let had = false;
    this.change(vni, ip, () => {
      had = this.statics.delete(keyOf(vni, ip));
    });
    return had;
  }

  /** Replaces what remote VTEP vtep claims in network vni ([] = it is gone). */
  replaceEtcd(vni: number, vtep: string, bindings: readonly NeighbourBinding[]): void {
    const vk = `${vni}|${vtep}`;
    const before = this.byVtep.get(vk) ?? new Set<string>();
    const next = new Map(bindings.map((b) => [b.ip, b.mac]));
    for (const ip of before) {
      if (!next.has(ip)) this.change(vni, ip, () => this.dropClaim(vni, ip, vtep));
    }
    for (const [ip, mac] of next) {
      const k = keyOf(vni, ip);
      if (this.claims.get(k)?.get(vtep)?.mac === mac) continue;
      this.change(vni, ip, () => {
        const c = this.claims.get(k) ?? new Map<string, NeighbourEntry>();
        c.delete(vtep);
        c.set(vtep, { vni, ip, mac, owner: 'etcd', vtep });
        this.claims.set(k, c);
      });
    }
    if (next.size === 0) this.byVtep.delete(vk);
    else this.byVtep.set(vk, new Set(next.keys()));
  }

  /** Forgets every entry of network vni (it is removed); no events. */
  removeVni(vni: number): void {
    this.suppressing.delete(vni);
    const prefix = `${vni}|`;
    for (const map of [this.statics, this.claims, this.byVtep]) {
      for (const k of [...map.keys()]) if (k.startsWith(prefix)) map.delete(k);
    }
  }

  private dropClaim(vni: number, ip: string, vtep: string): void {
    const k = keyOf(vni, ip);
    const c = this.claims.get(k);
    c?.delete(vtep);
    if (c?.size === 0) this.claims.delete(k);
  }

  /** Runs fn and tells the listeners when (vni, ip)'s effective MAC changed. */
  private change(vni: number, ip: string, fn: () => void): void {
    const before = this.lookup(vni, ip)?.mac ?? null;
    fn();
    const after = this.lookup(vni, ip)?.mac ?? null;
    if (before === after) return;
    this.emit({ kind: 'entry', vni, ip, mac: after });
  }

  private emit(event: NeighbourEvent): void {
    for (const listener of this.listeners) listener(event);
  }
}
