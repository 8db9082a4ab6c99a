// etcd over TLS with client certificates, and an etcd user whose role allows
// only the prefix (README "etcd security"), against a real etcd: throwaway
// CAs made with openssl (helpers/pki.ts), etcd with --client-cert-auth in the
// first host's namespace on its underlay address, vxland hosts configured by a
// host file's "etcd.tls". What a user sees: with the right certificate the
// host's key is in etcd and `status` says connected; with no certificate or
// one from another CA the host is refused, its key never appears, and
// `status` and `doctor` say disconnected and why; with auth enabled the
// certificate's CN is the etcd user, whose role lets it write under /vxland/
// and nowhere else.
//
// The membership code is the same on both data paths (etcd-join.test.ts runs
// it on each); the data path is not under test here, so each host runs dgram.
import t from 'tap';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { readVteps, skipUnlessEtcd, startEtcd, type EtcdCluster } from './helpers/etcd';
import { eventually } from './helpers/eventually';
import { createTopology, skipUnlessRoot, type Host, type TapLike } from './helpers/netns';
import { makeTestCa, type KeyPair } from './helpers/pki';
import { startVxland, tempDir, TEST_VNI, type VxlandHandle } from './helpers/vxland';
import type { MembershipStatus } from '../src/ports/membership';

const DATAPATH = 'dgram';
/** etcd's start, vxland's start and its first list through etcd. */
const JOIN_TIMEOUT_MS = 20_000;
/** A refused host reports why after its first failed call (startup waits at most 3 s). */
const REFUSED_TIMEOUT_MS = 15_000;
/** The etcd user vxland hosts act as (their client certificate's CN) and its role. */
const HOST_USER = 'vxland-host';
const HOST_ROLE = 'vxland';
/** The harness's etcdctl identity: etcd's root user once auth is enabled. */
const ADMIN_USER = 'root';

interface Pki { ca: string; etcdServer: KeyPair; admin: KeyPair; host: KeyPair; stranger: KeyPair }

/** A CA for etcd and its clients, and a stranger signed by another CA with the host's CN. */
function makePki(t: TapLike, etcdIp: string): Pki {
  const ca = makeTestCa(t, `h2-etcd-ca-${process.pid}`);
  const other = makeTestCa(t, `h2-other-ca-${process.pid}`);
  return {
    ca: ca.ca,
    etcdServer: ca.server('etcd', [etcdIp]),
    admin: ca.client(ADMIN_USER),
    host: ca.client(HOST_USER),
    stranger: other.client(HOST_USER),
  };
}

async function startTlsEtcd(t: TapLike, host: Host, pki: Pki): Promise<EtcdCluster> {
  return startEtcd(t, { ns: host.ns, ip: host.ip, tls: { ca: pki.ca, server: pki.etcdServer, client: pki.admin } });
}

/** vxland on host from a host file whose etcd block has these TLS files (and prefix). */
async function startTlsVxland(t: TapLike, host: Host, etcd: EtcdCluster, tls: { ca: string; cert?: string; key?: string }, prefix?: string): Promise<VxlandHandle> {
  const dir = tempDir(t, `h2-tls-${host.index}`);
  const socket = path.join(dir, 'vxland.sock');
  const file = path.join(dir, 'vxland.json');
  writeFileSync(file, JSON.stringify({
    local: host.ip, stateDir: dir, socket, logLevel: 'debug',
    etcd: { endpoints: etcd.endpoints, tls, ...(prefix === undefined ? {} : { prefix }) },
    networks: [{ vni: TEST_VNI, dev: 'vxl0', addresses: [`10.42.0.${host.index + 1}/24`] }],
  }));
  return startVxland(t, host, { datapath: DATAPATH, hostFile: file, stateDir: dir, socket });
}

const etcdStatus = async (v: VxlandHandle): Promise<MembershipStatus> => (await v.json<{ etcd: MembershipStatus }>('status')).etcd;

const publishedVteps = async (etcd: EtcdCluster): Promise<string[]> => (await readVteps(etcd, { vni: TEST_VNI })).map((e) => e.value.vtep).sort();

/** Waits until v has tried etcd and failed, then checks status (json and
 *  text) and doctor name the reason. */
async function refusedWith(t: tap.Test, v: VxlandHandle, reason: RegExp, label: string): Promise<void> {
  const s = await eventually(() => etcdStatus(v), {
    until: (e) => e.lastError !== null, timeoutMs: REFUSED_TIMEOUT_MS, intervalMs: 200, what: `${label}: a failed call to etcd`,
  });
  t.equal(s.connected, false, `${label}: status --json says disconnected`);
  t.match(s.lastError, reason, `${label}: and why: ${s.lastError}`);
  t.equal(s.revision, null, `${label}: nothing was ever listed`);
  const text = (await v.cli('status')).stdout;
  t.match(text, new RegExp(`etcd: +disconnected \\(${reason.source}`), `${label}: status says disconnected and why`);
  const doctor = await v.cli('doctor');
  t.equal(doctor.code, 1, `${label}: doctor exits 1`);
  t.match(doctor.stdout, new RegExp(`is out of reach \\(${reason.source}`), `${label}: doctor names the reason`);
}

