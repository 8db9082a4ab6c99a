// Datagram buffers for the UDP side, allocated once. A slot is owned by the
// socket from send() until its done callback; a flooded frame holds one slot
// with a reference per destination. When every slot is in flight the socket
// is backed up and the caller drops the frame (no unbounded queue in JS).

import type { SendDone } from '../ports/io';

export const SEND_POOL_SLOTS = 1024;

export class SendPool {
  readonly buffers: Buffer[] = [];
  /** Inner frame bytes carried by each slot, for the tx byte counter. */
  readonly frameBytes: Uint32Array;
  /** One callback per slot, made once, so send() allocates no closure. */
  readonly done: SendDone[] = [];
  private readonly refs: Uint16Array;
  private readonly free: Int32Array;
  private freeCount: number;

  constructor(
    slotBytes: number,
    slots: number,
    onSent: (slot: number, err: Error | null) => void,
  ) {
    const backing = Buffer.alloc(slotBytes * slots);
    this.frameBytes = new Uint32Array(slots);
    this.refs = new Uint16Array(slots);
    this.free = new Int32Array(slots);
    for (let slot = 0; slot < slots; slot++) {
      this.buffers.push(backing.subarray(slot * slotBytes, (slot + 1) * slotBytes));
      this.free[slot] = slots - 1 - slot;
      this.done.push((err) => {
        onSent(slot, err);
        if (--this.refs[slot] === 0) this.free[this.freeCount++] = slot;
      });
    }
    this.freeCount = slots;
  }

  get available(): number {
    return this.freeCount;
  }

  /** A free slot that will be sent `references` times, or -1 when none is free. */
  acquire(references: number): number {
    if (this.freeCount === 0) return -1;
    const slot = this.free[--this.freeCount];
    this.refs[slot] = references;
    return slot;
  }
}
