// The daemon's end of the control socket. Requests on one connection are
// answered in order, one at a time; a bad request gets an error reply, never
// a crash. No client can make it hold more than a bounded amount of memory or
// a place for long: see pump, Connection and evict.

import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { VxlandError } from '../errors.js';
import {
  CLIENT_IDLE_TIMEOUT_MS,
  encodeMessage,
  MAX_REQUEST_LINE_BYTES,
  METHODS,
  parseRequest,
  ProtocolError,
  REQUEST_LINE_TIMEOUT_MS,
  STREAMS,
  toControlError,
  type ControlHandler,
  type ControlRequest,
  type ControlResponse,
} from './protocol.js';
import { untrustedDirectory } from './trust.js';

/** The subset of a pino logger the server uses. */
export interface ControlLog {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** Connections served at once. A newcomer past it is served, and the
 *  connection that made the least progress (see ControlServer.evict) is
 *  closed instead, so slow clients cannot hold every place. */
export const MAX_CONTROL_CLIENTS = 64;

/** Unread reply bytes past which the server stops reading a connection's
 *  requests until the client reads. */
export const MAX_REPLY_BACKLOG_BYTES = 1024 * 1024;

/** How long a connection may stay backed up (see MAX_REPLY_BACKLOG_BYTES)
 *  before it is closed. */
export const REPLY_STALL_TIMEOUT_MS = 10_000;

/** Per-connection limits; tests shorten them. */
export interface ControlLimits {
  maxClients: number;
  idleTimeoutMs: number;
  requestLineTimeoutMs: number;
  maxReplyBacklogBytes: number;
  replyStallTimeoutMs: number;
}

export const DEFAULT_CONTROL_LIMITS: Readonly<ControlLimits> = {
  maxClients: MAX_CONTROL_CLIENTS,
  idleTimeoutMs: CLIENT_IDLE_TIMEOUT_MS,
  requestLineTimeoutMs: REQUEST_LINE_TIMEOUT_MS,
  maxReplyBacklogBytes: MAX_REPLY_BACKLOG_BYTES,
  replyStallTimeoutMs: REPLY_STALL_TIMEOUT_MS,
};

/** Who may use the socket besides its owner (the daemon's user) and root: a group id makes it 0660. */
export interface SocketAccess {
  gid?: number;
  /** The group's name, for messages. */
  group?: string;
}

/** Unsent stream output after which a slow monitor client is disconnected. */
const MAX_STREAM_BACKLOG_BYTES = 1024 * 1024;

/** How long to wait for an existing socket to answer before calling it stale. */
const STALE_PROBE_TIMEOUT_MS = 1_000;

/** How long a closing connection may take to flush its last line. */
const CLOSE_FLUSH_TIMEOUT_MS = 1_000;

/** Mode of socket directories the server creates (group members must reach
 *  a 0660 socket in them). */
const SOCKET_DIR_MODE = 0o755;

/** Longest unix socket path (sun_path holds 108 bytes with the NUL). */
const MAX_SOCKET_PATH_BYTES = 107;

/** Where bindInPlace binds before renaming: <dir>/.vxl-XXXXXX/s. */
const PRIVATE_DIR_PREFIX = '.vxl-';
/** A private directory older than this was left by a killed daemon. */
const STALE_PRIVATE_DIR_AGE_MS = 60_000;
const PRIVATE_SOCKET_NAME = 's';

const NO_BYTES = Buffer.alloc(0);

export class ControlServer {
  readonly path: string;
  private readonly server: net.Server;
  private readonly handler: ControlHandler;
  private readonly log: ControlLog | undefined;
  private readonly limits: ControlLimits;
  private readonly clients = new Set<Connection>();
  private closed = false;

  private constructor(socketPath: string, server: net.Server, handler: ControlHandler, log: ControlLog | undefined, limits: ControlLimits) {
    this.path = socketPath;
    this.server = server;
    this.handler = handler;
    this.log = log;
    this.limits = limits;
    server.on('connection', (socket) => this.serve(socket));
  }

