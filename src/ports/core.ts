// The packet core as the data paths see it (native/core_rx.h). Both the
// native engine (ports/engine.ts PacketEngine) and the dgram path's RxCore
// (src/io/core.ts) hold a core context: the mirror of the FDB, the flood
// lists, the source policy and the VLAN option, which src/datapath/
// core-sync.ts feeds from the Fdb and the SourceFilter, the same way for
// both.

/** The part of a core context the JS side writes. */
export interface CoreMirror {
  fdbSet(vni: number, macKey: number, vtep: string, pinned: boolean): void;
  fdbDelete(vni: number, macKey: number): boolean;
  setFloodList(vni: number, vteps: readonly string[]): void;
  /** Replaces the source policy the rx rules apply (src/datapath/accept.ts keeps it). */
  setSourcePolicy(mode: 'peers' | 'any' | 'cidrs', named: readonly string[], cidrs: readonly string[]): void;
  setAllowVlan(allow: boolean): void;
}

/** RxClassifier.classify(): deliver the frame (datagram past its VXLAN header) to the TAP. */
export const RX_DELIVER = -1;
/** RxClassifier.classify(): deliver it, and offer (result[0] = VNI,
 *  result[1] = source MAC key) from the sender to the Fdb for learning. */
export const RX_DELIVER_LEARN = -2;

/** The rx rules over one datagram at a time (the dgram path's use of the core). */
export interface RxClassifier extends CoreMirror {
  /** Written by classify(): [0] the datagram's VNI (for rx_wrong_vni, the
   *  foreign one), [1] the source MAC key when RX_DELIVER_LEARN. */
  readonly result: Float64Array;
  /** The verdict for datagram from fromAddress at nowMs (the Fdb's clock): a
   *  DropReason, RX_DELIVER or RX_DELIVER_LEARN. */
  classify(datagram: Buffer, fromAddress: string, nowMs: number): number;
}
