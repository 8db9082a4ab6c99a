import t from 'tap';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { request, stream } from '../src/control/client.js';
import { MAX_REQUEST_LINE_BYTES, type ControlHandler, type NetworkSelector, type NetworkStatus, type PeerRow, type StatusResult } from '../src/control/protocol.js';
import { ControlServer, type ControlLimits } from '../src/control/server.js';
import { VxlandError } from '../src/errors.js';
import { openRaw, type RawClient } from './helpers/control.js';
import { eventually } from './helpers/eventually.js';

const CLI = path.resolve(__dirname, '..', 'src', 'cli.js');

const NETWORK_STATUS: NetworkStatus = {
  accept: 'peers', dev: 'vxl0', mac: '02:aa:bb:cc:dd:ee', vni: 42, mtu: 1450, addresses: [], bridge: null, origin: 'config',
  stats: { rxPackets: 1, rxBytes: 100, txPackets: 2, txBytes: 200, drops: {}, dropsTotal: 0, learnRefused: { fdbFull: 0, vtepFull: 0, rate: 0 } },
  fdb: { size: 1, learned: 0, peers: 1 },
};
const STATUS: StatusResult = {
  ...NETWORK_STATUS, port: 4789, local: null, datapath: 'dgram', offloads: [], uptimeS: 5, pid: 1,
  host: { drops: {}, dropsTotal: 0 }, networks: [NETWORK_STATUS],
};

/** How the fake records a selector: "" for none, else " [vni 43]" / " [dev x]". */
function sel(n: NetworkSelector): string {
  const parts = [n.vni !== undefined ? `vni ${n.vni}` : '', n.dev !== undefined ? `dev ${n.dev}` : ''].filter(Boolean);
  return parts.length === 0 ? '' : ` [${parts.join(' ')}]`;
}

/** An in-memory daemon: a peer list, a record of the calls it received and
 *  how many status requests it answered. */
/** peer.list's answer for configured peers. */
const peerRows = (...ips: string[]): PeerRow[] => ips.map((ip) => ({ ip, kind: 'peer' }));

function fakeHandler(): ControlHandler & { peers: string[]; calls: string[]; answered: { status: number } } {
  const peers = ['192.0.2.2'];
  const calls: string[] = [];
  const answered = { status: 0 };
  return {
    peers,
    calls,
    answered,
    status: () => {
      answered.status++;
      return STATUS;
    },
    networkList: () => [{ vni: 42, dev: 'vxl0', mac: NETWORK_STATUS.mac, mtu: 1450, peers: 1, bridge: null, origin: 'config' }],
    networkShow: (n) => {
      calls.push(`networkShow${sel(n)}`);
      return { ...NETWORK_STATUS, settings: {} };
    },
    networkAdd: async (flags) => {
      calls.push(`networkAdd ${JSON.stringify(flags)}`);
      return { vni: Number(flags.vni), dev: `vxl${String(flags.vni)}` };
    },
    networkDel: async (n) => {
      calls.push(`networkDel${sel(n)}`);
      return { vni: n.vni ?? 0, dev: n.dev ?? 'vxl0' };
    },
    peerAdd: (n, ip) => {
      calls.push(`peerAdd${sel(n)} ${ip}`);
      if (peers.includes(ip)) return { ip, changed: false };
      peers.push(ip);
      return { ip, changed: true };
    },
    peerDel: (n, ip) => {
      calls.push(`peerDel${sel(n)} ${ip}`);
      if (!peers.includes(ip)) throw new VxlandError('VXLAND_NOT_FOUND', `${ip} is not a peer of vxl0 (vni 42)`);
      peers.splice(peers.indexOf(ip), 1);
      return { ip, changed: true };
    },
    peerList: () => peerRows(...peers),
    fdbShow: () => [],
    fdbGet: (_n, mac) => {
      throw new VxlandError('VXLAND_NOT_FOUND', `no fdb entry for ${mac} on vxl0 (vni 42)`);
    },
    configShow: () => ({ networks: [] }),
    fdbAdd: async (n, mac, ip) => {
      calls.push(`fdbAdd${sel(n)} ${mac} ${ip}`);
      return { mac, ip };
    },
    fdbDel: () => {
      throw new Error('disk on fire');
    },
    neighShow: (n) => {
      calls.push(`neighShow${sel(n)}`);
      return { networks: [], entries: [] };
    },
    neighAdd: (n, ip, mac) => {
      calls.push(`neighAdd${sel(n)} ${ip} ${mac}`);
      return { vni: 42, ip, mac };
    },
    neighDel: (n, ip) => {
      calls.push(`neighDel${sel(n)} ${ip}`);
      return { vni: 42, ip };
    },
    fdbFlush: (n, learnedOnly) => {
      calls.push(`fdbFlush${sel(n)} ${learnedOnly}`);
      return { removed: 3 };
    },
    stats: () => ({ stats: NETWORK_STATUS.stats, vteps: [] }),
    logLevel: (level) => ({ level: level ?? 'info', previous: 'info' }),
    doctor: () => ({ ok: true, checks: ['mtu'], findings: [] }),
    reload: async () => {
      calls.push('reload');
      return { addedNetworks: [], removedNetworks: [], changedNetworks: [42], logLevel: null, needRestart: [], failed: [] };
    },
    monitor: (n, emit) => {
      if (n.vni === 99) throw new VxlandError('VXLAND_NETWORK_UNKNOWN', 'no network with vni 99 (networks: vni 42 (vxl0))');
      calls.push(`monitor${sel(n)}`);
      const timer = setInterval(() => emit({ time: 't', type: 'learned', vni: 42, mac: '02:00:00:00:00:09', vtep: '192.0.2.9', kind: 'learned' }), 20);
      return () => {
        calls.push('monitor stopped');
        clearInterval(timer);
      };
    },
  };
}