  /** Listens on socketPath, mode 0600 (or 0660, group access.gid, with access.gid:
   *  VXLAND_PERMISSION when the daemon may not give it that group)
   *  from the moment it exists: it is bound in a private directory and
   *  renamed into place. A missing directory is created 0755; an existing
   *  one must be owned by root (or this euid) and writable by nobody else
   *  (trust.ts), else VXLAND_PERMISSION naming it. A leftover socket file is
   *  replaced only if nothing answers on it; throws VXLAND_ALREADY_RUNNING if
   *  something does, VXLAND_SOCKET if the path is not a socket or cannot be
   *  bound, VXLAND_PERMISSION on EACCES. */
  static async listen(
    socketPath: string,
    handler: ControlHandler,
    log?: ControlLog,
    access: SocketAccess = {},
    limits: Partial<ControlLimits> = {},
  ): Promise<ControlServer> {
    const euid = process.geteuid?.() ?? 0;
    const resolved = path.resolve(socketPath);
    const finalPath = path.join(trustedDirectory(path.dirname(resolved), euid), path.basename(resolved));
    await refuseOccupied(finalPath);
    const server = net.createServer();
    const control = new ControlServer(finalPath, server, handler, log, { ...DEFAULT_CONTROL_LIMITS, ...limits });
    await bindInPlace(server, finalPath, euid, access);
    server.on('error', (err) => log?.error({ err, path: finalPath }, 'control socket error'));
    return control;
  }

  /** Stops listening, disconnects clients and removes the socket file. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const client of this.clients) client.socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    fs.rmSync(this.path, { force: true });
  }

  private serve(socket: net.Socket): void {
    socket.on('error', () => socket.destroy());
    if (this.closed) return void socket.destroy();
    if (this.clients.size >= this.limits.maxClients) this.evict();
    const client: Connection = new Connection(socket, this.limits, () => this.clients.delete(client));
    this.clients.add(client);
    socket.on('data', (chunk: Buffer) => {
      // A stream's client has nothing more to say; what it sends is dropped.
      if (client.streaming || client.closing) return;
      client.inbox = client.inbox.length === 0 ? chunk : Buffer.concat([client.inbox, chunk]);
      this.pump(client);
    });
  }

  /** Closes the connection that made the least progress: streams last, then
   *  the one whose last completed request (or connect, if none) is oldest. A
   *  client that completes its request within moments of connecting is only
   *  evicted if MAX_CONTROL_CLIENTS newer connections arrive first. */
  private evict(): void {
    let victim: Connection | undefined;
    for (const client of this.clients) {
      if (victim === undefined || Number(client.streaming) < Number(victim.streaming)
        || (client.streaming === victim.streaming && client.progressMs < victim.progressMs)) victim = client;
    }
    victim?.cut(`too many control connections (at most ${this.limits.maxClients}); closing the one that made the least progress`);
  }

  /** Answers the connection's complete request lines one at a time. Reading
   *  is paused while a request is being answered or while more than
   *  maxReplyBacklogBytes of replies are unread, so what a connection holds
   *  is bounded by one request line, one read and that backlog. */
  private pump(client: Connection): void {
    const { socket } = client;
    while (!client.busy && !client.streaming && !client.closing && !socket.destroyed) {
      if (socket.writableNeedDrain && socket.writableLength > this.limits.maxReplyBacklogBytes) {
        return client.waitForDrain(() => this.pump(client));
      }
      const newline = client.inbox.indexOf(10);
      if ((newline < 0 ? client.inbox.length : newline) > MAX_REQUEST_LINE_BYTES) {
        return client.cut(`request line longer than ${MAX_REQUEST_LINE_BYTES} bytes`);
      }
      if (newline < 0) {
        if (client.inbox.length > 0) client.lineStarted();
        socket.resume();
        return;
      }
      const line = client.inbox.toString('utf8', 0, newline);
      client.inbox = newline + 1 === client.inbox.length ? NO_BYTES : client.inbox.subarray(newline + 1);
      client.lineEnded();
      if (line.trim() === '') continue;
      client.progress();
      client.busy = true;
      socket.pause();
      this.dispatch(client, line).then(() => {
        client.busy = false;
        client.progress();
        this.pump(client);
      }, (err: unknown) => {
        this.log?.error({ err, line: line.slice(0, 200) }, 'control request failed');
        client.cut('internal error');
      });
    }
  }

