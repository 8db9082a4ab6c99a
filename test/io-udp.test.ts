// UdpBind on loopback: delivery both ways, send completion, bind errors,
// literal-only addressing, close semantics, per-flow source ports.
import * as dgram from 'node:dgram';
import * as os from 'node:os';
import t from 'tap';

import { VxlandError } from '../src/errors';
import { loadAddon } from '../src/io/addon';
import { UdpBind } from '../src/io/udp';
import { SRC_PORT_SOCKETS } from '../src/tables/limits.generated';
import { eventually } from './helpers/eventually';

const RECEIVE_TIMEOUT_MS = 3000;

interface Received { msg: Buffer; address: string; port: number }

/** Starts bind and collects datagrams (copied: msg is valid only in the callback). */
function collect(bind: UdpBind): { got: Received[]; fatal: Error[]; next: (n: number) => Promise<Received[]> } {
  const got: Received[] = [];
  const fatal: Error[] = [];
  let wake: (() => void) | null = null;
  bind.start(
    (msg, address, port) => {
      got.push({ msg: Buffer.from(msg), address, port });
      wake?.();
    },
    (err) => fatal.push(err),
  );
  const next = (n: number): Promise<Received[]> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${got.length}/${n} datagrams in ${RECEIVE_TIMEOUT_MS} ms`)), RECEIVE_TIMEOUT_MS);
      const check = (): void => {
        if (got.length >= n) { clearTimeout(timer); wake = null; resolve(got.slice(0, n)); }
      };
      wake = check;
      check();
    });
  return { got, fatal, next };
}

function sendP(bind: UdpBind, buf: Buffer, length: number, address: string, port: number): Promise<Error | null> {
  return new Promise((resolve) => bind.send(buf, length, address, port, (err) => resolve(err)));
}

function hasIpv6Loopback(): boolean {
  return Object.values(os.networkInterfaces()).some((list) => list?.some((a) => a.family === 'IPv6' && a.address === '::1'));
}

t.test('two binds on 127.0.0.1 exchange datagrams', async (t) => {
  const a = await UdpBind.open({ port: 0, address: '127.0.0.1', family: 'udp4' });
  const b = await UdpBind.open({ port: 0, address: '127.0.0.1', family: 'udp4' });
  t.teardown(() => Promise.all([a.close(), b.close()]));
  t.ok(a.port > 0 && b.port > 0 && a.port !== b.port, `bound ports ${a.port}, ${b.port}`);
  t.equal(a.address, '127.0.0.1');
  const rb = collect(b);
  const ra = collect(a);

  const payload = Buffer.alloc(1000);
  for (let i = 0; i < payload.length; i++) payload[i] = i & 0xff;
  const err = await sendP(a, payload, 600, '127.0.0.1', b.port);
  t.equal(err, null, 'done(null) on success');
  const [m] = await rb.next(1);
  t.equal(m.msg.length, 600, 'only buffer[0, length) is sent');
  t.ok(m.msg.equals(payload.subarray(0, 600)), 'bytes intact');
  t.equal(m.address, '127.0.0.1');
  t.equal(m.port, a.port, 'source port is the bound port');

  const burst = 50;
  const dones = await Promise.all(Array.from({ length: burst }, (_, i) => sendP(b, Buffer.from(`dgram-${i}`), `dgram-${i}`.length, '127.0.0.1', a.port)));
  t.ok(dones.every((e) => e === null), `${burst} sends completed without error`);
  const all = await ra.next(burst);
  t.same(new Set(all.map((r) => r.msg.toString())), new Set(Array.from({ length: burst }, (_, i) => `dgram-${i}`)));
  t.same(rb.fatal, []);
  t.same(ra.fatal, []);
});

t.test('socket buffers are enlarged', async (t) => {
  const a = await UdpBind.open({ port: 0, address: '127.0.0.1', family: 'udp4' });
  t.teardown(() => a.close());
  const plain = dgram.createSocket('udp4');
  await new Promise<void>((r) => plain.bind(0, '127.0.0.1', () => r()));
  t.teardown(() => plain.close());
  const sizes = a.socketBufferBytes();
  t.ok(sizes.recv > plain.getRecvBufferSize(), `rcvbuf ${sizes.recv} > default ${plain.getRecvBufferSize()}`);
  t.ok(sizes.send > plain.getSendBufferSize(), `sndbuf ${sizes.send} > default ${plain.getSendBufferSize()}`);
});

t.test('bind errors become VXLAND_SOCKET with errno and syscall', async (t) => {
  const a = await UdpBind.open({ port: 0, address: '127.0.0.1', family: 'udp4' });
  t.teardown(() => a.close());
  const err = await UdpBind.open({ port: a.port, address: '127.0.0.1', family: 'udp4' }).then(
    () => null,
    (e: unknown) => e,
  );
  t.ok(err instanceof VxlandError, 'VxlandError');
  const ve = err as VxlandError;
  t.equal(ve.code, 'VXLAND_SOCKET');
  t.equal(ve.errno, 98, 'EADDRINUSE errno (positive)');
  t.equal(ve.syscall, 'bind');
  t.match(ve.message, /EADDRINUSE/);
  t.match(ve.message, new RegExp(`127\\.0\\.0\\.1:${a.port}`));

  const notLocal = await UdpBind.open({ port: 0, address: '192.0.2.1', family: 'udp4' }).then(() => null, (e: unknown) => e);
  t.match(notLocal, { code: 'VXLAND_SOCKET', errno: 99, syscall: 'bind' }, 'EADDRNOTAVAIL for a non-local address');
});

t.test('argument validation: literals only, no DNS', async (t) => {
  await t.rejects(UdpBind.open({ port: 0, address: 'localhost', family: 'udp4' }), { code: 'VXLAND_BAD_ARGUMENT' });
  await t.rejects(UdpBind.open({ port: 0, address: '::1', family: 'udp4' }), { code: 'VXLAND_BAD_ARGUMENT' });
  await t.rejects(UdpBind.open({ port: 70000, family: 'udp4' }), { code: 'VXLAND_BAD_ARGUMENT' });
  await t.rejects(UdpBind.open({ port: 0, family: 'tcp' as 'udp4' }), { code: 'VXLAND_BAD_ARGUMENT' });

  const a = await UdpBind.open({ port: 0, address: '127.0.0.1', family: 'udp4' });
  t.teardown(() => a.close());
  const e1 = await sendP(a, Buffer.from('x'), 1, 'localhost', 9);
  t.match(e1, { code: 'EINVAL' }, 'hostname refused in send without a lookup');
  const e2 = await sendP(a, Buffer.from('x'), 1, '::1', 9);
  t.ok(e2 instanceof Error, 'wrong-family literal refused in send');
});

t.test('close is idempotent; send after close reports through done', async (t) => {
  const a = await UdpBind.open({ port: 0, address: '127.0.0.1', family: 'udp4' });
  const port = a.port;
  const p1 = a.close();
  const p2 = a.close();
  t.equal(p1, p2, 'same promise');
  await p1;
  const err = await sendP(a, Buffer.from('x'), 1, '127.0.0.1', 9);
  t.ok(err instanceof Error, `send after close: ${(err as Error | null)?.message}`);
  const again = await UdpBind.open({ port, address: '127.0.0.1', family: 'udp4' });
  t.equal(again.port, port, 'port is free again after close');
  await again.close();
});

t.test('start twice throws', async (t) => {
  const a = await UdpBind.open({ port: 0, address: '127.0.0.1', family: 'udp4' });
  t.teardown(() => a.close());
  a.start(() => {}, () => {});
  t.throws(() => a.start(() => {}, () => {}), { code: 'VXLAND_INTERNAL' });
});

t.test('udp6 on ::1, v6-only so udp4 can share the port', { skip: hasIpv6Loopback() ? false : 'no ::1 on this host' }, async (t) => {
  const a = await UdpBind.open({ port: 0, address: '::1', family: 'udp6' });
  const b = await UdpBind.open({ port: 0, family: 'udp6' });
  const v4 = await UdpBind.open({ port: b.port, family: 'udp4' });
  t.teardown(() => Promise.all([a.close(), b.close(), v4.close()]));
  t.equal(v4.port, b.port, 'udp4 shares the udp6 port (ipv6Only)');
  const rb = collect(b);
  const err = await sendP(a, Buffer.from('hello6'), 6, '::1', b.port);
  t.equal(err, null);
  const [m] = await rb.next(1);
  t.equal(m.msg.toString(), 'hello6');
  t.equal(m.address, '::1');
  t.equal(m.port, a.port);
});

t.test('sends go through a connected socket per destination, and ICMP errors reach onPeerError', async (t) => {
  const a = await UdpBind.open({ port: 0, address: '127.0.0.1', family: 'udp4' });
  const b = await UdpBind.open({ port: 0, address: '127.0.0.1', family: 'udp4' });
  t.teardown(async () => { await a.close(); await b.close(); });
  const peerErrors: Array<{ address: string; code: string | undefined }> = [];
  a.start(() => undefined, () => undefined, (address, err) => peerErrors.push({ address, code: (err as NodeJS.ErrnoException).code }));
  const rx = collect(b);

  let sent = 0;
  const sendNext = async (): Promise<Received> => {
    const msg = Buffer.from(`m${sent++}`);
    const err = await sendP(a, msg, msg.length, '127.0.0.1', b.port);
    if (err !== null) throw err;
    return (await rx.next(sent))[sent - 1];
  };
  // The first sends leave through the bound socket while the connected one
  // comes up; from then on, through that one.
  const first = await eventually(sendNext, { until: (g) => g.port !== a.port, timeoutMs: 3_000, what: 'a datagram from a connected socket' });
  for (let i = 0; i < 5; i++) await sendNext();
  const got = await rx.next(sent);
  t.same(got.map((g) => g.msg.toString()), Array.from({ length: sent }, (_, i) => `m${i}`), `every datagram arrives, in order (${sent})`);
  t.ok(got.every((g) => g.address === '127.0.0.1'), 'from the bound address');
  t.same(got.slice(-6).map((g) => g.port), Array(6).fill(first.port), 'once connected, from a port of its own (like the kernel vxlan), and it stays');

  // A port nobody listens on: the kernel answers ICMP port unreachable.
  const closed = dgram.createSocket('udp4');
  await new Promise<void>((r) => closed.bind(0, '127.0.0.2', () => r()));
  const deadPort = closed.address().port;
  await new Promise<void>((r) => closed.close(() => r()));
  // Until its connected socket is up, a send to it hears no ICMP error.
  await eventually(async () => {
    await sendP(a, Buffer.from('x'), 1, '127.0.0.2', deadPort);
    return peerErrors.length;
  }, { until: (n) => n > 0, timeoutMs: 3_000, intervalMs: 50, what: 'an ICMP error reported for the dead port' });
  t.pass(`unreachable port reported (${peerErrors.length})`);
  t.match(peerErrors[0], { address: '127.0.0.2', code: 'ECONNREFUSED' });
  t.equal(await sendP(a, Buffer.from('still'), 5, '127.0.0.1', b.port), null, 'the bind keeps working');
  t.equal((await rx.next(sent + 1))[sent].msg.toString(), 'still');
});

t.test('with a source port range: one port per flow slot, inside the range, taken ports skipped', async (t) => {
  // A range of our own pid's choosing on loopback; ports someone else holds are walked past.
  const min = 42000 + (process.pid % 50) * 100;
  const range = { min, max: min + 99 };
  const squatter = dgram.createSocket('udp4');
  const taken = loadAddon().srcPortCandidate(range.min, range.max, 1, 0);
  await new Promise<void>((resolve, reject) => {
    squatter.once('error', reject);
    squatter.bind(taken, '127.0.0.1', () => resolve());
  });
  t.teardown(() => new Promise<void>((r) => squatter.close(() => r())));
  const a = await UdpBind.open({ port: 0, address: '127.0.0.1', family: 'udp4', srcPorts: range });
  const b = await UdpBind.open({ port: 0, address: '127.0.0.1', family: 'udp4' });
  t.teardown(async () => { await a.close(); await b.close(); });
  t.equal(a.srcPorts.length, SRC_PORT_SOCKETS, `${SRC_PORT_SOCKETS} source ports bound`);
  t.ok(a.srcPorts.every((p) => p >= range.min && p <= range.max), 'all inside the range');
  t.notOk(a.srcPorts.includes(taken), `the taken port ${taken} was walked past`);
  t.equal(a.srcPortProblem, null, 'and every slot still found one');

  const peerErrors: string[] = [];
  a.start(() => undefined, () => undefined, (_address, err) => peerErrors.push(String((err as NodeJS.ErrnoException).code)));
  const rx = collect(b);
  let sent = 0;
  const sendFrom = async (flowSlot: number): Promise<Received> => {
    const msg = Buffer.from(`s${flowSlot}-${sent++}`);
    const err = await new Promise<Error | null>((resolve) => a.send(msg, msg.length, '127.0.0.1', b.port, resolve, flowSlot));
    if (err !== null) throw err;
    return (await rx.next(sent))[sent - 1];
  };
  for (const slot of [0, 5, SRC_PORT_SOCKETS - 1, SRC_PORT_SOCKETS + 5]) {
    // Unconnected first (the slot's port too), then through its connected socket: the port never changes.
    const seen = new Set<number>();
    for (let i = 0; i < 4; i++) seen.add((await sendFrom(slot)).port);
    t.same([...seen], [a.srcPorts[slot % SRC_PORT_SOCKETS]], `flow slot ${slot} always leaves from port ${a.srcPorts[slot % SRC_PORT_SOCKETS]}`);
  }

  const closed = dgram.createSocket('udp4');
  await new Promise<void>((r) => closed.bind(0, '127.0.0.2', () => r()));
  const deadPort = closed.address().port;
  await new Promise<void>((r) => closed.close(() => r()));
  await eventually(async () => {
    await new Promise<Error | null>((resolve) => a.send(Buffer.from('x'), 1, '127.0.0.2', deadPort, resolve, 3));
    return peerErrors.length;
  }, { until: (n) => n > 0, timeoutMs: 3_000, intervalMs: 50, what: 'an ICMP error for a send from a range port' });
  t.equal(peerErrors[0], 'ECONNREFUSED', 'ICMP errors for sends from the range ports still reach onPeerError');

  const none = UdpBind.open({ port: 0, address: '127.0.0.1', family: 'udp4', srcPorts: { min: taken, max: taken } });
  await t.rejects(none, { code: 'VXLAND_SOCKET', message: new RegExp(`no send socket could bind a source port in ${taken}-${taken}`) }, 'a range with no free port is refused');
  const narrow = await UdpBind.open({ port: 0, address: '127.0.0.1', family: 'udp4', srcPorts: { min: range.max - 1, max: range.max } });
  t.teardown(() => narrow.close());
  t.same([...narrow.srcPorts].sort(), [range.max - 1, range.max], 'a range narrower than the slots binds each of its ports once');
});
