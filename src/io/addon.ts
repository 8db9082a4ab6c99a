// The only module that loads the native addon: a local build
// (build/Release/vxland.node) or the package's prebuilt one
// (prebuilds/<platform>-<arch>/vxland.napi.glibc.node), found by node-gyp-build.
// It types the native surface and turns native system-call errors into
// VxlandError. Convention for translated errors: VxlandError.code is the
// catalog code (e.g. VXLAND_DEVICE), errno is the positive errno, syscall is
// copied, the message ends with the native text (which names the errno, e.g.
// "... failed: No such device (ENODEV) [vxl0]"), and cause is the native
// Error, whose own `code` is the errno name.

import * as path from 'node:path';
import { ERROR_CODES, ErrorCode, VxlandError, toVxlandError, type NativeSysError } from '../errors';
import type { CoreNetwork, PacketClassifier } from '../ports/core';
import type { NativeEngineEvent, NativeEngineInfo, NativeEngineVtepCounts } from '../ports/engine';
import { DROP_REASON_NAMES } from '../tables/drop-reasons.generated';
import { LIMITS } from '../tables/limits.generated';
import { NET_EVENT_NAMES } from '../tables/net-events.generated';

/** The package root (this file runs from dist/src/io/). node-gyp-build
 *  takes the first *.node of build/Release/ there, in name order (libuv
 *  sorts directory entries): vxland.node comes before vxland_test.node, the
 *  test bindings a checkout builds beside it. Without a local build it takes
 *  the prebuilt addon under prebuilds/ that matches this platform. */
const PACKAGE_ROOT = path.join(__dirname, '..', '..', '..');

/** native/poller.h. */
export interface NativeTapPoller {
  start(): void;
  stop(): void;
}

export interface NativeTapPollerConstructor {
  new (
    fd: number,
    buffer: Buffer,
    offsets: Uint32Array,
    lengths: Uint32Array,
    slotBytes: number,
    headroomBytes: number,
    onFrames: (count: number) => void,
    onError: (err: NativeSysError) => void,
    /** Shown in error messages, e.g. the device name. */
    context?: string,
  ): NativeTapPoller;
}

/** native/engine_core.h: options of `new NativeEngine(...)` (one per host). */
export interface NativeEngineOptions {
  /** Local IP literal the UDP socket binds to. */
  local: string;
  /** Local UDP port (0 = kernel picks). */
  port: number;
  /** Destination UDP port of every VTEP; 0 = the local port bound. */
  dstPort: number;
  /** TAP TSO/checksum offload (TUNSETOFFLOAD) for every TAP; default true. */
  offload?: boolean;
  /** UDP GSO (UDP_SEGMENT) sends; default true. */
  gso?: boolean;
  /** UDP_GRO receives; default true. */
  gro?: boolean;
  /** Coalescing of received TCP segments into TSO writes; default true. */
  coalesce?: boolean;
  /** SO_RCVBUF/SO_SNDBUF request (forced when privileged); default 8 MiB. */
  socketBufferBytes?: number;
  /** Outer source port range (both or neither): sends leave from up to
   *  SRC_PORT_SOCKETS sockets bound over it, one per flow slot; without
   *  it, from the bound port. */
  srcPortMin?: number;
  srcPortMax?: number;
  /** Outer TTL / hop limit 1..255 (default 64), TOS 0..255 or -1 = inherit
   *  (default 0, ECN per RFC 6040 either way), IPv4 DF (default false). */
  ttl?: number;
  tos?: number;
  df?: boolean;
}

/** native/engine_core.h: a network's TAP for NativeEngine addNetwork(). */
export interface NativeEngineNetwork extends CoreNetwork {
  /** From tapOpen(name, { vnetHdr: true }), or a SOCK_SEQPACKET stand-in
   *  (standIn); owned by the engine once addNetwork returns. */
  tapFd: number;
  /** tapFd is a SOCK_SEQPACKET socket that carries what the TAP would (a
   *  virtio_net_hdr, then one frame, per message): no TUN ioctls. */
  standIn?: boolean;
}

