// KvStore (src/ports/kv.ts) over etcd v3 with the `etcd3` client (gRPC via
// @grpc/grpc-js: typed calls, leases with keepalive, watches from a revision,
// TLS with client certificates). The client's own watch reconnection is not
// used: a watch that disconnects or is cancelled (compaction) is reported lost
// once and closed, and the membership lists again, so that one loop with one
// backoff decides when the store is asked again.

import { readFileSync } from 'node:fs';
import { Etcd3, EtcdPermissionDeniedError, type IOptions, type Lease, type Watcher } from 'etcd3';
import { VxlandError } from '../errors.js';
import type { KvEvent, KvLease, KvListing, KvStore, KvWatch, KvWatchHandlers } from '../ports/kv.js';

/** Every unary call (list, put, delete, grant, revoke) gives up after this long. */
export const ETCD_CALL_TIMEOUT_MS = 3_000;
/** Connecting to an endpoint gives up after this long. */
export const ETCD_DIAL_TIMEOUT_MS = 2_000;

export interface EtcdStoreOptions {
  endpoints: readonly string[];
  tls?: { ca: string; cert?: string; key?: string };
}

export function openEtcdStore(o: EtcdStoreOptions): KvStore {
  const options: IOptions = {
    hosts: [...o.endpoints],
    dialTimeout: ETCD_DIAL_TIMEOUT_MS,
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + ETCD_CALL_TIMEOUT_MS }),
  };
  if (o.tls !== undefined) {
    const read = (what: string, file: string): Buffer => {
      try {
        return readFileSync(file);
      } catch (err) {
        throw new VxlandError('VXLAND_CONFIG_INVALID', `etcd tls ${what} ${file} cannot be read: ${(err as Error).message}`);
      }
    };
    options.credentials = {
      rootCertificate: read('ca', o.tls.ca),
      ...(o.tls.cert !== undefined ? { certChain: read('cert', o.tls.cert) } : {}),
      ...(o.tls.key !== undefined ? { privateKey: read('key', o.tls.key) } : {}),
    };
  }
  return new EtcdStore(new Etcd3(options), o.tls?.cert !== undefined);
}

/** What went wrong with a call to etcd, in one line an operator can act on
 *  (status and doctor show it). gRPC's own message names a TLS alert, not
 *  who refused whom. */
export function describeEtcdError(err: unknown, o: { clientCert: boolean }): string {
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof EtcdPermissionDeniedError || /permission denied/i.test(message)) {
    return 'etcd denied the call: permission denied (the etcd user our client certificate\'s CN names has no role granting this prefix)';
  }
  if (/alert (bad certificate|certificate required|unknown ca|certificate unknown)/i.test(message)) {
    return o.clientCert
      ? 'etcd refused our TLS client certificate (etcd.tls.cert is not signed by a CA etcd trusts)'
      : 'etcd wants a TLS client certificate and we have none (set etcd.tls.cert and etcd.tls.key)';
  }
  if (/certificate verify failed|unable to verify|self[- ]signed|unable to get (local )?issuer/i.test(message)) {
    return 'etcd\'s server certificate is not signed by etcd.tls.ca (or does not name the address we dial)';
  }
  if (/wrong version number|packet length too long|http\/1/i.test(message)) {
    return 'TLS and plain connection mismatch: the endpoint\'s scheme (http/https) is not what etcd serves';
  }
  // gRPC's "14 UNAVAILABLE: No connection established. Last error: [Error: ]<reason>[ (<timestamp>)]. Resolution note: ".
  const last = /Last error: (?:Error: )?(.*?)(?: \(\d{4}-\d\d-\d\dT[^)]*\))?\. Resolution note/s.exec(message);
  return last !== null ? `etcd unreachable: ${last[1]}` : message.split('\n')[0];
}

