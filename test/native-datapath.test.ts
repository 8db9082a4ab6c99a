// The native data path end to end, in network namespaces: two native VTEPs
// (test/fixtures/native-vtep.ts, one process per namespace) and a native VTEP
// against a Linux kernel vxlan device (skipped unless root); then the same
// engine without root, on stand-in TAPs and loopback UDP.
import fs from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';

import {
  FIXTURES_DIR,
  addKernelVxlan,
  createTopology,
  exec,
  ping,
  setOffloads,
  skipUnlessRoot,
  spawnDaemon,
  verifiedTcpTransfer,
  type Host,
  type LineProcess,
  type TapLike,
} from './helpers/netns';
import { eventually } from './helpers/eventually';
import { openNativeHost } from './helpers/native-host';
import {
  EBADFD, LOOPBACK_WAIT_MS, LOOP_A, LOOP_B, LOOP_C, LOOP_STRANGER, LoopbackPeer, STAND_IN_MAC_A, STAND_IN_MAC_B, StandInTap, frame, mac, vxlanDatagram,
} from './fakes';
import { macKeyOf } from '../src/wire/mac';
import { SRC_PORT_SOCKETS } from '../src/tables/limits.generated';

const VNI = 42;
const TRANSFER_BYTES = 50 * 1024 * 1024;
const DEV = 'vxl0';

interface Snapshot {
  stats: { rxPackets: number; rxBytes: number; txPackets: number; txBytes: number; drops: Record<string, number>; dropsTotal: number };
  detail: Record<string, number>;
  info: { offload: boolean; gso: boolean; gro: boolean; srcPorts: number[] };
  fdb: Array<{ vni: number; mac: string; vtep: string; kind: string; usedAgoMs: number }>;
}

interface Vtep { proc: LineProcess; host: Host; mac: string; overlay: string }

async function startNative(t: TapLike, host: Host, peer: string, overlay: string, extra: string[] = []): Promise<Vtep> {
  const proc = spawnDaemon(t, host.ns, [process.execPath, path.join(FIXTURES_DIR, 'native-vtep.js'),
    '--dev', DEV, '--vni', String(VNI), '--local', host.ip, '--peer', peer, '--address', `${overlay}/24`, ...extra]);
  const ready = await proc.waitForJson((j) => j.event === 'ready' || j.event === 'fatal', 10_000);
  if (ready.event !== 'ready') throw new Error(`native VTEP failed: ${JSON.stringify(ready)}`);
  return { proc, host, mac: String(ready.mac).replace(/(..)(?!$)/g, '$1:'), overlay };
}

/** Two native VTEPs in namespaces of their own (A 10.42.0.1, B 10.42.0.2),
 *  after A's first pings to B. */
async function nativePair(t: Test): Promise<{ ha: Host; hb: Host; a: Vtep; b: Vtep }> {
  const topo = await createTopology(t, { hosts: 2 });
  const [ha, hb] = topo.hosts;
  const a = await startNative(t, ha, hb.ip, '10.42.0.1');
  const b = await startNative(t, hb, ha.ip, '10.42.0.2');
  t.equal((await ping(ha.ns, b.overlay, { count: 3, intervalS: 0.05 })).received, 3, 'A pings B');
  return { ha, hb, a, b };
}

/** The names `top -H` shows for the daemon's threads. */
function threadNames(v: Vtep): string[] {
  const task = `/proc/${v.proc.proc.pid}/task`;
  return fs.readdirSync(task).map((tid) => fs.readFileSync(path.join(task, tid, 'comm'), 'utf8').trim());
}

/** Asks the fixture for its counters (SIGUSR2) and waits for the answer. */
async function snapshot(v: Vtep): Promise<Snapshot> {
  const seq = v.proc.logs.filter((j) => j.event === 'stats').length + 1;
  v.proc.proc.kill('SIGUSR2');
  return (await v.proc.waitForJson((j) => j.event === 'stats' && j.seq === seq, 5000)) as unknown as Snapshot;
}

async function csumErrors(ns: string): Promise<number> {
  const r = await exec(ns, ['nstat', '-az', 'TcpInCsumErrors']);
  const m = /TcpInCsumErrors\s+(\d+)/.exec(r.stdout);
  return m ? Number(m[1]) : 0;
}

async function transfer(t: { equal: (a: unknown, b: unknown, m: string) => unknown; comment: (m: string) => void }, from: Host, to: { ns: string; ip: string }, label: string): Promise<void> {
  const r = await verifiedTcpTransfer({ serverNs: to.ns, serverIp: to.ip, clientNs: from.ns, bytes: TRANSFER_BYTES, timeoutMs: 60_000 });
  t.equal(r.received.bytes, TRANSFER_BYTES, `${label}: all bytes arrived`);
  t.equal(r.received.sha256, r.expectedSha256, `${label}: content verified`);
  t.comment(`${label}: ${TRANSFER_BYTES} bytes in ${r.durationMs} ms`);
}

