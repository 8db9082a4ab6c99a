import t from 'tap';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { request, stream } from '../src/control/client.js';
import { MAX_REQUEST_LINE_BYTES, type ControlHandler, type StatusResult } from '../src/control/protocol.js';
import { ControlServer, MAX_CONTROL_CLIENTS } from '../src/control/server.js';
import { VxlandError } from '../src/errors.js';

const CLI = path.resolve(__dirname, '..', 'src', 'cli.js');

const STATUS: StatusResult = {
  accept: 'peers',
  dev: 'vxl0', mac: '02:aa:bb:cc:dd:ee', vni: 42, port: 4789, local: null, mtu: 1450, datapath: 'dgram', offloads: [], uptimeS: 5, pid: 1,
  stats: { rxPackets: 1, rxBytes: 100, txPackets: 2, txBytes: 200, drops: {}, dropsTotal: 0, learnRefused: { fdbFull: 0, vtepFull: 0, rate: 0 } },
  fdb: { size: 1, learned: 0, peers: 1 },
};

/** An in-memory daemon: a peer list and a record of the calls it received. */
function fakeHandler(): ControlHandler & { peers: string[]; calls: string[] } {
  const peers = ['192.0.2.2'];
  const calls: string[] = [];
  return {
    peers,
    calls,
    status: () => STATUS,
    peerAdd: (ip) => {
      calls.push(`peerAdd ${ip}`);
      if (peers.includes(ip)) return { ip, changed: false };
      peers.push(ip);
      return { ip, changed: true };
    },
    peerDel: (ip) => {
      calls.push(`peerDel ${ip}`);
      if (!peers.includes(ip)) throw new VxlandError('VXLAND_NOT_FOUND', `${ip} is not a peer of vxl0 (vni 42)`);
      peers.splice(peers.indexOf(ip), 1);
      return { ip, changed: true };
    },
    peerList: () => [...peers],
    fdbShow: () => [],
    fdbAdd: async (mac, ip) => {
      calls.push(`fdbAdd ${mac} ${ip}`);
      return { mac, ip };
    },
    fdbDel: () => {
      throw new Error('disk on fire');
    },
    fdbFlush: (learnedOnly) => {
      calls.push(`fdbFlush ${learnedOnly}`);
      return { removed: 3 };
    },
    stats: () => ({ stats: STATUS.stats, vteps: [] }),
    logLevel: (level) => ({ level: level ?? 'info', previous: 'info' }),
    doctor: () => ({ ok: true, checks: ['mtu'], findings: [] }),
    monitor: (emit) => {
      calls.push('monitor');
      const timer = setInterval(() => emit({ time: 't', type: 'learned', vni: 42, mac: '02:00:00:00:00:09', vtep: '192.0.2.9', kind: 'learned' }), 20);
      return () => {
        calls.push('monitor stopped');
        clearInterval(timer);
      };
    },
  };
}

async function startServer(t: tap.Test, handler: ControlHandler = fakeHandler()): Promise<{ server: ControlServer; socketPath: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vxland-ctl-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const socketPath = path.join(dir, 'run', 'vxl0.sock');
  const server = await ControlServer.listen(socketPath, handler);
  t.teardown(() => server.close());
  return { server, socketPath };
}

/** Writes raw bytes and collects reply lines until the server closes or `lines` arrived. */
function rawExchange(socketPath: string, payload: string | Buffer, lines: number): Promise<{ replies: unknown[]; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    let buffered = '';
    const replies: unknown[] = [];
    const done = (closed: boolean): void => {
      socket.destroy();
      resolve({ replies, closed });
    };
    socket.on('error', reject);
    socket.on('data', (chunk) => {
      buffered += chunk.toString('utf8');
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        replies.push(JSON.parse(buffered.slice(0, newline)));
        buffered = buffered.slice(newline + 1);
      }
      if (replies.length >= lines) done(false);
    });
    socket.on('end', () => done(true));
    socket.write(payload);
  });
}

async function requestError(promise: Promise<unknown>): Promise<VxlandError> {
  try {
    await promise;
  } catch (err) {
    return err as VxlandError;
  }
  throw new Error('request did not fail');
}

