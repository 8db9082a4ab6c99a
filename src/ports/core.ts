// The packet core as the data paths see it (native/core_rx.h, core_tx.h). Both the
// native engine (ports/engine.ts PacketEngine) and the dgram path's PacketCore
// (src/io/core.ts) hold a core context: the mirror of the FDB, the flood
// lists, the source policy and the VLAN option, which src/datapath/
// core-sync.ts feeds from the Fdb and the SourceFilter, the same way for
// both; and the neighbour mirror and suppression flag, fed from the
// Neighbours table (src/datapath/neigh-sync.ts).

import { DropReason } from './drops';

/** The part of a core context the JS side writes. A context serves any
 *  number of networks (one per VNI; each data path adds and removes them,
 *  which drops a removed network's entries and flood list); the setters of
 *  a VNI no network has are ignored. */
export interface CoreMirror {
  fdbSet(vni: number, macKey: number, vtep: string, pinned: boolean): void;
  fdbDelete(vni: number, macKey: number): boolean;
  setFloodList(vni: number, vteps: readonly string[]): void;
  /** Replaces network vni's source policy (src/datapath/accept.ts keeps it):
   *  a sender accepted by another network is not accepted by this one. */
  setSourcePolicy(vni: number, mode: 'peers' | 'any' | 'cidrs', named: readonly string[], cidrs: readonly string[]): void;
  setAllowVlan(vni: number, allow: boolean): void;
  /** Network vni answers ARP requests and neighbour solicitations for the
   *  addresses of its neighbour mirror on the TAP instead of flooding them
   *  (native/core_suppress.h); off until called. */
  setSuppress(vni: number, on: boolean): void;
  /** Network vni's neighbour ip (an IPv4 or IPv6 literal) has MAC macKey. */
  neighSet(vni: number, ip: string, macKey: number): void;
  /** Whether it was there. */
  neighDelete(vni: number, ip: string): boolean;
}

/** A network as the core's rules see it. */
export interface CoreNetwork {
  vni: number;
  /** TAP MTU in bytes. */
  mtu: number;
  /** The TAP's own MAC (frames claiming it as source are loops). */
  ownMac: Buffer;
}

/** PacketClassifier.classifyRx(): deliver the frame (datagram past its VXLAN header) to the TAP. */
export const RX_DELIVER = -1;
/** PacketClassifier.classifyRx(): deliver it, and offer (result[0] = VNI,
 *  result[1] = source MAC key) from the sender to the Fdb for learning. */
export const RX_DELIVER_LEARN = -2;

/** PacketClassifier.classifyTx(): send the frame to the VTEP the Fdb has
 *  for its destination MAC (the mirror has it too). */
export const TX_UNICAST = -1;
/** PacketClassifier.classifyTx(): send a copy to every VTEP of the flood list (not empty). */
export const TX_FLOOD = -2;
/** PacketClassifier.classifyTx(): the frame (an ARP request the neighbour
 *  mirror can answer) is now the ARP reply, lengths[i] long: write it to the
 *  TAP and count NetEvent.ArpSuppressed; send nothing. */
export const TX_ARP_REPLY = -3;
/** PacketClassifier.classifyTx(): the frame (a neighbour solicitation) is
 *  now the neighbour advertisement, lengths[i] long: as TX_ARP_REPLY, counted
 *  as NetEvent.NdSuppressed. */
export const TX_ND_REPLY = -4;
/** PacketClassifier.classifyTx(): the frame was too big for the tunnel
 *  (count DropReason.TxOversize) and no router may fragment it: it is now the
 *  ICMP fragmentation-needed / packet-too-big reply carrying the MTU,
 *  lengths[i] long (native/core_pmtu.h; within the network's budget): write
 *  it to the TAP and count NetEvent.IcmpTooBigSent; send nothing. */
export const TX_ICMP_REPLY = -5;

/** The rx and tx rules as the dgram path calls them: one datagram, or one
 *  batch of frames read from the TAP, at a time. */
export interface PacketClassifier extends CoreMirror {
  /** Written by classifyRx(): [0] the datagram's VNI (its network's; for
   *  rx_wrong_vni, the foreign one), [1] the source MAC key when RX_DELIVER_LEARN. */
  readonly result: Float64Array;
  /** false when the VNI is served already. */
  addNetwork(n: CoreNetwork): boolean;
  /** Drops the network with its entries and flood list; false when unknown. */
  removeNetwork(vni: number): boolean;
  /** The verdict for datagram from fromAddress at nowMs (the Fdb's clock): a
   *  DropReason, RX_DELIVER or RX_DELIVER_LEARN (write it to the TAP of
   *  network result[0]). Truncated, no I flag and wrong VNI are decided
   *  before a network is known (host-level); the rest are network result[0]'s. */
  classifyRx(datagram: Buffer, fromAddress: string, nowMs: number): number;
  /** For each frame buffer[offsets[i], offsets[i] + lengths[i]) of the
   *  first count, read from network vni's TAP, codes[i] = a DropReason,
   *  TX_UNICAST, TX_FLOOD, TX_ICMP_REPLY, or with suppression on TX_ARP_REPLY /
   *  TX_ND_REPLY (the answer is written in place, its length into lengths[i]).
   *  capacity: bytes each frame may grow to in place (default: its length;
   *  an answer longer than that is not given and the request floods).
   *  flowSlots: for a frame to send (TX_UNICAST, TX_FLOOD), its flow slot
   *  (flowSlot()), which picks the datagram's source port (DatagramBind.send).
   *  Throws for a vni no network has. */
  classifyTx(
    vni: number, buffer: Buffer, offsets: Uint32Array, lengths: Uint32Array, count: number, codes: Int32Array, nowMs: number,
    capacity?: number, flowSlots?: Uint32Array,
  ): void;
  /** A frame's flow slot (native/core_srcport.h FlowSlot(FlowHash)): the same for every frame of a flow. */
  flowSlot(frame: Buffer): number;
  /** The DropReason of a frame classifyRx() delivered that the TAP write
   *  refused with this errno (the native engine counts its own by the same rule). */
  rxTapWriteDrop(errno: number): number;
}

/** Drops decided before the datagram's network is known: counted in the host's Stats. */
export function isHostLevelDrop(reason: number): boolean {
  return reason === DropReason.RxTruncated || reason === DropReason.RxNoIFlag || reason === DropReason.RxWrongVni;
}