t.test('native <-> native: ping, 50 MB verified TCP both ways, counters agree', async (t) => {
  if (skipUnlessRoot(t)) return;
  const topo = await createTopology(t, { hosts: 2 });
  const [ha, hb] = topo.hosts;
  // A sends from per-flow source ports (its send sockets), B from its VXLAN port.
  const a = await startNative(t, ha, hb.ip, '10.42.0.1', ['--srcport', '40000-40999']);
  const b = await startNative(t, hb, ha.ip, '10.42.0.2');

  const ab = await ping(ha.ns, b.overlay, { count: 5, intervalS: 0.05 });
  t.equal(ab.received, 5, 'A pings B');
  const ba = await ping(hb.ns, a.overlay, { count: 5, intervalS: 0.05 });
  t.equal(ba.received, 5, 'B pings A');

  await transfer(t, ha, { ns: hb.ns, ip: b.overlay }, 'A -> B');
  await transfer(t, hb, { ns: ha.ns, ip: a.overlay }, 'B -> A');
  t.equal(await csumErrors(ha.ns), 0, 'A: no TCP checksum errors');
  t.equal(await csumErrors(hb.ns), 0, 'B: no TCP checksum errors');

  // Compare both ends' books. Each end's kernel may still send something on
  // its own (the last ACKs and FINs, ARP probes), and a count is published
  // a moment after the send: read A, B, A, B, until what one end received
  // lies between the other end's two counts of what it sent.
  const within = (lo: number, x: number, hi: number) => lo <= x && x <= hi;
  const books = await eventually(async () => {
    const a1 = await snapshot(a);
    const b1 = await snapshot(b);
    const a2 = await snapshot(a);
    const b2 = await snapshot(b);
    return { a1, b1, a2, b2 };
  }, {
    until: ({ a1, b1, a2, b2 }) => within(a1.stats.txPackets, b1.stats.rxPackets, a2.stats.txPackets)
      && within(b1.stats.txPackets, a2.stats.rxPackets, b2.stats.txPackets)
      && within(a1.stats.txBytes, b1.stats.rxBytes, a2.stats.txBytes)
      && within(b1.stats.txBytes, a2.stats.rxBytes, b2.stats.txBytes),
    timeoutMs: 5_000,
    what: 'each end\'s received counts between the other end\'s sent counts',
    describe: ({ a1, b1, a2, b2 }) => JSON.stringify({ a1: a1.stats, b1: b1.stats, a2: a2.stats, b2: b2.stats }),
  });
  const { a1, b1, a2, b2 } = books;
  const sa = a2;
  const sb = b1;
  t.ok(sa.info.offload && sb.info.offload, 'TAP offloads (TSO) are on');
  t.ok(sa.detail.txTsoFrames > 0, 'A split TSO super-frames');
  t.equal(sa.info.srcPorts.length, SRC_PORT_SOCKETS, 'A sends from its send sockets');
  t.ok(sa.detail.txGsoMessages > 0, 'and still sends the segments of a super-frame as one GSO message');
  t.ok(sa.detail.txGsoMessages * 2 <= sa.detail.txDatagrams, `most datagrams go in GSO runs (${sa.detail.txGsoMessages} messages, ${sa.detail.txDatagrams} datagrams)`);
  t.ok(sb.detail.rxCoalescedWrites > 0, 'B coalesced received segments into TSO writes');
  t.ok(sb.stats.rxBytes >= TRANSFER_BYTES && sa.stats.rxBytes >= TRANSFER_BYTES, 'each side received at least the transfer');
  t.equal(sa.stats.dropsTotal, 0, `A dropped nothing ${JSON.stringify(sa.stats.drops)}`);
  t.equal(sb.stats.dropsTotal, 0, `B dropped nothing ${JSON.stringify(sb.stats.drops)}`);
  t.ok(within(a1.stats.txPackets, b1.stats.rxPackets, a2.stats.txPackets),
    `every frame A sent, B received (A sent ${a1.stats.txPackets}..${a2.stats.txPackets}, B received ${b1.stats.rxPackets})`);
  t.ok(within(b1.stats.txPackets, a2.stats.rxPackets, b2.stats.txPackets),
    `every frame B sent, A received (B sent ${b1.stats.txPackets}..${b2.stats.txPackets}, A received ${a2.stats.rxPackets})`);
  t.ok(within(a1.stats.txBytes, b1.stats.rxBytes, a2.stats.txBytes), 'bytes A -> B agree');
  t.ok(within(b1.stats.txBytes, a2.stats.rxBytes, b2.stats.txBytes), 'bytes B -> A agree');
  t.equal(sa.detail.txDatagrams, sa.stats.txPackets, 'A sent one datagram per frame');
  const bAtA = (sa as FullSnapshot).vteps.find((v) => v.vtep === hb.ip);
  t.equal(bAtA?.rxPackets, sa.stats.rxPackets, "A's per-VTEP rx count for B is all of A's rx");
  t.equal(bAtA?.txBytes, sa.stats.txBytes, "A's per-VTEP tx bytes for B are all of A's tx");

  const learnedAtA = sa.fdb.find((e) => e.kind === 'learned' && e.mac === b.mac);
  t.equal(learnedAtA?.vtep, hb.ip, "A learned B's MAC at B's underlay address through Fdb.learn()");
  const learnedAtB = sb.fdb.find((e) => e.kind === 'learned' && e.mac === a.mac);
  t.equal(learnedAtB?.vtep, ha.ip, "B learned A's MAC");

  // USED (fdb show): the engine reports the entries it sent to. Idle for
  // longer than the report interval, then one ping: B's entry at A must
  // have been used just now, not when it was learned or last refreshed.
  const IDLE_MS = 2500;
  await new Promise((r) => setTimeout(r, IDLE_MS)); // the idle time is what is under test
  const idle = (await snapshot(a)).fdb.find((e) => e.kind === 'learned' && e.mac === b.mac);
  t.ok((idle?.usedAgoMs ?? 0) >= IDLE_MS - 500, `idle: B's entry at A not used for a while (usedAgoMs ${idle?.usedAgoMs})`);
  t.equal((await ping(ha.ns, b.overlay, { count: 1, intervalS: 0.05 })).received, 1, 'A pings B once more');
  const usedAt = (s: Snapshot) => s.fdb.find((e) => e.kind === 'learned' && e.mac === b.mac);
  // The engine reports what it used in the next pause of traffic.
  const used = usedAt(await eventually(() => snapshot(a), { until: (s) => (usedAt(s)?.usedAgoMs ?? Infinity) < 1000, timeoutMs: 3_000, what: 'B\'s entry at A reported used' }));
  t.ok(used !== undefined && used.usedAgoMs < 1000, `after the ping: B's entry at A used just now (usedAgoMs ${used?.usedAgoMs})`);
});

// One engine thread carries both directions while traffic is light; under
// load the tx work moves to a second thread and comes back when the load
// goes. Bytes must arrive intact whichever thread sends them, and across
// the hand-overs.
t.test('load moves tx work to a second thread and back; a transfer across the hand-overs stays intact', async (t) => {
  if (skipUnlessRoot(t)) return;
  const { ha, hb, a, b } = await nativePair(t);
  t.same(threadNames(a).filter((n) => n.startsWith('vxland-')).sort(), ['vxland-rx', 'vxland-tx'], 'top -H names the engine threads');
  // A busy moment of a noisy machine may hand tx over even now; with
  // traffic this light it comes back within the join window (50 ms).
  const oneThread = (s: Snapshot) => s.detail.txWorkerJoins === s.detail.txWorkerSplits;
  const s0 = await eventually(() => snapshot(a), { until: oneThread, timeoutMs: 2_000, what: 'tx work on the rx thread', describe: (s) => JSON.stringify(s.detail) });
  t.pass(`light traffic: one thread carries both directions (${s0.detail.txWorkerSplits} hand-overs so far)`);

  const IPERF_SECONDS = 2;
  // --forceflush: without it iperf3 holds its lines back when stdout is a pipe.
  const server = spawnDaemon(t, hb.ns, ['iperf3', '-s', '-1', '-B', b.overlay, '-p', '5201', '--forceflush']);
  await server.waitForLine('Server listening', 5_000);
  const verified = verifiedTcpTransfer({ serverNs: hb.ns, serverIp: b.overlay, clientNs: ha.ns, bytes: 2 * TRANSFER_BYTES, timeoutMs: 60_000, seed: 7 });
  const iperf = await exec(ha.ns, ['iperf3', '-c', b.overlay, '-p', '5201', '-t', String(IPERF_SECONDS), '-J'], { timeoutMs: 30_000 });
  const r = await verified;
  await Promise.race([server.exited, new Promise((r2) => setTimeout(r2, 5000))]);
  const gbps = (JSON.parse(iperf.stdout).end.sum_received.bits_per_second as number) / 1e9;
  t.comment(`iperf3 ${gbps.toFixed(2)} Gbit/s for ${IPERF_SECONDS} s alongside a verified transfer of ${r.received.bytes} bytes in ${r.durationMs} ms`);
  t.equal(r.received.sha256, r.expectedSha256, 'the verified transfer arrived intact');
  const busy = await snapshot(a);
  t.ok(busy.detail.txWorkerSplits > s0.detail.txWorkerSplits, `under load A moved its tx work to a second thread (${busy.detail.txWorkerSplits - s0.detail.txWorkerSplits} times)`);

  await eventually(() => snapshot(a), { until: oneThread, timeoutMs: 2_000, what: 'tx work back on the rx thread', describe: (s) => JSON.stringify(s.detail) });
  t.pass('quiet again: one thread carries both directions');
  t.equal((await ping(ha.ns, b.overlay, { count: 3, intervalS: 0.05 })).received, 3, 'and A still pings B');
  const after = await verifiedTcpTransfer({ serverNs: hb.ns, serverIp: b.overlay, clientNs: ha.ns, bytes: TRANSFER_BYTES, timeoutMs: 60_000, seed: 8 });
  t.equal(after.received.sha256, after.expectedSha256, 'a transfer after the hand-back arrives intact');
});

