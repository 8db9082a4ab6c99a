// The native engine (native/engine_core.h): one per host, a UDP socket and
// any number of networks' TAPs (opened with IFF_VNET_HDR), driven by two
// native packet threads (one while traffic is light, see
// native/engine_sched.h). This wrapper binds the socket, opens and
// configures each TAP (policy as in src/io/tap.ts), and exposes the mirror
// updates, counters and events. openWith()/addStandIn() run the same engine
// on sockets standing in for TAPs (no root, no device: the native path's
// unit tests). Forwarding
// rules stay in src/fdb/fdb.ts; src/datapath/native-datapath.ts joins the two.

import { DROP_REASON_COUNT, DROP_REASON_NAMES } from '../ports/drops';
import { VNI_MAX } from '../tables/limits.generated';
import { NET_EVENT_COUNT } from '../tables/net-events.generated';
import type { NativeEngineCounters, NativeEngineEvent, NativeEngineInfo, NativeEngineVtepCounts, NativeNetworkCounters, PacketEngine } from '../ports/engine';
import { VxlandError, isNativeSysError, toVxlandError } from '../errors';
import {
  NativeAddon,
  assertAddonTables,
  NativeEngineHandle,
  callNative,
  loadAddon,
} from './addon';
import { openConfiguredTap } from './tap';

/** The host side of the engine: its UDP socket and switches. */
export interface NativeEngineOpenOptions {
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
  /** Outer source ports per flow from this range (NativeEngineOptions.srcPortMin). */
  srcPorts?: { min: number; max: number };
  /** The outer header, as NativeEngineOptions (src/io/addon.ts): tos -1 = inherit. */
  ttl?: number;
  tos?: number;
  df?: boolean;
}

/** A network's TAP for NativeEngine.openNetwork(). */
export interface NativeTapOptions {
  vni: number;
  /** TAP name, 1..15 bytes (see ifnameProblem). */
  name: string;
  /** Inner MTU in bytes. */
  mtu: number;
  /** CIDRs for the TAP, as TapOpenOptions.addresses. */
  addresses?: readonly string[];
  /** The TAP's MAC, as TapOpenOptions.mac. */
  mac?: Buffer;
  /** Echoed in this TAP's 'tapFailed' (PacketEngine.addNetwork); default 0. */
  token?: number;
}

/** NativeEngine.addStandIn(): a network on a TAP stand-in. */
export interface NativeStandInOptions {
  vni: number;
  mtu: number;
  /** A non-blocking SOCK_SEQPACKET socket standing in for the TAP: each
   *  message is what a TAP with IFF_VNET_HDR reads or writes (a 10-byte
   *  virtio_net_hdr, then one frame), so the engine's TAP code runs
   *  unchanged and whoever holds the other end plays the kernel (offload on
   *  means it may send TSO super-frames). The engine's once addStandIn
   *  returns; the caller's still if it throws. */
  tapFd: number;
  /** The MAC of the device the stand-in plays (frames from it are loops). */
  mac: Buffer;
  /** The name of the device it plays, for the 'tapFailed' error (optional). */
  name?: string;
  /** Echoed in its 'tapFailed' (PacketEngine.addNetwork); default 0. */
  token?: number;
}

/** NativeEngine.openWith(): the host options and a first stand-in network. */
export interface NativeEngineStandInOptions extends NativeEngineOpenOptions, NativeStandInOptions {
  /** What NativeEngine.name shows (no device has it). */
  name: string;
}

/** A network the engine carries. */
export interface NativeEngineNetwork {
  vni: number;
  /** The network's counter slot (PacketEngine.netCounters). */
  slot: number;
  /** The TAP's name and MAC. */
  name: string;
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
  /** The local UDP port actually bound. */
  readonly port: number;
  /** openWith()'s first network (the stand-in), else null. */
  readonly first: NativeEngineNetwork | null;
  private readonly addon: NativeAddon;
  private readonly handle: NativeEngineHandle;
  private readonly counterNames: readonly string[];
  /** For each counter index: its DropReason, or -1 for a counter that is no drop. */
  private readonly dropOf: Int32Array;
  private readonly raw: Float64Array;
  private readonly netRaw: Float64Array;
  private onEvent: (event: NativeEngineEvent) => void = () => undefined;
  private state: 'idle' | 'running' | 'stopped' = 'idle';

  private constructor(addon: NativeAddon, o: NativeEngineOpenOptions, first: NativeStandInOptions & { name: string } | null) {
    this.addon = addon;
    this.handle = new addon.NativeEngine(
      {
        local: o.local,
        port: o.port,
        dstPort: o.dstPort ?? o.port,
        offload: o.offload,
        gso: o.gso,
        gro: o.gro,
        coalesce: o.coalesce,
        socketBufferBytes: o.socketBufferBytes,
        srcPortMin: o.srcPorts?.min,
        srcPortMax: o.srcPorts?.max,
        ttl: o.ttl,
        tos: o.tos,
        df: o.df,
      },
      (event) => this.onEvent(event),
    );
    this.counterNames = addon.NativeEngine.counterNames;
    this.dropOf = Int32Array.from(this.counterNames, (n) => (n.startsWith('drop:') ? DROP_REASON_NAMES.indexOf(n.slice(5)) : -1));
    this.raw = new Float64Array(this.counterNames.length);
    this.netRaw = new Float64Array(addon.NativeEngine.netCounterCount);
    this.port = this.handle.info().port;
    this.first = null;
    if (first !== null) {
      let slot: number;
      try {
        slot = this.addStandIn(first);
      } catch (err) {
        this.handle.stop();
        throw err;
      }
      this.first = { vni: first.vni, slot, name: first.name, mac: first.mac };
    }
  }

