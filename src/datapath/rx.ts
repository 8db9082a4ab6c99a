// rx: UDP → TAP. Validates the VXLAN header and the inner frame, learns the
// inner source MAC against the outer source address, and writes the frame to
// the TAP. Every refusal is a counted DropReason.

import { constants as osConstants } from 'node:os';
import type { Fdb } from '../fdb/fdb';
import { ETH_HEADER_BYTES, ETH_SRC_OFFSET, isVlanTaggedAt, maxFrameBytes } from '../wire/ethernet';
import { macKeyAt } from '../wire/mac';
import { decodeVxlan, VXLAN_DECODE_NO_I_FLAG, VXLAN_HEADER_BYTES } from '../wire/vxlan';
import type { SourceFilter } from './accept';
import { DropReason } from '../ports/drops';
import { learnSource } from './learning';
import type { FrameDevice } from '../ports/io';
import type { Stats } from './stats';

const EAGAIN = osConstants.errno.EAGAIN;

export interface RxOptions {
  vni: number;
  fdb: Fdb;
  device: FrameDevice;
  stats: Stats;
  now: () => number;
  sources: SourceFilter;
  /** Deliver VLAN-tagged inner frames (RFC 7348 §6.1 says to drop them by default). */
  allowVlan: boolean;
  /** Called for a datagram whose VNI is not ours (rate-limit any logging). */
  onWrongVni?: (vni: number, fromAddress: string) => void;
}

/** deliver()'s result when the frame went to the TAP. */
const DELIVERED = -1;

export class RxPath {
  private readonly ownMacKey: number;

  constructor(private readonly o: RxOptions) {
    this.ownMacKey = macKeyAt(o.device.mac, 0);
  }

  onDatagram(msg: Buffer, fromAddress: string): void {
    const { stats } = this.o;
    const nowMs = this.o.now();
    const vtep = stats.vtep(fromAddress);
    vtep.lastRxMs = nowMs;
    const outcome = this.deliver(msg, fromAddress, nowMs);
    if (outcome === DELIVERED) {
      const frameBytes = msg.length - VXLAN_HEADER_BYTES;
      stats.rxPackets++;
      stats.rxBytes += frameBytes;
      vtep.rxPackets++;
      vtep.rxBytes += frameBytes;
    } else {
      stats.drop(outcome);
      vtep.drops++;
    }
  }

  /** Writes the inner frame to the TAP, or says why not. */
  private deliver(msg: Buffer, fromAddress: string, nowMs: number): DropReason | typeof DELIVERED {
    const { o } = this;
    if (!o.sources.accepts(fromAddress)) {
      o.stats.refusedSender(fromAddress);
      return DropReason.RxSourceNotAllowed;
    }
    const length = msg.length;
    if (length < VXLAN_HEADER_BYTES + ETH_HEADER_BYTES) return DropReason.RxTruncated;
    const vni = decodeVxlan(msg, 0, length);
    if (vni === VXLAN_DECODE_NO_I_FLAG) return DropReason.RxNoIFlag;
    if (vni !== o.vni) {
      o.stats.foreignVni(fromAddress, vni, nowMs);
      o.onWrongVni?.(vni, fromAddress);
      return DropReason.RxWrongVni;
    }
    const frameBytes = length - VXLAN_HEADER_BYTES;
    const tagged = isVlanTaggedAt(msg, VXLAN_HEADER_BYTES);
    if (tagged && !o.allowVlan) return DropReason.RxVlanTagged;
    if (frameBytes > maxFrameBytes(o.device.mtu, tagged)) return DropReason.RxOversize;
    const sourceKey = macKeyAt(msg, VXLAN_HEADER_BYTES + ETH_SRC_OFFSET);
    if (sourceKey === this.ownMacKey) return DropReason.RxOwnSourceMac;
    const refused = learnSource(o.fdb, o.stats, vni, sourceKey, fromAddress, nowMs);
    if (refused !== null) return refused;

    const errno = o.device.write(msg, VXLAN_HEADER_BYTES, frameBytes);
    if (errno === 0) return DELIVERED;
    return errno === EAGAIN ? DropReason.RxTapBusy : DropReason.RxTapError;
  }
}
