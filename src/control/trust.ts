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
//
// The CLI also trusts a directory root handed to a user: one owned by that
// user, not writable by others, in a parent that root (or the checker) owns
// and nobody else may write (no sticky exception: in /tmp anyone may make a
// directory of their own). Only root can have made it there for that user,
// as systemd makes /run/vxland for the unit's User=vxland; a socket in it
// owned by that user is trusted too. The daemon never puts its own socket in
// a directory delegated to someone else.

import fs from 'node:fs';
import path from 'node:path';

const GROUP_OR_OTHER_WRITE = 0o022;
const STICKY = 0o1000;

export interface TrustOptions {
  /** Accept `dir` delegated by root to its owner (the CLI's side). */
  delegated?: boolean;
}

/** Why entries of `dir` (absolute, no symlinks: pass a realpath) could be
 *  replaced by someone other than root or `euid` (or, with `delegated`, the
 *  user root handed `dir` to); null when they cannot. Throws what lstat
 *  throws (ENOENT, EACCES). */
export function untrustedDirectory(dir: string, euid: number, options: TrustOptions = {}): string | null {
  for (let current = dir, final = true; ; final = false) {
    const st = fs.lstatSync(current);
    if (!st.isDirectory()) return `${current} is not a directory`;
    const owner = untrustedOwner(current, st.uid, euid);
    if (owner !== null && !(final && options.delegated === true && delegatedBy(path.dirname(current), euid))) return owner;
    if ((st.mode & GROUP_OR_OTHER_WRITE) !== 0 && (final || (st.mode & STICKY) === 0)) {
      return `${current} is writable by ${(st.mode & 0o002) !== 0 ? 'others' : 'its group'} (mode ${octal(st.mode)})`;
    }
    const parent = path.dirname(current);
    if (parent === current) return null;
    current = parent;
  }
}

/** Why `file`, owned by `uid`, is not to be trusted by `euid`; null when it
 *  is. `dirOwner`: the owner of the trusted directory it is in, trusted too. */
export function untrustedOwner(file: string, uid: number, euid: number, dirOwner: number = 0): string | null {
  if (uid === 0 || uid === euid || uid === dirOwner) return null;
  return `${file} is owned by uid ${uid}, not by root${euid === 0 ? '' : ` or uid ${euid}`}`;
}

/** True when `parent` is trusted and writable by its owner (root or euid) alone. */
function delegatedBy(parent: string, euid: number): boolean {
  const st = fs.lstatSync(parent);
  return (st.mode & GROUP_OR_OTHER_WRITE) === 0 && untrustedDirectory(parent, euid) === null;
}

function octal(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0');
}
