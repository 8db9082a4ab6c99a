// Hosts that join by themselves: this daemon's membership in etcd and what it
// sees of the other hosts' (README "Joining through etcd").
// - one lease (leaseTtlS, kept alive by the store client) and, per network we
//   serve, one key attached to it (record.ts has the layout); a lost lease is
//   granted again and every key re-published;
// - the prefix is listed, then watched from the listing's revision + 1; when
//   the watch is lost (store out of reach, compaction, cancel) or a call fails
//   the loop backs off (jittered exponential, Backoff) and lists again,
//   reconciling: VTEPs that appeared are added, those that vanished removed.
//   The backoff is reset only by a watch that stayed up for
//   WATCH_HEALTHY_MS, so a store that accepts a list and drops every watch at
//   once is still retried at a growing interval, never in a loop;
// - each remote VTEP (not our own address) of a network we serve becomes an
//   etcd peer of that network's flood list and its TAP MAC an etcd FDB entry
//   (Fdb.addEtcdPeer / addEtcd: the daemon's FDB listener names them in the
//   source policy), and its bindings go to the BindingsSink (the neighbour
//   table, for ARP/ND suppression);
// - while the store is out of reach nothing is removed: forwarding goes on
//   with the last-known membership.

import type { Fdb } from '../fdb/fdb.js';
import type { KvEvent, KvLease, KvListing, KvStore, KvWatch } from '../ports/kv.js';
import type { MembershipStatus, MembershipView } from '../ports/membership.js';
import { Backoff } from '../util/backoff.js';
import { decodeRecord, encodeRecord, memberKey, networksPrefix, type Binding, type MemberRecord } from './record.js';

export type { Binding, MemberRecord } from './record.js';

export const MEMBERSHIP_BACKOFF_BASE_MS = 250;
export const MEMBERSHIP_BACKOFF_CAP_MS = 10_000;
/** A watch up this long counts as recovered: the next failure backs off from the base again. */
export const WATCH_HEALTHY_MS = 10_000;
/** How long stop() waits for the lease to be revoked before it lets the lease expire. */
export const REVOKE_WAIT_MS = 2_000;

/** Receives the (ip, mac) bindings etcd lists for a remote VTEP of a network;
 *  an empty list when the VTEP is gone. The neighbour table implements it. */
export interface BindingsSink {
  onBindings(vni: number, vtep: string, bindings: readonly Binding[]): void;
}

export interface MembershipLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** One network as the membership sees it. */
export interface MemberNetwork {
  readonly vni: number;
  readonly fdb: Fdb;
  /** Our record for this network, read at each publish (addresses may change). */
  self(): Omit<MemberRecord, 'vni'>;
}

export interface MembershipOptions {
  store: KvStore;
  endpoints: readonly string[];
  prefix: string;
  leaseTtlS: number;
  /** Our VTEP address (canonical): our own keys are not applied. */
  localVtep: string;
  log: MembershipLog;
  bindings?: BindingsSink;
  backoffBaseMs?: number;
  backoffCapMs?: number;
  watchHealthyMs?: number;
  random?: () => number;
  now?: () => number;
}

export class Membership implements MembershipView {
  private readonly networks = new Map<number, MemberNetwork>();
  /** Remote records applied, by key. */
  private readonly known = new Map<string, MemberRecord>();
  /** Keys whose bad value was logged, so each is logged once per value. */
  private readonly rejected = new Map<string, string>();
  private readonly backoff: Backoff;
  private readonly now: () => number;
  private lease: KvLease | null = null;
  /** Networks whose key is to be (re-)published with the current lease. */
  private readonly unpublished = new Set<number>();
  private watch: KvWatch | null = null;
  private wakeWatch: ((err: Error) => void) | null = null;
  private wakeSleep: (() => void) | null = null;
  private sleepTimer: NodeJS.Timeout | null = null;
  private loop: Promise<void> | null = null;
  private stopped = false;
  private connected = false;
  private revision: number | null = null;
  private lists = 0;
  private lastError: string | null = null;
  private syncedOnce = false;
  private readonly syncWaiters = new Set<() => void>();

  constructor(private readonly o: MembershipOptions) {
    this.backoff = new Backoff({ baseMs: o.backoffBaseMs ?? MEMBERSHIP_BACKOFF_BASE_MS, capMs: o.backoffCapMs ?? MEMBERSHIP_BACKOFF_CAP_MS, random: o.random });
    this.now = o.now ?? Date.now;
  }

  /** Starts the loop (returns at once; see synced()). */
  start(): void {
    this.loop ??= this.run();
  }

