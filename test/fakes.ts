// In-process fakes for the data path's two interfaces: a FakeDevice stands in
// for the TAP and a FakeNetwork joins FakeBinds like an underlay, so two data
// paths can exchange frames in one process. Below them, what the native
// engine needs to run in a test without root (StandInTap, LoopbackPeer).

import { createSocket, type Socket } from 'node:dgram';
import { closeSync, readSync, writeSync } from 'node:fs';
import { FRAME_HEADROOM_BYTES, type DatagramBind, type FrameBatch, type FrameDevice, type SendDone } from '../src/ports/io';
import { encodeVxlan, VXLAN_HEADER_BYTES } from '../src/wire/vxlan';

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
  /** Splits (vnet hdr + frame) for this MTU; a number is a split error (< 0). */
  engineSegmentForTest(vnetHdrAndFrame: Buffer, mtu: number): Buffer[] | number;
  /** The drop reason's name for a frame read from the TAP (vnet hdr + frame), checked before any lookup; null = it may be sent. */
  engineTxDropForTest(vnetHdrAndFrame: Buffer, mtu: number, allowVlan: boolean): string | null;
  /** The TAP writes the rx coalescer plans for these inner frames. */
  engineCoalesceForTest(frames: Buffer[]): CoalescedWrite[];
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

  /** Closes the kernel's end (the engine then reads EOF: fatal). Idempotent. */
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
