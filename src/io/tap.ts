// The Ethernet side: a non-persistent Linux TAP device (IFF_TAP | IFF_NO_PI)
// driven through the native addon. Policy (validation, defaults, buffer
// sizing) lives here; the addon only performs system calls.

import { isIPv4, isIPv6 } from 'node:net';

import { FRAME_HEADROOM_BYTES, FrameBatch, FrameDevice, WriteErrno } from '../datapath/ports';
import { VxlandError } from '../errors';
import { NativeAddon, NativeTapPoller, callNative, loadAddon, toVxlandError } from './addon';

/** Inner MTU when none is given: 1500-byte underlay minus 50 bytes of
 *  IPv4 + UDP + VXLAN + inner Ethernet overhead. */
export const DEFAULT_TAP_MTU_BYTES = 1450;
export const MIN_TAP_MTU_BYTES = 68;
export const MAX_TAP_MTU_BYTES = 65521;
/** IPv6 needs a link MTU of at least this. */
export const MIN_IPV6_MTU_BYTES = 1280;
/** Frames read per event-loop wake-up at most. */
export const TAP_BATCH_MAX_FRAMES = 64;
/** Ethernet header plus one VLAN tag: the largest frame is mtu + this. */
export const ETHERNET_OVERHEAD_BYTES = 18;
const SLOT_ALIGN_BYTES = 64;
/** IFNAMSIZ - 1. */
export const MAX_IFNAME_BYTES = 15;

export interface TapOpenOptions {
  /** Interface name, 1..15 bytes, no '/', ':' or whitespace. */
  name: string;
  /** Inner MTU in bytes; DEFAULT_TAP_MTU_BYTES when omitted. */
  mtu?: number;
  /** CIDRs such as '10.0.1.1/24' or 'fd00::1/64'. The first IPv4 address is
   *  the primary; further IPv4 addresses get alias labels '<name>:1', ... */
  addresses?: readonly string[];
}

export interface ParsedCidr {
  family: 4 | 6;
  address: string;
  prefixLength: number;
}

function badArgument(message: string): VxlandError {
  return new VxlandError('VXLAND_BAD_ARGUMENT', `invalid argument: ${message}`);
}

/** Parses 'addr/prefix' with a literal IPv4 or IPv6 address. Throws
 *  VxlandError('VXLAND_BAD_ARGUMENT') for anything else. */
export function parseCidr(cidr: string): ParsedCidr {
  const slash = cidr.indexOf('/');
  if (slash < 0) throw badArgument(`address ${JSON.stringify(cidr)} needs a /prefix`);
  const address = cidr.slice(0, slash);
  const prefixText = cidr.slice(slash + 1);
  const family = isIPv4(address) ? 4 : isIPv6(address) ? 6 : 0;
  if (family === 0) throw badArgument(`${JSON.stringify(address)} is not an IP address literal`);
  const maxPrefix = family === 4 ? 32 : 128;
  if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > maxPrefix) {
    throw badArgument(`prefix length in ${JSON.stringify(cidr)} must be 0..${maxPrefix}`);
  }
  return { family, address, prefixLength: Number(prefixText) };
}

/** Throws VxlandError('VXLAND_BAD_ARGUMENT') unless name is a valid Linux
 *  interface name. */
export function validateInterfaceName(name: string): void {
  const bytes = Buffer.byteLength(name);
  if (bytes < 1 || bytes > MAX_IFNAME_BYTES) throw badArgument(`interface name must be 1..${MAX_IFNAME_BYTES} bytes`);
  if (name === '.' || name === '..' || /[/:\s]/.test(name)) {
    throw badArgument(`interface name ${JSON.stringify(name)} must not contain '/', ':' or whitespace`);
  }
}

/** Bytes per read slot: headroom + largest frame, rounded up to 64. */
export function tapSlotBytes(mtu: number): number {
  const raw = FRAME_HEADROOM_BYTES + mtu + ETHERNET_OVERHEAD_BYTES;
  return Math.ceil(raw / SLOT_ALIGN_BYTES) * SLOT_ALIGN_BYTES;
}

export class TapDevice implements FrameDevice {
  readonly name: string;
  readonly mtu: number;
  readonly mac: Buffer;
  private fd: number;
  private poller: NativeTapPoller | null = null;
  private started = false;
  private readonly addon: NativeAddon;

  private constructor(addon: NativeAddon, fd: number, name: string, mtu: number, mac: Buffer) {
    this.addon = addon;
    this.fd = fd;
    this.name = name;
    this.mtu = mtu;
    this.mac = mac;
  }