async function startServer(
  t: tap.Test, handler: ControlHandler = fakeHandler(), limits: Partial<ControlLimits> = {},
): Promise<{ server: ControlServer; socketPath: string }> {
  const socketPath = path.join(tempDir(t), 'run', 'vxl0.sock');
  const server = await ControlServer.listen(socketPath, handler, undefined, {}, limits);
  t.teardown(() => server.close());
  return { server, socketPath };
}

function tempDir(t: tap.Test, label = 'ctl'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `vxland-${label}-`));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
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
  t.same(await request(socketPath, 'peer.list'), peerRows('192.0.2.2', 'fd00::2'));
  t.same(await request(socketPath, 'peer.del', { ip: '192.0.2.2' }), { ip: '192.0.2.2', changed: true });
  t.same(await request(socketPath, 'fdb.show'), []);
  t.same(await request(socketPath, 'fdb.add', { mac: '02-00-00-00-00-AA', ip: '192.0.2.9' }), { mac: '02:00:00:00:00:aa', ip: '192.0.2.9' });
  t.same(await request(socketPath, 'fdb.flush', { learned: true }), { removed: 3 });
  t.same(await request(socketPath, 'fdb.flush'), { removed: 3 });
  t.same(await request(socketPath, 'reload'), { addedNetworks: [], removedNetworks: [], changedNetworks: [42], logLevel: null, needRestart: [], failed: [] });
  t.same(handler.calls, [
    'peerAdd fd00::2', 'peerAdd 192.0.2.2', 'peerDel 192.0.2.2', 'fdbAdd 02:00:00:00:00:aa 192.0.2.9', 'fdbFlush true', 'fdbFlush false', 'reload',
  ]);
});