t.test('round trip of every method', async (t) => {
  const handler = fakeHandler();
  const { socketPath } = await startServer(t, handler);
  t.same(await request(socketPath, 'status'), STATUS);
  t.same(await request(socketPath, 'peer.add', { ip: 'FD00::0002' }), { ip: 'fd00::2', changed: true }, 'IP arrives canonical');
  t.same(await request(socketPath, 'peer.add', { ip: '192.0.2.2' }), { ip: '192.0.2.2', changed: false });
  t.same(await request(socketPath, 'peer.list'), ['192.0.2.2', 'fd00::2']);
  t.same(await request(socketPath, 'peer.del', { ip: '192.0.2.2' }), { ip: '192.0.2.2', changed: true });
  t.same(await request(socketPath, 'fdb.show'), []);
  t.same(await request(socketPath, 'fdb.add', { mac: '02-00-00-00-00-AA', ip: '192.0.2.9' }), { mac: '02:00:00:00:00:aa', ip: '192.0.2.9' });
  t.same(await request(socketPath, 'fdb.flush', { learned: true }), { removed: 3 });
  t.same(await request(socketPath, 'fdb.flush'), { removed: 3 });
  t.same(handler.calls, [
    'peerAdd fd00::2', 'peerAdd 192.0.2.2', 'peerDel 192.0.2.2', 'fdbAdd 02:00:00:00:00:aa 192.0.2.9', 'fdbFlush true', 'fdbFlush false',
  ]);
});

t.test('the socket is private and removed on close', async (t) => {
  const { server, socketPath } = await startServer(t);
  t.equal(fs.statSync(socketPath).mode & 0o777, 0o600);
  t.equal(fs.statSync(path.dirname(socketPath)).mode & 0o777, 0o755);
  await server.close();
  t.notOk(fs.existsSync(socketPath));
});

t.test('refusals keep their code and message', async (t) => {
  const { socketPath } = await startServer(t);
  const notFound = await requestError(request(socketPath, 'peer.del', { ip: '192.0.2.77' }));
  t.type(notFound, VxlandError);
  t.match(notFound, { code: 'VXLAND_NOT_FOUND', message: '192.0.2.77 is not a peer of vxl0 (vni 42)' });

  t.match(await requestError(request(socketPath, 'peer.add', { ip: '300.1.1.1' })), {
    code: 'VXLAND_BAD_ARGUMENT', message: 'ip must be an IPv4 or IPv6 address (got "300.1.1.1")',
  });
  t.match(await requestError(request(socketPath, 'peer.add', {})), { code: 'VXLAND_BAD_ARGUMENT', message: 'got nothing' });
  t.match(await requestError(request(socketPath, 'fdb.add', { mac: '02:00:00:00:00', ip: '192.0.2.2' })), {
    code: 'VXLAND_BAD_ARGUMENT', message: 'mac must be a MAC address',
  });
  t.match(await requestError(request(socketPath, 'fdb.add', { mac: '00:00:00:00:00:00', ip: '192.0.2.2' })), {
    code: 'VXLAND_BAD_ARGUMENT', message: 'is the flood address',
  });
  t.match(await requestError(request(socketPath, 'fdb.flush', { learned: 'yes' })), {
    code: 'VXLAND_BAD_ARGUMENT', message: 'learned must be true or false',
  });
  t.match(await requestError(request(socketPath, 'peer.frob')), { code: 'VXLAND_CONTROL_PROTOCOL', message: 'unknown method "peer.frob"' });
  t.match(await requestError(request(socketPath, 'fdb.del', { mac: '02:00:00:00:00:01' })), {
    code: 'VXLAND_INTERNAL', message: 'internal error: disk on fire',
  });
});

