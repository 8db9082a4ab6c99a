// The native data path in one process without root: NativeEngine.openWith()
// on a StandInTap and a loopback UDP socket, joined to an Fdb, Stats and a
// SourceFilter as the daemon joins them (src/daemon.ts). What the test
// sees is what the daemon would: the Fdb, Stats, frames on the stand-in,
// datagrams at LoopbackPeer sockets.

import { closeSync } from 'node:fs';
import pino from 'pino';
import type { AcceptPolicy } from '../../src/config/config';
import { SourceFilter } from '../../src/datapath/accept';
import { followFdbEvent } from '../../src/datapath/follow-fdb';
import { NativeDatapath } from '../../src/datapath/native-datapath';
import { Stats } from '../../src/datapath/stats';
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
  fdb?: Partial<FdbOptions>;
  /** The clock of the Fdb and the data path; default Date.now. */
  now?: () => number;
  /** Runs on the Fdb after the peers are added, before the engine starts
   *  (static and learned entries reach the engine's mirror at start). */
  seed?: (fdb: Fdb) => void;
}

export interface NativeHost {
  engine: NativeEngine;
  dp: NativeDatapath;
  fdb: Fdb;
  stats: Stats;
  sources: SourceFilter;
  tap: StandInTap;
  /** Fdb events since start (seeded entries not included). */
  fdbEvents: FdbEvent[];
  fatal: Error[];
  /** Stops the data path and closes the stand-in. Idempotent; also a teardown. */
  close(): Promise<void>;
}

export function openNativeHost(t: TapLike, o: NativeHostOptions): NativeHost {
  const now = o.now ?? Date.now;
  const stats = new Stats();
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
  const dp = new NativeDatapath({ vni: o.vni, fdb, engine, stats, log: pino({ level: 'silent' }), sources, allowVlan: o.allowVlan ?? false, now });
  const fdbEvents: FdbEvent[] = [];
  fdb.subscribe((e) => fdbEvents.push(e));
  const fatal: Error[] = [];
  dp.start((err) => fatal.push(err));
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= dp.stop().then(() => tap.close());
    return closed;
  };
  t.teardown(close);
  return { engine, dp, fdb, stats, sources, tap, fdbEvents, fatal, close };
}