  /** Creates the TAP (non-persistent: it disappears on close() or process
   *  exit), sets its MTU, adds the addresses, brings it up and reads its MAC.
   *  Throws VxlandError: VXLAND_BAD_ARGUMENT for invalid options,
   *  VXLAND_DEVICE (with errno/syscall) when a system call fails (e.g. EPERM
   *  without CAP_NET_ADMIN, EBUSY when the name is already attached),
   *  VXLAND_DATAPATH_UNAVAILABLE when the addon is not built. Nothing is left
   *  behind on failure. */
  static open(options: TapOpenOptions): TapDevice {
    const mtu = options.mtu ?? DEFAULT_TAP_MTU_BYTES;
    validateInterfaceName(options.name);
    if (!Number.isInteger(mtu) || mtu < MIN_TAP_MTU_BYTES || mtu > MAX_TAP_MTU_BYTES) {
      throw badArgument(`mtu must be an integer ${MIN_TAP_MTU_BYTES}..${MAX_TAP_MTU_BYTES}`);
    }
    const parsed = (options.addresses ?? []).map(parseCidr);
    if (mtu < MIN_IPV6_MTU_BYTES && parsed.some((p) => p.family === 6)) {
      throw badArgument(`IPv6 addresses need mtu >= ${MIN_IPV6_MTU_BYTES}`);
    }
    const ipv4Count = parsed.filter((p) => p.family === 4).length;
    if (ipv4Count > 1 && Buffer.byteLength(`${options.name}:${ipv4Count - 1}`) > MAX_IFNAME_BYTES) {
      throw badArgument(`name ${JSON.stringify(options.name)} too long for ${ipv4Count} IPv4 address labels`);
    }

    const addon = loadAddon();
    const { fd, name } = callNative('VXLAND_DEVICE', () => addon.tapOpen(options.name));
    try {
      return callNative('VXLAND_DEVICE', () => {
        addon.tapSetMtu(name, mtu);
        let ipv4Index = 0;
        for (const p of parsed) {
          if (p.family === 4) {
            const label = ipv4Index === 0 ? name : `${name}:${ipv4Index}`;
            ipv4Index++;
            addon.tapAddIPv4(label, p.address, p.prefixLength);
          } else {
            addon.tapAddIPv6(name, p.address, p.prefixLength);
          }
        }
        addon.tapSetUp(name);
        const mac = addon.tapGetMac(name);
        return new TapDevice(addon, fd, name, mtu, mac);
      });
    } catch (err) {
      addon.tapClose(fd);
      throw err;
    }
  }

  /** See FrameDevice.start. Batches hold at most TAP_BATCH_MAX_FRAMES frames;
   *  onFatal receives a VxlandError('VXLAND_DEVICE') with errno/syscall.
   *  Throws VxlandError('VXLAND_INTERNAL') if called twice or after close(). */
  start(onFrames: (batch: FrameBatch) => void, onFatal: (err: Error) => void): void {
    if (this.started) throw new VxlandError('VXLAND_INTERNAL', `internal error: ${this.name} already started`);
    if (this.fd < 0) throw new VxlandError('VXLAND_INTERNAL', `internal error: ${this.name} is closed`);
    this.started = true;
    const slotBytes = tapSlotBytes(this.mtu);
    const batch = {
      buffer: Buffer.alloc(slotBytes * TAP_BATCH_MAX_FRAMES),
      count: 0,
      offsets: new Uint32Array(TAP_BATCH_MAX_FRAMES),
      lengths: new Uint32Array(TAP_BATCH_MAX_FRAMES),
    };
    const poller = new this.addon.TapPoller(
      this.fd,
      batch.buffer,
      batch.offsets,
      batch.lengths,
      slotBytes,
      FRAME_HEADROOM_BYTES,
      (count) => {
        batch.count = count;
        onFrames(batch);
      },
      (err) => onFatal(toVxlandError(err, 'VXLAND_DEVICE')),
      this.name,
    );
    callNative('VXLAND_DEVICE', () => poller.start());
    this.poller = poller;
  }

  /** See FrameDevice.write. Returns EBADF after close(), EINVAL for a range
   *  outside buffer. */
  write(buffer: Buffer, offset: number, length: number): WriteErrno {
    return this.addon.tapWrite(this.fd, buffer, offset, length);
  }

  /** Frames dropped because they were larger than mtu + 18 bytes (only
   *  possible if someone raised the device MTU behind our back). */
  truncatedFrames(): number {
    return this.poller?.truncatedFrames() ?? 0;
  }

  /** See FrameDevice.close. Stops the poller before closing the fd. */
  close(): void {
    if (this.poller !== null) {
      this.poller.stop();
      this.poller = null;
    }
    if (this.fd >= 0) {
      const fd = this.fd;
      this.fd = -1;
      callNative('VXLAND_DEVICE', () => this.addon.tapClose(fd));
    }
  }
}
