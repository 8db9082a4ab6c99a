// TapDevice against a real kernel TAP, inside a network namespace created
// for this test (deleted in teardown). The device lives in a child process
// (test/fixtures/tap-child.ts) started with `ip netns exec`; this file drives
// it over JSON lines and checks the kernel's view with `ip`.
import { ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import t from 'tap';

import { FRAME_HEADROOM_BYTES } from '../src/ports/io';
import { TapDevice, tapSlotBytes } from '../src/io/tap';
import { createNamespace, exec, execJson, linkStats, rootSkipReason } from './helpers/netns';

const CHILD_PATH = path.join(__dirname, 'fixtures', 'tap-child.js');
const EVENT_TIMEOUT_MS = 5000;
const TAP_MTU_BYTES = 1400;
const TAP_IPV4 = '10.77.0.1';
const TAP_IPV4_ALIAS = '10.77.1.1';
const TAP_IPV6 = 'fd00:77::1';
const NEIGHBOUR_MAC = Buffer.from('020000000002', 'hex');
const BURST_FRAMES = 16;

type Json = Record<string, any>;

/** The tap-child process: JSON events in, commands out. */
class TapChild {
  readonly events: Json[] = [];
  readonly stderr: string[] = [];
  readonly exited: Promise<number | null>;
  private waiters = new Set<() => void>();

  constructor(readonly proc: ChildProcess) {
    createInterface({ input: proc.stdout! }).on('line', (l) => {
      this.events.push(JSON.parse(l));
      this.wake();
    });
    createInterface({ input: proc.stderr! }).on('line', (l) => this.stderr.push(l));
    this.exited = new Promise((resolve) => proc.on('close', (code) => { this.wake(); resolve(code); }));
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  send(cmd: Json): void {
    this.proc.stdin!.write(JSON.stringify(cmd) + '\n');
  }

  /** All events matching pred so far. */
  all(pred: (e: Json) => boolean): Json[] {
    return this.events.filter(pred);
  }

  /** First event (past or future) matching pred; rejects after timeoutMs or
   *  when the child exits without it. */
  waitFor(pred: (e: Json) => boolean, timeoutMs = EVENT_TIMEOUT_MS): Promise<Json> {
    return this.waitUntil(() => this.events.find(pred), timeoutMs);
  }

  waitUntil<T>(find: () => T | undefined, timeoutMs = EVENT_TIMEOUT_MS): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const hit = find();
        if (hit !== undefined) { done(); resolve(hit); return; }
        if (this.proc.exitCode !== null || this.proc.signalCode !== null) {
          done();
          reject(new Error(`tap-child exited; stderr: ${this.stderr.join(' | ')}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out; events: ${this.events.map((e) => e.event).join(',')}; stderr: ${this.stderr.join(' | ')}`));
      }, timeoutMs);
      const done = (): void => { clearTimeout(timer); this.waiters.delete(check); };
      this.waiters.add(check);
      check();
    });
  }

  kill(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
  }
}