// An isolated packet (it ended a long sleep) makes the rx thread poll on
// for a moment instead of sleeping: the answer to a ping then arrives while
// it polls, and costs no wake-up. A stream's packets come closer together
// than that sleep, so a bulk transfer does not busy-poll between them.
t.test('busy polling: the reply to an isolated ping is caught without a wake-up; a stream does not busy-poll', async (t) => {
  if (skipUnlessRoot(t)) return;
  const { ha, hb, a, b } = await nativePair(t);
  // Each probe is one ping after a pause: a reply slower than the poll
  // window (a busy moment of the machine) is only a miss, so the probe
  // repeats until one is caught.
  const caught = await eventually(async () => {
    await ping(ha.ns, b.overlay, { count: 1 });
    return snapshot(a);
  }, { until: (s) => s.detail.rxBusyPollHits > 0, timeoutMs: 30_000, intervalMs: 50, what: "a reply caught by A's busy poll", describe: (s) => JSON.stringify(s.detail) });
  t.ok(caught.detail.rxBusyPolls >= caught.detail.rxBusyPollHits,
    `A caught ${caught.detail.rxBusyPollHits} of ${caught.detail.rxBusyPolls} replies while busy polling`);

  const before = await snapshot(b);
  const r = await verifiedTcpTransfer({ serverNs: hb.ns, serverIp: b.overlay, clientNs: ha.ns, bytes: TRANSFER_BYTES, timeoutMs: 60_000, seed: 9 });
  t.equal(r.received.sha256, r.expectedSha256, 'a transfer arrives intact');
  const after = await snapshot(b);
  const datagrams = after.detail.rxDatagrams - before.detail.rxDatagrams;
  const polls = after.detail.rxBusyPolls - before.detail.rxBusyPolls;
  t.ok(polls * 100 < datagrams, `B busy-polled ${polls} times while receiving ${datagrams} datagrams`);
});

t.test('native <-> kernel vxlan: ping, 50 MB verified TCP both ways, kernel sees valid checksums', async (t) => {
  if (skipUnlessRoot(t)) return;
  const topo = await createTopology(t, { hosts: 2 });
  const [ha, hb] = topo.hosts;
  // Over veth the kernel leaves inner checksums to a NIC that never comes;
  // let its stack finish them (a physical NIC would).
  await setOffloads(hb.ns, hb.dev, { tx: 'off' });
  await addKernelVxlan(hb, { vni: VNI, remotes: [ha.ip], address: '10.42.0.2/24' });
  const a = await startNative(t, ha, hb.ip, '10.42.0.1');

  t.equal((await ping(ha.ns, '10.42.0.2', { count: 5, intervalS: 0.05 })).received, 5, 'native pings kernel');
  t.equal((await ping(hb.ns, a.overlay, { count: 5, intervalS: 0.05 })).received, 5, 'kernel pings native');
  await transfer(t, ha, { ns: hb.ns, ip: '10.42.0.2' }, 'native -> kernel');
  await transfer(t, hb, { ns: ha.ns, ip: a.overlay }, 'kernel -> native');
  t.equal(await csumErrors(hb.ns), 0, 'kernel side: TcpInCsumErrors stays 0');
  t.equal(await csumErrors(ha.ns), 0, 'native side: TcpInCsumErrors stays 0');
  const sa = await snapshot(a);
  t.equal(sa.stats.dropsTotal, 0, `native dropped nothing ${JSON.stringify(sa.stats.drops)}`);
  t.ok(sa.stats.txBytes >= TRANSFER_BYTES && sa.stats.rxBytes >= TRANSFER_BYTES, 'counters cover both transfers');
});

// UDP in the overlay, checked by a Python peer on each side (python3 is on
// every machine CI runs on; Node's dgram cannot send with UDP_SEGMENT).
// Datagram seq carries its number in 4 bytes and then bytes derived from it,
// so the receiver can tell each one intact, duplicated or out of order.
const UDP_PEER_PY = String.raw`
import json, select, socket, struct, sys, time
def body(seq, n):
    return seq.to_bytes(4, 'big') + bytes((seq * 31 + i) & 0xff for i in range(n - 4))
mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_INET6 if ':' in host else socket.AF_INET, socket.SOCK_DGRAM)
if mode == 'recv':
    expect = int(sys.argv[4])
    s.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)  # SO_RCVBUFFORCE: a burst must not overflow it
    s.bind((host, port))
    print(json.dumps({'event': 'ready'}), flush=True)
    seen, bad, reordered, last = set(), 0, 0, -1
    deadline = time.time() + 20
    while len(seen) < expect and time.time() < deadline:
        if not select.select([s], [], [], 2.0 if seen else 0.5)[0]:
            if seen: break  # quiet for 2 s after traffic: whatever was lost stays lost
            continue
        d = s.recv(65535)
        seq = int.from_bytes(d[:4], 'big')
        if len(d) < 4 or d != body(seq, len(d)) or seq in seen: bad += 1; continue
        if seq < last: reordered += 1
        seen.add(seq); last = seq
    print(json.dumps({'event': 'done', 'received': len(seen), 'bad': bad, 'reordered': reordered}), flush=True)
elif mode == 'plain':  # count datagrams of 64..1363 bytes, in bursts of 50
    count = int(sys.argv[4])
    for seq in range(count):
        s.sendto(body(seq, 64 + (seq * 37) % 1300), (host, port))
        if seq % 50 == 49: time.sleep(0.002)
    print(json.dumps({'event': 'done', 'sent': count}), flush=True)
else:  # gso: sends sends of per datagrams of size bytes each, with UDP_SEGMENT (the last of each shorter)
    sends, per, size = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
    s.connect((host, port))
    seq = 0
    for _ in range(sends):
        buf = b''.join(body(seq + k, size if k < per - 1 else size // 2) for k in range(per))
        s.sendmsg([buf], [(socket.IPPROTO_UDP, 103, struct.pack('=H', size))])  # UDP_SEGMENT
        seq += per
        time.sleep(0.002)
    print(json.dumps({'event': 'done', 'sent': seq}), flush=True)
`;

