// The native engine (native/engine_core.h): a TAP opened with IFF_VNET_HDR
// and a UDP socket, driven by two native packet threads (one while traffic
// is light, see native/engine_core.cc). This wrapper
// opens and configures the TAP (policy as in src/io/tap.ts), constructs the
// engine, and exposes the mirror updates, counters and events. Forwarding
// rules stay in src/fdb/fdb.ts; src/datapath/native-datapath.ts joins the two.

import { DROP_REASON_COUNT, DROP_REASON_NAMES } from '../drop-reasons.generated';
import { VxlandError } from '../errors';
import { VNI_MAX } from '../limits.generated';
import {
  NativeAddon,
  addonTableMismatch,
  type NativeEngineEvent,
  NativeEngineHandle,
  NativeEngineInfo,
  type NativeEngineVtepCounts,
  callNative,
  isNativeSysError,
  loadAddon,
  toVxlandError,
} from './addon';
import { openConfiguredTap } from './tap';

export type { NativeEngineEvent, NativeEngineForeign, NativeEngineInfo, NativeEngineRefused, NativeEngineUsed, NativeEngineVtepCounts } from './addon';

export interface NativeEngineOpenOptions {
  /** TAP name, 1..15 bytes (see ifnameProblem). */
  name: string;
  /** Inner MTU in bytes. */
  mtu: number;
  /** CIDRs for the TAP, as TapOpenOptions.addresses. */
  addresses?: readonly string[];
  /** The TAP's MAC, as TapOpenOptions.mac. */
  mac?: Buffer;
  vni: number;
  /** Local underlay IP literal to bind (IPv4 or IPv6). */
  local: string;
  /** Local UDP port (0 = kernel picks; see NativeEngine.port). */
  port: number;
  /** UDP port of the other VTEPs; default `port`. */
  dstPort?: number;
  /** Test/diagnostic switches, all default true: TAP TSO/checksum offload,
   *  UDP GSO sends, UDP_GRO receives, TCP coalescing on rx. */
  offload?: boolean;
  gso?: boolean;
  gro?: boolean;
  coalesce?: boolean;
  /** Socket buffer request in bytes (forced past rmem_max/wmem_max when root). */
  socketBufferBytes?: number;
}

/** A snapshot of the engine's counters (totals since open). */
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
   *  back to the rx thread). */
  detail: Record<string, number>;
}

function badArgument(message: string): VxlandError {
  return new VxlandError('VXLAND_BAD_ARGUMENT', `invalid argument: ${message}`);
}

const SOCKET_SYSCALLS = /^(socket|bind|setsockopt|getsockname|eventfd)/;

export class NativeEngine {
  readonly name: string;
  readonly mtu: number;
  readonly mac: Buffer;
  readonly vni: number;
  /** The local UDP port actually bound. */
  readonly port: number;
  private readonly handle: NativeEngineHandle;
  private readonly counterNames: readonly string[];
  /** For each counter index: its DropReason, or -1 for a counter that is no drop. */
  private readonly dropOf: Int32Array;
  private readonly raw: Float64Array;
  private onEvent: (event: NativeEngineEvent) => void = () => undefined;
  private state: 'idle' | 'running' | 'stopped' = 'idle';

  private constructor(addon: NativeAddon, o: NativeEngineOpenOptions, fd: number, name: string, mtu: number, mac: Buffer) {
    this.name = name;
    this.mtu = mtu;
    this.mac = mac;
    this.vni = o.vni;
    this.handle = new addon.NativeEngine(
      {
        tapFd: fd,
        mtu,
        vni: o.vni,
        local: o.local,
        port: o.port,
        dstPort: o.dstPort ?? o.port,
        ownMac: mac,
        offload: o.offload,
        gso: o.gso,
        gro: o.gro,
        coalesce: o.coalesce,
        socketBufferBytes: o.socketBufferBytes,
      },
      (event) => this.onEvent(event),
    );
    this.counterNames = addon.NativeEngine.counterNames;
    this.dropOf = Int32Array.from(this.counterNames, (n) => (n.startsWith('drop:') ? DROP_REASON_NAMES.indexOf(n.slice(5)) : -1));
    this.raw = new Float64Array(this.counterNames.length);
    this.port = this.handle.info().port;
  }

