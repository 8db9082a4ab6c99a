// What a SIGHUP reload changes. The daemon re-reads its config file (flags
// given at start still win) and applies the difference without a restart:
// peers and static entries listed in the file, the log level and the source
// policy. Everything else is fixed for the life of the process; a change to it
// is reported as needing a restart and otherwise ignored. Runtime changes made
// with the CLI are left alone: only what the old file listed and the new file
// does not is removed.

import { isDeepStrictEqual } from 'node:util';
import type { AcceptPolicy, Config, LogLevel, StaticFdbConfig } from './config.js';

export interface ReloadPlan {
  addPeers: string[];
  removePeers: string[];
  addStatic: StaticFdbConfig[];
  /** MACs whose static entry the old file listed and the new one does not. */
  removeStatic: string[];
  logLevel: LogLevel | null;
  accept: AcceptPolicy | null;
  /** Config keys that changed but only take effect after a restart. */
  needRestart: string[];
}

const APPLIED_KEYS: ReadonlySet<keyof Config> = new Set<keyof Config>(['peers', 'fdb', 'logLevel', 'accept']);

export function planReload(current: Config, next: Config): ReloadPlan {
  const currentPeers = new Set(current.peers);
  const nextPeers = new Set(next.peers);
  const currentVtepOf = new Map(current.fdb.map((e) => [e.mac, e.vtep]));
  const nextMacs = new Set(next.fdb.map((e) => e.mac));
  const addPeers = next.peers.filter((p) => !currentPeers.has(p));
  const removePeers = current.peers.filter((p) => !nextPeers.has(p));
  const addStatic = next.fdb.filter((e) => currentVtepOf.get(e.mac) !== e.vtep);
  const removeStatic = current.fdb.filter((o) => !nextMacs.has(o.mac)).map((o) => o.mac);
  const needRestart = (Object.keys(next) as (keyof Config)[])
    .filter((key) => !APPLIED_KEYS.has(key) && !isDeepStrictEqual(current[key], next[key]));
  return {
    addPeers,
    removePeers,
    addStatic,
    removeStatic,
    logLevel: next.logLevel !== current.logLevel ? next.logLevel : null,
    accept: isDeepStrictEqual(current.accept, next.accept) ? null : next.accept,
    needRestart,
  };
}
