// The native engine as the native data path sees it (src/datapath/
// native-datapath.ts depends on PacketEngine; src/io/engine.ts implements it
// over the addon), and the events and counts that cross between them.

import type { NativeSysError } from '../errors';
import type { CoreMirror, CoreNetwork } from './core';

export interface NativeEngineLearn { vni: number; mac: number; vtep: string }
/** count: datagrams with this VNI from this sender since the last report. */
export interface NativeEngineForeign { vni: number; from: string; count: number }

/** What the engine counted for one VTEP in one network since takeVtepCounts() last ran. */
export interface NativeEngineVtepCounts {
  /** The network's slot (PacketEngine.addNetwork), or -1 for host-level counts
   *  (datagrams dropped before their network was known, ICMP errors). */
  slot: number;
  /** The VTEP's IP, or null for the sum over addresses past the engine's
   *  per-report bound (count them under 'other'). */
  vtep: string | null;
  rxPackets: number;
  rxBytes: number;
  txPackets: number;
  txBytes: number;
  /** Datagrams from it dropped, and sends to it that failed (a send error,
   *  or an ICMP error about a datagram already counted as sent). */
  drops: number;
  /** How long before delivery the last datagram from it arrived; -1 = none. */
  lastRxAgoMs: number;
}

/** A forwarding entry (or, mac 0, the flood list) the engine sent to. */
export interface NativeEngineUsed { vni: number; mac: number }

/** A sender refused by network vni's source policy and its datagrams since the previous report. */
export interface NativeEngineRefused { vni: number; from: string; count: number }

/** The engine's events. Observations carry learning (deduplicated), foreign
 *  VNIs, refused senders (at most 64 per event) and used entries. */
export type NativeEngineEvent =
  | {
      type: 'observations';
      learn: NativeEngineLearn[];
      foreign: NativeEngineForeign[];
      refused: NativeEngineRefused[];
      /** Forwarding entries frames were sent to (the table's USED time), each
       *  at most once a second; mac 0 (FLOOD_MAC) = the flood list of vni. */
      used: NativeEngineUsed[];
    }
  /** A removed network's TAP is closed (no worker holds it any more). */
  | { type: 'tapClosed'; vni: number }
  /** Reading network vni's TAP failed (EOF as EBADFD: the device was
   *  deleted); once per TAP. The threads read it no more and carry the
   *  other networks on; it is still served until removeNetwork(vni). The
   *  error's message names the device (addNetwork's name); token is
   *  addNetwork's for that TAP (0 if none given). */
  | { type: 'tapFailed'; vni: number; token: number; error: NativeSysError }
  | { type: 'fallback'; feature: 'tso' | 'uso' | 'gso' | 'gro' | 'srcport'; errno: number; message: string }
  | { type: 'fatal'; error: NativeSysError };

export interface NativeEngineInfo {
  port: number;
  offload: boolean;
  gso: boolean;
  gro: boolean;
  coalesce: boolean;
  /** Every TAP took UDP segmentation offload (TUN_F_USO4/6, Linux 6.2+): a
   *  UDP_SEGMENT sender's super-frames are read whole, and with coalesce
   *  received datagrams of one UDP flow go into one write. */
  uso: boolean;
  rcvbufBytes: number;
  sndbufBytes: number;
  /** The send sockets' source ports (empty: sends leave from `port`). */
  srcPorts: number[];
  state: 'idle' | 'running' | 'stopped';
}

/** A network's counters (totals since it was added). */
export interface NativeNetworkCounters {
  rxPackets: number;
  rxBytes: number;
  txPackets: number;
  txBytes: number;
  /** Indexed by DropReason. */
  drops: Float64Array;
  /** Indexed by NetEvent (src/tables/net-events.generated.ts). */
  events: Float64Array;
}

/** A snapshot of the engine's host counters (totals since open; drops only
 *  the host-level ones, those before a datagram's network is known). */
export interface NativeEngineCounters {
  rxPackets: number;
  rxBytes: number;
  txPackets: number;
  txBytes: number;
  /** Indexed by DropReason. */
  drops: Float64Array;
  /** Diagnostics by name: rxDatagrams, txDatagrams, rxRecvCalls,
   *  rxGroDatagrams, rxTapWrites, rxCoalescedWrites, txTapReads,
   *  txTsoFrames, txSendCalls, txGsoMessages, txWorkerSplits (the tx
   *  worker moved to a thread of its own under load), txWorkerJoins (and
   *  back to the rx thread), rxBusyPolls (busy polls after an isolated
   *  packet, native/engine_sched.h), rxBusyPollHits (those that saw a
   *  packet, so its answer cost no wake-up). */
  detail: Record<string, number>;
}

/** The engine's packet threads (one socket, any number of TAPs) and the core
 *  context (networks, mirror, policies) they classify and forward with. */
export interface PacketEngine extends CoreMirror {
  /** Starts the packet threads; events arrive on the event loop until stop(). */
  start(onEvent: (event: NativeEngineEvent) => void): void;
  /** Joins the threads and closes every TAP and the socket. Idempotent. */
  stop(): void;
  /** Carries network n from now on over the TAP fd (owned by the engine once
   *  this returns): its slot, or -1 when the VNI is served already. token
   *  (default 0) comes back in this TAP's 'tapFailed'. */
  addNetwork(n: CoreNetwork & { tapFd: number; standIn?: boolean; name?: string; token?: number }): number;
  /** Stops carrying it; while running, a 'tapClosed' event says when its TAP is closed. */
  removeNetwork(vni: number): boolean;
  /** Per-VTEP counts since the previous call (vtep null = 'other'). */
  takeVtepCounts(): NativeEngineVtepCounts[];
  counters(): NativeEngineCounters;
  netCounters(slot: number): NativeNetworkCounters;
  info(): NativeEngineInfo;
}
