// Persisted control-plane state: the peers and static FDB entries of one
// device, in <stateDir>/<dev>.json. Every save is atomic (temp file, fsync,
// rename, fsync of the directory), and the previous good state is kept as
// <dev>.json.bak, so a crash or a damaged disk block never leaves the daemon
// with nothing: load() falls back to the backup with a warning, and refuses
// to start (VXLAND_STATE_CORRUPT) rather than silently start empty.

import fs from 'node:fs';
import path from 'node:path';
import { VxlandError } from '../errors.js';
import { FLOOD_MAC, parseMac } from '../fdb/fdb.js';
import { isVni, normalizeIp } from '../config/validate.js';
import { isLearnableMacKey, macKeyOf } from '../wire/mac.js';

/** Bump when the file layout changes; older daemons refuse newer files. */
export const STATE_FORMAT_VERSION = 1;

export interface PersistedState {
  readonly vni: number;
  /** Canonical IP literals. */
  readonly peers: readonly string[];
  readonly fdb: readonly { readonly mac: string; readonly vtep: string }[];
  /** The TAP's MAC (normalised), kept so that it survives restarts. */
  readonly mac?: string;
}

/** The subset of a pino logger the store needs. */
export interface StoreLog {
  warn(obj: object, msg: string): void;
}

export interface StateStoreOptions {
  stateDir: string;
  dev: string;
  log?: StoreLog;
}

export class StateStore {
  readonly path: string;
  readonly backupPath: string;
  private readonly dir: string;
  private readonly log: StoreLog | undefined;
  /** The last state known to be good on disk: what the backup is made from. */
  private lastGoodText: string | null = null;

  constructor(options: StateStoreOptions) {
    this.dir = path.resolve(options.stateDir);
    this.path = path.join(this.dir, `${options.dev}.json`);
    this.backupPath = `${this.path}.bak`;
    this.log = options.log;
  }

  /** The saved state, or null when there is none yet. Falls back to the
   *  backup (logging a warning) when the main file is missing, corrupt or
   *  truncated; throws VXLAND_STATE_CORRUPT naming the files when neither is
   *  usable, and VXLAND_STATE_IO when a file cannot be read. */
  load(): PersistedState | null {
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
        'state file unusable; recovered the previous state from its backup',
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

  /** Atomically replaces the saved state, first copying the previous good
   *  state to the backup. Creates the state directory (0755) if needed.
   *  Throws VXLAND_STATE_IO; on failure the previous file is untouched. */
  save(state: PersistedState): void {
    const text = `${JSON.stringify(
      { version: STATE_FORMAT_VERSION, vni: state.vni, peers: state.peers, fdb: state.fdb, mac: state.mac },
      null,
      2,
    )}\n`;
    try {
      fs.mkdirSync(this.dir, { recursive: true, mode: 0o755 });
      if (this.lastGoodText !== null) this.writeAtomically(this.backupPath, this.lastGoodText);
      this.writeAtomically(this.path, text);
      this.syncDirectory();
    } catch (err) {
      const reason = (err as NodeJS.ErrnoException).code ?? String(err);
      throw new VxlandError('VXLAND_STATE_IO', `cannot write state file ${this.path}: ${reason}`, { cause: err });
    }
    this.lastGoodText = text;
  }

  private writeAtomically(target: string, text: string): void {
    const temp = `${target}.tmp-${process.pid}`;
    const fd = fs.openSync(temp, 'w', 0o644);
    try {
      fs.writeSync(fd, text);
      fs.fsyncSync(fd);
    } catch (err) {
      fs.closeSync(fd);
      fs.rmSync(temp, { force: true });
      throw err;
    }
    fs.closeSync(fd);
    fs.renameSync(temp, target);
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
  private readAndParse(file: string): { state: PersistedState | null; text: string; problem: string | null } {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return { state: null, text: '', problem: null };
      throw new VxlandError('VXLAND_STATE_IO', `cannot read state file ${file}: ${code ?? String(err)}`, { cause: err });
    }
    try {
      return { state: parseState(text), text, problem: null };
    } catch (err) {
      return { state: null, text, problem: (err as Error).message };
    }
  }
}

/** Throws a plain Error describing the first problem found. */
function parseState(text: string): PersistedState {
  if (text.trim() === '') throw new Error('file is empty');
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new Error(`not valid JSON (truncated?): ${(err as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error('not a JSON object');
  const { version, vni, peers, fdb, mac: tapMac } = raw as Record<string, unknown>;
  if (version !== STATE_FORMAT_VERSION) {
    throw new Error(
      typeof version === 'number' && version > STATE_FORMAT_VERSION
        ? `written by a newer vxland (format version ${version}, this one reads ${STATE_FORMAT_VERSION})`
        : `unknown format version ${JSON.stringify(version)}`,
    );
  }
  if (!isVni(vni)) throw new Error(`vni ${JSON.stringify(vni)} is not an integer 0..16777215`);
  if (!Array.isArray(peers)) throw new Error('peers is not a list');
  const cleanPeers = peers.map((peer: unknown) => {
    const address = typeof peer === 'string' ? normalizeIp(peer) : null;
    if (address === null) throw new Error(`peer ${JSON.stringify(peer)} is not an IP address`);
    return address;
  });
  if (!Array.isArray(fdb)) throw new Error('fdb is not a list');
  const cleanFdb = fdb.map((entry: unknown) => {
    const { mac: macText, vtep: vtepText } = (entry ?? {}) as { mac?: unknown; vtep?: unknown };
    const mac = typeof macText === 'string' ? parseMac(macText) : null;
    const vtep = typeof vtepText === 'string' ? normalizeIp(vtepText) : null;
    if (mac === null || mac === FLOOD_MAC || vtep === null) throw new Error(`fdb entry ${JSON.stringify(entry)} is malformed`);
    return { mac, vtep };
  });
  if (tapMac === undefined) return { vni, peers: cleanPeers, fdb: cleanFdb };
  const mac = typeof tapMac === 'string' ? parseMac(tapMac) : null;
  if (mac === null || !isLearnableMacKey(macKeyOf(mac))) throw new Error(`mac ${JSON.stringify(tapMac)} is not a unicast MAC address`);
  return { vni, peers: cleanPeers, fdb: cleanFdb, mac };
}
