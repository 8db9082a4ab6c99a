// A JSON file in the state directory, saved all-or-nothing: the new file is
// written in full to a temp file and fsynced before anything else is
// touched, then the previous good copy is rotated to <file>.bak the same
// way, the temp file renamed into place and the directory fsynced. A save
// that fails at any step (a short write on a full disk included) removes its
// temp files and leaves the main file and the backup as they were. So a
// crash or a damaged disk block never leaves the daemon with nothing: load()
// falls back to the backup with a warning, and refuses to start
// (VXLAND_STATE_CORRUPT) rather than silently start empty.
//
// The store is plain fs and assumes one writer: the daemon holds the state
// lock (io/state-lock.ts) before it calls removeStaleTemps() and load().

import fs from 'node:fs';
import path from 'node:path';
import { VxlandError } from '../errors.js';

/** Temp files are <file>.tmp-<pid>, next to the file they replace. */
const TEMP_INFIX = '.tmp-';
/** What follows <dev>.json in the name of a temp file of this store. */
const STALE_TEMP_SUFFIX = /^(\.bak)?\.tmp-\d+$/;
const STATE_FILE_MODE = 0o600;

/** The subset of a pino logger the store needs. */
export interface StoreLog {
  warn(obj: object, msg: string): void;
}

export interface AtomicStoreOptions<T> {
  stateDir: string;
  /** The file's name in stateDir, e.g. "vxl0.json". */
  fileName: string;
  /** What the stored thing is, for messages ("state file", "networks file"). */
  what: string;
  /** Reads the file's text; throws a plain Error naming the first problem. */
  parse: (text: string) => T;
  log?: StoreLog;
}

export class AtomicStore<T> {
  readonly path: string;
  readonly backupPath: string;
  private readonly dir: string;
  private readonly log: StoreLog | undefined;
  /** The last state known to be good on disk: what the backup is made from. */
  private lastGoodText: string | null = null;

  private readonly what: string;
  private readonly parse: (text: string) => T;

  constructor(options: AtomicStoreOptions<T>) {
    this.dir = path.resolve(options.stateDir);
    this.path = path.join(this.dir, options.fileName);
    this.backupPath = `${this.path}.bak`;
    this.log = options.log;
    this.what = options.what;
    this.parse = options.parse;
  }

  /** The saved state, or null when there is none yet. Falls back to the
   *  backup (logging a warning) when the main file is missing, corrupt or
   *  truncated; throws VXLAND_STATE_CORRUPT naming the files when neither is
   *  usable, and VXLAND_STATE_IO when a file cannot be read. */
  load(): T | null {
    const main = this.readAndParse(this.path);
    if (main.state !== null) {
      this.lastGoodText = main.text;
      return main.state;
    }
    const backup = this.readAndParse(this.backupPath);
    if (main.problem === null && backup.problem === null && backup.state === null) return null;
    if (backup.state !== null) {
      this.log?.warn(
        { path: this.path, problem: main.problem ?? 'missing', backup: this.backupPath },
        `${this.what} unusable; recovered the previous state from its backup`,
      );
      this.lastGoodText = backup.text;
      return backup.state;
    }
    const mainPart = `${this.path}: ${main.problem ?? 'missing'}`;
    const backupPart = `${this.backupPath}: ${backup.problem ?? 'missing'}`;
    throw new VxlandError(
      'VXLAND_STATE_CORRUPT',
      `${mainPart}; backup ${backupPart}; fix or remove the files to start`,
    );
  }

  /** Replaces the saved state all-or-nothing (see the file comment), the
   *  backup then holding the previous good state. Creates the state directory
   *  (0755) if needed; the files are written 0600. Throws VXLAND_STATE_IO;
   *  then the main file holds the previous state and no temp file is left
   *  (the backup is unchanged, or was just rotated to that previous state). */
  save(value: object): void {
    const text = `${JSON.stringify(value, null, 2)}\n`;
    const mainTemp = `${this.path}${TEMP_INFIX}${process.pid}`;
    const backupTemp = `${this.backupPath}${TEMP_INFIX}${process.pid}`;
    try {
      fs.mkdirSync(this.dir, { recursive: true, mode: 0o755 });
      writeDurably(mainTemp, text);
      if (this.lastGoodText !== null) {
        writeDurably(backupTemp, this.lastGoodText);
        fs.renameSync(backupTemp, this.backupPath);
      }
      fs.renameSync(mainTemp, this.path);
      this.syncDirectory();
    } catch (err) {
      for (const temp of [mainTemp, backupTemp]) {
        try {
          fs.rmSync(temp, { force: true });
        } catch {
          /* the write's own error is the one to report */
        }
      }
      throw new VxlandError('VXLAND_STATE_IO', `cannot write ${this.what} ${this.path}: ${reasonOf(err)}`, { cause: err });
    }
    this.lastGoodText = text;
  }