async function udpThrough(t: Test, from: Host, to: { ns: string; ip: string }, port: number, send: string[], expect: number): Promise<{ received: number; bad: number; reordered: number }> {
  const recv = spawnDaemon(t, to.ns, ['python3', '-c', UDP_PEER_PY, 'recv', to.ip, String(port), String(expect)]);
  await recv.waitForJson((j) => j.event === 'ready', 10_000);
  const sender = spawnDaemon(t, from.ns, ['python3', '-c', UDP_PEER_PY, send[0], to.ip, String(port), ...send.slice(1)]);
  await sender.waitForJson((j) => j.event === 'done', 30_000);
  const done = await recv.waitForJson((j) => j.event === 'done', 30_000);
  return { received: Number(done.received), bad: Number(done.bad), reordered: Number(done.reordered) };
}

/** Plain datagrams (64-1363 bytes), then UDP_SEGMENT sends, from A to dst
 *  on B (ports port and port + 1): every one intact and in order, the sends
 *  cut by A (txTsoFrames) and coalesced by B (rxCoalescedWrites) on a TAP
 *  with USO (Linux 6.2+), nothing dropped. */
async function udpAcross(t: Test, p: { ha: Host; hb: Host; a: Vtep; b: Vtep }, dst: string, port: number, plainCount: number): Promise<void> {
  const plain = await udpThrough(t, p.ha, { ns: p.hb.ns, ip: dst }, port, ['plain', String(plainCount)], plainCount);
  t.same({ bad: plain.bad, reordered: plain.reordered }, { bad: 0, reordered: 0 }, `${plain.received} of ${plainCount} datagrams of 64-1363 bytes to ${dst}: none altered, duplicated or reordered`);
  t.ok(plain.received >= plainCount * 0.95, `at least 95 % arrived (${plain.received})`);

  const before = { a: await snapshot(p.a), b: await snapshot(p.b) };
  const SENDS = 20;
  const PER = 16;
  const gso = await udpThrough(t, p.ha, { ns: p.hb.ns, ip: dst }, port + 1, ['gso', String(SENDS), String(PER), '1000'], SENDS * PER);
  t.same(gso, { received: SENDS * PER, bad: 0, reordered: 0 }, `all ${SENDS * PER} datagrams of ${SENDS} UDP_SEGMENT sends arrived intact and in order`);
  const after = { a: await snapshot(p.a), b: await snapshot(p.b) };
  // TAPs with USO (TUN_F_USO4/6): A reads each send as one super-frame,
  // B's kernel gets the datagrams back as one GSO write.
  t.ok(after.a.detail.txTsoFrames - before.a.detail.txTsoFrames >= SENDS / 2,
    `A read the sends as UDP super-frames and cut them (${after.a.detail.txTsoFrames - before.a.detail.txTsoFrames} of ${SENDS})`);
  t.ok(after.b.detail.rxCoalescedWrites - before.b.detail.rxCoalescedWrites >= SENDS / 2,
    `B coalesced them into USO writes (${after.b.detail.rxCoalescedWrites - before.b.detail.rxCoalescedWrites})`);
  t.equal(after.a.stats.dropsTotal + after.b.stats.dropsTotal, 0, `nothing dropped ${JSON.stringify([after.a.stats.drops, after.b.stats.drops])}`);
}

t.test('UDP in the overlay: datagrams arrive intact and in order; a UDP_SEGMENT sender is cut on the way and coalesced at the far TAP', async (t) => {
  if (skipUnlessRoot(t)) return;
  const pair = await nativePair(t);
  await udpAcross(t, pair, pair.b.overlay, 5301, 1000);
});

// The same over an inner IPv6 network on the TAPs (the test topologies
// turn IPv6 off; here the TAPs get it back): neighbour discovery crosses
// the tunnel, and UDP_SEGMENT sends go through the IPv6 split and come out
// of B's TAP as USO writes (TUN_F_USO6).
t.test('inner IPv6: neighbour discovery and ping across the tunnel; UDP intact, UDP_SEGMENT sends cut and coalesced', async (t) => {
  if (skipUnlessRoot(t)) return;
  const pair = await nativePair(t);
  const inner = async (h: Host, ip: string) => {
    await exec(h.ns, ['sysctl', '-q', '-w', `net.ipv6.conf.${DEV}.disable_ipv6=0`]);
    await exec(h.ns, ['ip', '-6', 'addr', 'add', `${ip}/64`, 'dev', DEV, 'nodad']);
  };
  await inner(pair.ha, 'fd42::1');
  await inner(pair.hb, 'fd42::2');
  t.equal((await ping(pair.ha.ns, 'fd42::2', { count: 3, intervalS: 0.05 })).received, 3, 'A pings B over IPv6 (B found by neighbour discovery)');
  const neigh = await exec(pair.ha.ns, ['ip', '-6', 'neigh', 'show', 'fd42::2', 'dev', DEV]);
  t.match(neigh.stdout, new RegExp(`lladdr ${pair.b.mac}`, 'i'), `A's neighbour entry for fd42::2 is B's TAP MAC (${neigh.stdout.trim()})`);
  await udpAcross(t, pair, 'fd42::2', 5303, 500);
});

t.test('fallbacks: no offloads, no GSO, no GRO, no coalescing still carry verified TCP', async (t) => {
  if (skipUnlessRoot(t)) return;
  const topo = await createTopology(t, { hosts: 2 });
  const [ha, hb] = topo.hosts;
  const off = ['--no-offload', '--no-gso', '--no-gro', '--no-coalesce'];
  const a = await startNative(t, ha, hb.ip, '10.42.0.1', off);
  const b = await startNative(t, hb, ha.ip, '10.42.0.2', off);
  await transfer(t, ha, { ns: hb.ns, ip: b.overlay }, 'A -> B (no offloads)');
  const sa = await snapshot(a);
  const sb = await snapshot(b);
  t.equal(sa.detail.txTsoFrames, 0, 'no TSO frames without TUNSETOFFLOAD');
  t.equal(sa.detail.txGsoMessages, 0, 'no GSO sends');
  t.equal(sb.detail.rxCoalescedWrites, 0, 'no coalesced writes');
  t.equal(await csumErrors(hb.ns), 0, 'B: no TCP checksum errors');
});

