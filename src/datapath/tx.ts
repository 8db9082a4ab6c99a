// tx: TAP → UDP. Looks up each frame's destination MAC in the FDB, floods
// broadcast, multicast and unknown unicast to the peers, and sends each frame
// behind a VXLAN header.

import type { Fdb } from '../fdb/fdb';
import { ETH_HEADER_BYTES, isVlanTaggedAt, maxFrameBytes } from '../wire/ethernet';
import { isMulticastMacAt, macKeyAt } from '../wire/mac';
import { encodeVxlan, VXLAN_HEADER_BYTES } from '../wire/vxlan';
import { DropReason } from '../ports/drops';
import type { DatagramBind, FrameBatch } from '../ports/io';
import { SEND_POOL_SLOTS, SendPool } from './send-pool';
import type { Stats } from './stats';

export interface TxOptions {
  vni: number;
  dstPort: number;
  mtu: number;
  fdb: Fdb;
  bind: DatagramBind;
  stats: Stats;
  now: () => number;
  /** Send VLAN-tagged frames (RFC 7348 §6.1: a VTEP should not, by default). */
  allowVlan: boolean;
  /** Called for every datagram the underlay refused, with its destination
   *  when known. Rate-limit any logging. */
  onSendError: (address: string | undefined, err: Error) => void;
  sendPoolSlots?: number;
}

export class TxPath {
  private readonly pool: SendPool;

  constructor(private readonly o: TxOptions) {
    const slots = o.sendPoolSlots ?? SEND_POOL_SLOTS;
    this.pool = new SendPool(VXLAN_HEADER_BYTES + maxFrameBytes(o.mtu, true), slots, (slot, err) => {
      if (err === null) {
        o.stats.txPackets++;
        o.stats.txBytes += this.pool.frameBytes[slot];
      } else {
        const { address } = err as Error & { address?: string };
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
    for (let i = 0; i < batch.count; i++) this.forward(batch.buffer, batch.offsets[i], batch.lengths[i], nowMs);
  }

  /** Encapsulates and sends the frame at buf[offset, offset + length). */
  forward(buf: Buffer, offset: number, length: number, nowMs: number): void {
    const { o } = this;
    if (length < ETH_HEADER_BYTES) return o.stats.drop(DropReason.TxRunt);
    const tagged = isVlanTaggedAt(buf, offset);
    if (tagged && !o.allowVlan) return o.stats.drop(DropReason.TxVlanTagged);
    if (length > maxFrameBytes(o.mtu, tagged)) return o.stats.drop(DropReason.TxOversize);

    const unicast = isMulticastMacAt(buf, offset) ? undefined : o.fdb.lookup(o.vni, macKeyAt(buf, offset), nowMs);
    const flood = unicast === undefined ? o.fdb.floodList(o.vni, nowMs) : undefined;
    const copies = flood === undefined ? 1 : flood.length;
    if (copies === 0) return o.stats.drop(DropReason.TxNoDestination);

    const slot = this.pool.acquire(copies);
    if (slot < 0) return o.stats.drop(DropReason.TxQueueFull);
    const datagram = this.pool.buffers[slot];
    encodeVxlan(datagram, 0, o.vni);
    buf.copy(datagram, VXLAN_HEADER_BYTES, offset, offset + length);
    this.pool.frameBytes[slot] = length;
    const datagramBytes = VXLAN_HEADER_BYTES + length;
    if (flood === undefined) return this.send(slot, datagramBytes, unicast as string);
    for (let i = 0; i < flood.length; i++) this.send(slot, datagramBytes, flood[i]);
  }

  private send(slot: number, datagramBytes: number, vtep: string): void {
    const counters = this.o.stats.vtep(vtep);
    counters.txPackets++;
    counters.txBytes += this.pool.frameBytes[slot];
    this.o.bind.send(this.pool.buffers[slot], datagramBytes, vtep, this.o.dstPort, this.pool.done[slot]);
  }
}
