// src/io/etcd.ts against a real etcd (the `etcd` binary, Debian etcd-server),
// with the membership on top: a minimal etcd spawned here on a loopback
// address of its own with a data dir under a temp dir, both removed at
// teardown (the multi-host harness of issue 11 is test/helpers/etcd.ts). Two memberships see each other through it, a
// compaction does not disturb a live watch, a clean stop revokes the lease at once,
// and an etcd that is gone then back is reported and rejoined.
import t from 'tap';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Fdb, FLOOD_MAC } from '../src/fdb/fdb';
import { describeEtcdError, openEtcdStore } from '../src/io/etcd';
import { Membership } from '../src/membership/membership';
import { eventually } from './helpers/eventually';
import type { TapLike } from './helpers/netns';

const VNI = 42;
const quiet = { info: () => {}, warn: () => {} };
/** etcd's own start-up and a lease revoke or watch event through it. */
const ETCD_READY_MS = 15_000;

const hasEtcd = spawnSync('etcd', ['--version']).status === 0;

interface Etcd {
  url: string;
  start(): void;
  stop(): Promise<void>;
}

/** An etcd on 127.A.B.C (a loopback address no other test uses at once). */
function etcdServer(t: TapLike): Etcd {
  const address = `127.${randomInt(1, 255)}.${randomInt(0, 256)}.${randomInt(1, 255)}`;
  const dir = mkdtempSync(path.join(tmpdir(), 'vxland-io-etcd-'));
  const dataDir = path.join(dir, 'data');
  const url = `http://${address}:2379`;
  const peer = `http://${address}:2380`;
  let child: ChildProcess | null = null;
  const stop = async (): Promise<void> => {
    const c = child;
    child = null;
    if (c === null || c.exitCode !== null) return;
    const exited = new Promise((resolve) => c.once('exit', resolve));
    c.kill('SIGKILL');
    await exited;
  };
  const start = (): void => {
    child = spawn('etcd', [
      '--name', 'member', '--data-dir', dataDir,
      '--listen-client-urls', url, '--advertise-client-urls', url,
      '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer,
      '--initial-cluster', `member=${peer}`, '--log-level', 'error',
    ], { stdio: 'ignore' });
  };
  // etcd first, then its data dir: a running etcd would write into a removed dir.
  t.teardown(async () => {
    await stop();
    rmSync(dir, { recursive: true, force: true });
  });
  return { url, start, stop };
}

function member(t: TapLike, url: string, vtep: string, mac: string) {
  const fdb = new Fdb({ ageingMs: 0, maxLearned: 100 });
  const store = openEtcdStore({ endpoints: [url] });
  const membership = new Membership({ store, endpoints: [url], prefix: '/vxland-test', leaseTtlS: 5, localVtep: vtep, log: quiet, backoffBaseMs: 50, backoffCapMs: 500 });
  membership.addNetwork({ vni: VNI, fdb, self: () => ({ vtep, port: 4789, mac, bindings: [] }) });
  membership.start();
  t.teardown(async () => {
    await membership.stop();
    await store.close();
  });
  return { fdb, membership, store };
}

const etcdPeers = (fdb: Fdb) => fdb.entries().filter((e) => e.kind === 'etcd' && e.mac === FLOOD_MAC).map((e) => e.vtep);

