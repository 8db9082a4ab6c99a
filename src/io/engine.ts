// The native engine (native/engine_core.h): a TAP opened with IFF_VNET_HDR
// and a UDP socket, driven by two native packet threads (one while traffic
// is light, see native/engine_sched.h). This wrapper
// opens and configures the TAP (policy as in src/io/tap.ts), constructs the
// engine, and exposes the mirror updates, counters and events. openWith()
// runs the same engine on a socket standing in for the TAP (no root, no
// device: the native path's unit tests). Forwarding
// rules stay in src/fdb/fdb.ts; src/datapath/native-datapath.ts joins the two.

import { DROP_REASON_COUNT, DROP_REASON_NAMES } from '../ports/drops';
import { VNI_MAX } from '../tables/limits.generated';
import type { NativeEngineCounters, NativeEngineEvent, NativeEngineInfo, NativeEngineVtepCounts, PacketEngine } from '../ports/engine';
import { VxlandError, isNativeSysError, toVxlandError } from '../errors';
import {
  NativeAddon,
  assertAddonTables,
  NativeEngineHandle,
  callNative,
  loadAddon,
} from './addon';
import { openConfiguredTap } from './tap';

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
  /** UDP port of the other VTEPs; default `port`; 0 = the port bound. */
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

/** NativeEngine.openWith(): everything open() takes but the device, which is
 *  handed in instead. */
export interface NativeEngineStandInOptions extends Omit<NativeEngineOpenOptions, 'name' | 'addresses' | 'mac'> {
  /** What NativeEngine.name shows (no device has it). */
  name: string;
  /** A non-blocking SOCK_SEQPACKET socket standing in for the TAP: each
   *  message is what a TAP with IFF_VNET_HDR reads or writes (a 10-byte
   *  virtio_net_hdr, then one frame), so the engine's TAP code runs
   *  unchanged and whoever holds the other end plays the kernel (offload on
   *  means it may send TSO super-frames). The engine's once openWith
   *  returns; the caller's still if it throws. */
  tapFd: number;
  /** The MAC of the device the stand-in plays (frames from it are loops). */
  mac: Buffer;
}

function badArgument(message: string): VxlandError {
  return new VxlandError('VXLAND_BAD_ARGUMENT', `invalid argument: ${message}`);
}

function checkVni(vni: number): void {
  if (!Number.isInteger(vni) || vni < 0 || vni > VNI_MAX) throw badArgument(`vni must be 0..${VNI_MAX}`);
}

const SOCKET_SYSCALLS = /^(socket|bind|setsockopt|getsockname|eventfd)/;

export class NativeEngine implements PacketEngine {
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

  private constructor(addon: NativeAddon, o: NativeEngineOpenOptions, fd: number, name: string, mtu: number, mac: Buffer, standIn: boolean) {
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
        standIn,
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
    checkVni(o.vni);
    const { fd, name, mac } = openConfiguredTap({ name: o.name, mtu: o.mtu, addresses: o.addresses, mac: o.mac, vnetHdr: true });
    const addon = loadAddon();
    let owned = false;
    try {
      const engine = NativeEngine.construct(addon, o, fd, name, mac, false);
      owned = true;
      return engine;
    } finally {
      if (!owned) addon.tapClose(fd);
    }
  }

  /** The engine on a TAP stand-in (see NativeEngineStandInOptions) and a
   *  UDP socket bound to local:port. Throws as open() does. */
  static openWith(o: NativeEngineStandInOptions): NativeEngine {
    checkVni(o.vni);
    return NativeEngine.construct(loadAddon(), o, o.tapFd, o.name, o.mac, true);
  }

  private static construct(addon: NativeAddon, o: NativeEngineOpenOptions, fd: number, name: string, mac: Buffer, standIn: boolean): NativeEngine {
    assertAddonTables(addon);
    try {
      return new NativeEngine(addon, o, fd, name, o.mtu, mac, standIn);
    } catch (err) {
      const code = isNativeSysError(err) && SOCKET_SYSCALLS.test(err.syscall) ? 'VXLAND_SOCKET' : 'VXLAND_DEVICE';
      throw toVxlandError(err, code);
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