t.test('lifecycle: static conflict drop, TAP deleted is fatal once, stop removes the TAP', async (t) => {
  if (skipUnlessRoot(t)) return;
  const topo = await createTopology(t, { hosts: 2 });
  const [ha, hb] = topo.hosts;
  const b = await startNative(t, hb, ha.ip, '10.42.0.2');
  // Pin B's MAC at a third VTEP on A: B's frames must be refused at A.
  const a = await startNative(t, ha, hb.ip, '10.42.0.1', ['--static', `${b.mac}=198.18.1.99`]);
  const r = await ping(hb.ns, a.overlay, { count: 3, intervalS: 0.05 });
  t.equal(r.received, 0, 'frames from a MAC pinned elsewhere do not get through');
  const sa = await snapshot(a);
  t.ok((sa.stats.drops.rx_static_mac_conflict ?? 0) >= 3, 'counted as rx_static_mac_conflict');

  await exec(ha.ns, ['ip', 'link', 'del', DEV]);
  const fatal = await a.proc.waitForJson((j) => j.event === 'fatal', 5000);
  t.equal(fatal.syscall, 'read', 'the tx thread reports the failed read');
  t.type(fatal.errno, 'number', 'with an errno');
  await a.proc.waitForJson((j) => j.event === 'stopped', 5000);
  await a.proc.exited;
  t.equal(a.proc.exitCode, 0, 'the process exits by itself after stop (threads joined, callback released)');
  t.equal(a.proc.logs.filter((j) => j.event === 'fatal').length, 1, 'fatal reported once');

  b.proc.proc.kill('SIGTERM');
  await b.proc.exited;
  t.equal(b.proc.exitCode, 0, 'B exits cleanly on SIGTERM');
  const link = await exec(hb.ns, ['ip', 'link', 'show', DEV], { allowFail: true });
  t.not(link.code, 0, 'the TAP is gone once the engine stopped');
});

interface VtepRow { vtep: string; rxPackets: number; rxBytes: number; txPackets: number; txBytes: number; drops: number; lastRxMs: number }
interface FullSnapshot extends Snapshot { vteps: VtepRow[]; refused: Array<{ address: string; count: number }> }

/** Polls snapshots until check passes (refused senders and learning reach
 *  JS in the engine's reports, after a pause in traffic). */
async function snapshotWhen(v: Vtep, check: (s: FullSnapshot) => boolean, timeoutMs = 3000): Promise<FullSnapshot> {
  return eventually(async () => (await snapshot(v)) as FullSnapshot, { until: check, timeoutMs, intervalMs: 100, what: 'a snapshot passing the check', describe: (s) => JSON.stringify(s) });
}

t.test('source policy: a stranger is dropped and remembered; per-VTEP counters on the native path', async (t) => {
  if (skipUnlessRoot(t)) return;
  const topo = await createTopology(t, { hosts: 3 });
  const [ha, hb, hc] = topo.hosts;
  const a = await startNative(t, ha, hb.ip, '10.42.0.1');
  const b = await startNative(t, hb, ha.ip, '10.42.0.2');
  // C is a VTEP nobody at A named: it floods to A, A must not hear it.
  await addKernelVxlan(hc, { vni: VNI, remotes: [ha.ip], address: '10.42.0.3/24' });

  const before = Date.now();
  t.equal((await ping(ha.ns, b.overlay, { count: 5, intervalS: 0.05 })).received, 5, 'the named peer is heard');
  t.equal((await ping(hc.ns, a.overlay, { count: 3, intervalS: 0.05 })).received, 0, 'the stranger is not');
  const sa = await snapshotWhen(a, (s) => (s.vteps.find((v) => v.vtep === hb.ip)?.rxPackets ?? 0) >= 5 &&
    s.refused.some((r) => r.address === hc.ip));
  t.ok((sa.stats.drops.rx_source_not_allowed ?? 0) >= 3, `counted as rx_source_not_allowed ${JSON.stringify(sa.stats.drops)}`);
  const refused = sa.refused.find((r) => r.address === hc.ip);
  t.ok(refused !== undefined && refused.count >= 3, `the stranger is remembered for doctor ${JSON.stringify(sa.refused)}`);
  t.notOk(sa.fdb.some((e) => e.vtep === hc.ip), 'nothing was learned from the stranger');

  const atA = sa.vteps.find((v) => v.vtep === hb.ip);
  const sb = await snapshotWhen(b, (s) => (s.vteps.find((v) => v.vtep === ha.ip)?.txPackets ?? 0) >= (atA?.rxPackets ?? 0));
  const atB = sb.vteps.find((v) => v.vtep === ha.ip);
  t.ok(atA !== undefined && atA.rxPackets >= 5 && atA.txPackets >= 5, `A counts traffic with B ${JSON.stringify(atA)}`);
  t.ok(atA !== undefined && atA.lastRxMs >= before - 1000 && atA.lastRxMs <= Date.now(), 'A set lastRxMs for B (wall clock)');
  // Read at different moments (B's kernel may send more meanwhile): A's
  // count from before B's, and one from after, once B's frames are in.
  const bSent = atB?.txPackets ?? 0;
  const laterAtA = (await snapshotWhen(a, (s) => (s.vteps.find((v) => v.vtep === hb.ip)?.rxPackets ?? 0) >= bSent)).vteps.find((v) => v.vtep === hb.ip);
  t.ok((atA?.rxPackets ?? 0) <= bSent && bSent <= (laterAtA?.rxPackets ?? 0),
    `B's per-VTEP tx count matches A's rx count for B (A received ${atA?.rxPackets}, B sent ${bSent}, A then received ${laterAtA?.rxPackets})`);
  const other = sa.vteps.find((v) => v.vtep === 'other');
  t.ok(other !== undefined && other.drops >= 3, `the untracked stranger's drops are under other ${JSON.stringify(other)}`);
});

