// The CLI's end of the control socket: one request, one answer.

import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { VxlandError } from '../errors.js';
import { DEFAULT_REQUEST_TIMEOUT_MS, encodeMessage, fromControlError, parseResponse } from './protocol.js';
import { untrustedDirectory, untrustedOwner } from './trust.js';

/** Sends one request and resolves with its result. Throws VxlandError:
 *  VXLAND_NO_DAEMON when nothing listens on socketPath, VXLAND_PERMISSION
 *  when the socket is not ours to open or someone other than root (or this
 *  user) could have put it there, VXLAND_CONTROL_TIMEOUT when no answer
 *  arrives within timeoutMs, or the daemon's own code and message when it
 *  refuses the request. */
export function request(
  socketPath: string,
  method: string,
  params: Record<string, unknown> = {},
  timeoutMs: number = DEFAULT_REQUEST_TIMEOUT_MS,
): Promise<unknown> {
  const id = 1;
  return new Promise((resolve, reject) => {
    let socket: net.Socket;
    try {
      socket = connectTrusted(socketPath);
    } catch (err) {
      return reject(err);
    }
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (err: VxlandError | null, result?: unknown): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err !== null) reject(err);
      else resolve(result);
    };
    const timer = setTimeout(
      () => finish(new VxlandError('VXLAND_CONTROL_TIMEOUT', `vxland daemon on ${socketPath} did not answer within ${timeoutMs} ms`)),
      timeoutMs,
    );

    socket.on('connect', () => socket.write(encodeMessage({ id, method, params })));
    socket.on('error', (err: NodeJS.ErrnoException) => finish(connectError(socketPath, err)));
    socket.on('data', (chunk: Buffer) => {
      const newline = chunk.indexOf(10);
      if (newline < 0) {
        chunks.push(chunk);
        return;
      }
      chunks.push(chunk.subarray(0, newline));
      try {
        const response = parseResponse(Buffer.concat(chunks).toString('utf8'));
        if (response.ok) finish(null, response.result);
        else finish(fromControlError(response.error));
      } catch (err) {
        finish(err as VxlandError);
      }
    });
    socket.on('close', () =>
      finish(new VxlandError('VXLAND_CONTROL_PROTOCOL', `vxland daemon on ${socketPath} closed the connection without answering`)),
    );
  });
}

/** Connects to socketPath only when the trust rule of trust.ts holds for it
 *  (a directory root delegated to the daemon's user included),
 *  and through its real directory, so the path connected to is the one
 *  checked. Throws VXLAND_PERMISSION naming the path and why otherwise. */
function connectTrusted(socketPath: string): net.Socket {
  const euid = process.geteuid?.() ?? 0;
  const resolved = path.resolve(socketPath);
  let target: string;
  let st: fs.Stats;
  let untrustedDir: string | null;
  let dirOwner: number;
  try {
    const dir = fs.realpathSync(path.dirname(resolved));
    target = path.join(dir, path.basename(resolved));
    st = fs.lstatSync(target);
    untrustedDir = untrustedDirectory(dir, euid, { delegated: true });
    dirOwner = fs.lstatSync(dir).uid;
  } catch (err) {
    throw connectError(socketPath, err as NodeJS.ErrnoException);
  }
  if (!st.isSocket() && !st.isSymbolicLink()) throw noDaemon(socketPath);
  const why = untrustedDir ?? (st.isSymbolicLink() ? `${target} is a symbolic link` : untrustedOwner(target, st.uid, euid, dirOwner));
  if (why !== null) throw new VxlandError('VXLAND_PERMISSION', `refusing to trust control socket ${socketPath}: ${why}`);
  return net.connect(target);
}

function connectError(socketPath: string, err: NodeJS.ErrnoException): VxlandError {
  switch (err.code) {
    case 'ENOENT':
    case 'ECONNREFUSED':
    case 'ENOTSOCK':
      return noDaemon(socketPath, err);
    case 'EACCES':
    case 'EPERM':
      return new VxlandError('VXLAND_PERMISSION', `permission denied opening ${socketPath} (run as root?)`, { cause: err });
    default:
      return new VxlandError('VXLAND_SOCKET', `cannot reach vxland daemon on ${socketPath}: ${err.code ?? err.message}`, { cause: err });
  }
}

function noDaemon(socketPath: string, cause?: unknown): VxlandError {
  return new VxlandError('VXLAND_NO_DAEMON', `no vxland daemon is listening on ${socketPath}`, { cause });
}

/** Opens a streaming method (e.g. "monitor") and calls onEvent for each event
 *  until the daemon closes the connection (resolves) or `signal` aborts it
 *  (resolves). Throws like request() when the stream cannot be opened. */
export function stream(
  socketPath: string,
  method: string,
  onEvent: (event: unknown) => void,
  signal?: AbortSignal,
  params: Record<string, unknown> = {},
): Promise<void> {
  return new Promise((resolve, reject) => {
    let socket: net.Socket;
    try {
      socket = connectTrusted(socketPath);
    } catch (err) {
      return reject(err);
    }
    let buffered = '';
    let answered = false;
    let settled = false;
    const finish = (err: VxlandError | null): void => {
      if (settled) return;
      settled = true;
      socket.destroy();
      if (err !== null) reject(err);
      else resolve();
    };
    signal?.addEventListener('abort', () => finish(null), { once: true });
    socket.on('connect', () => socket.write(encodeMessage({ id: 1, method, params })));
    socket.on('error', (err: NodeJS.ErrnoException) => finish(answered ? null : connectError(socketPath, err)));
    socket.on('close', () =>
      finish(answered ? null : new VxlandError('VXLAND_CONTROL_PROTOCOL', `vxland daemon on ${socketPath} closed the connection without answering`)),
    );
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      for (let newline = buffered.indexOf('\n'); newline >= 0; newline = buffered.indexOf('\n')) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        try {
          if (!answered) {
            const response = parseResponse(line);
            if (!response.ok) return finish(fromControlError(response.error));
            answered = true;
          } else {
            onEvent((JSON.parse(line) as { event: unknown }).event);
          }
        } catch (err) {
          return finish(err instanceof VxlandError ? err : new VxlandError('VXLAND_CONTROL_PROTOCOL', `bad stream line from ${socketPath}`));
        }
      }
    });
  });
}