t.test('etcd with --client-cert-auth: the right certificate joins; none, or one from another CA, is refused', async (t) => {
  if (skipUnlessRoot(t) || skipUnlessEtcd(t)) return;
  const topo = await createTopology(t, { hosts: 3 });
  const [h0, h1, h2] = topo.hosts;
  const pki = makePki(t, h0.ip);
  const etcd = await startTlsEtcd(t, h0, pki);
  t.match(etcd.endpoints[0], /^https:/, `etcd serves https (${etcd.endpoints[0]})`);

  const good = await startTlsVxland(t, h0, etcd, { ca: pki.ca, cert: pki.host.cert, key: pki.host.key });
  const joined = await eventually(() => etcdStatus(good), { until: (e) => e.connected, timeoutMs: JOIN_TIMEOUT_MS, intervalMs: 200, what: 'the host with the right certificate connected' });
  t.ok(joined.connected && joined.lastError === null && (joined.leaseTtlLeftMs ?? 0) > 0, `status: connected, revision ${joined.revision}, lease ${joined.leaseTtlLeftMs} ms left`);
  t.same(await eventually(() => publishedVteps(etcd), { until: (v) => v.length === 1, timeoutMs: JOIN_TIMEOUT_MS, what: 'its key in etcd' }), [h0.ip], 'its key is in etcd');
  t.match((await good.cli('status')).stdout, /etcd: +connected, revision \d+/, 'status says connected');

  const none = await startTlsVxland(t, h1, etcd, { ca: pki.ca });
  await refusedWith(t, none, /etcd wants a TLS client certificate and we have none/, 'no client certificate');
  const stranger = await startTlsVxland(t, h2, etcd, { ca: pki.ca, cert: pki.stranger.cert, key: pki.stranger.key });
  await refusedWith(t, stranger, /etcd refused our TLS client certificate/, 'a certificate from another CA');
  t.same(await publishedVteps(etcd), [h0.ip], 'neither refused host got a key into etcd');
  t.same(await good.peers(), [], 'and the joined host floods to neither');
});

t.test('etcd security: the host\'s certificate CN is an etcd user that may write only under the prefix', async (t) => {
  if (skipUnlessRoot(t) || skipUnlessEtcd(t)) return;
  const topo = await createTopology(t, { hosts: 3 });
  const [h0, h1, h2] = topo.hosts;
  const pki = makePki(t, h0.ip);
  const etcd = await startTlsEtcd(t, h0, pki);
  // README "etcd security", command for command (etcdctl acting as root by
  // its certificate's CN).
  await etcd.ctl('user', 'add', ADMIN_USER, '--no-password');
  await etcd.ctl('user', 'grant-role', ADMIN_USER, 'root');
  await etcd.ctl('role', 'add', HOST_ROLE);
  await etcd.ctl('role', 'grant-permission', HOST_ROLE, '--prefix=true', 'readwrite', '/vxland/');
  await etcd.ctl('user', 'add', HOST_USER, '--no-password');
  await etcd.ctl('user', 'grant-role', HOST_USER, HOST_ROLE);
  t.match(await etcd.ctl('auth', 'enable'), /Authentication Enabled/, 'auth is enabled');

  const certOf = { ca: pki.ca, cert: pki.host.cert, key: pki.host.key };
  const a = await startTlsVxland(t, h0, etcd, certOf);
  const b = await startTlsVxland(t, h1, etcd, certOf);
  t.same(await eventually(() => publishedVteps(etcd), { until: (v) => v.length === 2, timeoutMs: JOIN_TIMEOUT_MS, what: 'both keys in etcd' }), [h0.ip, h1.ip].sort(), `as ${HOST_USER}, both hosts published their keys under /vxland/`);
  t.same(await eventually(() => a.peers(), { until: (p) => p.length === 1, timeoutMs: JOIN_TIMEOUT_MS, what: 'a sees b' }), [h1.ip], 'and see each other (list and watch are allowed)');
  t.ok((await etcdStatus(b)).connected, 'status: connected');

  const outside = await etcd.ctlAs(pki.host, 'put', '/elsewhere/key', 'value');
  t.not(outside.code, 0, `${HOST_USER} cannot write outside the prefix`);
  t.match(outside.stderr, /permission denied/, `etcdctl says: ${outside.stderr.trim().split('\n').pop()}`);
  const inside = await etcd.ctlAs(pki.host, 'put', '/vxland/probe', 'value');
  t.equal(inside.code, 0, `${HOST_USER} can write under it`);

  const wrongPrefix = await startTlsVxland(t, h2, etcd, certOf, '/elsewhere');
  await refusedWith(t, wrongPrefix, /etcd denied the call: permission denied/, 'a host configured with another prefix');
  t.equal((await etcd.ctl('get', '--prefix', '/elsewhere/', '--keys-only')).trim(), '', 'nothing was written under /elsewhere/');
});
