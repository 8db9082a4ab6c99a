// The UDP side on node:dgram. One socket bound to the VXLAN port receives
// everything. Sends go through a socket connected to each destination (up to
// MAX_CONNECTED_SOCKETS): a connected socket skips the address handling of
// every send, and it is the only kind on which Linux reports ICMP errors
// (port or host unreachable) back to the sender. With a source port range
// (srcPorts, RFC 7348 §5) there are SRC_PORT_SOCKETS source ports bound over
// the range (native/core_srcport.h picks them, as for the native engine) and
// a frame's flow slot picks one: one connected socket per (destination,
// source port), all bound with SO_REUSEADDR to share the port. Without a
// range, one connected socket per destination from an ephemeral port.
// Addresses are IP literals only; nothing here ever does a DNS lookup.
// An IPv6 bind accepts datagrams with a zero UDP checksum (UDP_NO_CHECK6_RX,
// as the kernel vxlan's udp6zerocsumrx) and sends with checksums.
// Every socket gets the outer header's settings (TTL, a fixed TOS, DF clear
// unless asked) through the addon's setsockopt on its fd: node:dgram has no
// API for TOS or DF, and none for per-datagram ancillary data at all.

import * as dgram from 'node:dgram';
import { isIP } from 'node:net';

import { DatagramBind, SendDone } from '../ports/io';
import { loadAddon } from './addon';
import { ERROR_CODES, VxlandError } from '../errors';
import { DEFAULT_TOS, DEFAULT_TTL } from '../config/config';
import { DGRAM_SOCKET_BUFFER_BYTES, SRC_PORT_BIND_ATTEMPTS, SRC_PORT_SOCKETS } from '../tables/limits.generated';

/** Requested SO_RCVBUF / SO_SNDBUF (native/limits.h); the kernel may clamp
 *  it (rmem_max / wmem_max) and failures are ignored. */
export const UDP_SOCKET_BUFFER_BYTES = DGRAM_SOCKET_BUFFER_BYTES;

/** Connected send sockets at most (one per destination, or per destination
 *  and source port); other sends use an unconnected socket of their port. */
export const MAX_CONNECTED_SOCKETS = 1024;

/** An outer UDP source port range, inclusive. */
export interface SrcPortRange {
  min: number;
  max: number;
}

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
  /** Source ports of sends: per flow from this range (see the top). */
  srcPorts?: SrcPortRange;
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

/** Applies the envelope to a bound socket; throws VxlandError('VXLAND_SOCKET'). */
function setEnvelope(socket: dgram.Socket, family: UdpFamily, e: UdpEnvelope): void {
  const fd = socketFd(socket);
  if (fd === undefined) {
    throw new VxlandError('VXLAND_SOCKET', `${ERROR_CODES.VXLAND_SOCKET}: cannot reach the dgram socket's file descriptor to set TTL/TOS/DF (node ${process.version})`);
  }
  try {
    loadAddon().udpSetEnvelope(fd, familyNumber(family), e.ttl, e.tos, e.df);
  } catch (err) {
    throw socketError('setting TTL/TOS/DF', err);
  }
}

/** After a connect that failed (no route), how long sends to that
 *  destination use the bound socket before connecting is tried again. */
export const PEER_RECONNECT_MS = 1000;

/** A destination's connected socket; until `ready`, sends use the bound socket. */
interface PeerSocket {
  socket: dgram.Socket;
  port: number;
  ready: boolean;
  /** When its connect failed (Date.now()); null while connecting or connected. */
  failedAtMs: number | null;
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
  /** The unconnected send sockets, one per source port of the range. */
  private readonly portSockets: dgram.Socket[];
  /** Their ports, in slot order (empty without a range). */
  readonly srcPorts: readonly number[];
  /** Why some slots of the range got no port of their own (logged by the caller), else null. */
  readonly srcPortProblem: string | null;
  private readonly connectPeers: boolean;
  private readonly bindAddress: string | undefined;
  private readonly envelope: UdpEnvelope;
  private onPeerError: (address: string, err: Error) => void = () => undefined;
  private started = false;
  private fatal = false;
  private closing: Promise<void> | null = null;