  private async dispatch(client: Connection, line: string): Promise<void> {
    let request: ControlRequest;
    try {
      request = parseRequest(line);
    } catch (err) {
      return client.send(this.refusal(err, line));
    }
    if (Object.hasOwn(STREAMS, request.method)) return this.startStream(client, request, STREAMS[request.method], line);
    client.send(await this.answer(request, line));
  }

  /** Answers (or refuses bad params), then forwards events until the client goes; a streaming
   *  client is never timed out for idleness. A client that stops reading is
   *  dropped once its unsent output passes MAX_STREAM_BACKLOG_BYTES. */
  private startStream(client: Connection, request: ControlRequest, open: (typeof STREAMS)[string], line: string): void {
    const { socket } = client;
    let stop: () => void;
    try {
      stop = open(this.handler, (event) => {
        if (socket.writableLength > MAX_STREAM_BACKLOG_BYTES) return void socket.destroy();
        if (!socket.destroyed) socket.write(encodeMessage({ event }));
      }, request.params ?? {});
    } catch (err) {
      return client.send(this.refusal(err, line, request.id));
    }
    client.startStreaming();
    client.send({ id: request.id, ok: true, result: { streaming: true } });
    socket.once('close', stop);
  }

  private async answer(request: ControlRequest, line: string): Promise<ControlResponse> {
    try {
      const method = Object.hasOwn(METHODS, request.method) ? METHODS[request.method] : undefined;
      if (method === undefined) {
        const known = [...Object.keys(METHODS), ...Object.keys(STREAMS)].join(', ');
        throw new VxlandError('VXLAND_CONTROL_PROTOCOL', `unknown method "${request.method}" (known: ${known})`);
      }
      const result = await method(this.handler, request.params ?? {});
      return { id: request.id, ok: true, result: result ?? null };
    } catch (err) {
      return this.refusal(err, line, request.id);
    }
  }

  /** The error answer for anything parsing or a handler threw; unexpected
   *  errors (not VxlandError) are logged too. */
  private refusal(err: unknown, line: string, id: number | null = null): ControlResponse {
    if (err instanceof ProtocolError) id = err.requestId;
    if (!(err instanceof VxlandError)) this.log?.error({ err, line: line.slice(0, 200) }, 'control request failed');
    return { id, ok: false, error: toControlError(err) };
  }

}

/** One client: its unparsed input, its deadlines and how far it got. */
class Connection {
  /** When it last completed a request, or connected: eviction's measure. */
  progressMs = Date.now();
  /** Received bytes not yet answered: at most one read past a request line. */
  inbox: Buffer = NO_BYTES;
  busy = false;
  streaming = false;
  closing = false;
  private readonly idleTimer: NodeJS.Timeout;
  private lineTimer: NodeJS.Timeout | null = null;
  private stallTimer: NodeJS.Timeout | null = null;

  constructor(readonly socket: net.Socket, private readonly limits: ControlLimits, private readonly onGone: () => void) {
    this.idleTimer = setTimeout(() => this.cut(`no request completed within ${limits.idleTimeoutMs} ms`), limits.idleTimeoutMs);
    socket.once('close', () => {
      this.stopTimers();
      onGone();
    });
  }

  send(response: ControlResponse): void {
    if (!this.socket.destroyed && this.socket.writable) this.socket.write(encodeMessage(response));
  }

  /** A request arrived or was answered: the idle deadline starts again. */
  progress(): void {
    if (this.streaming || this.closing) return;
    this.progressMs = Date.now();
    this.idleTimer.refresh();
  }

  /** Part of a request line is here; the rest must follow in time. More
   *  bytes do not move the deadline. */
  lineStarted(): void {
    this.lineTimer ??= setTimeout(
      () => this.cut(`request line not complete within ${this.limits.requestLineTimeoutMs} ms`),
      this.limits.requestLineTimeoutMs,
    );
  }