t.test('network methods and the network selector', async (t) => {
  const handler = fakeHandler();
  const { socketPath } = await startServer(t, handler);
  t.same(await request(socketPath, 'network.list'), [{ vni: 42, dev: 'vxl0', mac: NETWORK_STATUS.mac, mtu: 1450, peers: 1, bridge: null, origin: 'config' }]);
  t.same(await request(socketPath, 'network.add', { network: { vni: '44', peer: ['192.0.2.4'], bridge: 'br0' } }), { vni: 44, dev: 'vxl44' });
  t.same(await request(socketPath, 'network.del', { vni: 44 }), { vni: 44, dev: 'vxl0' });
  await request(socketPath, 'network.show', { dev: 'vxl43' });
  await request(socketPath, 'peer.add', { vni: 43, ip: '192.0.2.5' });
  await request(socketPath, 'fdb.flush', { dev: 'vxl43', vni: 43 });
  t.same(handler.calls, [
    'networkAdd {"vni":"44","peer":["192.0.2.4"],"bridge":"br0"}', 'networkDel [vni 44]', 'networkShow [dev vxl43]', 'peerAdd [vni 43] 192.0.2.5',
    'fdbFlush [vni 43 dev vxl43] false',
  ], 'the selector reaches the handler as sent');
  const refused: Array<[string, Record<string, unknown>, string]> = [
    ['peer.list', { vni: 16777216 }, 'vni must be an integer 0..16777215 (got 16777216)'],
    ['peer.list', { vni: '42' }, 'vni must be an integer 0..16777215 (got "42")'],
    ['fdb.show', { dev: 7 }, 'dev must be an interface name (got 7)'],
    ['network.del', {}, 'say which network: --vni N or --dev NAME'],
    ['network.add', { network: { vni: '44', colour: 'red' } }, 'unknown network setting "colour"'],
    ['network.add', { network: 'vni 44' }, 'network must be an object of network settings'],
  ];
  for (const [method, params, message] of refused) {
    t.match(await requestError(request(socketPath, method, params)), { code: 'VXLAND_BAD_ARGUMENT', message }, `${method} ${JSON.stringify(params)}: ${message}`);
  }
  t.equal(handler.calls.length, 5, 'none of the refused requests reached the handler');
});

t.test('monitor with an unknown network is refused before it streams', async (t) => {
  const handler = fakeHandler();
  const { socketPath } = await startServer(t, handler);
  const err = await stream(socketPath, 'monitor', () => t.fail('no event'), undefined, { vni: 99 }).then(() => null, (e: VxlandError) => e);
  t.match(err, { code: 'VXLAND_NETWORK_UNKNOWN', message: 'no network with vni 99 (networks: vni 42 (vxl0))' });
  t.notOk(handler.calls.includes('monitor'), 'no subscription was made');
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
    // Apart in time, so that the server reads the line in two pieces: that is what is under test.
    setTimeout(() => socket.write('dd","params":{"mac":"02:00:00:00:00:01","ip":"192.0.2.2"}}\n{"id":2,"method":"peer.list"}\n'), 20);
  });
  t.match(replies, [{ id: 1, ok: true }, { id: 2, ok: true, result: peerRows('192.0.2.2') }]);
});

t.test('an oversize line gets an error reply and the connection is closed', async (t) => {
  const { socketPath } = await startServer(t);
  const huge = `{"id":1,"method":"status","params":{"pad":"${'x'.repeat(MAX_REQUEST_LINE_BYTES)}"}}\n`;
  const { replies, closed } = await rawExchange(socketPath, huge, 99);
  t.ok(closed, 'server closed the connection');
  t.match(replies, [{ id: null, ok: false, error: { code: 'VXLAND_CONTROL_PROTOCOL', message: `request line longer than ${MAX_REQUEST_LINE_BYTES} bytes` } }]);
  t.same(await request(socketPath, 'peer.list'), peerRows('192.0.2.2'), 'the server still answers others');
});

t.test('no daemon: VXLAND_NO_DAEMON naming the socket', async (t) => {
  const missing = path.join(tempDir(t), 'vxl0.sock');
  t.match(await requestError(request(missing, 'status')), { code: 'VXLAND_NO_DAEMON', message: `no vxland daemon is listening on ${missing}` });
});