  private constructor(socket: dgram.Socket, family: UdpFamily, options: UdpOpenOptions, send: SendSockets) {
    this.socket = socket;
    this.portSockets = send.sockets;
    this.srcPorts = send.ports;
    this.srcPortProblem = send.problem;
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
        const refused = family === 'udp6' ? acceptZeroChecksums(socket) : null;
        if (refused !== null) {
          socket.close();
          reject(socketError(`bind [${address ?? '::'}]:${port}`, refused));
          return;
        }
        const range = options.srcPorts;
        if (range === undefined) return resolve(new UdpBind(socket, family, options, { sockets: [], ports: [], problem: null }));
        bindSendSockets(family, address, range, socket.address().port, options.envelope ?? DEFAULT_ENVELOPE).then(
          (send) => resolve(new UdpBind(socket, family, options, send)),
          (err: unknown) => {
            socket.close();
            reject(err);
          },
        );
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
   *  errors (EAGAIN, ENETUNREACH, ECONNREFUSED, ...) and
   *  ERR_SOCKET_DGRAM_NOT_RUNNING after close(); every error it gets carries
   *  `address` (the destination). */
  send(buffer: Buffer, length: number, address: string, port: number, done: SendDone, flowSlot = 0): void {
    const sock = this.portSockets.length === 0 ? -1 : flowSlot % this.portSockets.length;
    const key = sock < 0 ? address : `${address}#${sock}`;
    let peer = this.peers.get(key);
    if (peer !== undefined && peer.failedAtMs !== null && Date.now() - peer.failedAtMs >= PEER_RECONNECT_MS) {
      this.peers.delete(key);
      peer = undefined;
    }
    peer ??= this.connect(key, address, port, sock);
    // A connected socket's errors name no destination: add this one.
    const reported = (err: Error | null): void => done(err === null ? null : withAddress(err, address));
    try {
      if (peer !== undefined && peer.ready && peer.port === port) peer.socket.send(buffer, 0, length, reported);
      else (sock < 0 ? this.socket : this.portSockets[sock]).send(buffer, 0, length, port, address, reported);
    } catch (err) {
      process.nextTick(reported, err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** Starts connecting a send socket (from source port slot sock, or -1:
   *  an ephemeral one) to address:port; undefined when the table is full,
   *  the bind is closing, or connected sends are off. */
  private connect(key: string, address: string, port: number, sock: number): PeerSocket | undefined {
    if (!this.connectPeers || this.closing !== null || this.peers.size >= MAX_CONNECTED_SOCKETS) return undefined;
    if (isIP(address) !== familyNumber(this.family)) return undefined;
    const socket = dgram.createSocket({
      type: this.family,
      ipv6Only: this.family === 'udp6',
      reuseAddr: sock >= 0,
      lookup: literalLookup(familyNumber(this.family)) as unknown as dgram.SocketOptions['lookup'],
    });
    const peer: PeerSocket = { socket, port, ready: false, failedAtMs: null };
    this.peers.set(key, peer);
    // A connected socket reports ICMP errors for earlier sends as errors on
    // its next receive or send; neither is fatal for the bind.
    socket.on('error', (err) => this.onPeerError(address, err));
    socket.on('message', () => undefined);
    socket.bind({ port: sock < 0 ? 0 : this.srcPorts[sock], address: this.bindAddress }, () => {
      try {
        setEnvelope(socket, this.family, this.envelope);
      } catch (err) {
        // Sends stay on the bound socket, which has the envelope.
        this.onPeerError(address, err as Error);
        return;
      }
      socket.connect(port, address, (err?: Error) => {
        if (err !== undefined && err !== null) {
          // No route (ENETUNREACH, ...): sends go on through the bound
          // socket, whose errors count each datagram, until a retry.
          peer.failedAtMs = Date.now();
          void closeSocket(socket);
          return;
        }
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
      const sockets = [this.socket, ...this.portSockets, ...[...this.peers.values()].map((p) => p.socket)];
      this.peers.clear();
      this.closing = Promise.all(sockets.map(closeSocket)).then(() => undefined);
    }
    return this.closing;
  }
}

interface SendSockets {
  sockets: dgram.Socket[];
  ports: number[];
  problem: string | null;
}

/** Binds one unconnected send socket per slot over range (SO_REUSEADDR, so
 *  the connected ones can share its port), walking on past ports taken;
 *  rejects with VXLAND_SOCKET only when none binds. */
async function bindSendSockets(family: UdpFamily, address: string | undefined, range: SrcPortRange, ownPort: number, envelope: UdpEnvelope): Promise<SendSockets> {
  const candidate = loadAddon().srcPortCandidate;
  const span = range.max - range.min + 1;
  const wanted = Math.min(SRC_PORT_SOCKETS, span);
  const out: SendSockets = { sockets: [], ports: [], problem: null };
  let lastError: unknown = null;
  for (let slot = 0; slot < wanted; slot++) {
    for (let attempt = 0; attempt < Math.min(SRC_PORT_BIND_ATTEMPTS, span); attempt++) {
      const port = candidate(range.min, range.max, slot, attempt);
      if (port === ownPort || out.ports.includes(port)) continue;
      try {
        const socket = await bindReusable(family, address, port);
        try {
          setEnvelope(socket, family, envelope);
        } catch (err) {
          socket.close();
          throw err;
        }
        out.sockets.push(socket);
        out.ports.push(port);
        break;
      } catch (err) {
        lastError = err;
      }
    }
  }
  const text = `${range.min}-${range.max}`;
  if (out.sockets.length === 0) throw socketError(`no send socket could bind a source port in ${text}`, lastError);
  if (out.sockets.length < wanted) {
    const why = lastError instanceof Error ? lastError.message : String(lastError);
    out.problem = `${out.sockets.length} of ${wanted} send sockets bound in ${text} (${why}): their flows share the others`;
  }
  return out;
}

function bindReusable(family: UdpFamily, address: string | undefined, port: number): Promise<dgram.Socket> {
  const socket = dgram.createSocket({ type: family, ipv6Only: family === 'udp6', reuseAddr: true });
  return new Promise<dgram.Socket>((resolve, reject) => {
    socket.once('error', (err) => {
      socket.close();
      reject(err);
    });
    socket.bind({ port, address }, () => {
      socket.removeAllListeners('error');
      // ICMP errors are not reported on an unconnected socket; its errors
      // come through the send callbacks.
      socket.on('error', () => undefined);
      socket.on('message', () => undefined);
      resolve(socket);
    });
  });
}

/** The fd of a bound dgram socket. node:dgram has no API for it (nor for
 *  socket options beyond its own); Socket.prototype._handle is deprecated
 *  (DEP0112, a warning on first use), so this reads the same handle from the
 *  socket's internal state (lib/internal/dgram.js kStateSymbol, Node 12+).
 *  undefined when that is not there (another Node). */
function socketFd(socket: dgram.Socket): number | undefined {
  const state = Object.getOwnPropertySymbols(socket).find((s) => s.description === 'state symbol');
  const handle = state === undefined ? undefined : (socket as unknown as Record<symbol, { handle?: { fd?: unknown } }>)[state]?.handle;
  return typeof handle?.fd === 'number' && handle.fd >= 0 ? handle.fd : undefined;
}

/** UDP_NO_CHECK6_RX on socket through the addon (native/engine_io.h):
 *  null when set, else the error to refuse the bind with. */
function acceptZeroChecksums(socket: dgram.Socket): Error | null {
  const fd = socketFd(socket);
  if (fd === undefined) return new Error('setsockopt(UDP_NO_CHECK6_RX): this Node.js does not expose the socket fd');
  const errno = loadAddon().udp6AcceptZeroChecksums(fd);
  if (errno === 0) return null;
  return Object.assign(new Error(`setsockopt(UDP_NO_CHECK6_RX) failed with errno ${errno}`), { errno, syscall: 'setsockopt' });
}

function withAddress(err: Error, address: string): Error {
  const e = err as Error & { address?: string };
  if (e.address === undefined) e.address = address;
  return err;
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
