// The counters as the data path reports them and the control plane shows
// them (status, stats, metrics, doctor). Stats (src/datapath/stats.ts) keeps
// them; control/ and doctor read them through StatsReader, so they need no
// import of the data path.

export interface VtepCounters {
  rxPackets: number;
  rxBytes: number;
  txPackets: number;
  txBytes: number;
  /** Datagrams from this VTEP that were dropped, and sends to it that failed. */
  drops: number;
  /** Date.now() of the last datagram from it, valid or not; 0 = never. */
  lastRxMs: number;
}

export interface ForeignVniSender {
  address: string;
  vni: number;
  count: number;
  lastMs: number;
}

export interface StatsSnapshot {
  rxPackets: number;
  rxBytes: number;
  txPackets: number;
  txBytes: number;
  /** Drops by reason name; only reasons that occurred. */
  drops: Record<string, number>;
  dropsTotal: number;
  /** New or moved MACs not learned: the FDB was full, the VTEP had its
   *  share (maxLearnedPerVtep), or it learned too fast (learnRatePerS).
   *  The unit is MACs on both data paths: a MAC that keeps sending counts
   *  once per LEARN_REPORT_INTERVAL_MS, not once per frame. */
  learnRefused: { fdbFull: number; vtepFull: number; rate: number };
  /** Events that are not drops, by name (NET_EVENT_NAMES: arp_suppressed,
   *  nd_suppressed), every one listed. */
  events?: Record<string, number>;
}

/** What the control plane reads of the data path's counters (Stats). */
export interface StatsReader {
  snapshot(): StatsSnapshot;
  vtepSnapshot(): Array<VtepCounters & { vtep: string }>;
  foreignVniSenders(): ForeignVniSender[];
  refusedSenders(): Array<{ address: string; count: number }>;
}