t.test('a stale socket file is replaced; a live one is not', async (t) => {
  const { server, socketPath } = await startServer(t);
  t.match(await requestError(ControlServer.listen(socketPath, fakeHandler())), {
    code: 'VXLAND_ALREADY_RUNNING', message: `another vxland daemon is already listening on ${socketPath}`,
  });
  t.same(await request(socketPath, 'peer.list'), peerRows('192.0.2.2'), 'the first server still answers');

  // Simulate a crashed daemon: a socket file nothing listens on.
  const kept = `${socketPath}.kept`;
  fs.linkSync(socketPath, kept);
  await server.close();
  fs.renameSync(kept, socketPath);
  t.match(await requestError(request(socketPath, 'status')), { code: 'VXLAND_NO_DAEMON' });
  const second = await ControlServer.listen(socketPath, fakeHandler());
  t.teardown(() => second.close());
  t.same(await request(socketPath, 'peer.list'), peerRows('192.0.2.2'));
});

t.test('a regular file at the socket path is never removed', async (t) => {
  const file = path.join(tempDir(t), 'vxl0.sock');
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
  await eventually(() => handler.calls, { until: (calls) => calls.includes('monitor stopped'), what: 'the handler\'s monitor unsubscribed' });
  t.pass('the daemon unsubscribes when the client disconnects');
  t.same(await request(socketPath, 'log.level', { level: 'debug' }), { level: 'debug', previous: 'info' });
  await t.rejects(request(socketPath, 'log.level', { level: 'loud' }), { code: 'VXLAND_BAD_ARGUMENT' });
});

t.test('a client that pipelines requests and never reads is not read from, then closed; others are still answered', async (t) => {
  const handler = fakeHandler();
  const backlog = 64 * 1024;
  const { socketPath } = await startServer(t, handler, { maxReplyBacklogBytes: backlog, replyStallTimeoutMs: 500 });
  const requests = 50_000;
  const hog = openRaw(t, socketPath);
  hog.socket.pause(); // never reads a reply
  await hog.connected;
  hog.socket.write('{"id":1,"method":"status"}\n'.repeat(requests));
  const closedAt = await Promise.race([hog.closed, new Promise<number>((r) => setTimeout(() => r(0), 10_000))]);
  t.ok(closedAt > 0, 'the server closes a connection whose replies stay unread');
  // In flight at most: the backlog, plus what the kernel holds for the
  // unread socket (bounded by its send buffer), in whole replies.
  const replyBytes = JSON.stringify({ id: 1, ok: true, result: STATUS }).length + 1;
  const sendBuffer = Number(fs.readFileSync('/proc/sys/net/core/wmem_default', 'utf8'));
  const bound = Math.ceil((2 * sendBuffer + backlog) / replyBytes);
  t.ok(handler.answered.status <= bound, `it stopped answering once replies backed up: ${handler.answered.status} of ${requests} answered (bound ${bound})`);
  t.same(await request(socketPath, 'peer.list'), peerRows('192.0.2.2'), 'the server still answers others');
});

