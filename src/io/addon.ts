// The only module that loads the native addon (build/Release/vxland.node).
// It types the native surface and turns native system-call errors into
// VxlandError. Convention for translated errors: VxlandError.code is the
// catalog code (e.g. VXLAND_DEVICE), errno is the positive errno, syscall is
// copied, the message ends with the native text (which names the errno, e.g.
// "... failed: No such device (ENODEV) [vxl0]"), and cause is the native
// Error, whose own `code` is the errno name.

import { ERROR_CODES, ErrorCode, VxlandError } from '../errors';

/** Relative to dist/src/io/ (where this file runs from). */
const ADDON_PATH = '../../../build/Release/vxland.node';

/** A native Error from a failed system call (native/errors.h). */
export interface NativeSysError extends Error {
  /** errno name, e.g. 'ENODEV'. */
  code: string;
  /** Positive errno. */
  errno: number;
  /** e.g. 'ioctl(TUNSETIFF)'. */
  syscall: string;
}

/** native/poller.h. */
export interface NativeTapPoller {
  start(): void;
  stop(): void;
  truncatedFrames(): number;
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

/** The addon's exports. Functions throw NativeSysError unless noted. */
export interface NativeAddon {
  tapOpen(name: string): { fd: number; name: string };
  tapSetMtu(ifname: string, mtuBytes: number): void;
  tapSetUp(ifname: string): void;
  tapGetMac(ifname: string): Buffer;
  tapGetIndex(ifname: string): number;
  /** Replaces the IPv4 address labelled ifname ("dev" or alias "dev:N"). */
  tapAddIPv4(ifname: string, address: string, prefixLength: number): void;
  tapAddIPv6(ifname: string, address: string, prefixLength: number): void;
  /** 0 or positive errno; never throws. */
  tapWrite(fd: number, buffer: Buffer, offset: number, length: number): number;
  tapClose(fd: number): void;
  TapPoller: NativeTapPollerConstructor;
  sdNotify(socketPath: string, message: string): void;
}

let cached: NativeAddon | undefined;

/** Loads the addon once. Throws VxlandError('VXLAND_DATAPATH_UNAVAILABLE')
 *  when it is missing or does not load (e.g. not built). */
export function loadAddon(): NativeAddon {
  if (cached === undefined) {
    try {
      cached = require(ADDON_PATH) as NativeAddon;
    } catch (err) {
      const detail = err instanceof Error ? err.message : String(err);
      throw new VxlandError(
        'VXLAND_DATAPATH_UNAVAILABLE',
        `${ERROR_CODES.VXLAND_DATAPATH_UNAVAILABLE}: cannot load native addon (run \`npm run build:native\`): ${detail}`,
        { cause: err },
      );
    }
  }
  return cached;
}

export function isNativeSysError(err: unknown): err is NativeSysError {
  return (
    err instanceof Error &&
    typeof (err as Partial<NativeSysError>).errno === 'number' &&
    typeof (err as Partial<NativeSysError>).syscall === 'string' &&
    typeof (err as Partial<NativeSysError>).code === 'string'
  );
}

/** Wraps any error as VxlandError(code): native system-call errors keep
 *  errno/syscall (message "<catalog text>: <native message>"); TypeError/
 *  RangeError from argument checks become VXLAND_BAD_ARGUMENT; a VxlandError
 *  passes through unchanged. */
export function toVxlandError(err: unknown, code: ErrorCode): VxlandError {
  if (err instanceof VxlandError) return err;
  if (isNativeSysError(err)) {
    return new VxlandError(code, `${ERROR_CODES[code]}: ${err.message}`, {
      cause: err,
      errno: err.errno,
      syscall: err.syscall,
    });
  }
  if (err instanceof TypeError || err instanceof RangeError) {
    return new VxlandError('VXLAND_BAD_ARGUMENT', `${ERROR_CODES.VXLAND_BAD_ARGUMENT}: ${err.message}`, { cause: err });
  }
  const detail = err instanceof Error ? err.message : String(err);
  return new VxlandError(code, `${ERROR_CODES[code]}: ${detail}`, { cause: err });
}

/** Runs fn, rethrowing any failure as toVxlandError(err, code). */
export function callNative<T>(code: ErrorCode, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw toVxlandError(err, code);
  }
}