  /** Removes the file and its backup (the thing it stores is gone for good).
   *  Throws VXLAND_STATE_IO. */
  discard(): void {
    try {
      fs.rmSync(this.path, { force: true });
      fs.rmSync(this.backupPath, { force: true });
      this.syncDirectory();
    } catch (err) {
      throw new VxlandError('VXLAND_STATE_IO', `cannot remove ${this.what} ${this.path}: ${reasonOf(err)}`, { cause: err });
    }
    this.lastGoodText = null;
  }

  /** Removes the temp files a killed daemon left behind (their pid is in the
   *  name, so they would pile up). Call only while holding the state lock:
   *  a live writer's temp files look the same. Returns the removed paths. */
  removeStaleTemps(): string[] {
    let names: string[];
    try {
      names = fs.readdirSync(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new VxlandError('VXLAND_STATE_IO', `cannot list state directory ${this.dir}: ${reasonOf(err)}`, { cause: err });
    }
    const base = path.basename(this.path);
    const removed: string[] = [];
    for (const name of names) {
      const suffix = name.startsWith(base) ? name.slice(base.length) : null;
      if (suffix === null || !STALE_TEMP_SUFFIX.test(suffix)) continue;
      const file = path.join(this.dir, name);
      fs.rmSync(file, { force: true });
      removed.push(file);
    }
    if (removed.length > 0) this.log?.warn({ removed }, 'removed temp files left by an interrupted save');
    return removed;
  }

  private syncDirectory(): void {
    const fd = fs.openSync(this.dir, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  }

  /** problem is null when the file is simply absent (state also null). */
  private readAndParse(file: string): { state: T | null; text: string; problem: string | null } {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { state: null, text: '', problem: null };
      throw new VxlandError('VXLAND_STATE_IO', `cannot read ${this.what} ${file}: ${reasonOf(err)}`, { cause: err });
    }
    try {
      return { state: this.parse(text), text, problem: null };
    } catch (err) {
      return { state: null, text, problem: (err as Error).message };
    }
  }
}

/** Writes text to a new file (mode 0600, replacing any old one) and fsyncs
 *  it; throws on any failure, including a write that stops short (ENOSPC
 *  after part of the text), so a partial file is never taken for complete. */
function writeDurably(file: string, text: string): void {
  const data = Buffer.from(text, 'utf8');
  const { O_WRONLY, O_CREAT, O_TRUNC, O_NOFOLLOW } = fs.constants;
  const fd = fs.openSync(file, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, STATE_FILE_MODE);
  try {
    fs.fchmodSync(fd, STATE_FILE_MODE);
    for (let offset = 0; offset < data.length; ) {
      const written = fs.writeSync(fd, data, offset, data.length - offset);
      if (written <= 0) throw new Error(`write to ${file} made no progress at byte ${offset} of ${data.length}`);
      offset += written;
    }
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** The errno name of a failed fs call, else the error's text. */
function reasonOf(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? String(err);
}


/** The JSON object of a state file whose "version" must be `version`;
 *  throws a plain Error naming the first problem (for AtomicStore's parse). */
export function parseVersionedJson(text: string, version: number): Record<string, unknown> {
  if (text.trim() === '') throw new Error('file is empty');
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new Error(`not valid JSON (truncated?): ${(err as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error('not a JSON object');
  const found = (raw as Record<string, unknown>).version;
  if (found !== version) {
    throw new Error(
      typeof found === 'number' && found > version
        ? `written by a newer vxland (format version ${found}, this one reads ${version})`
        : `unknown format version ${JSON.stringify(found)}`,
    );
  }
  return raw as Record<string, unknown>;
}
