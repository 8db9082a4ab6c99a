// Runtime control: no peer → no traffic; `peer add` → it flows; `peer del` →
// it stops; kill -9 and a new start → peers and static entries are back. And
// the control socket holds against hostile local clients and users.
import { chmodSync, lstatSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import {
  addKernelVxlan, createTopology, exec, ping, skipUnlessRoot, spawnDaemon, vmRssKb, vxlandArgv,
} from './helpers/netns';
import { openRaw, type RawClient } from './helpers/control';
import { eventually } from './helpers/eventually';
import { datapathsUnderTest, startVxland, tempDir, TEST_VNI } from './helpers/vxland';

for (const datapath of datapathsUnderTest()) {
  t.test(`peers and static entries at run time (${datapath})`, async (t) => {
    if (skipUnlessRoot(t)) return;
    const topo = await createTopology(t, { hosts: 2 });
    const [a, b] = topo.hosts;
    await addKernelVxlan(b, { vni: TEST_VNI, remotes: [a.ip], address: '10.42.0.2/24' });
    const first = await startVxland(t, a, { address: '10.42.0.1/24', datapath });

    t.equal((await ping(a.ns, '10.42.0.2', { count: 2, intervalS: 0.2, timeoutS: 1 })).received, 0, 'no peer: no traffic');
    t.ok((await first.json<any>('status')).stats.drops.tx_no_destination > 0, 'counted as tx_no_destination');

    const added = await first.cli('peer', 'add', b.ip);
    t.equal(added.code, 0, 'peer add succeeds');
    // The kernel may still be resolving 10.42.0.2 with the probes that went
    // nowhere; once they run out it fails the pings queued behind them. A
    // fresh entry resolves through the new peer.
    await exec(a.ns, ['ip', 'neigh', 'flush', 'dev', first.dev], { allowFail: true });
    const afterAdd = await ping(a.ns, '10.42.0.2', { count: 3, intervalS: 0.2, timeoutS: 2 });
    t.equal(afterAdd.received, 3, 'peer added: traffic flows');
    t.same(await first.peers(), [b.ip]);

    t.equal((await first.cli('peer', 'del', b.ip)).code, 0, 'peer del succeeds');
    t.equal((await first.cli('fdb', 'flush', '--learned')).code, 0, 'learned entries flushed');
    // Both commands take effect in the data path before they answer.
    const noDestination = async () => ((await first.json<any>('status')).stats.drops.tx_no_destination ?? 0) as number;
    const dropped0 = await noDestination();
    t.equal((await ping(a.ns, '10.42.0.2', { count: 2, intervalS: 0.2, timeoutS: 1 })).received, 0, 'peer deleted: traffic stops');
    t.ok(await noDestination() >= dropped0 + 2, 'the echoes are counted as tx_no_destination');

    const unknown = await first.cli('peer', 'del', '198.18.1.77');
    t.not(unknown.code, 0, 'deleting an unknown peer fails');
    t.match(unknown.stderr.trim().split('\n'), [/^vxland: .*198\.18\.1\.77/], 'with one clear line naming it');

    t.equal((await first.cli('peer', 'add', b.ip)).code, 0);
    t.equal((await first.cli('fdb', 'add', '02:00:00:00:aa:01', '198.18.1.50')).code, 0, 'static entry added');

    first.proc.proc.kill('SIGKILL');
    await first.proc.exited;
    const second = await startVxland(t, a, { address: '10.42.0.1/24', datapath, stateDir: first.stateDir });
    t.same(await second.peers(), [b.ip], 'peer is back after kill -9');
    const fdb = await second.json<any[]>('fdb', 'show');
    t.ok(fdb.some((e) => e.mac === '02:00:00:00:aa:01' && e.vtep === '198.18.1.50' && e.kind === 'static'), 'static entry is back');
    t.equal((await ping(a.ns, '10.42.0.2', { count: 3, intervalS: 0.2, timeoutS: 2 })).received, 3, 'traffic flows after restart');
  });
}

// The control socket against hostile local clients: a client that pipelines
// requests and never reads, 64 clients sending one byte a second, hundreds of
// connections past the cap that never close.
const SLOW_CLIENTS = 64;
const DRIP_BYTES = 4;
const EXTRA_CONNECTIONS = 250;
const PIPELINE_MS = 4_000;
const RSS_GROWTH_LIMIT_KB = 20 * 1024;
/** How much longer than a `vxland status` just before the slow clients came
 *  (a node start: a loaded machine makes it slow) it may take with them connected. */
const STATUS_WITHIN_MS = 2_000;
const CLIENT_BUFFER_LIMIT_BYTES = 1024 * 1024;
/** The daemon closes a client with unread replies after 10 s (README); some slack on top. */
const UNREAD_CLIENT_CLOSED_MS = 15_000;

const openFds = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length;

for (const datapath of datapathsUnderTest()) {
  t.test(`no control client can grow the daemon's memory or hold its places (${datapath})`, async (t) => {
    if (skipUnlessRoot(t)) return;
    const topo = await createTopology(t, { hosts: 2 });
    const [a, b] = topo.hosts;
    const v = await startVxland(t, a, { peers: [b.ip], datapath, extraArgs: ['--log-level', 'info'] });
    const pid = v.proc.pid!;

    // A client that pipelines requests as fast as it may and never reads.
    const rssBeforeKb = vmRssKb(pid);
    let rssMaxKb = rssBeforeKb;
    const hog = openRaw(t, v.socket);
    hog.socket.pause();
    await hog.connected;
    const batch = '{"id":1,"method":"fdb.show"}\n{"id":2,"method":"status"}\n'.repeat(500);
    let sentBytes = 0;
    // The client offers requests for PIPELINE_MS, a batch every 20 ms
    // (pacing, and RSS sampling, not a wait).
    for (const until = Date.now() + PIPELINE_MS; Date.now() < until;) {
      if (hog.socket.writableLength < CLIENT_BUFFER_LIMIT_BYTES && !hog.socket.destroyed) {
        hog.socket.write(batch);
        sentBytes += batch.length;
      }
      rssMaxKb = Math.max(rssMaxKb, vmRssKb(pid));
      await new Promise((r) => setTimeout(r, 20));
    }
    t.ok(hog.socket.writableLength > 0, `the daemon stopped reading the client (${sentBytes} bytes of requests offered, ${hog.socket.writableLength} not taken)`);
    t.ok(rssMaxKb - rssBeforeKb < RSS_GROWTH_LIMIT_KB, `daemon RSS grew by ${rssMaxKb - rssBeforeKb} kB (${rssBeforeKb} → ${rssMaxKb} kB)`);
    t.equal((await v.json<any>('status')).pid, pid, 'status still answers');
    await eventually(() => hog.socket.destroyed, { timeoutMs: UNREAD_CLIENT_CLOSED_MS, what: 'the daemon closing the client whose replies stay unread' });
    t.pass('the daemon closes the client once its replies stay unread');

    // The same `status` call without slow clients: the baseline.
    const baselineStarted = Date.now();
    const baseline = await v.cli('status');
    const baselineMs = Date.now() - baselineStarted;
    t.equal(baseline.code, 0, `status answers with no slow client connected (${baselineMs} ms): ${baseline.stderr.trim()}`);

    // 64 clients sending one byte a second.
    const fdsBefore = openFds(pid);
    const slow = Array.from({ length: SLOW_CLIENTS }, () => openRaw(t, v.socket));
    await Promise.all(slow.map((c) => c.connected));
    const accepted = await eventually(() => openFds(pid), { until: (n) => n >= fdsBefore + SLOW_CLIENTS, what: 'a descriptor for every slow client' });
    t.pass(`the daemon accepted all slow clients (${accepted - fdsBefore} more descriptors)`);
    const request = '{"id":1,"method":"status"}';
    let tick = 0;
    const drip = () => { for (const c of slow) if (!c.socket.destroyed) c.socket.write(request[tick % request.length]); tick++; };
    drip();
    // Bytes for less than the request deadline, so none races the daemon's
    // closing line; under the old idle timer each byte bought 30 s more.
    const dripTimer = setInterval(() => (tick < DRIP_BYTES ? drip() : clearInterval(dripTimer)), 1_000);
    t.teardown(() => clearInterval(dripTimer));
    const started = Date.now();
    const status = await v.cli('status');
    const tookMs = Date.now() - started;
    t.equal(status.code, 0, `status answers with ${SLOW_CLIENTS} slow clients connected: ${status.stderr.trim()}`);
    t.comment(`status took ${tookMs} ms with ${SLOW_CLIENTS} slow clients connected, ${baselineMs} ms without`);
    t.ok(tookMs <= baselineMs + STATUS_WITHIN_MS, `within ${STATUS_WITHIN_MS} ms of a status without them (took ${tookMs} ms; ${baselineMs} ms without)`);
    await eventually(() => slow.filter((c) => !c.socket.destroyed).length, { until: (n) => n === 0, timeoutMs: 9_000, what: 'no slow client left connected' });
    t.pass('every slow client is cut within a few seconds');
    const cut = slow.filter((c) => /request line not complete within \d+ ms/.test(c.received())).length;
    t.ok(cut >= SLOW_CLIENTS - 1, `${cut} were told their request line took too long (one made way for status)`);
    clearInterval(dripTimer);

    // Hundreds of connections past the cap whose clients never close.
    const fdsIdle = openFds(pid);
    const extra: RawClient[] = [];
    for (let i = 0; i < SLOW_CLIENTS + EXTRA_CONNECTIONS; i++) {
      const c = openRaw(t, v.socket, { allowHalfOpen: true });
      extra.push(c);
      await c.connected;
    }
    await eventually(() => extra.filter((c) => c.received().includes('too many control connections')).length,
      { until: (n) => n >= EXTRA_CONNECTIONS, what: 'connections past the cap told why' });
    t.pass(`${EXTRA_CONNECTIONS} connections past the cap were told why and closed`);
    const limit = fdsIdle + SLOW_CLIENTS + 3;
    const held = await eventually(() => openFds(pid), { until: (n) => n <= limit, timeoutMs: 1_000, what: `the daemon holding at most ${limit} descriptors` });
    t.pass(`the daemon holds at most ${limit} descriptors (${held}; ${fdsIdle} with no client)`);
    t.equal((await v.json<any>('status')).pid, pid, 'and still answers');
  });
}

// Watches a socket directory as an unprivileged user: every socket it can
// find there (or one level below) is lstat'ed and, if it can, connected to and
// sent a peer.add. Prints "ready", then a JSON summary once it has seen the
// final socket WATCH_ROUNDS times, or after WATCH_DEADLINE_MS.
const WATCH_ROUNDS = 200;
const WATCH_DEADLINE_MS = 20_000;
const INTRUDER_PEER = '198.18.250.99';
const WATCHER = `
const fs = require('node:fs'), net = require('node:net'), path = require('node:path');
const [dir, target] = process.argv.slice(1);
const seenModes = new Set();
let seen = 0, attempts = 0, connected = 0;
const deadline = Date.now() + ${WATCH_DEADLINE_MS};
const sockets = () => {
  const found = [];
  const visit = (p, depth) => {
    let st;
    try { st = fs.lstatSync(p); } catch { return; }
    if (st.isSocket()) found.push([p, st.mode & 0o777]);
    if (st.isDirectory() && depth < 2) { try { for (const e of fs.readdirSync(p)) visit(path.join(p, e), depth + 1); } catch {} }
  };
  visit(dir, 0);
  return found;
};
const round = () => {
  if (seen >= ${WATCH_ROUNDS} || Date.now() > deadline) {
    console.log(JSON.stringify({ seen, attempts, connected, modes: [...seenModes].map((m) => m.toString(8)) }));
    process.exit(0);
  }
  const found = sockets();
  let pending = found.length;
  if (pending === 0) return setTimeout(round, 1);
  for (const [p, mode] of found) {
    seenModes.add(mode);
    if (p === target) seen++;
    attempts++;
    const s = net.connect(p);
    s.on('connect', () => { connected++; s.end(JSON.stringify({ id: 1, method: 'peer.add', params: { ip: '${INTRUDER_PEER}' } }) + '\\n'); });
    s.on('error', () => {});
    s.on('close', () => { if (--pending === 0) setTimeout(round, 1); });
  }
};
console.log('ready');
round();
`;

for (const datapath of datapathsUnderTest()) {
  t.test(`the control socket cannot be raced, redirected or put where others can write (${datapath})`, async (t) => {
    if (skipUnlessRoot(t)) return;
    const topo = await createTopology(t, { hosts: 2 });
    const [a, b] = topo.hosts;

    // umask 000: an unprivileged user watching the directory never sees the
    // socket with a looser mode than 0600, and never gets in.
    const socketDir = tempDir(t, 'sockdir');
    chmodSync(socketDir, 0o755);
    const socket = path.join(socketDir, 'vxl0.sock');
    const watcher = spawnDaemon(t, a.ns, ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', WATCHER, socketDir, socket],
      { env: { PATH: process.env.PATH } }); // not tap's NODE_OPTIONS: its hooks write where nobody may not
    await watcher.waitForLine('ready');
    const umask = process.umask(0o000);
    let v: Awaited<ReturnType<typeof startVxland>>;
    try {
      v = await startVxland(t, a, { peers: [b.ip], datapath, socket });
    } finally {
      process.umask(umask);
    }
    const summary = JSON.parse(await watcher.waitForLine((l) => l.startsWith('{'), WATCH_DEADLINE_MS + 5_000));
    t.ok(summary.seen >= WATCH_ROUNDS, `the watcher saw the socket ${summary.seen} times`);
    t.same(summary.modes, ['600'], 'only ever with mode 0600');
    t.equal(summary.connected, 0, `none of its ${summary.attempts} connection attempts got in`);
    t.same(await v.peers(), [b.ip], 'and nothing it sent was applied');
    await v.proc.stop();

    const refusal = async (sock: string, extra: string[] = []): Promise<string> => {
      const r = await exec(a.ns, vxlandArgv('run', '--dev', 'vxl0', '--vni', String(TEST_VNI), '--local', a.ip,
        '--state-dir', tempDir(t, 'state'), '--socket', sock, '--datapath', datapath, ...extra), { allowFail: true, timeoutMs: 15_000 });
      t.equal(r.code, 1, `refused with exit code 1 (${r.stderr.trim()})`);
      const lines = r.stderr.trim().split('\n');
      t.equal(lines.length, 1, 'one line on stderr');
      return lines[0];
    };

    // A symlink at the socket path, to a root-only file: never followed.
    const secret = path.join(tempDir(t, 'secret'), 'shadow');
    writeFileSync(secret, 'root only', { mode: 0o600 });
    const linkDir = tempDir(t, 'linkdir');
    const link = path.join(linkDir, 'vxl0.sock');
    symlinkSync(secret, link);
    t.equal(await refusal(link, ['--control-group', 'daemon']), `vxland: ${link} exists and is not a socket; refusing to replace it`);
    const st = statSync(secret);
    t.same([st.mode & 0o7777, st.uid, st.gid, readFileSync(secret, 'utf8')], [0o600, 0, 0, 'root only'], 'the file keeps its mode, owner and content');
    t.ok(lstatSync(link).isSymbolicLink(), 'the link is left as it was');

    // A directory others can write (like /tmp): refused, naming it.
    for (const mode of [0o777, 0o1777]) {
      const open = tempDir(t, 'open');
      chmodSync(open, mode);
      const line = await refusal(path.join(open, 'vxl0.sock'));
      t.match(line, new RegExp(`^vxland: refusing to put the control socket in ${open}: ${open} is writable by others`), `mode ${mode.toString(8)}: names the directory`);
      t.same(readdirSync(open), [], 'and leaves nothing in it');
    }
    t.not((await exec(a.ns, ['ip', 'link', 'show', 'dev', 'vxl0'], { allowFail: true })).code, 0, 'no TAP device was left behind');
  });
}
