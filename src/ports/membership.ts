// What the control layer (status, doctor, metrics) reads of the etcd
// membership, without importing it (src/membership/ sits above control/'s
// reach; the daemon hands this view over).

export interface MembershipStatus {
  /** The last list or watch succeeded and the watch is up. */
  readonly connected: boolean;
  /** The store revision last seen (list or watch event), or null before the first list. */
  readonly revision: number | null;
  /** Time until our lease expires unless kept alive, in ms; null without a lease. */
  readonly leaseTtlLeftMs: number | null;
  /** Remote VTEPs known (one per network and host). */
  readonly remoteVteps: number;
  /** Lists of the prefix since start (the first, and one per reconcile). */
  readonly lists: number;
  /** Why the last call to the store failed or the watch was lost, in one
   *  line (e.g. a refused client certificate); null once connected. */
  readonly lastError: string | null;
  readonly endpoints: readonly string[];
}

export interface MembershipView {
  status(): MembershipStatus;
}
