// rx: UDP → TAP on the dgram path. The packet core (native/core_rx.h, the
// rules the native engine runs too) classifies each datagram; this acts on
// its verdict: writes the frame to the TAP, counts, records what the doctor
// reports (foreign VNIs, refused senders), and offers the source MAC to the
// Fdb when the core says so.

import type { Fdb } from '../fdb/fdb';
import { VXLAN_HEADER_BYTES } from '../wire/vxlan';
import { RX_DELIVER, RX_DELIVER_LEARN, type PacketClassifier } from '../ports/core';
import { DropReason } from '../ports/drops';
import { learnSource } from './learning';
import type { FrameDevice } from '../ports/io';
import type { Stats } from './stats';

export interface RxOptions {
  fdb: Fdb;
  device: FrameDevice;
  /** Fed by CoreSync (mirror, flood list, source policy, VLAN option). */
  core: PacketClassifier;
  stats: Stats;
  now: () => number;
  /** Called for a datagram whose VNI is not ours (rate-limit any logging). */
  onWrongVni?: (vni: number, fromAddress: string) => void;
}

export class RxPath {
  constructor(private readonly o: RxOptions) {}

  onDatagram(msg: Buffer, fromAddress: string): void {
    const { stats, core } = this.o;
    const nowMs = this.o.now();
    const vtep = stats.vtep(fromAddress);
    vtep.lastRxMs = nowMs;
    const verdict = core.classifyRx(msg, fromAddress, nowMs);
    const outcome = verdict < 0 ? this.deliver(msg, verdict, fromAddress, nowMs) : (verdict as DropReason);
    if (outcome === null) {
      const frameBytes = msg.length - VXLAN_HEADER_BYTES;
      stats.rxPackets++;
      stats.rxBytes += frameBytes;
      vtep.rxPackets++;
      vtep.rxBytes += frameBytes;
      return;
    }
    if (outcome === DropReason.RxSourceNotAllowed) stats.refusedSender(fromAddress);
    if (outcome === DropReason.RxWrongVni) {
      const vni = core.result[0];
      stats.foreignVni(fromAddress, vni, nowMs);
      this.o.onWrongVni?.(vni, fromAddress);
    }
    stats.drop(outcome);
    vtep.drops++;
  }

  /** Writes the inner frame to the TAP (null), or says why not. */
  private deliver(msg: Buffer, verdict: typeof RX_DELIVER | typeof RX_DELIVER_LEARN | number, fromAddress: string, nowMs: number): DropReason | null {
    const { o } = this;
    if (verdict === RX_DELIVER_LEARN) learnSource(o.fdb, o.stats, o.core.result[0], o.core.result[1], fromAddress, nowMs);
    const errno = o.device.write(msg, VXLAN_HEADER_BYTES, msg.length - VXLAN_HEADER_BYTES);
    if (errno === 0) return null;
    return o.core.rxTapWriteDrop(errno) as DropReason;
  }
}
