// The one catalog of control-plane errors. Each has a stable code (for
// scripts and --json output) and one human line. The data path never throws
// these per packet: it counts drops by reason instead (src/ports/drops.ts).
// toVxlandError is the one translation of a system-call error into it.

export const ERROR_CODES = {
  VXLAND_CONFIG_INVALID: 'invalid configuration',
  VXLAND_CONFIG_FILE: 'cannot read config file',
  VXLAND_BAD_ARGUMENT: 'invalid argument',
  VXLAND_NOT_FOUND: 'no such entry',
  VXLAND_NO_DAEMON: 'no daemon is listening',
  VXLAND_ALREADY_RUNNING: 'another daemon is already listening',
  VXLAND_CONTROL_TIMEOUT: 'daemon did not answer in time',
  VXLAND_CONTROL_PROTOCOL: 'bad control message',
  VXLAND_PERMISSION: 'permission denied',
  VXLAND_STATE_CORRUPT: 'state file is corrupt',
  VXLAND_STATE_IO: 'cannot write state',
  VXLAND_STATE_LOCKED: 'state is in use by another daemon',
  VXLAND_DATAPATH_UNAVAILABLE: 'data path unavailable',
  VXLAND_DEVICE: 'TAP device error',
  VXLAND_BRIDGE: 'cannot attach to bridge',
  VXLAND_SOCKET: 'UDP socket error',
  VXLAND_NETWORK_EXISTS: 'network already exists',
  VXLAND_NETWORK_UNKNOWN: 'no such network',
  VXLAND_NETWORK_AMBIGUOUS: 'several networks; say which',
  VXLAND_INTERNAL: 'internal error',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class VxlandError extends Error {
  readonly code: ErrorCode;
  /** Set when the error comes from a system call (native or node). */
  readonly errno?: number;
  readonly syscall?: string;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; errno?: number; syscall?: string }) {
    super(message, options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = 'VxlandError';
    this.code = code;
    if (options?.errno !== undefined) this.errno = options.errno;
    if (options?.syscall !== undefined) this.syscall = options.syscall;
  }

  toJSON(): { code: ErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

export function isVxlandError(err: unknown): err is VxlandError {
  return err instanceof VxlandError;
}

/** A native Error from a failed system call (native/errors.h). */
export interface NativeSysError extends Error {
  /** errno name, e.g. 'ENODEV'. */
  code: string;
  /** Positive errno. */
  errno: number;
  /** e.g. 'ioctl(TUNSETIFF)'. */
  syscall: string;
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
