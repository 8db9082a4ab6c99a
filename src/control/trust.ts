// Who can replace a control socket: the one rule both ends apply. The daemon
// refuses to create its socket where the rule fails, and the CLI refuses to
// believe a socket where it fails, so neither trusts a path someone else could
// swap.
//
// A socket is trustworthy when it is a socket (not a symlink) owned by root or
// by the checker itself (untrustedOwner), in a directory that only those can
// change (untrustedDirectory): the directory is owned by root or the checker
// and writable by nobody else, and each ancestor is too, except that an
// ancestor may be writable by others when it is sticky (like /tmp), where
// nobody can rename an entry they do not own. This is OpenSSH's StrictModes
// rule. Only the owner of such a path can have put a socket there, so its
// owner is the peer: the check stands in for SO_PEERCRED, which node:net
// cannot read (and the CLI must not load the native addon).

import fs from 'node:fs';
import path from 'node:path';

const GROUP_OR_OTHER_WRITE = 0o022;
const STICKY = 0o1000;

/** Why entries of `dir` (absolute, no symlinks: pass a realpath) could be
 *  replaced by someone other than root or `euid`; null when they cannot.
 *  Throws what lstat throws (ENOENT, EACCES). */
export function untrustedDirectory(dir: string, euid: number): string | null {
  for (let current = dir, final = true; ; final = false) {
    const st = fs.lstatSync(current);
    if (!st.isDirectory()) return `${current} is not a directory`;
    const owner = untrustedOwner(current, st.uid, euid);
    if (owner !== null) return owner;
    if ((st.mode & GROUP_OR_OTHER_WRITE) !== 0 && (final || (st.mode & STICKY) === 0)) {
      return `${current} is writable by ${(st.mode & 0o002) !== 0 ? 'others' : 'its group'} (mode ${octal(st.mode)})`;
    }
    const parent = path.dirname(current);
    if (parent === current) return null;
    current = parent;
  }
}

/** Why `file`, owned by `uid`, is not to be trusted by `euid`; null when it is. */
export function untrustedOwner(file: string, uid: number, euid: number): string | null {
  if (uid === 0 || uid === euid) return null;
  return `${file} is owned by uid ${uid}, not by root${euid === 0 ? '' : ` or uid ${euid}`}`;
}

function octal(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0');
}
