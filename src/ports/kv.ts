// The narrow view of a key-value store (etcd v3) that the membership needs:
// one lease kept alive, keys attached to it, a prefix listed at a revision and
// watched from the next one. src/io/etcd.ts implements it over the `etcd3`
// client; test/fakes.ts has an in-memory one with revisions, compaction and
// outages. Revisions are etcd's int64 revisions as numbers (exact below 2^53).

export interface KvPair {
  readonly key: string;
  readonly value: string;
}

export interface KvListing {
  /** The store's revision the listing was read at; watch from revision + 1. */
  readonly revision: number;
  readonly kvs: readonly KvPair[];
}

export type KvEvent =
  | { readonly type: 'put'; readonly key: string; readonly value: string; readonly revision: number }
  | { readonly type: 'delete'; readonly key: string; readonly revision: number };

export interface KvLease {
  readonly id: string;
  /** When the lease expires unless kept alive again (ms since the epoch, the
   *  local clock at the last grant or keepalive answer plus the TTL). */
  expiresAtMs(): number;
  /** Ends the lease at once: every key attached to it is deleted by the store. */
  revoke(): Promise<void>;
  /** Stops keeping the lease alive without revoking it (it expires on its own). */
  release(): void;
}

export interface KvWatch {
  /** Stops the watch; no callback is called afterwards. Idempotent. */
  close(): void;
}

export interface KvWatchHandlers {
  /** Events in revision order, each batch after the previous one. */
  onEvents(events: readonly KvEvent[]): void;
  /** The watch is over (lost connection, compacted past its start, cancelled
   *  by the store): called once, then nothing more. The caller lists again. */
  onLost(err: Error): void;
}

export interface KvStore {
  /** Grants a lease of ttlS seconds and keeps it alive; onLost is called once
   *  if the lease ends without revoke() (expired while the store was out of
   *  reach, or revoked by someone else). */
  grantLease(ttlS: number, onLost: (err: Error) => void): Promise<KvLease>;
  /** Writes key = value attached to lease (the key goes when the lease does). */
  put(key: string, value: string, lease: KvLease): Promise<void>;
  delete(key: string): Promise<void>;
  list(prefix: string): Promise<KvListing>;
  /** Watches every key under prefix from fromRevision on (inclusive). */
  watch(prefix: string, fromRevision: number, handlers: KvWatchHandlers): KvWatch;
  /** Closes the client; leases are not revoked (see KvLease.revoke). */
  close(): Promise<void>;
}
