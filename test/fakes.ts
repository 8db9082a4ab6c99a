// In-process fakes for the data path's two interfaces: a FakeDevice stands in
// for the TAP and a FakeNetwork joins FakeBinds like an underlay, so two data
// paths can exchange frames in one process.

import { FRAME_HEADROOM_BYTES, type DatagramBind, type FrameBatch, type FrameDevice, type SendDone } from '../src/ports/io';

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