  /** Creates the TAP (IFF_VNET_HDR, non-persistent), sets MTU, addresses and
   *  up, then binds the UDP socket. Throws VxlandError: VXLAND_BAD_ARGUMENT,
   *  VXLAND_DEVICE (TAP system calls), VXLAND_SOCKET (socket/bind, e.g.
   *  EADDRINUSE), VXLAND_DATAPATH_UNAVAILABLE (addon not built). Nothing is
   *  left behind on failure. */
  static open(o: NativeEngineOpenOptions): NativeEngine {
    if (!Number.isInteger(o.vni) || o.vni < 0 || o.vni > VNI_MAX) throw badArgument(`vni must be 0..${VNI_MAX}`);
    const mtu = o.mtu;
    const { fd, name, mac } = openConfiguredTap({ name: o.name, mtu, addresses: o.addresses, mac: o.mac, vnetHdr: true });
    const addon = loadAddon();
    let owned = false;
    try {
      const stale = addonTableMismatch(addon);
      if (stale !== null) throw new VxlandError('VXLAND_DATAPATH_UNAVAILABLE', `data path unavailable: ${stale}`);
      try {
        const engine = new NativeEngine(addon, o, fd, name, mtu, mac);
        owned = true;
        return engine;
      } catch (err) {
        const code = isNativeSysError(err) && SOCKET_SYSCALLS.test(err.syscall) ? 'VXLAND_SOCKET' : 'VXLAND_DEVICE';
        throw toVxlandError(err, code);
      }
    } finally {
      if (!owned) addon.tapClose(fd);
    }
  }

  /** Starts the packet threads; events arrive on the event loop until stop().
   *  Throws VxlandError('VXLAND_INTERNAL') unless idle. */
  start(onEvent: (event: NativeEngineEvent) => void): void {
    if (this.state !== 'idle') throw new VxlandError('VXLAND_INTERNAL', `internal error: engine cannot start when ${this.state}`);
    this.onEvent = onEvent;
    callNative('VXLAND_INTERNAL', () => this.handle.start());
    this.state = 'running';
  }

  /** Joins the threads and closes the TAP (it disappears) and the socket.
   *  Events already queued are still delivered. Idempotent. */
  stop(): void {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    this.handle.stop();
  }

  fdbSet(vni: number, macKey: number, vtep: string, pinned: boolean): void {
    this.handle.fdbSet(vni, macKey, vtep, pinned);
  }

  fdbDelete(vni: number, macKey: number): boolean {
    return this.handle.fdbDelete(vni, macKey);
  }

  setFloodList(vni: number, vteps: readonly string[]): void {
    this.handle.setFloodList(vni, vteps);
  }

  /** Replaces the source policy the rx thread applies (src/datapath/accept.ts
   *  rules: 'peers' accepts the named addresses, 'cidrs' those and the
   *  ranges, 'any' everyone). Until the first call only named addresses are
   *  accepted and none is named. Traffic keeps flowing while it changes. */
  setSourcePolicy(mode: 'peers' | 'any' | 'cidrs', named: readonly string[], cidrs: readonly string[]): void {
    this.handle.setSourcePolicy(mode, named, cidrs);
  }

  /** Deliver and send VLAN-tagged inner frames; off until called. */
  setAllowVlan(allow: boolean): void {
    this.handle.setAllowVlan(allow);
  }

  /** Reads the counters (valid after stop() too). */
  /** Per-VTEP counts since the previous call (vtep null = 'other'). */
  takeVtepCounts(): NativeEngineVtepCounts[] {
    return this.handle.takeVtepCounts();
  }

  counters(): NativeEngineCounters {
    this.handle.counters(this.raw);
    const detail: Record<string, number> = {};
    const drops = new Float64Array(DROP_REASON_COUNT);
    for (let i = 0; i < this.counterNames.length; i++) {
      const reason = this.dropOf[i];
      if (reason >= 0) drops[reason] = this.raw[i];
      else if (!this.counterNames[i].startsWith('drop:')) detail[this.counterNames[i]] = this.raw[i];
    }
    return {
      rxPackets: detail.rxPackets,
      rxBytes: detail.rxBytes,
      txPackets: detail.txPackets,
      txBytes: detail.txBytes,
      drops,
      detail,
    };
  }

  info(): NativeEngineInfo {
    return this.handle.info();
  }
}