  /** Binds the UDP socket of a host's engine (networks come with
   *  openNetwork). Throws VxlandError: VXLAND_BAD_ARGUMENT, VXLAND_SOCKET
   *  (socket/bind, e.g. EADDRINUSE), VXLAND_DATAPATH_UNAVAILABLE (addon not
   *  built). Nothing is left behind on failure. */
  static open(o: NativeEngineOpenOptions): NativeEngine {
    return NativeEngine.construct(loadAddon(), o, null);
  }

  /** The engine with a first network on a TAP stand-in (see
   *  NativeStandInOptions; more with addStandIn) and a UDP socket bound to
   *  local:port. Throws as open() does; the fd stays the caller's then. */
  static openWith(o: NativeEngineStandInOptions): NativeEngine {
    checkVni(o.vni);
    return NativeEngine.construct(loadAddon(), o, o);
  }

  private static construct(addon: NativeAddon, o: NativeEngineOpenOptions, first: NativeEngineStandInOptions | null): NativeEngine {
    assertAddonTables(addon);
    try {
      return new NativeEngine(addon, o, first);
    } catch (err) {
      if (err instanceof VxlandError) throw err;
      const code = isNativeSysError(err) && SOCKET_SYSCALLS.test(err.syscall) ? 'VXLAND_SOCKET' : 'VXLAND_DEVICE';
      throw toVxlandError(err, code);
    }
  }

  /** Creates the network's TAP (IFF_VNET_HDR, non-persistent), sets MTU,
   *  MAC, addresses and up, and carries its traffic from now on. Throws
   *  VxlandError: VXLAND_BAD_ARGUMENT, VXLAND_DEVICE (TAP system calls),
   *  VXLAND_NETWORK_EXISTS (the VNI is served); nothing is left open then. */
  openNetwork(o: NativeTapOptions): NativeEngineNetwork {
    checkVni(o.vni);
    const { fd, name, mac } = openConfiguredTap({ name: o.name, mtu: o.mtu, addresses: o.addresses, mac: o.mac, vnetHdr: true });
    let owned = false;
    try {
      const slot = this.attach({ vni: o.vni, mtu: o.mtu, ownMac: mac, tapFd: fd, name, token: o.token });
      owned = true;
      return { vni: o.vni, slot, name, mac };
    } finally {
      if (!owned) this.addon.tapClose(fd);
    }
  }

  /** Another network on a TAP stand-in; its slot. Throws as openNetwork(). */
  addStandIn(o: NativeStandInOptions): number {
    checkVni(o.vni);
    return this.attach({ vni: o.vni, mtu: o.mtu, ownMac: o.mac, tapFd: o.tapFd, standIn: true, name: o.name, token: o.token });
  }

  private attach(n: Parameters<PacketEngine['addNetwork']>[0]): number {
    const slot = this.addNetwork(n);
    if (slot < 0) throw new VxlandError('VXLAND_NETWORK_EXISTS', `network already exists: vni ${n.vni} is served already`);
    return slot;
  }

  addNetwork(n: Parameters<PacketEngine['addNetwork']>[0]): number {
    try {
      return this.handle.addNetwork(n);
    } catch (err) {
      throw toVxlandError(err, isNativeSysError(err) ? 'VXLAND_DEVICE' : 'VXLAND_BAD_ARGUMENT');
    }
  }

  removeNetwork(vni: number): boolean {
    return this.handle.removeNetwork(vni);
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
  setSourcePolicy(vni: number, mode: 'peers' | 'any' | 'cidrs', named: readonly string[], cidrs: readonly string[]): void {
    this.handle.setSourcePolicy(vni, mode, named, cidrs);
  }

  /** Deliver and send VLAN-tagged inner frames in network vni; off until called. */
  setAllowVlan(vni: number, allow: boolean): void {
    this.handle.setAllowVlan(vni, allow);
  }

  setSuppress(vni: number, on: boolean): void {
    this.handle.setSuppress(vni, on);
  }

  neighSet(vni: number, ip: string, macKey: number): void {
    this.handle.neighSet(vni, ip, macKey);
  }

  neighDelete(vni: number, ip: string): boolean {
    return this.handle.neighDelete(vni, ip);
  }

  /** Per-VTEP counts since the previous call (vtep null = 'other'). */
  takeVtepCounts(): NativeEngineVtepCounts[] {
    return this.handle.takeVtepCounts();
  }

  /** A network's counters by slot (valid after stop() too). */
  netCounters(slot: number): NativeNetworkCounters {
    const r = this.netRaw;
    this.handle.netCounters(slot, r);
    const eventsAt = 4 + DROP_REASON_COUNT;
    return { rxPackets: r[0], rxBytes: r[1], txPackets: r[2], txBytes: r[3], drops: r.slice(4, eventsAt), events: r.slice(eventsAt, eventsAt + NET_EVENT_COUNT) };
  }

  /** The host counters (valid after stop() too). */
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
