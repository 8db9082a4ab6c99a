// In-process fakes for the data path's two interfaces: a FakeDevice stands in
// for the TAP and a FakeNetwork joins FakeBinds like an underlay, so two data
// paths can exchange frames in one process. Below them, what the native
// engine needs to run in a test without root (StandInTap, LoopbackPeer).

import { createSocket, type Socket } from 'node:dgram';
import { closeSync, readSync, writeSync } from 'node:fs';
import { FRAME_HEADROOM_BYTES, type DatagramBind, type FrameBatch, type FrameDevice, type SendDone } from '../src/ports/io';
import { encodeVxlan, VXLAN_HEADER_BYTES } from '../src/wire/vxlan';
import type { KvEvent, KvLease, KvListing, KvStore, KvWatch, KvWatchHandlers } from '../src/ports/kv';
import type { CoreNetwork } from '../src/ports/core';
import type { NativeEngineCounters, NativeEngineEvent, NativeEngineInfo, NativeEngineVtepCounts, NativeNetworkCounters, PacketEngine } from '../src/ports/engine';
import { DROP_REASON_COUNT } from '../src/tables/drop-reasons.generated';
import { NET_EVENT_COUNT } from '../src/tables/net-events.generated';

export class FakeDevice implements FrameDevice {
  readonly written: Buffer[] = [];
  /** errno returned by write(); 0 = accept. */
  writeErrno = 0;
  private onFrames: ((batch: FrameBatch) => void) | undefined;
  private onFatal: ((err: Error) => void) | undefined;
  closed = false;

  constructor(
    readonly name: string,
    readonly mac: Buffer,
    readonly mtu = 1450,
  ) {}

  start(onFrames: (batch: FrameBatch) => void, onFatal: (err: Error) => void): void {
    this.onFrames = onFrames;
    this.onFatal = onFatal;
  }

  write(buffer: Buffer, offset: number, length: number): number {
    if (this.writeErrno !== 0) return this.writeErrno;
    this.written.push(Buffer.from(buffer.subarray(offset, offset + length)));
    return 0;
  }

  close(): void {
    this.closed = true;
  }

  /** Delivers frames as one batch, laid out with headroom like the TAP reader. */
  inject(...frames: Buffer[]): void {
    const slot = FRAME_HEADROOM_BYTES + 65536;
    const buffer = Buffer.alloc(slot * frames.length);
    const offsets = new Uint32Array(frames.length);
    const lengths = new Uint32Array(frames.length);
    frames.forEach((f, i) => {
      offsets[i] = i * slot + FRAME_HEADROOM_BYTES;
      lengths[i] = f.length;
      f.copy(buffer, offsets[i]);
    });
    if (this.onFrames === undefined) throw new Error('device not started');
    this.onFrames({ buffer, count: frames.length, offsets, lengths });
    buffer.fill(0xee); // the batch is only valid during the callback
  }

  fail(err: Error): void {
    this.onFatal?.(err);
  }
}

interface Delivery {
  msg: Buffer;
  fromAddress: string;
  fromPort: number;
  toAddress: string;
  toPort: number;
}

/** An underlay: binds register by address; sends are delivered on the next tick. */
export class FakeNetwork {
  readonly binds = new Map<string, FakeBind>();
  readonly log: Delivery[] = [];
  private pending: Delivery[] = [];
  private scheduled = false;

  bind(address: string, port = 4789): FakeBind {
    const b = new FakeBind(this, address, port);
    this.binds.set(`${address}:${port}`, b);
    return b;
  }

  transmit(d: Delivery, done: SendDone): void {
    this.log.push(d);
    this.pending.push(d);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
    setImmediate(() => done(null));
  }

  /** Resolves once every queued datagram has been delivered. */
  async settle(): Promise<void> {
    for (let i = 0; i < 20 && (this.pending.length > 0 || this.scheduled); i++) {
      await new Promise((r) => setImmediate(r));
    }
    await new Promise((r) => setImmediate(r));
  }

  private flush(): void {
    this.scheduled = false;
    const batch = this.pending;
    this.pending = [];
    for (const d of batch) this.binds.get(`${d.toAddress}:${d.toPort}`)?.deliver(d.msg, d.fromAddress, d.fromPort);
  }
}