export interface NativeEngineHandle {
  start(): void;
  stop(): void;
  fdbSet(vni: number, macKey: number, vtepIp: string, pinned: boolean): void;
  fdbDelete(vni: number, macKey: number): boolean;
  setFloodList(vni: number, vtepIps: readonly string[]): void;
  /** Replaces a network's source policy (kept by src/datapath/accept.ts, applied by native/core_policy.h). */
  setSourcePolicy(vni: number, mode: 'peers' | 'any' | 'cidrs', named: readonly string[], cidrs: readonly string[]): void;
  /** The network delivers and sends VLAN-tagged inner frames. */
  setAllowVlan(vni: number, allow: boolean): void;
  /** The network answers ARP/ND for addresses of its neighbour mirror (native/core_suppress.h). */
  setSuppress(vni: number, on: boolean): void;
  neighSet(vni: number, ip: string, macKey: number): void;
  neighDelete(vni: number, ip: string): boolean;
  /** The network's slot, or -1 when its VNI is served already. */
  addNetwork(n: NativeEngineNetwork): number;
  /** Its TAP fd closes once no worker holds it ('tapClosed' event while running). */
  removeNetwork(vni: number): boolean;
  counters(out: Float64Array): void;
  /** rxPackets, rxBytes, txPackets, txBytes, then drops by DropReason, then events by NetEvent. */
  netCounters(slot: number, out: Float64Array): void;
  /** Per-VTEP counts since the previous call; vtep null = addresses past
   *  the engine's bound (counted under 'other'). */
  takeVtepCounts(): NativeEngineVtepCounts[];
  info(): NativeEngineInfo;
}

export interface NativeEngineConstructor {
  new (options: NativeEngineOptions, onEvent: (event: NativeEngineEvent) => void): NativeEngineHandle;
  /** Counter names in index order; a drop counter is 'drop:' + its reason's name. */
  readonly counterNames: readonly string[];
  /** Length of netCounters()' output. */
  readonly netCounterCount: number;
}

/** native/core_binding.cc: options of `new PacketCore(...)` (the dgram path's core). */
export interface NativePacketCoreOptions {
  /** The UDP socket's family: mirror and policy addresses are parsed for it. */
  family: 4 | 6;
  dstPort: number;
}

/** The addon's exports. Functions throw NativeSysError unless noted. */
export interface NativeAddon {
  /** native/core_srcport.h SrcPortCandidate: the port a send socket slot
   *  tries at attempt (0, 1, ...) in [minPort, maxPort]. */
  srcPortCandidate(minPort: number, maxPort: number, slot: number, attempt: number): number;
  /** vnetHdr: IFF_VNET_HDR (for the native engine only). */
  tapOpen(name: string, options?: { vnetHdr?: boolean }): { fd: number; name: string };
  tapSetMtu(ifname: string, mtuBytes: number): void;
  tapSetUp(ifname: string): void;
  tapGetMac(ifname: string): Buffer;
  /** SIOCSIFHWADDR; before the link goes up. */
  tapSetMac(ifname: string, mac: Buffer): void;
  /** Replaces the IPv4 address labelled ifname ("dev" or alias "dev:N"). */
  tapAddIPv4(ifname: string, address: string, prefixLength: number): void;
  tapAddIPv6(ifname: string, address: string, prefixLength: number): void;
  /** 0 or positive errno; never throws. */
  tapWrite(fd: number, buffer: Buffer, offset: number, length: number): number;
  tapClose(fd: number): void;
  /** UDP_NO_CHECK6_RX on an IPv6 UDP socket (native/engine_io.h): 0 or the errno; never throws for a bad fd. */
  udp6AcceptZeroChecksums(fd: number): number;
  TapPoller: NativeTapPollerConstructor;
  sdNotify(socketPath: string, message: string): void;
  /** native/lock.h: flock(LOCK_EX|LOCK_NB); false when another open file holds it. */
  flockExclusive(fd: number): boolean;
  /** One Ethernet frame out of ifname on an AF_PACKET socket (CAP_NET_RAW). */
  packetSend(ifname: string, frame: Buffer): void;
  /** native/bridge.h: SIOCBRADDIF, dev into bridge (both must exist). */
  bridgeAddPort(bridge: string, dev: string): void;
  /** TTL, socket TOS and IPv4 DF on a UDP socket's fd (native/engine_io.h SetEnvelope). */
  udpSetEnvelope(fd: number, family: 4 | 6, ttl: number, tos: number, df: boolean): void;
  NativeEngine: NativeEngineConstructor;
  /** The object it returns has `result` set to the array passed in. */
  PacketCore: new (options: NativePacketCoreOptions, result: Float64Array) => PacketClassifier;
  /** native/drop_reasons.h in order: must equal DROP_REASON_NAMES (see addonTableMismatch). */
  engineDropReasonNames: readonly string[];
  /** native/net_events.h in order: must equal NET_EVENT_NAMES. */
  engineNetEventNames: readonly string[];
  /** native/limits.h: must equal LIMITS. */
  engineLimits: Readonly<Record<string, number>>;
}

