// What a SIGHUP reload changes. The daemon re-reads its config file (flags
// given at start still win) and applies the difference without a restart:
// networks the file adds or no longer lists (a network is known by its VNI),
// and within each network kept, the peers, static FDB entries and static
// neighbours listed in the file, the source policy and ARP/ND suppression;
// the host's log level. Everything else is fixed
// for the life of the process (host settings such as port or socket; a kept
// network's dev, MTU, addresses, ...); a change to it is reported as needing
// a restart and otherwise ignored. Runtime changes made with the CLI are left
// alone: only what the old file listed and the new file does not is removed,
// and networks added with `vxland network add` are not the file's to remove.

import { isDeepStrictEqual } from 'node:util';
import type { AcceptPolicy, HostConfig, LogLevel, NeighbourConfig, NetworkConfig, StaticFdbConfig } from './config.js';

export interface NetworkReloadPlan {
  vni: number;
  addPeers: string[];
  removePeers: string[];
  addStatic: StaticFdbConfig[];
  /** MACs whose static entry the old file listed and the new one does not. */
  removeStatic: string[];
  accept: AcceptPolicy | null;
  addNeigh: NeighbourConfig[];
  /** IPs whose static neighbour the old file listed and the new one does not. */
  removeNeigh: string[];
  /** The new "suppress" setting (null: the default) when it changed, else undefined. */
  suppress?: boolean | null;
}

export interface ReloadPlan {
  /** Networks the new file lists and the old one did not. */
  addNetworks: NetworkConfig[];
  /** VNIs the old file listed and the new one does not. */
  removeNetworks: number[];
  /** The networks in both files that changed in what a reload applies. */
  networks: NetworkReloadPlan[];
  logLevel: LogLevel | null;
  /** Settings that changed but only take effect after a restart: host keys
   *  ("port") and network keys ("networks (vni 42).mtu"). */
  needRestart: string[];
}

const APPLIED_HOST_KEYS: ReadonlySet<keyof HostConfig> = new Set<keyof HostConfig>(['networks', 'logLevel']);
const APPLIED_NETWORK_KEYS: ReadonlySet<keyof NetworkConfig> = new Set<keyof NetworkConfig>(['vni', 'peers', 'fdb', 'accept', 'neigh', 'suppress']);

export function planReload(current: HostConfig, next: HostConfig): ReloadPlan {
  const currentByVni = new Map(current.networks.map((n) => [n.vni, n]));
  const nextVnis = new Set(next.networks.map((n) => n.vni));
  const needRestart = (Object.keys(next) as (keyof HostConfig)[])
    .filter((key) => !APPLIED_HOST_KEYS.has(key) && !isDeepStrictEqual(current[key], next[key])) as string[];
  const networks: NetworkReloadPlan[] = [];
  for (const n of next.networks) {
    const old = currentByVni.get(n.vni);
    if (old === undefined) continue;
    const plan = planNetwork(old, n);
    const listChanges = plan.addPeers.length + plan.removePeers.length + plan.addStatic.length + plan.removeStatic.length + plan.addNeigh.length + plan.removeNeigh.length;
    if (listChanges > 0 || plan.accept !== null || plan.suppress !== undefined) {
      networks.push(plan);
    }
    for (const key of Object.keys(n) as (keyof NetworkConfig)[]) {
      if (!APPLIED_NETWORK_KEYS.has(key) && !isDeepStrictEqual(old[key], n[key])) needRestart.push(`networks (vni ${n.vni}).${key}`);
    }
  }
  return {
    addNetworks: next.networks.filter((n) => !currentByVni.has(n.vni)),
    removeNetworks: current.networks.filter((n) => !nextVnis.has(n.vni)).map((n) => n.vni),
    networks,
    logLevel: next.logLevel !== current.logLevel ? next.logLevel : null,
    needRestart,
  };
}

function planNetwork(current: NetworkConfig, next: NetworkConfig): NetworkReloadPlan {
  const currentPeers = new Set(current.peers);
  const nextPeers = new Set(next.peers);
  const currentVtepOf = new Map(current.fdb.map((e) => [e.mac, e.vtep]));
  const nextMacs = new Set(next.fdb.map((e) => e.mac));
  const currentNeighMac = new Map(current.neigh.map((e) => [e.ip, e.mac]));
  const nextNeighIps = new Set(next.neigh.map((e) => e.ip));
  return {
    vni: next.vni,
    addPeers: next.peers.filter((p) => !currentPeers.has(p)),
    removePeers: current.peers.filter((p) => !nextPeers.has(p)),
    addStatic: next.fdb.filter((e) => currentVtepOf.get(e.mac) !== e.vtep),
    removeStatic: current.fdb.filter((o) => !nextMacs.has(o.mac)).map((o) => o.mac),
    accept: isDeepStrictEqual(current.accept, next.accept) ? null : next.accept,
    addNeigh: next.neigh.filter((e) => currentNeighMac.get(e.ip) !== e.mac),
    removeNeigh: current.neigh.filter((o) => !nextNeighIps.has(o.ip)).map((o) => o.ip),
    ...(current.suppress === next.suppress ? {} : { suppress: next.suppress }),
  };
}

/** What the running daemon's config becomes after a reload: the new file's,
 *  except the settings that need a restart, which keep their running value
 *  (so that the next reload reports them again rather than forgetting them). */
export function appliedConfig(current: HostConfig, next: HostConfig, plan: ReloadPlan): HostConfig {
  const currentByVni = new Map(current.networks.map((n) => [n.vni, n]));
  const networks = next.networks.map((n) => {
    const old = currentByVni.get(n.vni);
    if (old === undefined) return n;
    const kept = Object.fromEntries((Object.keys(n) as (keyof NetworkConfig)[]).filter((k) => !APPLIED_NETWORK_KEYS.has(k)).map((k) => [k, old[k]]));
    return Object.freeze({ ...n, ...kept });
  });
  const keptHost = Object.fromEntries(plan.needRestart.filter((k) => !k.startsWith('networks ')).map((k) => [k, current[k as keyof HostConfig]]));
  return Object.freeze({ ...next, ...keptHost, networks: Object.freeze(networks) });
}