function startChild(tt: { teardown(fn: () => unknown): void }, ns: string, options: object): TapChild {
  const proc = spawn('ip', ['netns', 'exec', ns, process.execPath, CHILD_PATH, JSON.stringify(options)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const child = new TapChild(proc);
  tt.teardown(() => child.kill());
  return child;
}

function ipv4Bytes(ip: string): Buffer {
  return Buffer.from(ip.split('.').map(Number));
}

function arpFrame(op: 1 | 2, dstMac: Buffer, srcMac: Buffer, senderIp: string, targetMac: Buffer, targetIp: string): Buffer {
  return Buffer.concat([
    dstMac, srcMac, Buffer.from('0806', 'hex'),
    Buffer.from('0001080006040000', 'hex').fill(op, 7, 8),
    srcMac, ipv4Bytes(senderIp), targetMac, ipv4Bytes(targetIp),
  ]);
}

const BROADCAST_MAC = Buffer.alloc(6, 0xff);
const ZERO_MAC = Buffer.alloc(6);

interface ArpInfo { op: number; dst: string; src: string; sha: string; spa: string; tha: string; tpa: string }

function parseArp(hex: string): ArpInfo | null {
  const f = Buffer.from(hex, 'hex');
  if (f.length < 42 || f.readUInt16BE(12) !== 0x0806) return null;
  const ip = (o: number) => [...f.subarray(o, o + 4)].join('.');
  return {
    op: f.readUInt16BE(20),
    dst: f.subarray(0, 6).toString('hex'),
    src: f.subarray(6, 12).toString('hex'),
    sha: f.subarray(22, 28).toString('hex'),
    spa: ip(28),
    tha: f.subarray(32, 38).toString('hex'),
    tpa: ip(38),
  };
}

function arpFramesReceived(child: TapChild): ArpInfo[] {
  return child.all((e) => e.event === 'batch').flatMap((b) => (b.frames as string[]).map(parseArp))
    .filter((a): a is ArpInfo => a !== null);
}

t.test('argument validation (no root needed)', async (t) => {
  for (const bad of ['10.0.1.1', '10.0.1.1/33', 'fd00::1/129', 'host.example/24', '10.0.1.1/2x', '/24']) {
    t.throws(() => TapDevice.open({ name: 'vxl0', mtu: 1450, addresses: [bad] }), { code: 'VXLAND_BAD_ARGUMENT' }, `rejects ${bad}`);
  }
  for (const bad of ['', 'a'.repeat(16), 'a/b', 'vx:1', 'a b', '..']) {
    t.throws(() => TapDevice.open({ name: bad, mtu: 1450 }), { code: 'VXLAND_BAD_ARGUMENT' }, `rejects name ${JSON.stringify(bad)}`);
  }
  t.throws(() => TapDevice.open({ name: 'vxl0', mtu: 1000, addresses: ['fd00::1/64'] }), { code: 'VXLAND_BAD_ARGUMENT' },
    'IPv6 needs mtu >= 1280');
  t.throws(() => TapDevice.open({ name: 'vxl0', mtu: 67 }), { code: 'VXLAND_BAD_ARGUMENT' });
  t.throws(() => TapDevice.open({ name: 'averylongname12', mtu: 1450, addresses: ['10.0.0.1/24', '10.0.1.1/24'] }),
    { code: 'VXLAND_BAD_ARGUMENT' }, 'alias label must fit IFNAMSIZ');
  for (const hex of ['01005e000001', 'ffffffffffff', '000000000000', '0200000001']) {
    t.throws(() => TapDevice.open({ name: 'vxl0', mtu: 1450, mac: Buffer.from(hex, 'hex') }), { code: 'VXLAND_BAD_ARGUMENT', message: /mac must be 6 bytes, unicast and not zero/ }, `rejects mac ${hex}`);
  }
  const slot = tapSlotBytes(1500);
  t.ok(slot >= FRAME_HEADROOM_BYTES + 1500 + 18 && slot % 64 === 0, `slot ${slot} fits headroom + VLAN frame`);
});

const skip = rootSkipReason();
if (skip !== false) {
  process.stderr.write(`io-tap: skipping device tests: ${skip}\n`);
}

t.test('TAP device in a namespace', { skip: skip === false ? false : skip }, async (t) => {
  const ns = await createNamespace(t, 'tap', undefined, { disableIpv6: false });
  const name = 'vxt0';
  const child = startChild(t, ns, {
    name,
    mtu: TAP_MTU_BYTES,
    addresses: [`${TAP_IPV4}/24`, `${TAP_IPV4_ALIAS}/24`, `${TAP_IPV6}/64`],
  });
  const opened = await child.waitFor((e) => e.event === 'opened' || e.event === 'openError');
  t.equal(opened.event, 'opened', `opened: ${JSON.stringify(opened)}`);
  t.equal(opened.name, name);
  t.equal(opened.mtu, TAP_MTU_BYTES);
  const tapMac = Buffer.from(opened.mac, 'hex');
  t.equal(tapMac.length, 6);

  await t.test('kernel view: MTU, state, MAC, addresses', async (t) => {
    const [link] = await execJson<Json[]>(null, ['ip', '-n', ns, '-j', 'addr', 'show', 'dev', name]);
    t.equal(link.mtu, TAP_MTU_BYTES);
    t.ok((link.flags as string[]).includes('UP'), 'link is up');
    t.equal((link.address as string).replace(/:/g, ''), opened.mac, 'MAC matches SIOCGIFHWADDR');
    const addrs = (link.addr_info as Json[]).map((a) => `${a.local}/${a.prefixlen}`);
    t.ok(addrs.includes(`${TAP_IPV4}/24`), `has ${TAP_IPV4}/24 in ${addrs}`);
    t.ok(addrs.includes(`${TAP_IPV4_ALIAS}/24`), `has ${TAP_IPV4_ALIAS}/24`);
    t.ok(addrs.includes(`${TAP_IPV6}/64`), `has ${TAP_IPV6}/64`);
    const alias = (link.addr_info as Json[]).find((a) => a.local === TAP_IPV4_ALIAS);
    t.equal(alias?.label, `${name}:1`, 'second IPv4 address carries an alias label');
    const [info] = await execJson<Json[]>(null, ['ip', '-n', ns, '-d', '-j', 'link', 'show', 'dev', name]);
    t.equal(info.linkinfo?.info_kind, 'tun');
    t.equal(info.linkinfo?.info_data?.type, 'tap');
    t.equal(info.linkinfo?.info_data?.pi, false, 'IFF_NO_PI');
    t.equal(info.linkinfo?.info_data?.persist, false, 'not persistent');
  });

  await t.test('second open of the same name fails with EBUSY from TUNSETIFF', async (t) => {
    child.send({ cmd: 'reopen' });
    const r = await child.waitFor((e) => e.event === 'reopen');
    t.equal(r.name, 'VxlandError');
    t.equal(r.code, 'VXLAND_DEVICE');
    t.equal(r.errno, 16);
    t.equal(r.syscall, 'ioctl(TUNSETIFF)');
    t.match(r.message, /ioctl\(TUNSETIFF\) failed: .*\(EBUSY\) \[vxt0\]/);
  });

  await t.test('frames the kernel sends arrive in batches with headroom', async (t) => {
    const target = '10.77.0.99';
    await exec(ns, ['ping', '-n', '-c', '1', '-W', '1', target], { allowFail: true, timeoutMs: 5000 });
    const req = await child.waitUntil(() => arpFramesReceived(child).find((a) => a.op === 1 && a.tpa === target));
    t.equal(req.dst, 'ffffffffffff', 'broadcast');
    t.equal(req.src, opened.mac, 'sent from the TAP MAC');
    t.equal(req.sha, opened.mac);
    t.equal(req.spa, TAP_IPV4);
    const batch = child.all((e) => e.event === 'batch').find((b) => (b.frames as string[]).some((h) => {
      const a = parseArp(h);
      return a !== null && a.tpa === target;
    }))!;
    const i = (batch.frames as string[]).findIndex((h) => parseArp(h)?.tpa === target);
    t.equal(batch.lengths[i], 42, 'ARP request is 42 bytes (no padding on a TAP)');
    const slot = tapSlotBytes(TAP_MTU_BYTES);
    t.equal(batch.offsets[i], i * slot + FRAME_HEADROOM_BYTES, 'frame starts after 8 bytes of headroom in its slot');
    for (const b of child.all((e) => e.event === 'batch')) {
      t.ok(b.count >= 1 && b.count <= 64, `batch count ${b.count} within limit`);
      if (!b.headroomOk) t.fail(`headroom check failed: ${JSON.stringify(b.offsets)}`);
      t.equal(b.frames.length, b.count);
    }
  });

  await t.test('frames written reach the kernel (ARP requests answered, rx counted)', async (t) => {
    const before = await linkStats(ns, name);
    const senders = Array.from({ length: BURST_FRAMES }, (_, k) => `10.77.0.${10 + k}`);
    const frames = senders.map((ip) => arpFrame(1, BROADCAST_MAC, NEIGHBOUR_MAC, ip, ZERO_MAC, TAP_IPV4).toString('hex'));
    const batchesBefore = child.all((e) => e.event === 'batch').length;
    child.send({ cmd: 'write', frames });
    const wrote = await child.waitFor((e) => e.event === 'wrote');
    t.same(wrote.results, new Array(BURST_FRAMES).fill(0), 'every write returned 0');

    const replies = await child.waitUntil(() => {
      const r = arpFramesReceived(child).filter((a) => a.op === 2 && senders.includes(a.tpa));
      return new Set(r.map((a) => a.tpa)).size === BURST_FRAMES ? r : undefined;
    });
    for (const a of replies) {
      t.equal(a.dst, NEIGHBOUR_MAC.toString('hex'));
      t.equal(a.src, opened.mac);
      t.equal(a.spa, TAP_IPV4);
      t.equal(a.tha, NEIGHBOUR_MAC.toString('hex'));
    }
    const newBatches = child.all((e) => e.event === 'batch').slice(batchesBefore);
    const maxCount = Math.max(...newBatches.map((b) => b.count as number));
    t.ok(maxCount > 1, `replies queued during one write burst arrive batched (largest batch ${maxCount})`);
    t.ok(newBatches.every((b) => b.headroomOk), 'headroom free and frames intact in every batch');

    const after = await linkStats(ns, name);
    t.ok(after.rxPackets - before.rxPackets >= BURST_FRAMES, `rx packets +${after.rxPackets - before.rxPackets}`);
    const neigh = await exec(null, ['ip', '-n', ns, 'neigh', 'show', 'dev', name, senders[0]]);
    t.match(neigh.stdout, /lladdr 02:00:00:00:00:02/, 'kernel learned the writer as a neighbour');
  });

  await t.test('deleting the TAP underneath is a fatal error, reported once', async (t) => {
    await exec(null, ['ip', '-n', ns, 'link', 'del', name]);
    const fatal = await child.waitFor((e) => e.event === 'fatal');
    t.equal(fatal.name, 'VxlandError');
    t.equal(fatal.code, 'VXLAND_DEVICE');
    t.ok(typeof fatal.errno === 'number' && fatal.errno > 0, `errno ${fatal.errno}`);
    t.ok(['read', 'uv_poll'].includes(fatal.syscall), `syscall ${fatal.syscall}`);
    t.match(fatal.message, /failed: .+ \(E[A-Z]+\) \[vxt0\]/);
    child.send({ cmd: 'close' });
    const closed = await child.waitFor((e) => e.event === 'closed');
    t.equal(closed.writeAfterClose, 9, 'write after close returns EBADF');
    const code = await Promise.race([child.exited, new Promise((r) => setTimeout(() => r('hung'), EVENT_TIMEOUT_MS))]);
    t.equal(code, 0, 'child exits on its own after close()');
    // Exited: all it ever reported is in.
    t.equal(child.all((e) => e.event === 'fatal').length, 1, 'onFatal ran exactly once');
  });

  await t.test('close() removes the device and lets the process exit', async (t) => {
    const name2 = 'vxt1';
    const c2 = startChild(t, ns, { name: name2, mtu: 1500, addresses: ['10.78.0.1/24'] });
    const o2 = await c2.waitFor((e) => e.event === 'opened' || e.event === 'openError');
    t.equal(o2.event, 'opened');
    const present = await exec(null, ['ip', '-n', ns, 'link', 'show', 'dev', name2], { allowFail: true });
    t.equal(present.code, 0, 'device exists while open');
    c2.send({ cmd: 'close' });
    await c2.waitFor((e) => e.event === 'closed');
    const code = await Promise.race([c2.exited, new Promise((r) => setTimeout(() => r('hung'), EVENT_TIMEOUT_MS))]);
    t.equal(code, 0, 'child exits on its own after close()');
    const gone = await exec(null, ['ip', '-n', ns, 'link', 'show', 'dev', name2], { allowFail: true });
    t.not(gone.code, 0, 'device is gone');
  });
});

t.test('a failure half-way through open() reports the syscall and leaves no device', { skip: skip === false ? false : skip }, async (t) => {
  // IPv6 is disabled in this namespace, so adding the IPv6 address fails
  // after the TAP was created and the IPv4 address added.
  const ns = await createNamespace(t, 'tapbad', undefined, { disableIpv6: true });
  const child = startChild(t, ns, { name: 'vxt2', mtu: 1500, addresses: ['10.79.0.1/24', 'fd00:79::1/64'] });
  const ev = await child.waitFor((e) => e.event === 'opened' || e.event === 'openError');
  t.equal(ev.event, 'openError');
  t.equal(ev.name, 'VxlandError');
  t.equal(ev.code, 'VXLAND_DEVICE');
  t.equal(ev.syscall, 'ioctl(SIOCSIFADDR)');
  t.ok(ev.errno > 0, `errno ${ev.errno}`);
  t.match(ev.message, /ioctl\(SIOCSIFADDR\) failed: .+ \(E[A-Z]+\) \[vxt2 fd00:79::1\/64\]/);
  t.equal(await child.exited, 0);
  const gone = await exec(null, ['ip', '-n', ns, 'link', 'show', 'dev', 'vxt2'], { allowFail: true });
  t.not(gone.code, 0, 'the half-configured TAP is gone');
});