let cached: NativeAddon | undefined;

/** Loads the addon once. Throws VxlandError('VXLAND_DATAPATH_UNAVAILABLE')
 *  when it is missing or does not load (e.g. not built). */
export function loadAddon(): NativeAddon {
  if (cached === undefined) {
    try {
      const nodeGypBuild = require('node-gyp-build') as { path(dir: string): string };
      cached = require(nodeGypBuild.path(PACKAGE_ROOT)) as NativeAddon;
    } catch (err) {
      const detail = err instanceof Error ? err.message : String(err);
      throw new VxlandError(
        'VXLAND_DATAPATH_UNAVAILABLE',
        `${ERROR_CODES.VXLAND_DATAPATH_UNAVAILABLE}: cannot load native addon (in a checkout: \`npm run build:native\`; ` +
          `installed: no prebuilt addon fits this machine, \`npm rebuild vxland\` builds one with a compiler): ${detail}`,
        { cause: err },
      );
    }
  }
  return cached;
}

type AddonTables = Pick<NativeAddon, 'engineDropReasonNames' | 'engineNetEventNames' | 'engineLimits'>;

/** null when the addon was built from the drop-reason, event and limit
 *  tables this build was generated from (native/drop_reasons.h,
 *  native/net_events.h, native/limits.h), else the first difference, for an
 *  error message: a stale addon would count drops under the wrong names. */
export function addonTableMismatch(addon: AddonTables): string | null {
  const stale = (what: string) => `native addon is stale (rebuild with npm run build:native): ${what}`;
  const lists: Array<[string, string, readonly string[] | undefined, readonly string[]]> = [
    ['engineDropReasonNames', 'drop reason', addon.engineDropReasonNames, DROP_REASON_NAMES],
    ['engineNetEventNames', 'network event', addon.engineNetEventNames, NET_EVENT_NAMES],
  ];
  for (const [exported, what, names, ours] of lists) {
    if (!Array.isArray(names)) return stale(`it exports no ${exported}`);
    for (let i = 0; i < Math.max(names.length, ours.length); i++) {
      if (names[i] !== ours[i]) return stale(`${what} ${i} is ${JSON.stringify(names[i] ?? null)} in the addon but ${JSON.stringify(ours[i] ?? null)} in this build`);
    }
  }
  const limits = addon.engineLimits ?? {};
  for (const key of new Set([...Object.keys(LIMITS), ...Object.keys(limits)])) {
    if (limits[key] !== LIMITS[key]) return stale(`limit ${key} is ${limits[key] ?? 'missing'} in the addon but ${LIMITS[key] ?? 'missing'} in this build`);
  }
  return null;
}

/** Throws VxlandError('VXLAND_DATAPATH_UNAVAILABLE') when addonTableMismatch finds a difference. */
export function assertAddonTables(addon: AddonTables): void {
  const stale = addonTableMismatch(addon);
  if (stale !== null) throw new VxlandError('VXLAND_DATAPATH_UNAVAILABLE', `data path unavailable: ${stale}`);
}

/** Runs fn, rethrowing any failure as toVxlandError(err, code). */
export function callNative<T>(code: ErrorCode, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw toVxlandError(err, code);
  }
}