class EtcdStore implements KvStore {
  /** The last failure that reached etcd (or tried to): etcd3's per-host
   *  circuit breaker answers later calls with "circuit breaker is open",
   *  which names no cause. */
  private lastCause: string | null = null;

  constructor(
    private readonly client: Etcd3,
    private readonly clientCert: boolean,
  ) {}

  /** Runs one call; a failure is rethrown as an Error with describeEtcdError's line. */
  private async call<T>(run: () => PromiseLike<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      throw new Error(this.explain(err), { cause: err });
    }
  }

  private explain(err: unknown): string {
    if (err instanceof Error && 'isBrokenCircuitError' in err) {
      return this.lastCause ?? 'etcd calls paused after repeated failures';
    }
    this.lastCause = describeEtcdError(err, { clientCert: this.clientCert });
    return this.lastCause;
  }

  async grantLease(ttlS: number, onLost: (err: Error) => void): Promise<KvLease> {
    const lease = this.client.lease(ttlS, { autoKeepAlive: true });
    // A failed grant also emits 'lost'; only a lease that was granted reports it.
    let granted = false;
    let expiresAtMs = Date.now() + ttlS * 1000;
    lease.on('lost', (err) => {
      if (granted) onLost(new Error(this.explain(err), { cause: err }));
    });
    lease.on('keepaliveSucceeded', (res) => {
      expiresAtMs = Date.now() + Number(res.TTL) * 1000;
    });
    let id: string;
    try {
      id = await lease.grant();
    } catch (err) {
      void lease.release();
      throw new Error(this.explain(err), { cause: err });
    }
    granted = true;
    expiresAtMs = Date.now() + ttlS * 1000;
    return new EtcdLease(lease, id, () => expiresAtMs);
  }

  async put(key: string, value: string, lease: KvLease): Promise<void> {
    await this.call(() => this.client.put(key).value(value).lease(lease.id));
  }

  async delete(key: string): Promise<void> {
    await this.call(() => this.client.delete().key(key));
  }

  async list(prefix: string): Promise<KvListing> {
    const res = await this.call(() => this.client.getAll().prefix(prefix).exec());
    return {
      revision: Number(res.header.revision),
      kvs: res.kvs.map((kv) => ({ key: kv.key.toString(), value: kv.value.toString() })),
    };
  }

  watch(prefix: string, fromRevision: number, handlers: KvWatchHandlers): KvWatch {
    const watcher: Watcher = this.client.watch().prefix(prefix).startRevision(String(fromRevision)).watcher();
    let closed = false;
    const close = (): void => {
      if (closed) return;
      closed = true;
      watcher.removeAllListeners();
      // A cancel that fails (the stream is gone) changes nothing for us.
      watcher.on('error', () => {});
      void watcher.cancel().catch(() => {});
    };
    const lost = (err: Error): void => {
      if (closed) return;
      close();
      handlers.onLost(new Error(this.explain(err), { cause: err }));
    };
    watcher.on('data', (res) => {
      if (closed) return;
      const events: KvEvent[] = [];
      for (const e of res.events) {
        const key = e.kv.key.toString();
        const revision = Number(e.kv.mod_revision);
        if (e.type === 'Put') events.push({ type: 'put', key, value: e.kv.value.toString(), revision });
        else events.push({ type: 'delete', key, revision });
      }
      if (events.length > 0) handlers.onEvents(events);
    });
    watcher.on('disconnected', (err) => lost(err));
    watcher.on('error', (err) => lost(err));
    watcher.on('end', () => lost(new Error('watch ended')));
    return { close };
  }

  async close(): Promise<void> {
    this.client.close();
  }
}

class EtcdLease implements KvLease {
  constructor(
    private readonly lease: Lease,
    readonly id: string,
    private readonly expiry: () => number,
  ) {}

  expiresAtMs(): number {
    return this.expiry();
  }

  async revoke(): Promise<void> {
    await this.lease.revoke();
  }

  release(): void {
    void this.lease.release();
  }
}
