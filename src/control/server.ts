// The daemon's end of the control socket. Requests on one connection are
// answered in order; a bad request gets an error reply, never a crash.

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
  STREAMS,
  toControlError,
  type ControlHandler,
  type ControlRequest,
  type ControlResponse,
} from './protocol.js';

/** The subset of a pino logger the server uses. */
export interface ControlLog {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** Connections served at once; more are answered with an error and closed,
 *  so a flood of idle clients cannot exhaust file descriptors. */
export const MAX_CONTROL_CLIENTS = 64;

/** Who may use the socket besides its owner (root): a group id makes it 0660. */
export interface SocketAccess {
  gid?: number;
}

/** Unsent stream output after which a slow monitor client is disconnected. */
const MAX_STREAM_BACKLOG_BYTES = 1024 * 1024;

/** How long to wait for an existing socket to answer before calling it stale. */
const STALE_PROBE_TIMEOUT_MS = 1_000;

export class ControlServer {
  readonly path: string;
  private readonly server: net.Server;
  private readonly handler: ControlHandler;
  private readonly log: ControlLog | undefined;
  private readonly clients = new Set<net.Socket>();
  private closed = false;

  private constructor(socketPath: string, server: net.Server, handler: ControlHandler, log: ControlLog | undefined) {
    this.path = socketPath;
    this.server = server;
    this.handler = handler;
    this.log = log;
    server.on('connection', (socket) => this.serve(socket));
  }

  /** Listens on socketPath (mode 0600, parent directory created 0755). A
   *  leftover socket file is replaced only if nothing answers on it; throws
   *  VXLAND_ALREADY_RUNNING if something does, VXLAND_SOCKET if the path is
   *  not a socket or cannot be bound, VXLAND_PERMISSION on EACCES. */
  static async listen(socketPath: string, handler: ControlHandler, log?: ControlLog, access: SocketAccess = {}): Promise<ControlServer> {
    const resolved = path.resolve(socketPath);
    try {
      fs.mkdirSync(path.dirname(resolved), { recursive: true, mode: 0o755 });
    } catch (err) {
      throw socketError(resolved, err);
    }
    await removeStaleSocket(resolved);
    const server = net.createServer();
    const control = new ControlServer(resolved, server, handler, log);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(resolved, () => {
        server.off('error', reject);
        resolve();
      });
    }).catch((err: unknown) => {
      throw socketError(resolved, err);
    });
    server.on('error', (err) => log?.error({ err, path: resolved }, 'control socket error'));
    if (access.gid === undefined) {
      fs.chmodSync(resolved, 0o600);
    } else {
      fs.chownSync(resolved, process.getuid?.() ?? 0, access.gid);
      fs.chmodSync(resolved, 0o660);
    }
    return control;
  }

  /** Stops listening, disconnects clients and removes the socket file. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const socket of this.clients) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    fs.rmSync(this.path, { force: true });
  }

  private serve(socket: net.Socket): void {
    if (this.clients.size >= MAX_CONTROL_CLIENTS) {
      socket.end(encodeMessage({
        id: null, ok: false,
        error: { code: 'VXLAND_CONTROL_PROTOCOL', message: `too many control connections (at most ${MAX_CONTROL_CLIENTS})` },
      }));
      socket.on('error', () => socket.destroy());
      return;
    }
    this.clients.add(socket);
    socket.setTimeout(CLIENT_IDLE_TIMEOUT_MS, () => socket.destroy());
    socket.on('close', () => this.clients.delete(socket));
    socket.on('error', () => socket.destroy());

    let pending: Buffer[] = [];
    let pendingBytes = 0;
    // Replies go out in request order even when a handler is asynchronous.
    let queue: Promise<void> = Promise.resolve();
    const send = (response: ControlResponse): void => {
      if (!socket.destroyed && socket.writable) socket.write(encodeMessage(response));
    };

    socket.on('data', (chunk: Buffer) => {
      let start = 0;
      for (let newline = chunk.indexOf(10); newline >= 0; newline = chunk.indexOf(10, start)) {
        const piece = chunk.subarray(start, newline);
        start = newline + 1;
        if (pendingBytes + piece.length > MAX_REQUEST_LINE_BYTES) return this.refuseOversize(socket, send);
        const line = Buffer.concat([...pending, piece]).toString('utf8');
        pending = [];
        pendingBytes = 0;
        if (line.trim() === '') continue;
        let request: ControlRequest;
        try {
          request = parseRequest(line);
        } catch (err) {
          const refusal = this.refusal(err, line);
          queue = queue.then(() => send(refusal));
          continue;
        }
        if (Object.hasOwn(STREAMS, request.method)) {
          const open = STREAMS[request.method];
          queue = queue.then(() => this.startStream(socket, request.id, open, send));
          continue;
        }
        queue = queue.then(() => this.answer(request, line)).then(send);
      }
      const rest = chunk.subarray(start);
      if (pendingBytes + rest.length > MAX_REQUEST_LINE_BYTES) return this.refuseOversize(socket, send);
      if (rest.length > 0) {
        pending.push(Buffer.from(rest));
        pendingBytes += rest.length;
      }
    });
  }

  /** Answers, then forwards events until the client goes; a streaming
   *  client is never timed out for idleness. A client that stops reading is
   *  dropped once its unsent output passes MAX_STREAM_BACKLOG_BYTES. */
  private startStream(socket: net.Socket, id: number, open: (typeof STREAMS)[string], send: (r: ControlResponse) => void): void {
    socket.setTimeout(0);
    send({ id, ok: true, result: { streaming: true } });
    const stop = open(this.handler, (event) => {
      if (socket.writableLength > MAX_STREAM_BACKLOG_BYTES) return void socket.destroy();
      if (!socket.destroyed) socket.write(encodeMessage({ event }));
    });
    socket.once('close', stop);
  }

  private refuseOversize(socket: net.Socket, send: (response: ControlResponse) => void): void {
    send({
      id: null,
      ok: false,
      error: { code: 'VXLAND_CONTROL_PROTOCOL', message: `request line longer than ${MAX_REQUEST_LINE_BYTES} bytes` },
    });
    socket.removeAllListeners('data');
    socket.end();
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

async function removeStaleSocket(socketPath: string): Promise<void> {
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
  fs.rmSync(socketPath, { force: true });
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