t.test('a garbage line gets an error reply and the connection stays usable', async (t) => {
  const { socketPath } = await startServer(t);
  const { replies, closed } = await rawExchange(
    socketPath,
    'this is not json\n[1,2]\n{"id":"x","method":"status"}\n{"id":7,"method":5}\n{"id":8,"method":"status"}\n',
    5,
  );
  t.notOk(closed);
  t.match(replies, [
    { id: null, ok: false, error: { code: 'VXLAND_CONTROL_PROTOCOL', message: 'request is not valid JSON' } },
    { id: null, ok: false, error: { code: 'VXLAND_CONTROL_PROTOCOL', message: 'request must be a JSON object' } },
    { id: null, ok: false, error: { code: 'VXLAND_CONTROL_PROTOCOL', message: 'request id must be an integer' } },
    { id: 7, ok: false, error: { code: 'VXLAND_CONTROL_PROTOCOL', message: 'request method must be a string' } },
    { id: 8, ok: true, result: { dev: 'vxl0' } },
  ]);
});

t.test('requests split across writes and pipelined on one line each are answered in order', async (t) => {
  const { socketPath } = await startServer(t);
  const replies = await new Promise<unknown[]>((resolve, reject) => {
    const socket = net.connect(socketPath);
    const got: unknown[] = [];
    let buffered = '';
    socket.on('error', reject);
    socket.on('data', (chunk) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) got.push(JSON.parse(line));
      if (got.length === 2) {
        socket.destroy();
        resolve(got);
      }
    });
    socket.write('{"id":1,"method":"fdb.a');
    setTimeout(() => socket.write('dd","params":{"mac":"02:00:00:00:00:01","ip":"192.0.2.2"}}\n{"id":2,"method":"peer.list"}\n'), 20);
  });
  t.match(replies, [{ id: 1, ok: true }, { id: 2, ok: true, result: ['192.0.2.2'] }]);
});

t.test('an oversize line gets an error reply and the connection is closed', async (t) => {
  const { socketPath } = await startServer(t);
  const huge = `{"id":1,"method":"status","params":{"pad":"${'x'.repeat(MAX_REQUEST_LINE_BYTES)}"}}\n`;
  const { replies, closed } = await rawExchange(socketPath, huge, 99);
  t.ok(closed, 'server closed the connection');
  t.match(replies, [{ id: null, ok: false, error: { code: 'VXLAND_CONTROL_PROTOCOL', message: `request line longer than ${MAX_REQUEST_LINE_BYTES} bytes` } }]);
  t.same(await request(socketPath, 'peer.list'), ['192.0.2.2'], 'the server still answers others');
});

t.test('no daemon: VXLAND_NO_DAEMON naming the socket', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vxland-ctl-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const missing = path.join(dir, 'vxl0.sock');
  t.match(await requestError(request(missing, 'status')), { code: 'VXLAND_NO_DAEMON', message: `no vxland daemon is listening on ${missing}` });
});

t.test('a stale socket file is replaced; a live one is not', async (t) => {
  const { server, socketPath } = await startServer(t);
  t.match(await requestError(ControlServer.listen(socketPath, fakeHandler())), {
    code: 'VXLAND_ALREADY_RUNNING', message: `another vxland daemon is already listening on ${socketPath}`,
  });
  t.same(await request(socketPath, 'peer.list'), ['192.0.2.2'], 'the first server still answers');

  // Simulate a crashed daemon: a socket file nothing listens on.
  const kept = `${socketPath}.kept`;
  fs.linkSync(socketPath, kept);
  await server.close();
  fs.renameSync(kept, socketPath);
  t.match(await requestError(request(socketPath, 'status')), { code: 'VXLAND_NO_DAEMON' });
  const second = await ControlServer.listen(socketPath, fakeHandler());
  t.teardown(() => second.close());
  t.same(await request(socketPath, 'peer.list'), ['192.0.2.2']);
});

t.test('a regular file at the socket path is never removed', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vxland-ctl-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'vxl0.sock');
  fs.writeFileSync(file, 'precious');
  t.match(await requestError(ControlServer.listen(file, fakeHandler())), { code: 'VXLAND_SOCKET', message: 'is not a socket' });
  t.equal(fs.readFileSync(file, 'utf8'), 'precious');
});