t.test('a request line must be complete in time; more bytes or blank lines do not buy time', async (t) => {
  const lineMs = 300;
  const idleMs = 600;
  const { socketPath } = await startServer(t, fakeHandler(), { requestLineTimeoutMs: lineMs, idleTimeoutMs: idleMs });
  const TICK_MS = 50;
  const MAX_TICKS = 100;
  const drip = (client: RawClient, next: (i: number) => string): void => {
    let i = 0;
    const timer = setInterval(() => {
      if (i >= MAX_TICKS || client.socket.destroyed) return clearInterval(timer);
      client.socket.write(next(i++));
    }, TICK_MS);
    client.socket.once('close', () => clearInterval(timer));
    t.teardown(() => clearInterval(timer));
  };

  const request_ = '{"id":1,"method":"status"}';
  const slow = openRaw(t, socketPath);
  const blank = openRaw(t, socketPath);
  const steady = openRaw(t, socketPath);
  const monitor = openRaw(t, socketPath);
  monitor.socket.write('{"id":1,"method":"monitor"}\n');
  await Promise.all([slow.connected, blank.connected, steady.connected, monitor.connected]);
  const start = Date.now();
  drip(slow, (i) => request_[i % request_.length]); // one byte a tick, never a newline
  drip(blank, () => '\n');
  drip(steady, (i) => (i % 2 === 0 ? `{"id":${i},"method":"status"}\n` : '')); // a whole request every other tick

  const slowClosed = await slow.closed;
  t.ok(slowClosed - start >= lineMs - 20 && slowClosed - start < lineMs + 1500, `the dribbling client is cut after ${slowClosed - start} ms`);
  t.match(JSON.parse(slow.received()), { id: null, ok: false, error: { code: 'VXLAND_CONTROL_PROTOCOL', message: `request line not complete within ${lineMs} ms` } });
  const blankClosed = await blank.closed;
  t.ok(blankClosed - start >= idleMs - 20 && blankClosed - start < idleMs + 1500, `the blank-line client is cut after ${blankClosed - start} ms`);
  t.match(JSON.parse(blank.received()), { ok: false, error: { message: `no request completed within ${idleMs} ms` } });

  // Time passing is what is under test: the steady client stays connected
  // for longer than both deadlines.
  await new Promise((r) => setTimeout(r, Math.max(0, start + 2 * idleMs - Date.now())));
  t.notOk(steady.socket.destroyed, 'a client that completes requests is never cut');
  t.notOk(monitor.socket.destroyed, 'nor is a stream');
  const answers = steady.received().trim().split('\n').map((l) => JSON.parse(l));
  t.ok(answers.length >= (2 * idleMs) / (2 * TICK_MS) - 2 && answers.every((a) => a.ok === true), `it got ${answers.length} answers`);
});

t.test('past the cap a newcomer is served, and the connection that made the least progress is closed at once', async (t) => {
  const maxClients = 4;
  const { socketPath } = await startServer(t, fakeHandler(), { maxClients });
  const monitor = openRaw(t, socketPath);
  monitor.socket.write('{"id":1,"method":"monitor"}\n');
  await eventually(() => monitor.received(), { until: (text) => text.includes('"streaming":true'), what: 'the monitor answer' });
  t.pass('the oldest connection is a stream');
  const idleA = openRaw(t, socketPath);
  await idleA.connected;
  const idleB = openRaw(t, socketPath);
  await idleB.connected;
  const busy = openRaw(t, socketPath);
  busy.socket.write('{"id":1,"method":"status"}\n');
  await eventually(() => busy.received(), { until: (text) => text.includes('"ok":true'), what: 'the status answer' });
  t.pass('the newest has completed a request');

  t.same(await request(socketPath, 'peer.list'), peerRows('192.0.2.2'), `the ${maxClients + 1}th connection is answered`);
  await idleA.closed;
  t.match(JSON.parse(idleA.received()), {
    id: null, ok: false, error: { code: 'VXLAND_CONTROL_PROTOCOL', message: `too many control connections (at most ${maxClients}); closing the one that made the least progress` },
  }, 'the oldest connection without a completed request is told why and closed');
  t.same([monitor.socket.destroyed, idleB.socket.destroyed, busy.socket.destroyed], [false, false, false], 'the stream and the others stay');
  t.ok(monitor.received().split('\n').length > 2, 'and the stream still gets events');
});