  lineEnded(): void {
    if (this.lineTimer !== null) clearTimeout(this.lineTimer);
    this.lineTimer = null;
  }

  /** Stops reading until the unread replies are taken; closes the
   *  connection if that does not happen within replyStallTimeoutMs. */
  waitForDrain(then: () => void): void {
    if (this.stallTimer !== null) return;
    this.socket.pause();
    this.stallTimer = setTimeout(() => this.socket.destroy(), this.limits.replyStallTimeoutMs);
    this.socket.once('drain', () => {
      if (this.stallTimer !== null) clearTimeout(this.stallTimer);
      this.stallTimer = null;
      then();
    });
  }

  startStreaming(): void {
    this.streaming = true;
    this.stopTimers();
    this.inbox = NO_BYTES;
    this.socket.resume();
  }

  /** Tells the client why in one error line, then closes at once: destroyed
   *  as soon as the line is flushed (never left half-closed waiting for the
   *  client), or now if replies are still unread. Frees its place at once. */
  cut(message: string): void {
    if (this.closing) return;
    this.closing = true;
    this.stopTimers();
    this.onGone();
    const { socket } = this;
    if (socket.destroyed) return;
    if (socket.writableLength > 0 || !socket.writable) return void socket.destroy();
    socket.end(encodeMessage({ id: null, ok: false, error: { code: 'VXLAND_CONTROL_PROTOCOL', message } }));
    socket.once('finish', () => socket.destroy());
    const flushTimer = setTimeout(() => socket.destroy(), CLOSE_FLUSH_TIMEOUT_MS);
    socket.once('close', () => clearTimeout(flushTimer));
  }

  private stopTimers(): void {
    clearTimeout(this.idleTimer);
    this.lineEnded();
    if (this.stallTimer !== null) clearTimeout(this.stallTimer);
    this.stallTimer = null;
  }
}

/** The real path of the socket's directory, created 0755 if missing; throws
 *  VXLAND_PERMISSION naming it when others could replace its entries. */
function trustedDirectory(dir: string, euid: number): string {
  let real: string;
  let why: string | null;
  try {
    makeDirectory(dir);
    real = fs.realpathSync(dir);
    why = untrustedDirectory(real, euid);
  } catch (err) {
    throw socketError(dir, err);
  }
  if (why !== null) {
    throw new VxlandError('VXLAND_PERMISSION', `refusing to put the control socket in ${dir}: ${why}; it must be owned by root and writable by nobody else`);
  }
  return real;
}

/** Creates dir and its missing parents SOCKET_DIR_MODE whatever the umask.
 *  The mode is set through a descriptor opened with O_NOFOLLOW, so a
 *  symlink swapped in for a new directory is never followed; a directory
 *  swapped in is then refused by untrustedDirectory. */
function makeDirectory(dir: string): void {
  const first = fs.mkdirSync(dir, { recursive: true, mode: SOCKET_DIR_MODE });
  if (first === undefined) return;
  for (let current = dir; ; current = path.dirname(current)) {
    const fd = fs.openSync(current, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW);
    try {
      fs.fchmodSync(fd, SOCKET_DIR_MODE);
    } finally {
      fs.closeSync(fd);
    }
    if (current === first || current === path.dirname(current)) return;
  }
}

/** Throws unless socketPath is free or holds a socket nothing answers on
 *  (which bindInPlace then replaces). Never follows a symlink there. */
async function refuseOccupied(socketPath: string): Promise<void> {
  let stat: fs.Stats;
  try {
    stat = fs.lstatSync(socketPath);
  } catch {
    return;
  }
  if (!stat.isSocket()) {
    throw new VxlandError('VXLAND_SOCKET', `${socketPath} exists and is not a socket; refusing to replace it`);
  }
  if (await somethingAnswers(socketPath)) {
    throw new VxlandError('VXLAND_ALREADY_RUNNING', `another vxland daemon is already listening on ${socketPath}`);
  }
}

/** Binds in a fresh 0700 directory next to finalPath, gives the socket its
 *  final owner and mode there (where nobody else can reach or swap it), then
 *  renames it over finalPath: the socket is never visible with a looser mode,
 *  and rename replaces a stale socket without following anything. */
async function bindInPlace(server: net.Server, finalPath: string, euid: number, access: SocketAccess): Promise<void> {
  const dir = path.dirname(finalPath);
  // node:net silently truncates a longer path, which would bind elsewhere.
  const suffixBytes = Buffer.byteLength(path.join('/', `${PRIVATE_DIR_PREFIX}XXXXXX`, PRIVATE_SOCKET_NAME));
  if (Buffer.byteLength(finalPath) > MAX_SOCKET_PATH_BYTES || Buffer.byteLength(dir) + suffixBytes > MAX_SOCKET_PATH_BYTES) {
    throw new VxlandError('VXLAND_SOCKET',
      `control socket path ${finalPath} is too long (at most ${MAX_SOCKET_PATH_BYTES} bytes, and ${MAX_SOCKET_PATH_BYTES - suffixBytes} for its directory)`);
  }
  removeStalePrivateDirs(dir, euid);
  let privateDir: string | undefined;
  try {
    privateDir = fs.mkdtempSync(path.join(dir, PRIVATE_DIR_PREFIX));
    const temp = path.join(privateDir, PRIVATE_SOCKET_NAME);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(temp, () => {
        server.off('error', reject);
        resolve();
      });
    });
    if (access.gid !== undefined) giveToGroup(temp, finalPath, euid, access.gid, access.group);
    fs.chmodSync(temp, access.gid === undefined ? 0o600 : 0o660);
    fs.renameSync(temp, finalPath);
  } catch (err) {
    server.close();
    throw socketError(finalPath, err);
  } finally {
    if (privateDir !== undefined) fs.rmSync(privateDir, { recursive: true, force: true });
  }
}