t.test('monitor streams events until the client goes', async (t) => {
  const handler = fakeHandler();
  const { socketPath } = await startServer(t, handler);
  const stop = new AbortController();
  const events: unknown[] = [];
  const done = stream(socketPath, 'monitor', (e) => {
    events.push(e);
    if (events.length === 3) stop.abort();
  }, stop.signal);
  await done;
  t.equal(events.length, 3, 'three events arrived');
  t.match(events[0], { type: 'learned', mac: '02:00:00:00:00:09', vtep: '192.0.2.9' });
  for (let i = 0; i < 50 && !handler.calls.includes('monitor stopped'); i++) await new Promise((r) => setTimeout(r, 10));
  t.ok(handler.calls.includes('monitor stopped'), 'the daemon unsubscribes when the client disconnects');
  t.same(await request(socketPath, 'log.level', { level: 'debug' }), { level: 'debug', previous: 'info' });
  await t.rejects(request(socketPath, 'log.level', { level: 'loud' }), { code: 'VXLAND_BAD_ARGUMENT' });
});

t.test('many idle or slow clients cannot lock out others', async (t) => {
  const { socketPath } = await startServer(t);
  const idle: net.Socket[] = [];
  t.teardown(() => idle.forEach((s) => s.destroy()));
  for (let i = 0; i < MAX_CONTROL_CLIENTS - 1; i++) {
    const s = net.connect(socketPath);
    s.on('error', () => undefined);
    idle.push(s);
  }
  idle[0].write('{"id": 1, "method": "sta'); // a request that never ends
  await Promise.all(idle.map((s) => new Promise((r) => (s.readyState === 'open' ? r(null) : s.once('connect', r)))));
  t.same(await request(socketPath, 'peer.list'), ['192.0.2.2'], 'the last free place still gets answers');
  await new Promise((r) => setTimeout(r, 100));
  const last = net.connect(socketPath);
  last.on('error', () => undefined);
  idle.push(last);
  await new Promise((r) => last.once('connect', r));
  await new Promise((r) => setTimeout(r, 100));
  const refused = await new Promise<string>((resolve) => {
    const extra = net.connect(socketPath);
    idle.push(extra);
    let text = '';
    extra.on('error', () => undefined);
    extra.on('data', (d) => (text += d.toString()));
    extra.on('close', () => resolve(text));
  });
  t.match(JSON.parse(refused), { ok: false, error: { code: 'VXLAND_CONTROL_PROTOCOL', message: /too many control connections/ } },
    'one more than MAX_CONTROL_CLIENTS is told why and closed');
  idle.splice(0, 10).forEach((s) => s.destroy());
  await new Promise((r) => setTimeout(r, 50));
  t.same(await request(socketPath, 'peer.list'), ['192.0.2.2'], 'answers again once clients leave');
});

t.test('only root, or the configured group, may use the socket', { skip: process.getuid?.() !== 0 ? 'needs root to switch users' : false }, async (t) => {
  const asNobody = (socketPath: string, groups: string) =>
    new Promise<{ code: number | null; stderr: string }>((resolve) => {
      execFile('setpriv', ['--reuid=65534', '--regid=65534', `--groups=${groups}`, process.execPath, CLI, 'peer', 'list', '--socket', socketPath],
        { timeout: 10_000 }, (err, _stdout, stderr) => resolve({ code: err === null ? 0 : (err.code as number), stderr }));
    });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vxland-perm-'));
  fs.chmodSync(dir, 0o755);
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

  const rootOnly = await ControlServer.listen(path.join(dir, 'root.sock'), fakeHandler());
  t.teardown(() => rootOnly.close());
  t.equal(fs.statSync(rootOnly.path).mode & 0o777, 0o600);
  const denied = await asNobody(rootOnly.path, '65534');
  t.equal(denied.code, 1);
  t.match(denied.stderr, /^vxland: permission denied opening .*root\.sock/);

  const grouped = await ControlServer.listen(path.join(dir, 'group.sock'), fakeHandler(), undefined, { gid: 1 });
  t.teardown(() => grouped.close());
  const st = fs.statSync(grouped.path);
  t.same([st.mode & 0o777, st.gid], [0o660, 1], 'mode 0660, owned by the group');
  t.equal((await asNobody(grouped.path, '1')).code, 0, 'a member of the group may');
  t.equal((await asNobody(grouped.path, '65534')).code, 1, 'others may not');
});
