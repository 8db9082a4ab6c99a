// tx: TAP → UDP on the dgram path. The packet core (native/core_tx.h, the
// rules the native engine runs too) judges each batch of frames: dropped
// (runt, VLAN tag, oversize, no destination), unicast or flooded, or answered
// in place (ARP/ND suppression; ICMP too-big for an oversize frame with DF).
// This acts on the verdicts: takes the destination from the Fdb (which marks
// the entry used), and sends each frame behind a VXLAN header; an answer goes
// back to the TAP. A datagram counts as sent to its VTEP once the socket took
// it: one it refused is a tx_send_error instead.

import type { Fdb } from '../fdb/fdb';
import { maxFrameBytes } from '../wire/ethernet';
import { macKeyAt } from '../wire/mac';
import { encodeVxlan, VXLAN_HEADER_BYTES } from '../wire/vxlan';
import { TX_ARP_REPLY, TX_FLOOD, TX_ICMP_REPLY, TX_ND_REPLY, TX_UNICAST, type PacketClassifier } from '../ports/core';
import { NetEvent } from '../tables/net-events.generated';
import { DropReason } from '../ports/drops';
import type { DatagramBind, FrameBatch, FrameDevice } from '../ports/io';
import { SEND_POOL_SLOTS, SendPool } from './send-pool';
import type { Stats } from './stats';

export interface TxOptions {
  vni: number;
  dstPort: number;
  mtu: number;
  fdb: Fdb;
  /** Fed by CoreSync (mirror, flood list, VLAN option). */
  core: PacketClassifier;
  bind: DatagramBind;
  /** Where ARP/ND answers go (the network's TAP). */
  device: FrameDevice;
  stats: Stats;
  now: () => number;
  /** Called for every datagram the underlay refused, with its destination
   *  when known. Rate-limit any logging. */
  onSendError: (address: string | undefined, err: Error) => void;
  sendPoolSlots?: number;
}

export class TxPath {
  private readonly pool: SendPool;
  /** classifyTx's verdicts and flow slots (the source port), one per frame of a batch. */
  private codes = new Int32Array(0);
  private flowSlots = new Uint32Array(0);

  constructor(private readonly o: TxOptions) {
    const slots = o.sendPoolSlots ?? SEND_POOL_SLOTS;
    this.pool = new SendPool(VXLAN_HEADER_BYTES + maxFrameBytes(o.mtu, true), slots, (slot, err) => {
      if (err === null) {
        o.stats.txPackets++;
        o.stats.txBytes += this.pool.frameBytes[slot];
      } else {
        // Not sent (no route, queue full, ...): not counted as sent to its VTEP either.
        const { address } = err as Error & { address?: string };
        if (address !== undefined) {
          const counters = o.stats.vtep(address);
          counters.txPackets--;
          counters.txBytes -= this.pool.frameBytes[slot];
        }
        this.onPeerError(address, err);
      }
    });
  }

  /** Counts a datagram the underlay refused, at once or later (ICMP). */
  onPeerError(address: string | undefined, err: Error): void {
    this.o.stats.drop(DropReason.TxSendError);
    if (address !== undefined) this.o.stats.vtep(address).drops++;
    this.o.onSendError(address, err);
  }

  onFrames(batch: FrameBatch): void {
    const nowMs = this.o.now();
    if (this.codes.length < batch.count) {
      this.codes = new Int32Array(batch.offsets.length);
      this.flowSlots = new Uint32Array(batch.offsets.length);
    }
    const { codes, flowSlots } = this;
    // A batch slot holds the largest tagged frame (FrameBatch): room for an NA answering a short NS.
    this.o.core.classifyTx(
      this.o.vni, batch.buffer, batch.offsets, batch.lengths, batch.count, codes, nowMs, maxFrameBytes(this.o.mtu, true), flowSlots,
    );
    for (let i = 0; i < batch.count; i++) this.forward(batch.buffer, batch.offsets[i], batch.lengths[i], codes[i], flowSlots[i], nowMs);
  }

  /** Acts on the core's verdict for the frame at buf[offset, offset + length). */
  private forward(buf: Buffer, offset: number, length: number, verdict: number, flowSlot: number, nowMs: number): void {
    const { o } = this;
    if (verdict >= 0) return o.stats.drop(verdict as DropReason);
    if (verdict === TX_ICMP_REPLY) {
      o.stats.drop(DropReason.TxOversize);
      return this.reply(buf, offset, length, NetEvent.IcmpTooBigSent);
    }
    if (verdict === TX_ARP_REPLY || verdict === TX_ND_REPLY) {
      return this.reply(buf, offset, length, verdict === TX_ARP_REPLY ? NetEvent.ArpSuppressed : NetEvent.NdSuppressed);
    }
    let unicast: string | undefined;
    let flood: readonly string[] | undefined;
    if (verdict === TX_UNICAST) unicast = o.fdb.lookup(o.vni, macKeyAt(buf, offset), nowMs);
    else if (verdict === TX_FLOOD) flood = o.fdb.floodList(o.vni, nowMs);
    // The mirror follows the Fdb synchronously, so both agree; were they
    // ever apart, the frame would have nowhere to go.
    const copies = unicast !== undefined ? 1 : flood?.length ?? 0;
    if (copies === 0) return o.stats.drop(DropReason.TxNoDestination);

    const slot = this.pool.acquire(copies);
    if (slot < 0) return o.stats.drop(DropReason.TxQueueFull);
    const datagram = this.pool.buffers[slot];
    encodeVxlan(datagram, 0, o.vni);
    buf.copy(datagram, VXLAN_HEADER_BYTES, offset, offset + length);
    this.pool.frameBytes[slot] = length;
    const datagramBytes = VXLAN_HEADER_BYTES + length;
    if (unicast !== undefined) return this.send(slot, datagramBytes, unicast, flowSlot);
    for (let i = 0; i < flood!.length; i++) this.send(slot, datagramBytes, flood![i], flowSlot);
  }

  /** Writes an answer the core made in place back to the TAP, counted as event. */
  private reply(buf: Buffer, offset: number, length: number, event: NetEvent): void {
    const errno = this.o.device.write(buf, offset, length);
    if (errno !== 0) return this.o.stats.drop(this.o.core.rxTapWriteDrop(errno) as DropReason);
    this.o.stats.addEvents(event);
  }

  private send(slot: number, datagramBytes: number, vtep: string, flowSlot: number): void {
    const counters = this.o.stats.vtep(vtep);
    counters.txPackets++;
    counters.txBytes += this.pool.frameBytes[slot];
    this.o.bind.send(this.pool.buffers[slot], datagramBytes, vtep, this.o.dstPort, this.pool.done[slot], flowSlot);
  }
}