/** Makes gid the socket's group. A socket made by a process whose group is
 *  gid already has it, and no chown is called (the unit's seccomp filter
 *  denies chown); otherwise the daemon needs to be a member of gid, or
 *  CAP_CHOWN. */
function giveToGroup(socketPath: string, finalPath: string, euid: number, gid: number, group: string | undefined): void {
  if (fs.lstatSync(socketPath).gid === gid) return;
  try {
    fs.lchownSync(socketPath, euid, gid);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EPERM') throw err;
    throw new VxlandError('VXLAND_PERMISSION',
      `cannot give control socket ${finalPath} to group ${group ?? gid} (chown: EPERM): the daemon must run with that group `
      + '(under systemd: the unit\'s Group=) or be one of its members, or have CAP_CHOWN', { cause: err });
  }
}

/** A daemon killed between mkdtemp and rename leaves its private directory
 *  behind. A live bind needs it for microseconds, so one older than
 *  STALE_PRIVATE_DIR_AGE_MS is a leftover, whoever's device it was for. */
function removeStalePrivateDirs(dir: string, euid: number): void {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  const oldestLiveMs = Date.now() - STALE_PRIVATE_DIR_AGE_MS;
  for (const name of names) {
    if (!name.startsWith(PRIVATE_DIR_PREFIX)) continue;
    const leftover = path.join(dir, name);
    try {
      const st = fs.lstatSync(leftover);
      if (st.isDirectory() && st.uid === euid && st.mtimeMs < oldestLiveMs) fs.rmSync(leftover, { recursive: true, force: true });
    } catch {
      // Gone already, or not ours to remove: the bind below does not need it.
    }
  }
}

function somethingAnswers(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.connect(socketPath);
    const finish = (answered: boolean): void => {
      probe.destroy();
      resolve(answered);
    };
    probe.setTimeout(STALE_PROBE_TIMEOUT_MS, () => finish(true));
    probe.once('connect', () => finish(true));
    probe.once('error', () => finish(false));
  });
}

function socketError(socketPath: string, err: unknown): VxlandError {
  if (err instanceof VxlandError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EACCES' || code === 'EPERM') {
    return new VxlandError('VXLAND_PERMISSION', `permission denied creating control socket ${socketPath}`, { cause: err });
  }
  return new VxlandError('VXLAND_SOCKET', `cannot listen on control socket ${socketPath}: ${code ?? String(err)}`, { cause: err });
}
