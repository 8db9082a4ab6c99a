// A real small filesystem for tests of full-disk behaviour: a tmpfs mounted
// on a fresh temp directory (root only), unmounted and removed in
// t.teardown even when the test fails, and a filler file to leave a given
// number of free bytes. tmpfs allocates whole pages, so "bytes left" is in
// multiples of TMPFS_PAGE_BYTES.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmdirSync, statfsSync, writeSync, openSync, closeSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TapLike } from './netns';

export const TMPFS_PAGE_BYTES = 4096;
const FILL_CHUNK_BYTES = 64 * 1024;

/** Why a tmpfs cannot be mounted here, or false if it can. */
export function tmpfsSkipReason(): string | false {
  return process.getuid?.() === 0 ? false : 'needs root (uid 0) to mount a tmpfs';
}

/** Mounts a tmpfs of sizeBytes (mode 0755, as a state directory is) and
 *  returns its directory. */
export function mountTmpfs(t: TapLike, sizeBytes: number): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'vxland-tmpfs-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes},mode=0755`, 'vxland-test', dir], { stdio: 'pipe', timeout: 5000 });
  } catch (err) {
    rmdirSync(dir);
    throw err;
  }
  t.teardown(() => {
    // A daemon still holding a file open makes a plain umount fail (EBUSY);
    // a lazy one detaches it anyway, and it is freed when the file closes.
    try {
      execFileSync('umount', [dir], { stdio: 'pipe', timeout: 5000 });
    } catch {
      execFileSync('umount', ['-l', dir], { stdio: 'pipe', timeout: 5000 });
    }
    rmdirSync(dir);
  });
  return dir;
}

/** Bytes an unprivileged writer could still allocate on dir's filesystem. */
export function freeBytes(dir: string): number {
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
}

/** Writes a filler file into dir so that leaveBytes (a multiple of
 *  TMPFS_PAGE_BYTES) remain free; returns a function that removes it. */
export function fillFilesystem(dir: string, leaveBytes: number): () => void {
  const file = path.join(dir, 'filler');
  const fd = openSync(file, 'w');
  const chunk = Buffer.alloc(FILL_CHUNK_BYTES);
  try {
    for (let left = freeBytes(dir) - leaveBytes; left > 0; left -= FILL_CHUNK_BYTES) {
      writeSync(fd, chunk, 0, Math.min(left, FILL_CHUNK_BYTES));
    }
  } finally {
    closeSync(fd);
  }
  const free = freeBytes(dir);
  if (free !== leaveBytes) throw new Error(`filling ${dir}: ${free} bytes left, wanted ${leaveBytes}`);
  return () => unlinkSync(file);
}
