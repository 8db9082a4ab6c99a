// One daemon per state directory: an advisory lock (flock(2)) on
// <stateDir>/<name>.lock (the daemon's is vxland.lock), taken before the state is loaded and held for the
// daemon's life. The kernel releases it when the process dies, kill -9
// included, so a stale lock file never blocks a restart. The file holds the
// holder's pid, for the refusal message of a second daemon; it is never
// removed (removing it would let two daemons lock two different files).

import fs from 'node:fs';
import path from 'node:path';
import { VxlandError, toVxlandError } from '../errors';
import { loadAddon } from './addon';

/** Enough for any pid and a newline. */
const HOLDER_READ_BYTES = 32;
const LOCK_FILE_MODE = 0o600;

export class StateLock {
  private fd: number | null;

  private constructor(readonly path: string, fd: number) {
    this.fd = fd;
  }

  /** Takes the lock `name` in stateDir (creating the directory
   *  0755 and the lock file 0600 if needed) without waiting. Throws
   *  VXLAND_STATE_LOCKED naming the holder's pid when another process holds
   *  it, VXLAND_STATE_IO when the file cannot be opened or locked. */
  static acquire(stateDir: string, name: string): StateLock {
    const dir = path.resolve(stateDir);
    const lockPath = path.join(dir, `${name}.lock`);
    let fd: number;
    try {
      fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
      const { O_RDWR, O_CREAT, O_NOFOLLOW } = fs.constants;
      fd = fs.openSync(lockPath, O_RDWR | O_CREAT | O_NOFOLLOW, LOCK_FILE_MODE);
    } catch (err) {
      const reason = (err as NodeJS.ErrnoException).code ?? String(err);
      throw new VxlandError('VXLAND_STATE_IO', `cannot open state lock ${lockPath}: ${reason}`, { cause: err });
    }
    let taken: boolean;
    try {
      taken = loadAddon().flockExclusive(fd);
    } catch (err) {
      fs.closeSync(fd);
      throw toVxlandError(err, 'VXLAND_STATE_IO');
    }
    if (!taken) {
      const holder = readHolder(fd);
      fs.closeSync(fd);
      throw new VxlandError(
        'VXLAND_STATE_LOCKED',
        `the state in ${dir} is in use by another vxland (${holder === null ? 'pid unknown' : `pid ${holder}`}, lock ${lockPath}); stop it or use another --state-dir`,
      );
    }
    try {
      const text = Buffer.from(`${process.pid}\n`);
      fs.writeSync(fd, text, 0, text.length, 0);
      fs.ftruncateSync(fd, text.length);
    } catch {
      // The pid only makes a second daemon's message clearer; the lock holds
      // without it (e.g. on a full disk, where saves fail but traffic flows).
    }
    return new StateLock(lockPath, fd);
  }

  /** Releases the lock. Idempotent. */
  release(): void {
    if (this.fd === null) return;
    fs.closeSync(this.fd);
    this.fd = null;
  }
}

/** The pid the holder wrote, or null when there is none (yet). */
function readHolder(fd: number): number | null {
  const buffer = Buffer.alloc(HOLDER_READ_BYTES);
  let length: number;
  try {
    length = fs.readSync(fd, buffer, 0, buffer.length, 0);
  } catch {
    return null;
  }
  const text = buffer.subarray(0, length).toString('utf8').trim();
  return /^\d+$/.test(text) ? Number(text) : null;
}