t.test('source policy: --accept CIDR lets a stranger in the range through', async (t) => {
  if (skipUnlessRoot(t)) return;
  const topo = await createTopology(t, { hosts: 3 });
  const [ha, hb, hc] = topo.hosts;
  await addKernelVxlan(hc, { vni: VNI, remotes: [ha.ip], address: '10.42.0.3/24' });
  const a = await startNative(t, ha, hb.ip, '10.42.0.1', ['--accept', `${hc.ip}/32`]);
  // A floods to B only, so C's reply cannot come back; A hears C's request.
  await ping(hc.ns, a.overlay, { count: 3, intervalS: 0.05 });
  const sa = await snapshotWhen(a, (s) => s.fdb.some((e) => e.vtep === hc.ip));
  t.ok(sa.fdb.some((e) => e.kind === 'learned' && e.vtep === hc.ip), "A learned C's MAC: C's datagrams were accepted");
  t.equal(sa.stats.drops.rx_source_not_allowed ?? 0, 0, 'nothing refused');
});

/** Sends `count` broadcast 802.1Q-tagged (VID 100) frames out of `dev` in
 *  `ns` through a packet socket (this kernel may lack 8021q for a VLAN
 *  subinterface; the frames are the same). */
async function sendTagged(ns: string, dev: string, count: number): Promise<void> {
  const script = [
    'import socket, sys',
    's = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)',
    's.bind((sys.argv[1], 0))',
    "frame = b'\\xff' * 6 + bytes.fromhex('020000000064') + b'\\x81\\x00\\x00\\x64\\x08\\x00' + bytes(46)",
    'for _ in range(int(sys.argv[2])): s.send(frame)',
  ].join('\n');
  await exec(ns, ['python3', '-c', script, dev, String(count)]);
}

t.test('VLAN-tagged inner frames are dropped both ways unless --allow-vlan', async (t) => {
  if (skipUnlessRoot(t)) return;
  const topo = await createTopology(t, { hosts: 2 });
  const [ha, hb] = topo.hosts;
  await setOffloads(hb.ns, hb.dev, { tx: 'off' });
  const k = await addKernelVxlan(hb, { vni: VNI, remotes: [ha.ip], address: '10.42.0.2/24' });
  const a = await startNative(t, ha, hb.ip, '10.42.0.1');
  t.equal((await ping(ha.ns, '10.42.0.2', { count: 2, intervalS: 0.05 })).received, 2, 'untagged traffic flows');
  const s0 = await snapshot(a);
  await sendTagged(ha.ns, DEV, 4);
  await sendTagged(hb.ns, k.name, 5);
  const sa = await snapshotWhen(a, (s) => (s.stats.drops.rx_vlan_tagged ?? 0) >= 5);
  t.equal(sa.stats.drops.tx_vlan_tagged, 4, `tagged frames from the TAP: tx_vlan_tagged ${JSON.stringify(sa.stats.drops)}`);
  t.equal(sa.stats.drops.rx_vlan_tagged, 5, 'tagged frames from the kernel peer: rx_vlan_tagged');
  t.equal(sa.stats.txPackets, s0.stats.txPackets, 'none was sent');
  t.equal(sa.stats.rxPackets, s0.stats.rxPackets, 'none was delivered');

  a.proc.proc.kill('SIGTERM');
  await a.proc.exited;
  const allowed = await startNative(t, ha, hb.ip, '10.42.0.1', ['--allow-vlan']);
  t.equal((await ping(ha.ns, '10.42.0.2', { count: 2, intervalS: 0.05 })).received, 2, 'untagged traffic flows');
  const s1 = await snapshot(allowed);
  await sendTagged(ha.ns, DEV, 4);
  await sendTagged(hb.ns, k.name, 5);
  const s2 = await snapshotWhen(allowed, (s) => s.stats.rxPackets >= s1.stats.rxPackets + 5);
  t.equal(s2.stats.txPackets - s1.stats.txPackets, 4, 'with --allow-vlan tagged frames are sent');
  t.equal(s2.stats.rxPackets - s1.stats.rxPackets, 5, 'and delivered');
  t.equal((s2.stats.drops.tx_vlan_tagged ?? 0) + (s2.stats.drops.rx_vlan_tagged ?? 0), 0, 'and nothing is dropped for its tag');
});

t.test('ICMP port unreachable from a peer with nothing on UDP 4789 counts as its tx_send_error', async (t) => {
  if (skipUnlessRoot(t)) return;
  const topo = await createTopology(t, { hosts: 3 });
  const [ha, hb, hc] = topo.hosts;
  // C is a peer of A, but nothing listens on C's UDP 4789: C's kernel answers
  // every datagram A floods to it with ICMP port unreachable (rate-limited).
  const a = await startNative(t, ha, hb.ip, '10.42.0.1', ['--peer', hc.ip]);
  const b = await startNative(t, hb, ha.ip, '10.42.0.2');
  t.equal((await ping(ha.ns, b.overlay, { count: 5, intervalS: 0.05 })).received, 5, 'A pings B while C is flooded too');
  // ARP requests and unknown unicast went to C as well; more floods, spaced
  // out past the kernel's ICMP rate limit.
  await ping(ha.ns, '10.42.0.99', { count: 4, intervalS: 0.3, timeoutS: 2 });
  const sa = await snapshotWhen(a, (s) => (s.vteps.find((v) => v.vtep === hc.ip)?.drops ?? 0) > 0);
  const atC = sa.vteps.find((v) => v.vtep === hc.ip);
  t.ok(atC !== undefined && atC.txPackets > 0, `A sent to C ${JSON.stringify(atC)}`);
  t.ok(atC !== undefined && atC.drops > 0, 'the ICMP errors count as drops of C');
  t.ok((sa.stats.drops.tx_send_error ?? 0) > 0, `under tx_send_error ${JSON.stringify(sa.stats.drops)}`);
  t.ok((sa.stats.drops.tx_send_error ?? 0) <= (atC?.txPackets ?? 0), 'at most one error per datagram sent to C');
  const bAtA0 = sa.vteps.find((v) => v.vtep === hb.ip);
  t.equal(bAtA0?.drops, 0, 'none is charged to B');

  t.equal((await ping(ha.ns, b.overlay, { count: 5, intervalS: 0.05 })).received, 5, 'traffic to B continues');
  await transfer(t, ha, { ns: hb.ns, ip: b.overlay }, 'A -> B with C refusing');
  const sb = await snapshot(b);
  t.equal(sb.stats.dropsTotal, 0, `B dropped nothing ${JSON.stringify(sb.stats.drops)}`);
  const sa2 = await snapshotWhen(a, (s) => (s.vteps.find((v) => v.vtep === hb.ip)?.txPackets ?? 0) > (bAtA0?.txPackets ?? 0));
  const bAtA = sa2.vteps.find((v) => v.vtep === hb.ip);
  t.ok(bAtA !== undefined && bAtA.txPackets > (bAtA0?.txPackets ?? 0), 'A kept sending to B');
  t.equal(bAtA?.drops, 0, 'A still charges no error to B');
});