t.test('connections the server closes release their descriptors at once, even if the client never closes', { skip: !fs.existsSync('/proc/self/fd') ? 'needs /proc' : false }, async (t) => {
  const maxClients = 4;
  const { socketPath } = await startServer(t, fakeHandler(), { maxClients });
  const openFds = (): number => fs.readdirSync('/proc/self/fd').length;
  const before = openFds();
  const extra = 40;
  const clients: RawClient[] = [];
  for (let i = 0; i < maxClients + extra; i++) {
    // allowHalfOpen: the client never closes its end, whatever the server does.
    const client = openRaw(t, socketPath, { allowHalfOpen: true });
    clients.push(client);
    await client.connected;
  }
  const told = await eventually(() => clients.filter((c) => c.received().includes('too many control connections')).length,
    { until: (n) => n >= extra, what: 'connections told they were closed' });
  t.pass(`${told} connections were told they were closed`);
  // Ours: one descriptor per client socket; the server's: at most maxClients.
  const limit = before + clients.length + maxClients + 2;
  // "At once": well before the server's last-resort flush timeout (1 s).
  const fds = await eventually(openFds, { until: (n) => n <= limit, timeoutMs: 300, what: `descriptors back to at most ${limit}` });
  t.pass(`descriptors back to at most ${limit} (${fds})`);
});

t.test('the socket has its final mode from the start, whatever the umask', async (t) => {
  for (const [umask, access, mode, gid] of [[0o000, {}, 0o600, 0], [0o077, {}, 0o600, 0], [0o000, { gid: 1 }, 0o660, 1]] as const) {
    const dir = path.join(tempDir(t), 'run', 'vxland');
    const previous = process.umask(umask);
    let server: ControlServer;
    try {
      server = await ControlServer.listen(path.join(dir, 'vxl0.sock'), fakeHandler(), undefined, access);
    } finally {
      process.umask(previous);
    }
    t.teardown(() => server.close());
    const st = fs.lstatSync(server.path);
    t.same([st.isSocket(), st.mode & 0o777, st.gid], [true, mode, gid], `umask ${umask.toString(8)}: socket mode ${mode.toString(8)}, group ${gid}`);
    t.same([fs.statSync(dir).mode & 0o777, fs.statSync(path.dirname(dir)).mode & 0o777], [0o755, 0o755], 'the directories it created are 0755');
    t.same(fs.readdirSync(dir), ['vxl0.sock'], 'nothing else is left in the directory');
  }
});

t.test('a private bind directory left by a killed daemon is removed; a fresh one is left alone', async (t) => {
  const dir = path.join(tempDir(t), 'run');
  fs.mkdirSync(dir, { mode: 0o755 });
  const leftover = path.join(dir, '.vxl-Kill9x');
  const inUse = path.join(dir, '.vxl-Live00');
  for (const d of [leftover, inUse]) fs.mkdirSync(d, { mode: 0o700 });
  fs.writeFileSync(path.join(leftover, 's'), '');
  const hourAgo = new Date(Date.now() - 3_600_000);
  fs.utimesSync(leftover, hourAgo, hourAgo);
  const server = await ControlServer.listen(path.join(dir, 'vxl0.sock'), fakeHandler());
  t.teardown(() => server.close());
  t.same(fs.readdirSync(dir).sort(), ['.vxl-Live00', 'vxl0.sock'], 'only the hour-old leftover is gone');
});

t.test('the server refuses a socket directory others could change', async (t) => {
  const cases: Array<[string, (dir: string) => string, RegExp]> = [
    ['world-writable', (dir) => (fs.chmodSync(dir, 0o777), dir), /is writable by others \(mode 0777\)/],
    ['sticky and world-writable, like /tmp', (dir) => (fs.chmodSync(dir, 0o1777), dir), /is writable by others \(mode 1777\)/],
    ['group-writable', (dir) => (fs.chmodSync(dir, 0o775), dir), /is writable by its group \(mode 0775\)/],
    ['below a world-writable directory', (dir) => (fs.chmodSync(dir, 0o777), fs.mkdirSync(path.join(dir, 'sub'), { mode: 0o755 }), path.join(dir, 'sub')), /is writable by others/],
  ];
  if (process.getuid?.() === 0) cases.push(['owned by another user', (dir) => (fs.chownSync(dir, 65534, 65534), fs.chmodSync(dir, 0o755), dir), /is owned by uid 65534, not by root/]);
  for (const [label, prepare, why] of cases) {
    const top = tempDir(t);
    const dir = prepare(top);
    const err = await requestError(ControlServer.listen(path.join(dir, 'vxl0.sock'), fakeHandler()));
    t.match(err, { code: 'VXLAND_PERMISSION', message: `refusing to put the control socket in ${dir}: ${top}` }, label);
    t.match(err.message, why, `${label}: says why`);
    t.same(fs.readdirSync(dir), [], `${label}: nothing was created`);
  }
});

