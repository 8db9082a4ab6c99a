// Which underlay addresses may send us VXLAN (--accept). VXLAN has no
// authentication (RFC 7348 §7), so by default only the VTEPs an operator named
// — peers and the destinations of static entries — are heard; everything else
// is dropped before it can be learned from. Learned entries never widen the
// set: learning can only point a MAC at an address already accepted.
// This keeps the policy; the packet core (native/core_policy.h) applies it
// to each datagram, on both data paths (CoreSync feeds it snapshot()).

import type { AcceptPolicy } from '../config/config';
import type { Cidr } from '../config/validate';

/** The policy as the packet core takes it. */
export interface SourcePolicySnapshot {
  readonly kind: AcceptPolicy['kind'];
  /** The named VTEPs (peers, static destinations). */
  readonly named: readonly string[];
  /** 'cidrs' only, else empty. */
  readonly cidrs: readonly Cidr[];
}

export class SourceFilter {
  private readonly named = new Map<string, number>();
  private policy!: AcceptPolicy;
  private readonly listeners = new Set<() => void>();

  constructor(policy: AcceptPolicy) {
    this.setPolicy(policy);
  }

  /** Replaces the policy (SIGHUP); the named VTEPs stay. */
  setPolicy(policy: AcceptPolicy): void {
    this.policy = policy;
    this.changed();
  }

  /** Counts one more reason (a peer, a static entry) to accept `address`. */
  name(address: string): void {
    const n = this.named.get(address) ?? 0;
    this.named.set(address, n + 1);
    if (n === 0) this.changed();
  }

  /** Undoes one name(). */
  unname(address: string): void {
    const n = (this.named.get(address) ?? 0) - 1;
    if (n <= 0) {
      if (this.named.delete(address)) this.changed();
    } else {
      this.named.set(address, n);
    }
  }

  /** Calls listener (synchronously) after every change of the policy's
   *  answer: a policy set, an address named for the first time or unnamed
   *  for the last. Returns the unsubscribe function. */
  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  snapshot(): SourcePolicySnapshot {
    return {
      kind: this.policy.kind,
      named: [...this.named.keys()],
      cidrs: this.policy.kind === 'cidrs' ? [...this.policy.cidrs] : [],
    };
  }

  private changed(): void {
    for (const l of this.listeners) l();
  }

  /** What --accept said, for status output. */
  describe(): string {
    return this.policy.kind === 'cidrs' ? this.policy.cidrs.map((c) => `${c.address}/${c.prefixLength}`).join(',') : this.policy.kind;
  }
}
