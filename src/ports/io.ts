// The two small interfaces the data path sees: the Ethernet side (a TAP
// device) and the UDP side (a bound datagram socket). Everything that touches
// the addon or node:dgram lives in src/io/ and implements these; tests use
// in-process fakes (test/fakes.ts) that let two data paths ping each other.

/** Bytes in front of every frame in a FrameBatch that the caller may overwrite,
 *  so the VXLAN header can be written in place. */
export const FRAME_HEADROOM_BYTES = 8;

/** Frames read from the device in one wake-up. The buffer and both arrays are
 *  reused: they are valid only until the callback that received them returns. */
export interface FrameBatch {
  readonly buffer: Buffer;
  readonly count: number;
  /** Frame i occupies buffer[offsets[i], offsets[i] + lengths[i]); the
   *  FRAME_HEADROOM_BYTES before offsets[i] belong to the caller as well, and
   *  so do the bytes after it up to maxFrameBytes(mtu, true) from offsets[i]
   *  (a frame may be rewritten in place into a longer one: ARP/ND answers). */
  readonly offsets: Uint32Array;
  readonly lengths: Uint32Array;
}

/** Result of FrameDevice.write: 0 when the frame was written, otherwise the
 *  positive errno that refused it (EAGAIN when the device queue is full). */
export type WriteErrno = number;

/** The Ethernet side: a TAP device (IFF_TAP | IFF_NO_PI). */
export interface FrameDevice {
  readonly name: string;
  /** Inner MTU: the largest frame accepted or sent is mtu + 14 bytes (+4 with a VLAN tag). */
  readonly mtu: number;
  /** The device's own MAC address (6 bytes). */
  readonly mac: Buffer;
  /** Starts delivering frames. onFrames runs on the event loop, once per
   *  batch; onFatal runs at most once when the device is gone or unreadable,
   *  after which no batch is delivered. Calling start twice throws. */
  start(onFrames: (batch: FrameBatch) => void, onFatal: (err: Error) => void): void;
  /** Writes one frame without blocking. Never throws for a per-frame failure. */
  write(buffer: Buffer, offset: number, length: number): WriteErrno;
  /** Stops reading and closes the device (a non-persistent TAP disappears). Idempotent. */
  close(): void;
}

/** Called once the bind no longer needs the buffer passed to send(). err is
 *  null on success; otherwise the Node.js error (e.g. ECONNREFUSED, EAGAIN). */
export type SendDone = (err: Error | null) => void;

/** The UDP side: one socket bound to the VXLAN port. */
export interface DatagramBind {
  /** The local UDP port actually bound. */
  readonly port: number;
  /** Starts delivering datagrams. msg is valid only during the callback.
   *  onFatal runs at most once if the socket fails for good. onPeerError
   *  runs for an error the underlay reports after a send completed (an ICMP
   *  port or host unreachable), with the destination it concerns. */
  start(
    onDatagram: (msg: Buffer, fromAddress: string, fromPort: number) => void,
    onFatal: (err: Error) => void,
    onPeerError?: (address: string, err: Error) => void,
  ): void;
  /** Queues buffer[0, length) to address:port. The bind owns buffer until done
   *  runs; the caller must not touch it before. Never throws per datagram.
   *  flowSlot (default 0): the frame's flow slot (PacketClassifier.classifyTx
   *  flowSlots): a bind with a source port range sends it from that slot's port. */
  send(buffer: Buffer, length: number, address: string, port: number, done: SendDone, flowSlot?: number): void;
  /** Closes the socket. Idempotent. */
  close(): Promise<void>;
}
