// The UDP side on node:dgram. One socket bound to the VXLAN port receives
// everything. Sends go through a socket connected to each destination (up to
// MAX_CONNECTED_PEERS, from an ephemeral source port, as the kernel's vxlan
// also uses a source port other than 4789): a connected socket skips the
// address handling of every send, and it is the only kind on which Linux
// reports ICMP errors (port or host unreachable) back to the sender.
// Addresses are IP literals only; nothing here ever does a DNS lookup.
// Every socket gets the outer header's settings (TTL, a fixed TOS, DF clear
// unless asked) through the addon's setsockopt on its fd: node:dgram has no
// API for TOS or DF, and none for per-datagram ancillary data at all.

import * as dgram from 'node:dgram';
import { isIP } from 'node:net';

import { DatagramBind, SendDone } from '../ports/io';
import { ERROR_CODES, VxlandError } from '../errors';
import { DEFAULT_TOS, DEFAULT_TTL } from '../config/config';
import { DGRAM_SOCKET_BUFFER_BYTES } from '../tables/limits.generated';
import { loadAddon } from './addon';

/** Requested SO_RCVBUF / SO_SNDBUF (native/limits.h); the kernel may clamp
 *  it (rmem_max / wmem_max) and failures are ignored. */
export const UDP_SOCKET_BUFFER_BYTES = DGRAM_SOCKET_BUFFER_BYTES;

/** Destinations that get a connected send socket; others use the bound one. */
export const MAX_CONNECTED_PEERS = 256;

export type UdpFamily = 'udp4' | 'udp6';

export interface UdpOpenOptions {
  /** Local port, 0..65535 (0 = kernel picks; see UdpBind.port). */
  port: number;
  /** Local IP literal to bind; undefined = all addresses of the family. */
  address?: string;
  family: UdpFamily;
  /** udp6 only: refuse IPv4-mapped traffic so a udp4 bind can share the
   *  port. Default true. */
  ipv6Only?: boolean;
  /** Send through per-destination connected sockets (default true). */
  connectPeers?: boolean;
  /** Outer TTL / hop limit, TOS byte and IPv4 DF of every socket (default
   *  the kernel vxlan's: 64, 0, DF clear). */
  envelope?: UdpEnvelope;
}

export interface UdpEnvelope {
  ttl: number;
  tos: number;
  df: boolean;
}

const DEFAULT_ENVELOPE: UdpEnvelope = { ttl: DEFAULT_TTL, tos: DEFAULT_TOS, df: false };

/** A bound dgram socket's file descriptor. Node keeps its handle under an
 *  internal symbol (the public-looking _handle getter is deprecated, DEP0112):
 *  the least-bad way to reach the fd, checked at every use. */
function socketFd(socket: dgram.Socket): number {
  const state = Object.getOwnPropertySymbols(socket).find((s) => s.description === 'state symbol');
  const handle = state === undefined ? undefined : (socket as unknown as Record<symbol, { handle?: { fd?: unknown } }>)[state]?.handle;
  const fd = handle?.fd;
  if (typeof fd !== 'number' || fd < 0) {
    throw new VxlandError('VXLAND_SOCKET', `${ERROR_CODES.VXLAND_SOCKET}: cannot reach the dgram socket's file descriptor to set TTL/TOS/DF (node ${process.version})`);
  }
  return fd;
}

/** Applies the envelope to a bound socket; throws VxlandError('VXLAND_SOCKET'). */
function setEnvelope(socket: dgram.Socket, family: UdpFamily, e: UdpEnvelope): void {
  const fd = socketFd(socket);
  try {
    loadAddon().udpSetEnvelope(fd, familyNumber(family), e.ttl, e.tos, e.df);
  } catch (err) {
    throw socketError('setting TTL/TOS/DF', err);
  }
}

/** A destination's connected socket; until `ready`, sends use the bound socket. */
interface PeerSocket {
  socket: dgram.Socket;
  port: number;
  ready: boolean;
}

function familyNumber(family: UdpFamily): 4 | 6 {
  return family === 'udp4' ? 4 : 6;
}