t.test('a socket path too long to bind is refused, not truncated', async (t) => {
  const top = tempDir(t);
  const dir = path.join(top, 'd'.repeat(100 - top.length));
  const err = await requestError(ControlServer.listen(path.join(dir, 's'), fakeHandler()));
  t.match(err, { code: 'VXLAND_SOCKET', message: /^control socket path .* is too long \(at most 107 bytes, and 93 for its directory\)$/ });
  t.same(fs.readdirSync(dir), [], 'nothing was bound in the directory');
});

t.test('a symlink at the socket path is never followed', async (t) => {
  const secret = path.join(tempDir(t), 'secret');
  fs.writeFileSync(secret, 'root only', { mode: 0o600 });
  const link = path.join(tempDir(t), 'vxl0.sock');
  fs.symlinkSync(secret, link);
  t.match(await requestError(ControlServer.listen(link, fakeHandler(), undefined, { gid: 1 })), {
    code: 'VXLAND_SOCKET', message: `${link} exists and is not a socket; refusing to replace it`,
  });
  const st = fs.statSync(secret);
  t.same([st.mode & 0o7777, st.uid, st.gid, fs.readFileSync(secret, 'utf8')], [0o600, process.getuid?.(), process.getgid?.(), 'root only'],
    'the file it points to keeps its mode, owner and content');
  t.ok(fs.lstatSync(link).isSymbolicLink(), 'the link is left alone');
});

t.test('the client trusts only a socket that root or the user itself could have put there', async (t) => {
  const { server, socketPath } = await startServer(t);
  const dir = path.dirname(socketPath);
  fs.chmodSync(dir, 0o777);
  t.match(await requestError(request(socketPath, 'status')), {
    code: 'VXLAND_PERMISSION', message: `refusing to trust control socket ${socketPath}: ${dir} is writable by others (mode 0777)`,
  }, 'not in a directory others can write');
  fs.chmodSync(dir, 0o755);
  t.same(await request(socketPath, 'peer.list'), peerRows('192.0.2.2'), 'trusted again once the directory is private');

  const link = path.join(tempDir(t), 'link.sock');
  fs.symlinkSync(server.path, link);
  t.match(await requestError(request(link, 'status')), { code: 'VXLAND_PERMISSION', message: `${link} is a symbolic link` }, 'not through a symlink');

  if (process.getuid?.() === 0) {
    fs.lchownSync(server.path, 65534, 65534);
    t.match(await requestError(request(socketPath, 'status')), {
      code: 'VXLAND_PERMISSION', message: `refusing to trust control socket ${socketPath}: ${server.path} is owned by uid 65534, not by root`,
    }, 'not a socket owned by another user');
  }
});

/** A fake daemon run by nobody on socketPath: it answers every request line
 *  as the daemon would, "changed": true. Resolves once it listens. */
async function fakeDaemonAsNobody(t: tap.Test, socketPath: string): Promise<void> {
  const fake = `const net = require('node:net');
    net.createServer((s) => s.on('data', () => s.write(JSON.stringify({ id: 1, ok: true, result: { ip: '192.0.2.5', changed: true } }) + '\\n')))
      .listen(process.argv[1], () => console.log('listening'));
    setTimeout(() => process.exit(0), 20000);`;
  // Not tap's NODE_OPTIONS: its hooks write where nobody may not.
  const child = execFile('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', fake, socketPath],
    { env: { PATH: process.env.PATH } });
  t.teardown(() => child.kill());
  await new Promise((resolve) => child.stdout!.once('data', resolve));
}

