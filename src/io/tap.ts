// The Ethernet side: a non-persistent Linux TAP device (IFF_TAP | IFF_NO_PI)
// driven through the native addon. Policy (validation, defaults, buffer
// sizing) lives here; the addon only performs system calls.

import { FRAME_HEADROOM_BYTES, FrameBatch, FrameDevice, WriteErrno } from '../ports/io';
import { ifnameProblem, IFNAME_MAX_BYTES, parseCidr, type Cidr } from '../config/validate';
import { VxlandError, toVxlandError } from '../errors';
import { MTU_MAX_BYTES, MTU_MIN_BYTES } from '../tables/limits.generated';
import { maxFrameBytes } from '../wire/ethernet';
import { isLearnableMacKey, MAC_BYTES, macKeyAt } from '../wire/mac';
import { NativeAddon, NativeTapPoller, callNative, loadAddon } from './addon';

/** IPv6 needs a link MTU of at least this. */
export const MIN_IPV6_MTU_BYTES = 1280;
/** Frames read per event-loop wake-up at most. */
export const TAP_BATCH_MAX_FRAMES = 64;
const SLOT_ALIGN_BYTES = 64;

export interface TapOpenOptions {
  /** Interface name, 1..15 bytes, no '/', ':' or whitespace. */
  name: string;
  /** Inner MTU in bytes. */
  mtu: number;
  /** CIDRs such as '10.0.1.1/24' or 'fd00::1/64'. The first IPv4 address is
   *  the primary; further IPv4 addresses get alias labels '<name>:1', ... */
  addresses?: readonly string[];
  /** The MAC to set before the link goes up (unicast, not zero); default the
   *  kernel's random one. */
  mac?: Buffer;
}

export interface ConfiguredTapOptions extends TapOpenOptions {
  /** IFF_VNET_HDR: frames carry a virtio_net_hdr (the native engine only). */
  vnetHdr?: boolean;
}

export interface ConfiguredTap {
  fd: number;
  /** The name the kernel gave (the requested one). */
  name: string;
  mac: Buffer;
}

function badArgument(message: string): VxlandError {
  return new VxlandError('VXLAND_BAD_ARGUMENT', `invalid argument: ${message}`);
}

/** Parses an address option with the shared validator; throws VXLAND_BAD_ARGUMENT. */
function requireCidr(text: string): Cidr {
  const cidr = parseCidr(text);
  if (cidr === null) throw badArgument(`address must be a CIDR like 10.0.1.1/24 or fd00::1/64 (got ${JSON.stringify(text)})`);
  return cidr;
}

/** A configured address and the label it is added under (see TapOpenOptions.addresses). */
export interface LabelledAddress {
  readonly cidr: Cidr;
  /** The name the address is added under: the device's for the primary
   *  IPv4 address and every IPv6 one, the alias label '<name>:N' for further
   *  IPv4 addresses. */
  readonly label: string;
}

export function labelAddresses(name: string, cidrs: readonly Cidr[]): LabelledAddress[] {
  let ipv4Index = 0;
  return cidrs.map((cidr) => {
    if (cidr.family === 6) return { cidr, label: name };
    const label = ipv4Index === 0 ? name : `${name}:${ipv4Index}`;
    ipv4Index++;
    return { cidr, label };
  });
}

/** Adds one address to its TAP device; throws the addon's error. */
export function addTapAddress(addon: NativeAddon, a: LabelledAddress): void {
  if (a.cidr.family === 4) addon.tapAddIPv4(a.label, a.cidr.address, a.cidr.prefixLength);
  else addon.tapAddIPv6(a.label, a.cidr.address, a.cidr.prefixLength);
}

/** Bytes per read slot: headroom + largest frame, rounded up to 64. */
export function tapSlotBytes(mtu: number): number {
  const raw = FRAME_HEADROOM_BYTES + maxFrameBytes(mtu, true);
  return Math.ceil(raw / SLOT_ALIGN_BYTES) * SLOT_ALIGN_BYTES;
}

/** Validates the options, creates the TAP (non-persistent: it disappears
 *  when the fd is closed or the process exits), sets its MTU and MAC, adds the
 *  addresses, brings it up and reads its MAC. The caller owns the fd.
 *  Throws VxlandError: VXLAND_BAD_ARGUMENT for invalid options, VXLAND_DEVICE
 *  (with errno/syscall) when a system call fails (e.g. EPERM without
 *  CAP_NET_ADMIN, EBUSY when the name is already attached),
 *  VXLAND_DATAPATH_UNAVAILABLE when the addon is not built. Nothing is left
 *  behind on failure (the fd is closed). */
export function openConfiguredTap(options: ConfiguredTapOptions): ConfiguredTap {
  const mtu = options.mtu;
  const nameProblem = ifnameProblem(options.name);
  if (nameProblem !== null) throw badArgument(`interface name ${JSON.stringify(options.name)} ${nameProblem}`);
  if (!Number.isInteger(mtu) || mtu < MTU_MIN_BYTES || mtu > MTU_MAX_BYTES) {
    throw badArgument(`mtu must be an integer ${MTU_MIN_BYTES}..${MTU_MAX_BYTES}`);
  }
  const parsed = (options.addresses ?? []).map(requireCidr);
  if (mtu < MIN_IPV6_MTU_BYTES && parsed.some((p) => p.family === 6)) {
    throw badArgument(`IPv6 addresses need mtu >= ${MIN_IPV6_MTU_BYTES}`);
  }
  const ipv4Count = parsed.filter((p) => p.family === 4).length;
  if (ipv4Count > 1 && Buffer.byteLength(`${options.name}:${ipv4Count - 1}`) > IFNAME_MAX_BYTES) {
    throw badArgument(`name ${JSON.stringify(options.name)} too long for ${ipv4Count} IPv4 address labels`);
  }
  const mac = options.mac;
  if (mac !== undefined && (mac.length !== MAC_BYTES || !isLearnableMacKey(macKeyAt(mac, 0)))) {
    throw badArgument(`mac must be 6 bytes, unicast and not zero (got ${mac.toString('hex')})`);
  }

  const addon = loadAddon();
  const { fd, name } = callNative('VXLAND_DEVICE', () => addon.tapOpen(options.name, { vnetHdr: options.vnetHdr ?? false }));
  try {
    return callNative('VXLAND_DEVICE', () => {
      addon.tapSetMtu(name, mtu);
      if (mac !== undefined) addon.tapSetMac(name, mac);
      for (const a of labelAddresses(name, parsed)) addTapAddress(addon, a);
      addon.tapSetUp(name);
      return { fd, name, mac: addon.tapGetMac(name) };
    });
  } catch (err) {
    addon.tapClose(fd);
    throw err;
  }
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
   *  exit), sets its MTU and MAC, adds the addresses, brings it up and reads its MAC.
   *  Throws VxlandError: VXLAND_BAD_ARGUMENT for invalid options,
   *  VXLAND_DEVICE (with errno/syscall) when a system call fails (e.g. EPERM
   *  without CAP_NET_ADMIN, EBUSY when the name is already attached),
   *  VXLAND_DATAPATH_UNAVAILABLE when the addon is not built. Nothing is left
   *  behind on failure. */
  static open(options: TapOpenOptions): TapDevice {
    const { fd, name, mac } = openConfiguredTap(options);
    return new TapDevice(loadAddon(), fd, name, options.mtu, mac);
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