/** Node's system errors carry a negative errno; VxlandError carries it positive. */
function socketError(prefix: string, err: unknown): VxlandError {
  const e = err as NodeJS.ErrnoException;
  const detail = err instanceof Error ? err.message : String(err);
  return new VxlandError('VXLAND_SOCKET', `${ERROR_CODES.VXLAND_SOCKET}: ${prefix}: ${detail}`, {
    cause: err,
    ...(typeof e?.errno === 'number' ? { errno: Math.abs(e.errno) } : {}),
    ...(typeof e?.syscall === 'string' ? { syscall: e.syscall } : {}),
  });
}

/** dgram `lookup` that accepts only IP literals of the socket's family. */
function literalLookup(family: 4 | 6) {
  return (
    hostname: string,
    _options: unknown,
    callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void,
  ): void => {
    if (isIP(hostname) === family) {
      callback(null, hostname, family);
      return;
    }
    const err: NodeJS.ErrnoException = new Error(`not an IPv${family} address literal: ${JSON.stringify(hostname)}`);
    err.code = 'EINVAL';
    callback(err, '', family);
  };
}

export class UdpBind implements DatagramBind {
  readonly port: number;
  /** The local address actually bound ('0.0.0.0' / '::' for all). */
  readonly address: string;
  readonly family: UdpFamily;
  private readonly socket: dgram.Socket;
  private readonly peers = new Map<string, PeerSocket>();
  private readonly connectPeers: boolean;
  private readonly bindAddress: string | undefined;
  private readonly envelope: UdpEnvelope;
  private onPeerError: (address: string, err: Error) => void = () => undefined;
  private started = false;
  private fatal = false;
  private closing: Promise<void> | null = null;

  private constructor(socket: dgram.Socket, family: UdpFamily, options: UdpOpenOptions) {
    this.socket = socket;
    this.family = family;
    this.connectPeers = options.connectPeers ?? true;
    this.bindAddress = options.address;
    this.envelope = options.envelope ?? DEFAULT_ENVELOPE;
    const local = socket.address();
    this.port = local.port;
    this.address = local.address;
  }

