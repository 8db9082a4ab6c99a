// Reading the config file, at start and on every SIGHUP, without letting the
// path stall or exhaust the daemon: only a regular file (a symlink to one is
// fine) of at most CONFIG_FILE_MAX_BYTES is read. A FIFO, a device such as
// /dev/zero, a directory or an oversized file is refused at once with
// VXLAND_CONFIG_FILE; nothing here blocks or reads without bound.

import fs from 'node:fs';
import { VxlandError } from '../errors.js';

/** 1 MiB: room for ~70,000 peers, far beyond any real flood list. */
export const CONFIG_FILE_MAX_BYTES = 1024 * 1024;

/** The file's text (UTF-8). Throws VxlandError VXLAND_CONFIG_FILE. */
export function readConfigText(file: string): string {
  // stat first so that a device is refused without being opened (opening
  // some has side effects); the fstat below catches a swap in between.
  refuseUnlessRegular(file, orFileError(file, () => fs.statSync(file)));
  // O_NONBLOCK: should a FIFO be swapped in after the stat, open returns at
  // once instead of waiting for a writer (and fstat then refuses it).
  const fd = orFileError(file, () => fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOCTTY));
  try {
    refuseUnlessRegular(file, orFileError(file, () => fs.fstatSync(fd)));
    // The size is read, not trusted: the file may grow, and /proc-like files
    // report 0. One byte beyond the cap tells an oversized file apart.
    const buffer = Buffer.allocUnsafe(CONFIG_FILE_MAX_BYTES + 1);
    let length = 0;
    while (length < buffer.length) {
      const n = orFileError(file, () => fs.readSync(fd, buffer, length, buffer.length - length, null));
      if (n === 0) break;
      length += n;
    }
    if (length > CONFIG_FILE_MAX_BYTES) throw tooLarge(file);
    return buffer.toString('utf8', 0, length);
  } finally {
    fs.closeSync(fd);
  }
}

function orFileError<T>(file: string, call: () => T): T {
  try {
    return call();
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new VxlandError('VXLAND_CONFIG_FILE', `cannot read config file ${file}: ${reason}`, { cause: err });
  }
}

function refuseUnlessRegular(file: string, st: fs.Stats): void {
  if (!st.isFile()) {
    throw new VxlandError('VXLAND_CONFIG_FILE', `cannot read config file ${file}: it is ${kindOf(st)}, not a regular file`);
  }
  if (st.size > CONFIG_FILE_MAX_BYTES) throw tooLarge(file);
}

function tooLarge(file: string): VxlandError {
  return new VxlandError(
    'VXLAND_CONFIG_FILE',
    `cannot read config file ${file}: it is larger than ${CONFIG_FILE_MAX_BYTES} bytes (1 MiB), the most a config file may be`,
  );
}

function kindOf(st: fs.Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'a special file';
}
