// rx: UDP → TAP on the dgram path. The packet core (native/core_rx.h, the
// rules the native engine runs too) classifies each datagram and names its
// network; this acts on the verdict: writes the frame to that network's TAP,
// counts (host-level drops in the host's Stats, the rest in the network's),
// records what the doctor reports (foreign VNIs, refused senders), and offers
// the source MAC to the network's Fdb when the core says so.

import { constants as osConstants } from 'node:os';
import type { Fdb } from '../fdb/fdb';
import { VXLAN_HEADER_BYTES } from '../wire/vxlan';
import { RX_DELIVER, RX_DELIVER_LEARN, isHostLevelDrop, type PacketClassifier } from '../ports/core';
import { DropReason } from '../ports/drops';
import { learnSource } from './learning';
import type { FrameDevice } from '../ports/io';
import type { Stats } from './stats';

const EAGAIN = osConstants.errno.EAGAIN;

/** What rx needs of one network. */
export interface RxNetwork {
  readonly vni: number;
  readonly fdb: Fdb;
  readonly device: FrameDevice;
  readonly stats: Stats;
}

export interface RxOptions {
  /** Fed by one CoreSync per network (mirror, flood list, source policy, VLAN option). */
  core: PacketClassifier;
  hostStats: Stats;
  /** The network the core added for vni. */
  network: (vni: number) => RxNetwork | undefined;
  now: () => number;
  /** Called for a datagram whose VNI no network has (rate-limit any logging). */
  onWrongVni?: (vni: number, fromAddress: string) => void;
}

export class RxPath {
  constructor(private readonly o: RxOptions) {}

  onDatagram(msg: Buffer, fromAddress: string): void {
    const { core, hostStats } = this.o;
    const nowMs = this.o.now();
    const verdict = core.classifyRx(msg, fromAddress, nowMs);
    const vni = core.result[0];
    const net = verdict >= 0 && isHostLevelDrop(verdict) ? undefined : this.o.network(vni);
    const stats = net?.stats ?? hostStats;
    const vtep = stats.vtep(fromAddress);
    vtep.lastRxMs = nowMs;
    // (A deliver verdict names a network the core has, and so has the caller.)
    const outcome = verdict >= 0 ? (verdict as DropReason) : net !== undefined ? this.deliver(net, msg, verdict, fromAddress, nowMs) : DropReason.RxWrongVni;
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
      hostStats.foreignVni(fromAddress, vni, nowMs);
      this.o.onWrongVni?.(vni, fromAddress);
    }
    stats.drop(outcome);
    vtep.drops++;
  }

  /** Writes the inner frame to the network's TAP (null), or says why not. */
  private deliver(net: RxNetwork, msg: Buffer, verdict: typeof RX_DELIVER | typeof RX_DELIVER_LEARN | number, fromAddress: string, nowMs: number): DropReason | null {
    if (verdict === RX_DELIVER_LEARN) learnSource(net.fdb, net.stats, net.vni, this.o.core.result[1], fromAddress, nowMs);
    const errno = net.device.write(msg, VXLAN_HEADER_BYTES, msg.length - VXLAN_HEADER_BYTES);
    if (errno === 0) return null;
    return errno === EAGAIN ? DropReason.RxTapBusy : DropReason.RxTapError;
  }
}