  /** Binds the socket. Rejects with VxlandError('VXLAND_BAD_ARGUMENT') for a
   *  bad port/address and VxlandError('VXLAND_SOCKET') with errno/syscall
   *  when bind fails (EADDRINUSE, EADDRNOTAVAIL, EACCES, ...). */
  static open(options: UdpOpenOptions): Promise<UdpBind> {
    const { port, address, family } = options;
    if (family !== 'udp4' && family !== 'udp6') {
      return Promise.reject(new VxlandError('VXLAND_BAD_ARGUMENT', `invalid argument: family must be udp4 or udp6`));
    }
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      return Promise.reject(new VxlandError('VXLAND_BAD_ARGUMENT', `invalid argument: port must be 0..65535`));
    }
    const fam = familyNumber(family);
    if (address !== undefined && isIP(address) !== fam) {
      return Promise.reject(
        new VxlandError('VXLAND_BAD_ARGUMENT', `invalid argument: ${JSON.stringify(address)} is not an IPv${fam} literal`),
      );
    }
    const socket = dgram.createSocket({
      type: family,
      ipv6Only: family === 'udp6' ? (options.ipv6Only ?? true) : false,
      lookup: literalLookup(fam) as unknown as dgram.SocketOptions['lookup'],
    });
    return new Promise<UdpBind>((resolve, reject) => {
      const onError = (err: Error): void => {
        socket.close();
        reject(socketError(`bind ${address ?? (fam === 4 ? '0.0.0.0' : '::')}:${port}`, err));
      };
      socket.once('error', onError);
      socket.bind({ port, address, exclusive: true }, () => {
        socket.removeListener('error', onError);
        try {
          setEnvelope(socket, family, options.envelope ?? DEFAULT_ENVELOPE);
        } catch (err) {
          socket.close();
          reject(err);
          return;
        }
        for (const set of [socket.setRecvBufferSize, socket.setSendBufferSize]) {
          try {
            set.call(socket, UDP_SOCKET_BUFFER_BYTES);
          } catch {
            // Kernel limits apply; a smaller buffer still works.
          }
        }
        resolve(new UdpBind(socket, family, options));
      });
    });
  }

  /** See DatagramBind.start. onFatal gets VxlandError('VXLAND_SOCKET').
   *  Throws VxlandError('VXLAND_INTERNAL') if called twice. */
  start(
    onDatagram: (msg: Buffer, fromAddress: string, fromPort: number) => void,
    onFatal: (err: Error) => void,
    onPeerError?: (address: string, err: Error) => void,
  ): void {
    if (this.started) throw new VxlandError('VXLAND_INTERNAL', 'internal error: UDP bind already started');
    this.started = true;
    if (onPeerError !== undefined) this.onPeerError = onPeerError;
    this.socket.on('message', (msg, rinfo) => onDatagram(msg, rinfo.address, rinfo.port));
    this.socket.on('error', (err) => {
      if (this.fatal) return;
      this.fatal = true;
      onFatal(socketError(`socket on port ${this.port}`, err));
    });
  }

  /** See DatagramBind.send. address must be an IP literal of this bind's
   *  family, otherwise done gets an EINVAL error. done also receives send
   *  errors (EAGAIN, ECONNREFUSED, ...) and ERR_SOCKET_DGRAM_NOT_RUNNING
   *  after close(). */
  send(buffer: Buffer, length: number, address: string, port: number, done: SendDone): void {
    const peer = this.peers.get(address) ?? this.connect(address, port);
    try {
      if (peer !== undefined && peer.ready && peer.port === port) peer.socket.send(buffer, 0, length, done);
      else this.socket.send(buffer, 0, length, port, address, done);
    } catch (err) {
      process.nextTick(done, err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** Starts connecting a send socket to address:port; undefined when the
   *  table is full, the bind is closing, or connected sends are off. */
  private connect(address: string, port: number): PeerSocket | undefined {
    if (!this.connectPeers || this.closing !== null || this.peers.size >= MAX_CONNECTED_PEERS) return undefined;
    if (isIP(address) !== familyNumber(this.family)) return undefined;
    const socket = dgram.createSocket({
      type: this.family,
      ipv6Only: this.family === 'udp6',
      lookup: literalLookup(familyNumber(this.family)) as unknown as dgram.SocketOptions['lookup'],
    });
    const peer: PeerSocket = { socket, port, ready: false };
    this.peers.set(address, peer);
    // A connected socket reports ICMP errors for earlier sends as errors on
    // its next receive or send; neither is fatal for the bind.
    socket.on('error', (err) => this.onPeerError(address, err));
    socket.on('message', () => undefined);
    socket.bind({ port: 0, address: this.bindAddress }, () => {
      try {
        setEnvelope(socket, this.family, this.envelope);
      } catch (err) {
        // Sends stay on the bound socket, which has the envelope.
        this.onPeerError(address, err as Error);
        return;
      }
      socket.connect(port, address, () => {
        peer.ready = true;
        try {
          socket.setSendBufferSize(UDP_SOCKET_BUFFER_BYTES);
        } catch {
          // Kernel limits apply; a smaller buffer still works.
        }
      });
    });
    return peer;
  }

  /** The kernel's SO_RCVBUF / SO_SNDBUF in bytes (Linux reports double the
   *  requested size, clamped by rmem_max / wmem_max). */
  socketBufferBytes(): { recv: number; send: number } {
    return { recv: this.socket.getRecvBufferSize(), send: this.socket.getSendBufferSize() };
  }

  /** See DatagramBind.close. */
  close(): Promise<void> {
    if (this.closing === null) {
      const sockets = [this.socket, ...[...this.peers.values()].map((p) => p.socket)];
      this.peers.clear();
      this.closing = Promise.all(sockets.map(closeSocket)).then(() => undefined);
    }
    return this.closing;
  }
}

function closeSocket(socket: dgram.Socket): Promise<void> {
  return new Promise<void>((resolve) => {
    try {
      socket.close(() => resolve());
    } catch {
      resolve();
    }
  });
}