  /** Resolves true once the first listing is applied, false after timeoutMs. */
  synced(timeoutMs: number): Promise<boolean> {
    if (this.syncedOnce) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.syncWaiters.delete(done);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.syncWaiters.delete(done);
        resolve(false);
      }, timeoutMs);
      this.syncWaiters.add(done);
    });
  }

  /** Serves a network: publishes our key for it and applies what is known of its VTEPs. */
  addNetwork(n: MemberNetwork): void {
    this.networks.set(n.vni, n);
    for (const r of this.known.values()) if (r.vni === n.vni) this.apply(n, null, r);
    this.unpublished.add(n.vni);
    void this.publishPending();
  }

  /** No longer serves vni: withdraws our key and its etcd entries. */
  removeNetwork(vni: number): void {
    const n = this.networks.get(vni);
    if (n === undefined) return;
    this.networks.delete(vni);
    this.unpublished.delete(vni);
    for (const r of this.known.values()) if (r.vni === vni) this.apply(n, r, null);
    if (this.lease !== null) {
      this.o.store.delete(memberKey(this.o.prefix, vni, this.o.localVtep)).catch((err: unknown) => {
        this.o.log.warn({ err, vni }, 'etcd: could not withdraw our key (it goes with the lease)');
      });
    }
  }

  status(): MembershipStatus {
    return {
      connected: this.connected,
      revision: this.revision,
      leaseTtlLeftMs: this.lease === null ? null : Math.max(0, this.lease.expiresAtMs() - this.now()),
      remoteVteps: this.known.size,
      lists: this.lists,
      lastError: this.lastError,
      endpoints: this.o.endpoints,
    };
  }

  /** Stops the loop and revokes the lease (our keys vanish at once), waiting
   *  at most REVOKE_WAIT_MS for the store. The FDB entries stay. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wakeSleep?.();
    this.closeWatch(new Error('stopping'));
    await this.loop;
    const lease = this.lease;
    this.lease = null;
    if (lease === null) return;
    let timer: NodeJS.Timeout | undefined;
    const revoked = await Promise.race([
      lease.revoke().then(() => true, () => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), REVOKE_WAIT_MS))),
    ]);
    clearTimeout(timer);
    if (!revoked) {
      lease.release();
      this.o.log.warn({}, 'etcd: lease not revoked (store out of reach); our keys go when it expires');
    }
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      let watchedMs = 0;
      try {
        await this.ensureLease();
        await this.publishPending(true);
        const listing = await this.o.store.list(networksPrefix(this.o.prefix));
        if (this.stopped) break;
        this.lists++;
        this.reconcile(listing);
        this.revision = listing.revision;
        this.connected = true;
        this.lastError = null;
        this.markSynced();
        const watchStart = this.now();
        const err = await this.watchFrom(listing.revision + 1);
        watchedMs = this.now() - watchStart;
        if (this.stopped) break;
        this.lastError = `watch lost: ${err.message}`;
        this.o.log.warn({ err: err.message, revision: this.revision }, 'etcd: watch lost, listing again');
      } catch (err) {
        if (this.stopped) break;
        this.lastError = err instanceof Error ? err.message : String(err);
        this.o.log.warn({ err: this.lastError }, 'etcd: unreachable, retrying');
      }
      this.connected = false;
      if (watchedMs >= (this.o.watchHealthyMs ?? WATCH_HEALTHY_MS)) this.backoff.reset();
      await this.sleep(this.backoff.next());
    }
    this.connected = false;
  }

  private markSynced(): void {
    if (this.syncedOnce) return;
    this.syncedOnce = true;
    for (const done of [...this.syncWaiters]) done();
  }

  private async ensureLease(): Promise<void> {
    if (this.lease !== null) return;
    const lease = await this.o.store.grantLease(this.o.leaseTtlS, (err) => {
      if (this.lease !== lease) return;
      this.o.log.warn({ err: err.message }, 'etcd: lease lost, granting a new one');
      this.lease = null;
      // Our keys went with the lease: the loop grants a new one and publishes again.
      this.closeWatch(new Error('lease lost'));
    });
    if (this.stopped) {
      lease.release();
      return;
    }
    this.lease = lease;
    for (const vni of this.networks.keys()) this.unpublished.add(vni);
    this.o.log.info({ lease: lease.id, ttlS: this.o.leaseTtlS }, 'etcd: lease granted');
  }

  /** Puts the keys of the networks in `unpublished`. Throws from the loop
   *  (strict) so that it backs off; elsewhere a failure leaves the key for the loop. */
  private async publishPending(strict = false): Promise<void> {
    const lease = this.lease;
    if (lease === null) return;
    for (const vni of [...this.unpublished]) {
      const n = this.networks.get(vni);
      if (n === undefined) continue;
      const self = n.self();
      try {
        await this.o.store.put(memberKey(this.o.prefix, vni, this.o.localVtep), encodeRecord({ ...self, vni }), lease);
        if (this.lease === lease && this.networks.get(vni) === n) this.unpublished.delete(vni);
      } catch (err) {
        if (strict) throw err;
        this.o.log.warn({ err: err instanceof Error ? err.message : String(err), vni }, 'etcd: could not publish our key, retrying');
        return;
      }
    }
  }

  /** Resolves with the reason once the watch is lost or closed. */
  private watchFrom(fromRevision: number): Promise<Error> {
    return new Promise((resolve) => {
      let done = false;
      const finish = (err: Error): void => {
        if (done) return;
        done = true;
        this.wakeWatch = null;
        this.watch?.close();
        this.watch = null;
        resolve(err);
      };
      this.wakeWatch = finish;
      if (this.stopped || this.lease === null) return finish(new Error(this.stopped ? 'stopping' : 'lease lost'));
      this.watch = this.o.store.watch(networksPrefix(this.o.prefix), fromRevision, {
        onEvents: (events) => {
          if (!done) this.onEvents(events);
        },
        onLost: finish,
      });
    });
  }

  private closeWatch(reason: Error): void {
    this.wakeWatch?.(reason);
  }

  private sleep(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      this.wakeSleep = () => {
        if (this.sleepTimer !== null) clearTimeout(this.sleepTimer);
        this.sleepTimer = null;
        this.wakeSleep = null;
        resolve();
      };
      this.sleepTimer = setTimeout(() => this.wakeSleep?.(), ms);
    });
  }

  private onEvents(events: readonly KvEvent[]): void {
    for (const e of events) {
      this.revision = Math.max(this.revision ?? 0, e.revision);
      if (e.type === 'put') this.upsert(e.key, e.value);
      else this.forget(e.key);
    }
  }

  /** Makes `known` what the listing says: new and changed records applied, vanished ones removed. */
  private reconcile(listing: KvListing): void {
    const seen = new Set<string>();
    for (const { key, value } of listing.kvs) {
      seen.add(key);
      this.upsert(key, value);
    }
    for (const key of [...this.known.keys()]) if (!seen.has(key)) this.forget(key);
  }

  private upsert(key: string, value: string): void {
    let record: MemberRecord;
    try {
      record = decodeRecord(this.o.prefix, key, value);
    } catch (err) {
      if (this.rejected.get(key) !== value) {
        this.rejected.set(key, value);
        this.o.log.warn({ key, err: err instanceof Error ? err.message : String(err) }, 'etcd: ignoring a malformed member record');
      }
      this.forget(key);
      return;
    }
    this.rejected.delete(key);
    if (record.vtep === this.o.localVtep) return;
    const old = this.known.get(key) ?? null;
    if (old !== null && encodeRecord(old) === encodeRecord(record)) return;
    this.known.set(key, record);
    const n = this.networks.get(record.vni);
    if (n !== undefined) this.apply(n, old, record);
  }

  private forget(key: string): void {
    this.rejected.delete(key);
    const old = this.known.get(key);
    if (old === undefined) return;
    this.known.delete(key);
    const n = this.networks.get(old.vni);
    if (n !== undefined) this.apply(n, old, null);
  }

  /** Moves network n's etcd entries for one VTEP from `old` to `next` (either may be null). */
  private apply(n: MemberNetwork, old: MemberRecord | null, next: MemberRecord | null): void {
    const { fdb, vni } = n;
    const vtep = (next ?? old)?.vtep;
    if (vtep === undefined) return;
    if (next !== null) {
      if (old !== null && old.mac !== next.mac) fdb.removeEtcd(vni, old.mac, vtep);
      fdb.addEtcdPeer(vni, vtep);
      fdb.addEtcd(vni, next.mac, vtep);
      if (next.port !== n.self().port) this.o.log.warn({ vni, vtep, port: next.port }, 'etcd: a VTEP listens on another port than ours; frames to it go to our port');
      this.o.bindings?.onBindings(vni, vtep, next.bindings);
    } else if (old !== null) {
      fdb.removeEtcd(vni, old.mac, vtep);
      fdb.removeEtcdPeer(vni, vtep);
      this.o.bindings?.onBindings(vni, vtep, []);
    }
  }
}