/** `vxland peer add 192.0.2.5 --socket socketPath` as root. */
function rootCliPeerAdd(socketPath: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, 'peer', 'add', '192.0.2.5', '--socket', socketPath], { timeout: 10_000 },
      (err, stdout, stderr) => resolve({ code: err === null ? 0 : (err.code as number), stdout, stderr }));
  });
}

t.test('root\'s CLI does not believe a fake daemon run by an unprivileged user', { skip: process.getuid?.() !== 0 ? 'needs root to switch users' : false }, async (t) => {
  const setups: Array<[string, (dir: string) => void]> = [
    ['a directory the user owns', (dir) => (fs.chownSync(dir, 65534, 65534), fs.chmodSync(dir, 0o755))],
    ['a world-writable directory', (dir) => fs.chmodSync(dir, 0o777)],
    ['a sticky world-writable directory', (dir) => fs.chmodSync(dir, 0o1777)],
    ['a directory handed to the user in a parent its group may write', (dir) => {
      fs.chmodSync(path.dirname(dir), 0o775);
      fs.chownSync(dir, 65534, 65534);
      fs.chmodSync(dir, 0o755);
    }],
  ];
  for (const [label, prepare] of setups) {
    const dir = label.includes('handed') ? path.join(tempDir(t, 'fake'), 'run') : tempDir(t, 'fake');
    fs.mkdirSync(dir, { recursive: true });
    prepare(dir);
    const socketPath = path.join(dir, 'vxl0.sock');
    await fakeDaemonAsNobody(t, socketPath);
    t.equal(fs.lstatSync(socketPath).uid, 65534, `${label}: the fake socket belongs to nobody`);
    t.match((await rawExchange(socketPath, '{"id":1,"method":"peer.add","params":{"ip":"192.0.2.5"}}\n', 1)).replies, [{ ok: true }], `${label}: and it answers`);
    const cli = await rootCliPeerAdd(socketPath);
    t.equal(cli.code, 1, `${label}: the CLI fails`);
    t.equal(cli.stdout, '', `${label}: and never prints "added peer"`);
    t.match(cli.stderr, new RegExp(`^vxland: refusing to trust control socket ${socketPath}: .*\\n$`), `${label}: one line saying why`);
  }
});

t.test('root\'s CLI trusts the socket of a user root handed the directory to (systemd\'s RuntimeDirectory for User=)', { skip: process.getuid?.() !== 0 ? 'needs root to switch users' : false }, async (t) => {
  const top = tempDir(t, 'handed');
  fs.chmodSync(top, 0o755);
  const dir = path.join(top, 'run');
  fs.mkdirSync(dir, { mode: 0o755 });
  fs.chownSync(dir, 65534, 65534);
  const socketPath = path.join(dir, 'vxl0.sock');
  await fakeDaemonAsNobody(t, socketPath);
  const cli = await rootCliPeerAdd(socketPath);
  t.same([cli.code, cli.stdout], [0, 'added peer 192.0.2.5\n'], `the CLI talks to it${cli.stderr === '' ? '' : `: ${cli.stderr}`}`);
  t.match(await requestError(ControlServer.listen(path.join(dir, 'root.sock'), fakeHandler())), {
    code: 'VXLAND_PERMISSION', message: /is owned by uid 65534, not by root/,
  }, 'a root daemon still never puts its own socket in a directory someone else owns');
});

t.test('only root, or the configured group, may use the socket', { skip: process.getuid?.() !== 0 ? 'needs root to switch users' : false }, async (t) => {
  const asNobody = (socketPath: string, groups: string) =>
    new Promise<{ code: number | null; stderr: string }>((resolve) => {
      execFile('setpriv', ['--reuid=65534', '--regid=65534', `--groups=${groups}`, process.execPath, CLI, 'peer', 'list', '--socket', socketPath],
        { timeout: 10_000 }, (err, _stdout, stderr) => resolve({ code: err === null ? 0 : (err.code as number), stderr }));
    });
  const dir = tempDir(t, 'perm');
  fs.chmodSync(dir, 0o755);

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