t.test('a failed call is told in one line an operator can act on (what gRPC and TLS say, translated)', async (t) => {
  const alert = '14 UNAVAILABLE: No connection established. Last error: 80ACA2D9557F0000:error:0A000412:SSL routines:ssl3_read_bytes:sslv3 alert bad certificate:../deps/openssl/openssl/ssl/record/rec_layer_s3.c:1601:SSL alert number 42\n (2026-12-02T13:07:41.748Z). Resolution note: ';
  const cases: Array<[string, boolean, string]> = [
    [alert, false, 'etcd wants a TLS client certificate and we have none (set etcd.tls.cert and etcd.tls.key)'],
    [alert, true, 'etcd refused our TLS client certificate (etcd.tls.cert is not signed by a CA etcd trusts)'],
    ['14 UNAVAILABLE: No connection established. Last error: Error: unable to verify the first certificate. Resolution note: ', true,
      "etcd's server certificate is not signed by etcd.tls.ca (or does not name the address we dial)"],
    ['7 PERMISSION_DENIED: etcdserver: permission denied', true,
      "etcd denied the call: permission denied (the etcd user our client certificate's CN names has no role granting this prefix)"],
    ['14 UNAVAILABLE: No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:2379. Resolution note: ', false, 'etcd unreachable: connect ECONNREFUSED 127.0.0.1:2379'],
    ['14 UNAVAILABLE: No connection established. Last error: Failed to connect (2026-12-02T13:50:58.728Z). Resolution note: ', false, 'etcd unreachable: Failed to connect'],
    ['watch ended\nsecond line', false, 'watch ended'],
  ];
  for (const [message, clientCert, line] of cases) t.equal(describeEtcdError(new Error(message), { clientCert }), line, line);
});

t.test('two memberships over a real etcd: join, compaction, clean stop, etcd gone and back', { skip: hasEtcd ? false : 'etcd is not installed (apt-get install etcd-server)' }, async (t) => {
  const etcd = etcdServer(t);
  etcd.start();
  const a = member(t, etcd.url, '198.18.0.1', '02:00:00:00:00:01');
  t.ok(await a.membership.synced(ETCD_READY_MS), 'a lists etcd');
  const b = member(t, etcd.url, '198.18.0.2', '02:00:00:00:00:02');
  t.same(await eventually(() => etcdPeers(a.fdb), { until: (p) => p.length === 1, timeoutMs: ETCD_READY_MS, what: 'a sees b' }), ['198.18.0.2']);
  t.same(await eventually(() => etcdPeers(b.fdb), { until: (p) => p.length === 1, timeoutMs: ETCD_READY_MS, what: 'b sees a' }), ['198.18.0.1']);
  const s = a.membership.status();
  t.ok(s.connected && (s.revision ?? 0) > 1 && (s.leaseTtlLeftMs ?? 0) > 0, `status: connected, revision ${s.revision}, lease ${s.leaseTtlLeftMs} ms left`);

  const listsBefore = a.membership.status().lists;
  const compact = spawnSync('etcdctl', ['--endpoints', etcd.url, 'compact', String(a.membership.status().revision)], { encoding: 'utf8' });
  t.equal(compact.status, 0, `etcdctl compact: ${compact.stdout.trim()}${compact.stderr.trim()}`);
  // A compaction of history the watch has already read does not disturb it
  // (a compaction past a watch's start is the fake store's test, membership.test).
  const c = member(t, etcd.url, '198.18.0.3', '02:00:00:00:00:03');
  await eventually(() => etcdPeers(a.fdb).sort(), { until: (p) => p.join() === '198.18.0.2,198.18.0.3', timeoutMs: ETCD_READY_MS, what: 'a sees c' });
  t.equal(a.membership.status().lists, listsBefore, 'seen through the same watch, no list again');

  await c.membership.stop();
  t.same(await eventually(() => etcdPeers(a.fdb), { until: (p) => p.length === 1, timeoutMs: 3_000, what: 'c gone from a at once (revoked, not expired)' }), ['198.18.0.2']);

  await etcd.stop();
  t.notOk(await eventually(() => a.membership.status().connected, { until: (connected) => !connected, timeoutMs: ETCD_READY_MS, what: 'a reports etcd gone' }), 'disconnected');
  t.same(etcdPeers(a.fdb), ['198.18.0.2'], 'the last-known membership stays');
  etcd.start();
  t.ok(await eventually(() => a.membership.status().connected, { timeoutMs: ETCD_READY_MS, what: 'a reconnects' }), 'connected again');
  t.same(etcdPeers(a.fdb), ['198.18.0.2'], 'and still sees b');
});
