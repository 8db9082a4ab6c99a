// The native data path in one process without root: NativeEngine.openWith()
// on a StandInTap and a loopback UDP socket, joined to an Fdb, Stats and a
// SourceFilter as the daemon joins them (src/daemon.ts). What the test
// sees is what the daemon would: the Fdb, Stats, frames on the stand-in,
// datagrams at LoopbackPeer sockets.

import type { Neighbours } from '../../src/fdb/neighbours';
import { closeSync } from 'node:fs';
import pino from 'pino';
import type { AcceptPolicy } from '../../src/config/config';
import { SourceFilter } from '../../src/datapath/accept';
import { followFdbEvent } from '../../src/datapath/follow-fdb';
import { NativeDatapath } from '../../src/datapath/native-datapath';
import { Stats } from '../../src/datapath/stats';
import type { VxlandError } from '../../src/errors';
import { Fdb, type FdbEvent, type FdbOptions } from '../../src/fdb/fdb';
import { NativeEngine } from '../../src/io/engine';
import { StandInTap } from '../fakes';
import type { TapLike } from './netns';

export interface NativeHostOptions {
  vni: number;
  mac: Buffer;
  /** Loopback address the engine binds; default 127.0.0.1. */
  local?: string;
  /** Default 0 (the kernel picks). */
  port?: number;
  /** The other VTEPs' UDP port; default 0 = the port the engine bound. */
  dstPort?: number;
  mtu?: number;
  peers?: readonly string[];
  accept?: AcceptPolicy;
  allowVlan?: boolean;
  /** ARP/ND suppression's table (its per-network flag included). */
  neighbours?: Neighbours;
  fdb?: Partial<FdbOptions>;
  /** The clock of the Fdb and the data path; default Date.now. */
  now?: () => number;
  /** Runs on the Fdb after the peers are added, before the engine starts
   *  (static and learned entries reach the engine's mirror at start). */
  seed?: (fdb: Fdb) => void;
  /** Host-level counts in a Stats of their own (default: in the first network's). */
  separateHostStats?: boolean;
}

/** Another network on the same engine (NativeHost.addNetwork). */
export interface NativeNetworkOptions {
  vni: number;
  mac: Buffer;
  mtu?: number;
  peers?: readonly string[];
  accept?: AcceptPolicy;
  allowVlan?: boolean;
  /** The device the stand-in plays (named in a TAP failure's message). */
  name?: string;
  /** See NativeNetworkOptions.onFailed in src/datapath/native-datapath.ts. */
  onFailed?: (err: VxlandError) => void;
}

export interface NativeNetwork {
  vni: number;
  fdb: Fdb;
  stats: Stats;
  sources: SourceFilter;
  tap: StandInTap;
}

export interface NativeHost {
  engine: NativeEngine;
  dp: NativeDatapath;
  fdb: Fdb;
  stats: Stats;
  /** Host-level drops and foreign-VNI senders (the first network's stats unless separateHostStats). */
  hostStats: Stats;
  sources: SourceFilter;
  tap: StandInTap;
  /** Fdb events since start (seeded entries not included). */
  fdbEvents: FdbEvent[];
  fatal: Error[];
  /** Another network on a stand-in of its own, carried at once. */
  addNetwork(o: NativeNetworkOptions): NativeNetwork;
  /** Stops the data path and closes the stand-ins. Idempotent; also a teardown. */
  close(): Promise<void>;
}

export function openNativeHost(t: TapLike, o: NativeHostOptions): NativeHost {
  const now = o.now ?? Date.now;
  const stats = new Stats();
  const hostStats = o.separateHostStats === true ? new Stats() : stats;
  const sources = new SourceFilter(o.accept ?? { kind: 'peers' });
  const fdb = new Fdb({ ageingMs: 300_000, maxLearned: 1000, now, ...o.fdb });
  fdb.subscribe((e) => followFdbEvent(e, stats, sources));
  for (const p of o.peers ?? []) fdb.addPeer(o.vni, p);
  o.seed?.(fdb);
  const tap = new StandInTap();
  let engine: NativeEngine;
  try {
    engine = NativeEngine.openWith({
      tapFd: tap.engineFd,
      name: 'stand-in',
      mtu: o.mtu ?? 1450,
      mac: o.mac,
      vni: o.vni,
      local: o.local ?? '127.0.0.1',
      port: o.port ?? 0,
      dstPort: o.dstPort ?? 0,
    });
  } catch (err) {
    // openWith leaves the fd to the caller when it throws.
    closeSync(tap.engineFd);
    tap.close();
    throw err;
  }
  const dp = new NativeDatapath({ engine, hostStats, log: pino({ level: 'silent' }), now });
  dp.addNetwork({ vni: o.vni, slot: engine.first!.slot, fdb, stats, sources, allowVlan: o.allowVlan ?? false, neighbours: o.neighbours });
  const fdbEvents: FdbEvent[] = [];
  fdb.subscribe((e) => fdbEvents.push(e));
  const fatal: Error[] = [];
  dp.start((err) => fatal.push(err));
  const taps = [tap];
  const addNetwork = (n: NativeNetworkOptions): NativeNetwork => {
    const netStats = new Stats();
    const netSources = new SourceFilter(n.accept ?? { kind: 'peers' });
    const netFdb = new Fdb({ ageingMs: 300_000, maxLearned: 1000, now, ...o.fdb });
    netFdb.subscribe((e) => followFdbEvent(e, netStats, netSources));
    for (const p of n.peers ?? []) netFdb.addPeer(n.vni, p);
    const netTap = new StandInTap();
    let slot: number;
    try {
      slot = engine.addStandIn({ vni: n.vni, mtu: n.mtu ?? 1450, mac: n.mac, tapFd: netTap.engineFd, name: n.name });
    } catch (err) {
      closeSync(netTap.engineFd);
      netTap.close();
      throw err;
    }
    taps.push(netTap);
    dp.addNetwork({ vni: n.vni, slot, fdb: netFdb, stats: netStats, sources: netSources, allowVlan: n.allowVlan ?? false, onFailed: n.onFailed });
    return { vni: n.vni, fdb: netFdb, stats: netStats, sources: netSources, tap: netTap };
  };
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= dp.stop().then(() => {
      for (const x of taps) x.close();
    });
    return closed;
  };
  t.teardown(close);
  return { engine, dp, fdb, stats, hostStats, sources, tap, fdbEvents, fatal, addNetwork, close };
}