// ---- without root: the same engine on stand-in TAPs and loopback UDP ----
//
// NativeEngine.openWith() runs the production engine on a socketpair that
// carries what a TAP with IFF_VNET_HDR carries (test/fakes.ts StandInTap),
// with its UDP socket on 127.0.0.x: NativeDatapath's contract (Fdb
// mirroring, learning, source policy, counters) runs in this process, as
// root or not.


/** Frames the stand-in TAP received until `count` arrived or LOOPBACK_WAIT_MS passed. */
async function framesAt(tap: StandInTap, count: number): Promise<Buffer[]> {
  const got: Buffer[] = [];
  await eventually(() => {
    got.push(...tap.take().map((m) => m.frame));
    return got.length >= count;
  }, { timeoutMs: LOOPBACK_WAIT_MS });
  return got;
}

t.test('without root: two engines on stand-in TAPs ping each other over loopback and learn through the Fdb', async (t) => {
  const a = openNativeHost(t, { vni: VNI, mac: mac(STAND_IN_MAC_A), local: LOOP_A, peers: [LOOP_B] });
  // Both engines on one port (A's, picked by the kernel), each on its own address.
  const b = openNativeHost(t, { vni: VNI, mac: mac(STAND_IN_MAC_B), local: LOOP_B, port: a.engine.port, peers: [LOOP_A] });
  t.equal(b.engine.port, a.engine.port, 'B bound the port A picked; dstPort 0 = that port');

  const request = frame('ff:ff:ff:ff:ff:ff', STAND_IN_MAC_A, Buffer.from('who has 10.0.0.2'), 0x0806);
  a.tap.inject(request);
  t.same(await framesAt(b.tap, 1), [request], "A's broadcast comes out of B's stand-in intact");
  t.ok(await eventually(() => b.fdb.lookup(VNI, macKeyOf(STAND_IN_MAC_A), Date.now()) === LOOP_A, { timeoutMs: LOOPBACK_WAIT_MS }), "B's Fdb learned A's MAC at A's address");
  t.match(b.fdbEvents.find((e) => e.mac === STAND_IN_MAC_A), { type: 'learned', kind: 'learned', vtep: LOOP_A }, 'as a learned event');

  const reply = frame(STAND_IN_MAC_A, STAND_IN_MAC_B, 1400);
  b.tap.inject(reply);
  t.same(await framesAt(a.tap, 1), [reply], "B's unicast reply comes out of A's stand-in intact");
  t.ok(await eventually(() => a.fdb.lookup(VNI, macKeyOf(STAND_IN_MAC_B), Date.now()) === LOOP_B, { timeoutMs: LOOPBACK_WAIT_MS }), "A's Fdb learned B's MAC");

  const ping = frame(STAND_IN_MAC_B, STAND_IN_MAC_A, 100);
  a.tap.inject(ping);
  t.same(await framesAt(b.tap, 1), [ping], 'A now sends to B from the mirror of its Fdb');

  t.ok(await eventually(() => a.stats.snapshot().txPackets === 2 && b.stats.snapshot().rxPackets === 2, { timeoutMs: LOOPBACK_WAIT_MS }), 'counters caught up');
  t.match(a.stats.snapshot(), { txPackets: 2, txBytes: request.length + ping.length, rxPackets: 1, rxBytes: reply.length, dropsTotal: 0 });
  t.match(b.stats.snapshot(), { txPackets: 1, txBytes: reply.length, rxPackets: 2, rxBytes: request.length + ping.length, dropsTotal: 0 });
  t.ok(await eventually(() => (a.stats.vtepSnapshot().find((v) => v.vtep === LOOP_B)?.txPackets ?? 0) === 2, { timeoutMs: LOOPBACK_WAIT_MS }), 'per-VTEP counts merged');
  t.match(a.stats.vtepSnapshot(), [{ vtep: LOOP_B, rxPackets: 1, rxBytes: reply.length, txPackets: 2, txBytes: request.length + ping.length, drops: 0 }]);
  t.same(a.fatal, [], 'no fatal error');

  b.tap.close();
  t.ok(await eventually(() => b.fatal.length === 1, { timeoutMs: LOOPBACK_WAIT_MS }), 'the stand-in closed under the engine is fatal, once');
  t.match(b.fatal[0], { code: 'VXLAND_DEVICE', syscall: 'read' });
});

t.test('without root: the flood list reaches every peer and follows the Fdb', async (t) => {
  const pb = await LoopbackPeer.open(LOOP_B);
  t.teardown(() => pb.close());
  const pc = await LoopbackPeer.open(LOOP_C, pb.port);
  t.teardown(() => pc.close());
  const a = openNativeHost(t, { vni: VNI, mac: mac(STAND_IN_MAC_A), dstPort: pb.port, peers: [LOOP_B, LOOP_C] });

  const broadcast = frame('ff:ff:ff:ff:ff:ff', STAND_IN_MAC_A, 60, 0x0806);
  const unknown = frame(STAND_IN_MAC_B, STAND_IN_MAC_A, 60);
  a.tap.inject(broadcast);
  a.tap.inject(unknown);
  const expected = [vxlanDatagram(VNI, broadcast), vxlanDatagram(VNI, unknown)];
  for (const p of [pb, pc]) {
    t.ok(await eventually(() => p.received.length >= 2, { timeoutMs: LOOPBACK_WAIT_MS }), `${p.address} got the flood`);
    t.same(p.take().map((d) => d.msg), expected, `${p.address}: broadcast and unknown unicast, each behind an RFC 7348 header`);
  }

  a.fdb.removePeer(VNI, LOOP_C);
  await Promise.resolve(); // the flood list is pushed once per burst of changes
  a.tap.inject(broadcast);
  t.ok(await eventually(() => pb.received.length >= 1, { timeoutMs: LOOPBACK_WAIT_MS }), 'B still gets floods');
  t.ok(await pc.drain(), 'C drained');
  t.same(pc.take(), [], 'C, no longer a peer, does not');

  a.fdb.removePeer(VNI, LOOP_B);
  await Promise.resolve();
  a.tap.inject(broadcast);
  t.ok(await eventually(() => (a.stats.snapshot().drops.tx_no_destination ?? 0) === 1, { timeoutMs: LOOPBACK_WAIT_MS }), 'no peer left: tx_no_destination');
  t.equal(a.stats.snapshot().txPackets, 5, 'two frames to two peers, one to one: one datagram each');
});