export class FakeBind implements DatagramBind {
  private onDatagram: ((msg: Buffer, from: string, fromPort: number) => void) | undefined;
  closed = false;

  constructor(
    private readonly net: FakeNetwork,
    readonly address: string,
    readonly port: number,
  ) {}

  start(onDatagram: (msg: Buffer, from: string, fromPort: number) => void): void {
    this.onDatagram = onDatagram;
  }

  send(buffer: Buffer, length: number, address: string, port: number, done: SendDone): void {
    const msg = Buffer.from(buffer.subarray(0, length));
    this.net.transmit({ msg, fromAddress: this.address, fromPort: this.port, toAddress: address, toPort: port }, done);
  }

  deliver(msg: Buffer, from: string, fromPort: number): void {
    if (!this.closed) this.onDatagram?.(msg, from, fromPort);
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

export function mac(text: string): Buffer {
  return Buffer.from(text.replace(/:/g, ''), 'hex');
}

/** An Ethernet frame dst|src|type|payload. */
export function frame(dst: string, src: string, payload: Buffer | number = 46, ethertype = 0x0800): Buffer {
  const body = typeof payload === 'number' ? Buffer.alloc(payload, 0xab) : payload;
  const header = Buffer.alloc(14);
  mac(dst).copy(header, 0);
  mac(src).copy(header, 6);
  header.writeUInt16BE(ethertype, 12);
  return Buffer.concat([header, body]);
}

// ---- the native engine without root: a stand-in TAP and loopback peers ----
//
// NativeEngine.openWith() runs the production engine on a SOCK_SEQPACKET
// socket instead of a TAP; StandInTap is the kernel's end of it. Its UDP
// socket binds to loopback, where LoopbackPeer sockets play the other VTEPs
// (the whole of 127/8 is local on Linux, so every peer has an address of
// its own).

/** The loopback addresses of those tests: the engine's (or plane's) own,
 *  two peers, and a sender nobody configured. */
export const LOOP_A = '127.0.0.1';
export const LOOP_B = '127.0.0.2';
export const LOOP_C = '127.0.0.3';
export const LOOP_STRANGER = '127.0.0.66';
/** The own MACs of the first and second stand-in network. */
export const STAND_IN_MAC_A = '02:00:00:00:01:0a';
export const STAND_IN_MAC_B = '02:00:00:00:01:0b';
/** How long those tests wait for an event on loopback (a frame, a count,
 *  a callback): generous, as the machine may be busy; the waits end as
 *  soon as the event is seen. */
export const LOOPBACK_WAIT_MS = 3_000;
/** Linux's EBADFD, what a TAP read ends with once its device is deleted
 *  (node's os.constants.errno lacks it). */
export const EBADFD = 77;

/** A PacketEngine with no threads: it records the networks it was given
 *  and delivers only the events a test emits (plus 'tapClosed' right after
 *  a removeNetwork while running, as the engine does once its workers let
 *  go of the TAP). Counts are all zero. For what the native data path does
 *  with events whose order the real engine does not let a test choose. */
export class FakeEngine implements PacketEngine {
  /** What addNetwork received, by VNI, while carried. */
  readonly networks = new Map<number, CoreNetwork & { tapFd: number; name?: string; token?: number; slot: number }>();
  private onEvent: ((event: NativeEngineEvent) => void) | null = null;
  private nextSlot = 0;

  start(onEvent: (event: NativeEngineEvent) => void): void {
    this.onEvent = onEvent;
  }

  stop(): void {
    this.onEvent = null;
  }

  /** Delivers an event as the engine would, on a later turn of the event loop. */
  emit(event: NativeEngineEvent): Promise<void> {
    return new Promise((resolve) => setImmediate(() => {
      this.onEvent?.(event);
      resolve();
    }));
  }

  addNetwork(n: CoreNetwork & { tapFd: number; standIn?: boolean; name?: string; token?: number }): number {
    if (this.networks.has(n.vni)) return -1;
    const slot = this.nextSlot++;
    this.networks.set(n.vni, { ...n, slot });
    return slot;
  }

  removeNetwork(vni: number): boolean {
    if (!this.networks.delete(vni)) return false;
    if (this.onEvent !== null) void this.emit({ type: 'tapClosed', vni });
    return true;
  }

  takeVtepCounts(): NativeEngineVtepCounts[] {
    return [];
  }

  counters(): NativeEngineCounters {
    return { rxPackets: 0, rxBytes: 0, txPackets: 0, txBytes: 0, drops: new Float64Array(DROP_REASON_COUNT), detail: {} };
  }

  netCounters(): NativeNetworkCounters {
    return { rxPackets: 0, rxBytes: 0, txPackets: 0, txBytes: 0, drops: new Float64Array(DROP_REASON_COUNT), events: new Float64Array(NET_EVENT_COUNT) };
  }

  info(): NativeEngineInfo {
    return { port: 4789, offload: false, gso: false, gro: false, coalesce: false, uso: false, rcvbufBytes: 0, sndbufBytes: 0, srcPorts: [], state: this.onEvent === null ? 'idle' : 'running' };
  }

  fdbSet(): void {}
  fdbDelete(): boolean {
    return false;
  }
  setFloodList(): void {}
  setSourcePolicy(): void {}
  setSuppress(): void {}
  neighSet(): void {}
  neighDelete(): boolean {
    return false;
  }
  setAllowVlan(): void {}
}

/** A virtio_net_hdr: what precedes every frame on a TAP with IFF_VNET_HDR. */
export const VNET_HDR_BYTES = 10;

/** One write planned by the engine's coalescer (engineCoalesceForTest). */
export interface CoalescedWrite {
  hdr: { flags: number; gsoType: number; hdrLen: number; gsoSize: number; csumStart: number; csumOffset: number };
  frame: Buffer;
  count: number;
  first: number;
}

/** native/test_bindings.cc: bindings only tests load, never src/. */
export interface TestAddon {
  /** [engineEnd, peerEnd], both non-blocking. */
  seqpacketPair(): [number, number];
  /** shutdown(fd, SHUT_RD): the other end's writes fail with EPIPE. */
  shutdownRead(fd: number): void;
  /** Splits (vnet hdr + frame) for this MTU; a number is a split error (< 0). */
  engineSegmentForTest(vnetHdrAndFrame: Buffer, mtu: number): Buffer[] | number;
  /** The drop reason's name for a frame read from the TAP (vnet hdr + frame), checked before any lookup; null = it may be sent. */
  engineTxDropForTest(vnetHdrAndFrame: Buffer, mtu: number, allowVlan: boolean): string | null;
  /** The TAP writes the rx coalescer plans for these inner frames. */
  /** udp: plan for a TAP that took TUN_F_USO4/6 (UDP datagrams coalesce too). */
  engineCoalesceForTest(frames: Buffer[], udp?: boolean): CoalescedWrite[];
  /** The outer TOS the packet core gives a frame (native/core_ecn.h OuterTos); tos -1 = inherit. */
  coreOuterTosForTest(tos: number, frame: Buffer): number;
  /** RFC 6040 decapsulation of frame under outer TOS (changes frame in place): a drop reason's name, or null = deliver. */
  coreDecapEcnForTest(outerTos: number, frame: Buffer): string | null;
}

let testAddon: TestAddon | undefined;

export function loadTestAddon(): TestAddon {
  // Relative to dist/test/; built by npm run build:native, loaded by tests only.
  testAddon ??= require('../../build/Release/vxland_test.node') as TestAddon;
  return testAddon;
}

export interface TapMessage {
  /** The virtio_net_hdr the engine wrote. */
  hdr: Buffer;
  frame: Buffer;
}

export class StandInTap {
  /** For NativeEngine.openWith({ tapFd }); the engine's once opened. */
  readonly engineFd: number;
  private readonly fd: number;
  private readonly buf = Buffer.alloc(VNET_HDR_BYTES + 65536 + 64);
  private closed = false;

  constructor() {
    [this.engineFd, this.fd] = loadTestAddon().seqpacketPair();
  }

  /** Hands one frame to the engine as the TAP would; hdr defaults to a
   *  plain frame (no checksum or segmentation offload asked). */
  inject(frame: Buffer, hdr: Buffer = Buffer.alloc(VNET_HDR_BYTES)): void {
    writeSync(this.fd, Buffer.concat([hdr, frame]));
  }

  /** Every message the engine wrote since the last call, in order. */
  take(): TapMessage[] {
    const out: TapMessage[] = [];
    for (;;) {
      let n: number;
      try {
        n = readSync(this.fd, this.buf, 0, this.buf.length, null);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return out;
        throw err;
      }
      if (n === 0) return out;  // the engine closed its end (every message carries a virtio_net_hdr)
      out.push({ hdr: Buffer.from(this.buf.subarray(0, VNET_HDR_BYTES)), frame: Buffer.from(this.buf.subarray(VNET_HDR_BYTES, n)) });
    }
  }

  /** From now on the engine's writes fail with EPIPE, as a TAP refusing
   *  frames; what it reads is unaffected. */
  refuseWrites(): void {
    loadTestAddon().shutdownRead(this.fd);
  }

  /** Closes the kernel's end: the engine reads EOF, a failure of this TAP (EBADFD). Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
  }
}

export interface PeerDatagram {
  msg: Buffer;
  from: string;
  fromPort: number;
}

/** A UDP socket on a loopback address playing a VTEP (or a stranger). */
export class LoopbackPeer {
  readonly received: PeerDatagram[] = [];
  private constructor(
    private readonly socket: Socket,
    readonly address: string,
    readonly port: number,
  ) {
    socket.on('message', (msg, rinfo) => this.received.push({ msg, from: rinfo.address, fromPort: rinfo.port }));
  }

  /** Binds address:port (0 = the kernel picks). */
  static async open(address: string, port = 0): Promise<LoopbackPeer> {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(port, address, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    return new LoopbackPeer(socket, address, socket.address().port);
  }

  /** Resolves once the kernel took the datagram (on loopback: queued at the receiver). */
  send(msg: Buffer, port: number, address = '127.0.0.1'): Promise<void> {
    return new Promise((resolve, reject) => this.socket.send(msg, port, address, (err) => (err ? reject(err) : resolve())));
  }

  /** Everything queued for this socket so far: sends itself a marker and
   *  waits for it, so whatever arrived before is in `received` (the marker
   *  is not). false if the marker did not come back in time. */
  async drain(timeoutMs = 2000): Promise<boolean> {
    const marker = Buffer.from(`drain ${process.hrtime.bigint()}`);
    await this.send(marker, this.port, this.address);
    const arrived = (): number => this.received.findIndex((d) => d.msg.equals(marker));
    const deadline = Date.now() + timeoutMs;
    while (arrived() < 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    const i = arrived();
    if (i < 0) return false;
    this.received.splice(i, 1);
    return true;
  }

  /** received, emptied. */
  take(): PeerDatagram[] {
    return this.received.splice(0, this.received.length);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

/** A VXLAN datagram (RFC 7348 header: flags, VNI) around `inner`. */
export function vxlanDatagram(vni: number, inner: Buffer, flags = 0x08): Buffer {
  const msg = Buffer.alloc(VXLAN_HEADER_BYTES + inner.length);
  encodeVxlan(msg, 0, vni);
  msg[0] = flags;
  inner.copy(msg, VXLAN_HEADER_BYTES);
  return msg;
}

// ---- an in-memory etcd (KvStore) for the membership's unit tests ----

/** One store shared by several FakeKvClients (one per simulated daemon), with
 *  revisions, leases that expire on expireLeases(), compaction that cancels
 *  the watches started before it, and an outage that fails every call and
 *  drops every watch until it ends. */
export class FakeKvServer {
  revision = 1;
  compacted = 0;
  down = false;
  /** Calls of list(), by all clients. */
  lists = 0;
  readonly kvs = new Map<string, { value: string; lease: string }>();
  readonly leases = new Map<string, { onLost: (err: Error) => void; ttlS: number; grantedAtMs: number }>();
  readonly watches = new Set<{ prefix: string; handlers: KvWatchHandlers; from: number }>();
  /** Events since the last compaction, replayed to a watch that starts in the past. */
  history: KvEvent[] = [];
  private nextLease = 1;

  client(): KvStore {
    return new FakeKvClient(this);
  }

  /** Calls that reached the store (failed ones included). */
  calls = 0;

  check(): void {
    this.calls++;
    if (this.down) throw new Error('fake etcd: unavailable');
  }

  grant(ttlS: number, onLost: (err: Error) => void): string {
    this.check();
    const id = String(this.nextLease++);
    this.leases.set(id, { onLost, ttlS, grantedAtMs: Date.now() });
    return id;
  }

  put(key: string, value: string, lease: string): void {
    this.check();
    if (!this.leases.has(lease)) throw new Error(`fake etcd: lease ${lease} not found`);
    this.revision++;
    this.kvs.set(key, { value, lease });
    this.notify({ type: 'put', key, value, revision: this.revision });
  }

  del(key: string): void {
    this.check();
    if (!this.kvs.delete(key)) return;
    this.revision++;
    this.notify({ type: 'delete', key, revision: this.revision });
  }

  /** Ends a lease as etcd does at expiry (or at revoke: lost is not reported then). */
  endLease(id: string, reportLost: boolean): void {
    const lease = this.leases.get(id);
    if (lease === undefined) return;
    this.leases.delete(id);
    for (const [key, kv] of [...this.kvs]) if (kv.lease === id) this.delKey(key);
    if (reportLost) lease.onLost(new Error('fake etcd: lease expired'));
  }

  private delKey(key: string): void {
    this.kvs.delete(key);
    this.revision++;
    this.notify({ type: 'delete', key, revision: this.revision });
  }

  /** Expires every lease (as after kill -9 of every holder past the TTL). */
  expireLeases(): void {
    for (const id of [...this.leases.keys()]) this.endLease(id, true);
  }

  /** Compacts history up to the current revision: every watch is cancelled. */
  compact(): void {
    this.compacted = this.revision;
    this.history = [];
    this.dropWatches(new Error('fake etcd: required revision has been compacted'));
  }

  setDown(down: boolean): void {
    this.down = down;
    if (down) this.dropWatches(new Error('fake etcd: connection lost'));
  }

  dropWatches(err: Error): void {
    for (const w of [...this.watches]) {
      this.watches.delete(w);
      w.handlers.onLost(err);
    }
  }

  private notify(e: KvEvent): void {
    this.history.push(e);
    for (const w of [...this.watches]) {
      if (e.key.startsWith(w.prefix) && e.revision >= w.from) w.handlers.onEvents([e]);
    }
  }
}

class FakeKvClient implements KvStore {
  constructor(private readonly server: FakeKvServer) {}

  async grantLease(ttlS: number, onLost: (err: Error) => void): Promise<KvLease> {
    await Promise.resolve();
    const server = this.server;
    const id = server.grant(ttlS, onLost);
    return {
      id,
      expiresAtMs: () => (server.leases.get(id)?.grantedAtMs ?? 0) + ttlS * 1000,
      revoke: async () => {
        server.check();
        server.endLease(id, false);
      },
      release: () => {},
    };
  }

  async put(key: string, value: string, lease: KvLease): Promise<void> {
    await Promise.resolve();
    this.server.put(key, value, lease.id);
  }

  async delete(key: string): Promise<void> {
    await Promise.resolve();
    this.server.del(key);
  }

  async list(prefix: string): Promise<KvListing> {
    await Promise.resolve();
    this.server.lists++;
    this.server.check();
    const kvs = [...this.server.kvs].filter(([key]) => key.startsWith(prefix)).map(([key, kv]) => ({ key, value: kv.value }));
    return { revision: this.server.revision, kvs };
  }

  watch(prefix: string, fromRevision: number, handlers: KvWatchHandlers): KvWatch {
    const w = { prefix, handlers, from: fromRevision };
    const server = this.server;
    let closed = false;
    queueMicrotask(() => {
      if (closed) return;
      if (server.down) return w.handlers.onLost(new Error('fake etcd: unavailable'));
      if (fromRevision <= server.compacted) return w.handlers.onLost(new Error('fake etcd: required revision has been compacted'));
      const missed = server.history.filter((e) => e.revision >= fromRevision && e.key.startsWith(prefix));
      if (missed.length > 0) w.handlers.onEvents(missed);
      server.watches.add(w);
    });
    return {
      close: () => {
        closed = true;
        server.watches.delete(w);
      },
    };
  }

  async close(): Promise<void> {}
}
