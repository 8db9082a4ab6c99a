// Which underlay addresses may send us VXLAN (--accept). VXLAN has no
// authentication (RFC 7348 §7), so by default only the VTEPs an operator named
// — peers and the destinations of static entries — are heard; everything else
// is dropped before it can be learned from. Learned entries never widen the
// set: learning can only point a MAC at an address already accepted.

import { BlockList } from 'node:net';
import { ipFamily, type Cidr } from '../config/validate';

export type AcceptPolicy =
  | { readonly kind: 'peers' }
  | { readonly kind: 'any' }
  | { readonly kind: 'cidrs'; readonly cidrs: readonly Cidr[] };

export class SourceFilter {
  private readonly named = new Map<string, number>();
  private policy!: AcceptPolicy;
  private ranges: BlockList | null = null;

  constructor(policy: AcceptPolicy) {
    this.setPolicy(policy);
  }

  /** Replaces the policy (SIGHUP); the named VTEPs stay. */
  setPolicy(policy: AcceptPolicy): void {
    const ranges = policy.kind === 'cidrs' ? new BlockList() : null;
    if (policy.kind === 'cidrs') {
      for (const c of policy.cidrs) ranges!.addSubnet(c.address, c.prefixLength, c.family === 6 ? 'ipv6' : 'ipv4');
    }
    this.policy = policy;
    this.ranges = ranges;
  }

  /** Counts one more reason (a peer, a static entry) to accept `address`. */
  name(address: string): void {
    this.named.set(address, (this.named.get(address) ?? 0) + 1);
  }

  /** Undoes one name(). */
  unname(address: string): void {
    const n = (this.named.get(address) ?? 0) - 1;
    if (n <= 0) this.named.delete(address);
    else this.named.set(address, n);
  }

  accepts(address: string): boolean {
    switch (this.policy.kind) {
      case 'any':
        return true;
      case 'peers':
        return this.named.has(address);
      case 'cidrs':
        return this.named.has(address) || this.ranges!.check(address, ipFamily(address) === 6 ? 'ipv6' : 'ipv4');
    }
  }

  /** What --accept said, for status output. */
  describe(): string {
    return this.policy.kind === 'cidrs' ? this.policy.cidrs.map((c) => `${c.address}/${c.prefixLength}`).join(',') : this.policy.kind;
  }
}