t.test('without root: a TAP write refused with EAGAIN counts as rx_tap_busy, with another errno (EPIPE) as rx_tap_error', async (t) => {
  const peer = await LoopbackPeer.open(LOOP_B);
  t.teardown(() => peer.close());
  const a = openNativeHost(t, { vni: VNI, mac: mac(STAND_IN_MAC_A), dstPort: peer.port, peers: [LOOP_B] });
  const port = a.engine.port;
  const datagram = vxlanDatagram(VNI, frame(STAND_IN_MAC_A, STAND_IN_MAC_B, 1400));
  // Nobody reads the stand-in: the engine's end's send buffer
  // (net.core.wmem_default, 208 KiB by default: about 90 such frames) fills,
  // and the writes past it get EAGAIN.
  const FLOOD = 256;
  for (let i = 0; i < FLOOD; i++) await peer.send(datagram, port);
  const settled = (total: number) => () => {
    const s = a.stats.snapshot();
    return s.rxPackets + s.dropsTotal === total;
  };
  t.ok(await eventually(settled(FLOOD), { timeoutMs: LOOPBACK_WAIT_MS }), 'every datagram delivered or dropped');
  const full = a.stats.snapshot();
  t.ok(full.rxPackets > 0 && full.rxPackets < FLOOD, `some delivered (${full.rxPackets}), not all`);
  t.same(full.drops, { rx_tap_busy: FLOOD - full.rxPackets }, 'the rest counted as rx_tap_busy');
  t.equal(a.tap.take().length, full.rxPackets, 'the stand-in holds exactly the frames counted as delivered');

  a.tap.refuseWrites();
  const REFUSED = 3;
  for (let i = 0; i < REFUSED; i++) await peer.send(datagram, port);
  t.ok(await eventually(settled(FLOOD + REFUSED), { timeoutMs: LOOPBACK_WAIT_MS }), 'the refused datagrams are counted');
  t.same(a.stats.snapshot().drops, { rx_tap_busy: FLOOD - full.rxPackets, rx_tap_error: REFUSED }, 'EPIPE: rx_tap_error');
  t.equal(a.stats.snapshot().rxPackets, full.rxPackets, 'nothing more delivered');
  t.same(a.fatal, [], 'a refused write is not fatal');
});

t.test("without root: a network's stand-in failing goes to its onFailed; the threads carry the other network on", async (t) => {
  const peer = await LoopbackPeer.open(LOOP_B);
  t.teardown(() => peer.close());
  const a = openNativeHost(t, { vni: VNI, mac: mac(STAND_IN_MAC_A), dstPort: peer.port, peers: [LOOP_B], separateHostStats: true });
  const failures: Error[] = [];
  const n43 = a.addNetwork({ vni: 43, mac: mac(STAND_IN_MAC_B), peers: [LOOP_B], name: 'vxl43', onFailed: (err) => failures.push(err) });
  n43.tap.close();
  t.ok(await eventually(() => failures.length === 1, { timeoutMs: LOOPBACK_WAIT_MS }), 'reading EOF from the stand-in is a failure of network 43');
  t.match(failures[0], { code: 'VXLAND_DEVICE', errno: EBADFD, syscall: 'read', message: /\(EBADFD\) \[vxl43\]$/ }, 'with the errno, naming the device');
  t.same(a.fatal, [], 'not fatal');

  const rxFrame = frame(STAND_IN_MAC_A, STAND_IN_MAC_B, 200);
  await peer.send(vxlanDatagram(VNI, rxFrame), a.engine.port);
  t.same(await framesAt(a.tap, 1), [rxFrame], 'rx: network 42 still delivers');
  const txFrame = frame('ff:ff:ff:ff:ff:ff', STAND_IN_MAC_A, 200);
  a.tap.inject(txFrame);
  t.ok(await eventually(() => peer.received.some((d) => d.msg.equals(vxlanDatagram(VNI, txFrame))), { timeoutMs: LOOPBACK_WAIT_MS }), 'tx: the tx worker still reads network 42');
  await a.dp.removeNetwork(43);
  t.equal(failures.length, 1, 'reported once');
  t.same(a.fatal, [], 'and still not fatal');
});

t.test('without root: datagrams are dropped by reason, strangers refused and remembered', async (t) => {
  const peer = await LoopbackPeer.open(LOOP_B);
  t.teardown(() => peer.close());
  const stranger = await LoopbackPeer.open(LOOP_STRANGER, peer.port);
  t.teardown(() => stranger.close());
  const a = openNativeHost(t, { vni: VNI, mac: mac(STAND_IN_MAC_A), mtu: 1400, dstPort: peer.port, peers: [LOOP_B] });
  const port = a.engine.port;
  const to = (inner: Buffer, vni = VNI, flags = 0x08) => vxlanDatagram(vni, inner, flags);
  const good = frame(STAND_IN_MAC_A, STAND_IN_MAC_B, 64);
  for (const msg of [
    Buffer.alloc(5),
    to(good).subarray(0, 21),
    to(good, VNI, 0x00),
    to(good, VNI + 1),
    to(frame(STAND_IN_MAC_A, 'ff:ff:ff:ff:ff:ff')),
    to(frame(STAND_IN_MAC_A, '00:00:00:00:00:00')),
    to(frame(STAND_IN_MAC_B, STAND_IN_MAC_A)),
    to(frame(STAND_IN_MAC_A, STAND_IN_MAC_B, 1401)),
    to(frame(STAND_IN_MAC_A, STAND_IN_MAC_B, Buffer.from('0064080045000000', 'hex'), 0x8100)),
    to(good),
  ]) {
    await peer.send(msg, port);
  }
  await stranger.send(to(good), port);
  const expected = {
    rx_truncated: 2,
    rx_no_i_flag: 1,
    rx_wrong_vni: 1,
    rx_bad_source_mac: 2,
    rx_own_source_mac: 1,
    rx_oversize: 1,
    rx_vlan_tagged: 1,
    rx_source_not_allowed: 1,
  };
  t.ok(await eventually(() => a.stats.snapshot().dropsTotal === 10, { timeoutMs: LOOPBACK_WAIT_MS }), 'every drop counted');
  t.same(a.stats.snapshot().drops, expected, 'by reason');
  t.same(await framesAt(a.tap, 1), [good], 'the valid frame is delivered, alone');
  t.equal(a.stats.snapshot().rxPackets, 1);
  t.ok(await eventually(() => a.stats.refusedSenders().length > 0, { timeoutMs: LOOPBACK_WAIT_MS }), 'the refusal is reported');
  t.same(a.stats.refusedSenders(), [{ address: LOOP_STRANGER, count: 1 }], 'the stranger is remembered for doctor');
  t.notOk(a.fdb.entries().some((e) => e.vtep === LOOP_STRANGER), 'nothing learned from the stranger');
  t.ok(await eventually(() => (a.stats.vtepSnapshot().find((v) => v.vtep === LOOP_B)?.drops ?? 0) === 9, { timeoutMs: LOOPBACK_WAIT_MS }), "the peer's drops are its own");
  t.match(a.stats.vtepSnapshot().find((v) => v.vtep === 'other'), { drops: 1 }, "the stranger's under other");
});
