// A raw client of a control socket, for tests that misbehave on purpose
// (never read, never close, send a byte at a time).

import net from 'node:net';
import type { TapLike } from './netns';

export interface RawClient {
  socket: net.Socket;
  /** Everything received so far. */
  received: () => string;
  /** Resolves with Date.now() at close. */
  closed: Promise<number>;
  connected: Promise<void>;
}

/** Connects; allowHalfOpen keeps our end open whatever the server does. Destroyed at teardown. */
export function openRaw(t: TapLike, socketPath: string, opts: { allowHalfOpen?: boolean } = {}): RawClient {
  const socket = net.connect({ path: socketPath, allowHalfOpen: opts.allowHalfOpen ?? false });
  t.teardown(() => socket.destroy());
  let text = '';
  socket.on('error', () => undefined);
  socket.on('data', (d) => (text += d.toString()));
  return {
    socket,
    received: () => text,
    closed: new Promise((resolve) => socket.once('close', () => resolve(Date.now()))),
    connected: new Promise((resolve) => socket.once('connect', () => resolve())),
  };
}
