// The networks a daemon serves, as the control plane sees them, and the one
// rule that turns a request's selector (--vni / --dev) into one of them.

import type { AcceptPolicy, NetworkConfig } from '../config/config.js';
import { networkLabel } from '../config/config.js';
import { VxlandError } from '../errors.js';
import type { Fdb } from '../fdb/fdb.js';
import type { Neighbours } from '../fdb/neighbours.js';
import type { StatsReader } from '../ports/counters.js';
import type { TapCondition } from '../ports/tap-condition.js';
import type { StateStore } from '../state/store.js';
import type { MonitorEvent, NetworkSelector } from './protocol.js';

/** The network's source policy (SourceFilter): what status and doctor show,
 *  and the change a reload applies. */
export interface AcceptDescription {
  describe(): string;
  setPolicy(policy: AcceptPolicy): void;
}

/** One network the daemon carries, with everything a request may touch. */
export interface ServedNetwork {
  /** As configured (a reload replaces it with the applied settings). */
  config: NetworkConfig;
  readonly origin: 'config' | 'runtime';
  /** The TAP device's own MAC address. */
  readonly mac: string;
  readonly fdb: Fdb;
  /** The host's neighbour table (keyed by VNI; ARP/ND suppression and `vxland neigh`). */
  readonly neighbours: Neighbours;
  readonly stats: StatsReader;
  readonly sources: AcceptDescription;
  readonly store: StateStore;
  /** `vxland monitor` clients of this network. */
  readonly monitors: Set<(event: MonitorEvent) => void>;
  tapCondition(): TapCondition;
}

export class Networks {
  private readonly byVni = new Map<number, ServedNetwork>();

  get size(): number {
    return this.byVni.size;
  }

  /** In the order they were added (config file order first). */
  all(): ServedNetwork[] {
    return [...this.byVni.values()];
  }

  get(vni: number): ServedNetwork | undefined {
    return this.byVni.get(vni);
  }

  /** The network already using n's VNI or dev, if any. */
  clash(n: { vni: number; dev: string }): ServedNetwork | undefined {
    return this.byVni.get(n.vni) ?? this.all().find((s) => s.config.dev === n.dev);
  }

  /** Throws VXLAND_NETWORK_EXISTS when n's VNI or dev is taken. */
  add(n: ServedNetwork): void {
    const clash = this.clash(n.config);
    if (clash !== undefined) throw exists(n.config, clash.config);
    this.byVni.set(n.config.vni, n);
  }

  delete(vni: number): void {
    this.byVni.delete(vni);
  }

  /** The network a request means: by vni and/or dev (both must agree), or
   *  the only one. Throws VXLAND_NETWORK_UNKNOWN (naming the networks there
   *  are) or VXLAND_NETWORK_AMBIGUOUS (listing them). */
  select(selector: NetworkSelector): ServedNetwork {
    const { vni, dev } = selector;
    if (vni === undefined && dev === undefined) {
      if (this.byVni.size === 1) return this.all()[0];
      if (this.byVni.size === 0) throw new VxlandError('VXLAND_NETWORK_UNKNOWN', 'this daemon serves no network yet; add one with "vxland network add --vni N"');
      throw new VxlandError('VXLAND_NETWORK_AMBIGUOUS', `this daemon serves ${this.byVni.size} networks (${this.listed()}); say which with --vni N or --dev NAME`);
    }
    const found = vni !== undefined ? this.byVni.get(vni) : this.all().find((s) => s.config.dev === dev);
    if (found === undefined || (dev !== undefined && found.config.dev !== dev)) {
      const asked = [vni !== undefined ? `vni ${vni}` : '', dev !== undefined ? `dev ${dev}` : ''].filter(Boolean).join(' and ');
      throw new VxlandError('VXLAND_NETWORK_UNKNOWN', `no network with ${asked} (networks: ${this.byVni.size === 0 ? 'none' : this.listed()})`);
    }
    return found;
  }

  private listed(): string {
    return this.all().map((s) => networkLabel(s.config)).join(', ');
  }
}

/** VXLAND_NETWORK_EXISTS for n, which clashes with the served `taken`. */
export function exists(n: { vni: number; dev: string }, taken: { vni: number; dev: string }): VxlandError {
  const what = n.vni === taken.vni ? `vni ${n.vni}` : `dev ${n.dev}`;
  return new VxlandError('VXLAND_NETWORK_EXISTS', `${what} is already served (network ${networkLabel(taken)})`);
}
