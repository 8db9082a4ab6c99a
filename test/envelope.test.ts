// The outer header vxland writes and the ECN rules it applies (RFC 6040), as
// the kernel's vxlan selftest (tools/testing/selftests/net/forwarding/
// vxlan_bridge_1d.sh) checks them, with vxland as one VTEP and a kernel
// vxlan as the other: envelope TTL, fixed and inherited TOS, ECN on
// encapsulation (inner ECT(1)/ECT(0)/CE -> outer ECT(1)/ECT(0)/ECT(0)), ECN
// on decapsulation (outer CE over inner ECT -> inner CE; over inner not-ECT
// -> dropped and counted as rx_ecn_not_ect_ce), and DF clear. Outer headers
// are read from a capture on the kernel side's underlay; datagrams with an
// outer CE are crafted from the kernel side's namespace (the kernel vxlan
// never sends CE: it maps it to ECT(0) as we do). On the dgram path,
// node:dgram can neither set a TOS per datagram nor report a received one:
// there the outer TOS is the fixed DSCP with ECN not-ECT, `tos inherit` is
// refused, and outer ECN is not looked at (README "Outer header").
import { readFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { eventually } from './helpers/eventually';
import { addKernelVxlan, createTopology, exec, ping, skipUnlessRoot, spawnDaemon, verifiedTcpTransfer, vxlandArgv, type Host, type TapLike } from './helpers/netns';
import { datapathsUnderTest, startVxland, tempDir, TEST_VNI, type VxlandHandle } from './helpers/vxland';

const VXLAN_PORT = 4789;
const VXLAND_IP = '10.42.0.1';
const KERNEL_IP = '10.42.0.2';
const NOT_ECT = 0x00;
const ECT1 = 0x01;
const ECT0 = 0x02;
const CE = 0x03;
const CAPTURE_TIMEOUT_MS = 10_000;

interface OuterPacket {
  tos: number;
  ttl: number;
  df: boolean;
  /** The inner frame (after the VXLAN header). */
  inner: Buffer;
}

/** The IP packets (IPv4, or IPv6 with v6) of a pcap file (Ethernet link type). */
function pcapIp(file: string, v6 = false): Buffer[] {
  const data = readFileSync(file);
  const out: Buffer[] = [];
  for (let at = 24; at + 16 <= data.length;) {
    const caplen = data.readUInt32LE(at + 8);
    const frame = data.subarray(at + 16, at + 16 + caplen);
    at += 16 + caplen;
    if (frame.length >= (v6 ? 54 : 34) && frame.readUInt16BE(12) === (v6 ? 0x86dd : 0x0800)) out.push(frame.subarray(14));
  }
  return out;
}
const pcapIpv4 = (file: string): Buffer[] => pcapIp(file);

/** The 16 bytes of an IPv6 literal (full or with one ::). */
function ipv6Bytes(text: string): Buffer {
  const [head, tail] = text.split('::');
  const groups = (s: string | undefined): string[] => (s === undefined || s === '' ? [] : s.split(':'));
  const h = groups(head);
  const tl = groups(tail);
  const all = [...h, ...Array(8 - h.length - tl.length).fill('0'), ...tl];
  const b = Buffer.alloc(16);
  all.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16), i * 2));
  return b;
}

/** VXLAN datagrams from `from` (IPv4, or IPv6) in a capture. */
function outerPackets(file: string, from: string): OuterPacket[] {
  if (from.includes(':')) {
    const src = ipv6Bytes(from);
    return pcapIp(file, true)
      .filter((ip) => ip[6] === 17 && ip.subarray(8, 24).equals(src))
      .map((ip) => ({ tos: (ip.readUInt32BE(0) >>> 20) & 0xff, ttl: ip[7], df: false, inner: ip.subarray(40 + 8 + 8) }));
  }
  return pcapIpv4(file)
    .filter((ip) => ip[9] === 17 && ip.subarray(12, 16).join('.') === from)
    .map((ip) => {
      const ihl = (ip[0] & 0x0f) * 4;
      return { tos: ip[1], ttl: ip[8], df: (ip[6] & 0x40) !== 0, inner: ip.subarray(ihl + 8 + 8) };
    });
}

/** The inner IPv4 header of a VXLAN payload / TAP frame, or null. */
function innerIpv4(frame: Buffer): Buffer | null {
  return frame.length >= 34 && frame.readUInt16BE(12) === 0x0800 ? frame.subarray(14, 34) : null;
}

function ipv4HeaderValid(header: Buffer): boolean {
  let s = 0;
  for (let i = 0; i < 20; i += 2) s += header.readUInt16BE(i);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s === 0xffff;
}

/** tcpdump writing every packet to a file as it comes (-U); resolves once it listens. */
async function startCapture(t: TapLike, dir: string, ns: string, dev: string, label: string, filter: string): Promise<string> {
  const file = path.join(dir, `${label}.pcap`);
  const proc = spawnDaemon(t, ns, ['tcpdump', '-i', dev, '-nn', '-U', '-s', '256', '-w', file, filter]);
  await eventually(() => {
    if (!proc.running) throw new Error(`tcpdump exited: ${proc.stderrLines.join(' | ')}`);
    return proc.stderrLines.some((l) => /listening on/.test(l));
  }, { timeoutMs: CAPTURE_TIMEOUT_MS, what: `tcpdump on ${dev} listening` });
  return file;
}

/** Waits until the capture holds at least n VXLAN datagrams from `from` matching pick. */
async function captured(file: string, from: string, n: number, pick: (p: OuterPacket) => boolean = () => true): Promise<OuterPacket[]> {
  let got: OuterPacket[] = [];
  await eventually(() => {
    got = outerPackets(file, from).filter(pick);
    return got.length >= n;
  }, {
    timeoutMs: CAPTURE_TIMEOUT_MS, intervalMs: 50, what: `${n} datagrams from ${from} in ${file}`,
    describe: () => {
      const all = outerPackets(file, from);
      const tos = [...new Set(all.map((o) => o.tos))];
      return `${got.length} matching of ${all.length} (outer TOS seen: ${tos.join(', ')}; inner bytes up to ${Math.max(0, ...all.map((o) => o.inner.length))})`;
    },
  });
  return got;
}

/** Echo requests (ICMP type 8) inside the datagrams. */
const isEchoRequest = (p: OuterPacket): boolean => {
  const ip = innerIpv4(p.inner);
  return ip !== null && ip[9] === 1 && p.inner[14 + (ip[0] & 0x0f) * 4] === 8;
};

interface Pair {
  t: TapLike;
  vxland: Host;
  kernel: Host;
  v: VxlandHandle;
  dir: string;
}

/** Underlay addresses of the IPv6 variant (ULA, this test's own prefix). */
const UNDERLAY6 = ['fd00:e2::1', 'fd00:e2::2'];

async function pair(t: TapLike, datapath: string, extraArgs: string[], underlay: 4 | 6 = 4): Promise<Pair> {
  const topo = await createTopology(t, { hosts: 2, disableIpv6: underlay === 4 });
  let [a, b] = topo.hosts;
  if (underlay === 6) {
    for (const [h, addr] of [[a, UNDERLAY6[0]], [b, UNDERLAY6[1]]] as const) {
      await exec(h.ns, ['ip', 'addr', 'add', `${addr}/64`, 'dev', h.dev, 'nodad']);
    }
    a = { ...a, ip: UNDERLAY6[0], cidr: `${UNDERLAY6[0]}/64` };
    b = { ...b, ip: UNDERLAY6[1], cidr: `${UNDERLAY6[1]}/64` };
  }
  await addKernelVxlan(b, { vni: TEST_VNI, remotes: [a.ip], address: `${KERNEL_IP}/24`, mtu: underlay === 6 ? 1430 : 1450 });
  const v = await startVxland(t, a, { peers: [b.ip], address: `${VXLAND_IP}/24`, datapath, extraArgs });
  return { t, vxland: a, kernel: b, v, dir: tempDir(t, 'w2-envelope') };
}

/** Sends `count` echoes with inner TOS tos from vxland's side and returns the
 *  echo requests the kernel side saw arrive. */
async function encapsulated(p: Pair, label: string, tos: number | undefined, count = 3): Promise<OuterPacket[]> {
  const file = await startCapture(p.t, p.dir, p.kernel.ns, p.kernel.dev, label, `udp dst port ${VXLAN_PORT}`);
  const r = await ping(p.vxland.ns, KERNEL_IP, { count, intervalS: 0.1, timeoutS: 2, tos });
  if (r.received === 0) throw new Error(`no echo replies (${label}): ${r.output}`);
  return captured(file, p.vxland.ip, count, (o) => isEchoRequest(o) && innerIpv4(o.inner)![1] === (tos ?? 0));
}

/** A VXLAN datagram (VNI TEST_VNI) carrying an ICMP echo request to vxland's TAP. */
function craftedDatagram(dstMac: string, innerTos: number, id: number): Buffer {
  const icmp = Buffer.alloc(16);
  icmp[0] = 8;
  icmp.writeUInt16BE(id, 4);
  let s = 0;
  for (let i = 0; i < icmp.length; i += 2) s += icmp.readUInt16BE(i);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  icmp.writeUInt16BE(0xffff - s, 2);
  const ip = Buffer.alloc(20);
  ip[0] = 0x45;
  ip[1] = innerTos;
  ip.writeUInt16BE(20 + icmp.length, 2);
  ip.writeUInt16BE(id, 4);
  ip[8] = 64;
  ip[9] = 1;
  Buffer.from(KERNEL_IP.split('.').map(Number)).copy(ip, 12);
  Buffer.from(VXLAND_IP.split('.').map(Number)).copy(ip, 16);
  let h = 0;
  for (let i = 0; i < 20; i += 2) h += ip.readUInt16BE(i);
  while (h > 0xffff) h = (h & 0xffff) + (h >>> 16);
  ip.writeUInt16BE(0xffff - h, 10);
  const eth = Buffer.alloc(14);
  Buffer.from(dstMac.split(':').map((x) => parseInt(x, 16))).copy(eth, 0);
  Buffer.from([0x02, 0x00, 0x00, 0x00, 0xe2, 0x01]).copy(eth, 6);
  eth.writeUInt16BE(0x0800, 12);
  const vx = Buffer.from([0x08, 0, 0, 0, (TEST_VNI >> 16) & 0xff, (TEST_VNI >> 8) & 0xff, TEST_VNI & 0xff, 0]);
  return Buffer.concat([vx, eth, ip, icmp]);
}

/** Sends datagrams from ns to ip:port with the outer TOS byte as given
 *  (a UDP socket keeps the ECN bits of IP_TOS). */
async function sendWithOuterTos(ns: string, to: string, outerTos: number, datagrams: Buffer[]): Promise<void> {
  const v6 = to.includes(':');
  const script = [
    'import socket, sys',
    v6 ? 's = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)' : 's = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)',
    v6 ? `s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, ${outerTos})` : `s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, ${outerTos})`,
    ...datagrams.map((d) => `s.sendto(bytes.fromhex('${d.toString('hex')}'), ('${to}', ${VXLAN_PORT}))`),
  ].join('\n');
  await exec(ns, ['/usr/bin/python3', '-c', script], { timeoutMs: 10_000 });
}

async function drops(v: VxlandHandle, reason: string): Promise<number> {
  const s = await v.json<{ stats: { drops: Record<string, number> } }>('status');
  return s.stats.drops[reason] ?? 0;
}

/** tx_send_error, the network's and the host's (an ICMP error comes back as a host-level one). */
async function sendErrors(v: VxlandHandle): Promise<number> {
  const s = await v.json<{ stats: { drops: Record<string, number> }; host: { drops: Record<string, number> } }>('status');
  return (s.stats.drops.tx_send_error ?? 0) + (s.host.drops.tx_send_error ?? 0);
}

for (const datapath of datapathsUnderTest()) {
  const native = datapath === 'native';

  t.test(`${datapath}: envelope TTL, fixed TOS and DF clear`, async (t) => {
    if (skipUnlessRoot(t)) return;
    const p = await pair(t, datapath, ['--ttl', '33', '--tos', '0x20']);
    for (const [tos, want, label] of [[undefined, 0x20, 'not-ECT'], [ECT0, native ? 0x20 | ECT0 : 0x20, 'ECT(0)']] as const) {
      const got = await encapsulated(p, `fixed-${label}`, tos);
      t.same(got.map((o) => o.ttl), got.map(() => 33), `${label}: outer TTL is --ttl 33`);
      t.same(got.map((o) => o.tos), got.map(() => want), `${label}: outer TOS 0x${want.toString(16)} (${native ? 'DSCP 0x20 with the inner ECN' : 'DSCP 0x20, ECN not-ECT on dgram'})`);
      t.same(got.map((o) => o.df), got.map(() => false), `${label}: outer DF clear`);
    }
    const status = await p.v.json<{ envelope: string }>('status');
    t.match(status.envelope, native ? /^ttl 33, tos 0x20, df unset; ECN per RFC 6040/ : /^ttl 33, tos 0x20, df unset; no ECN/, 'status says what the path does');
  });

  t.test(`${datapath}: default envelope as the kernel's (ttl 64, tos 0, DF clear)`, async (t) => {
    if (skipUnlessRoot(t)) return;
    const p = await pair(t, datapath, []);
    const got = await encapsulated(p, 'default', 0x14);
    t.same(got.map((o) => [o.ttl, o.tos, o.df]), got.map(() => [64, 0, false]), 'ttl 64, tos 0 (ECN not-ECT: inner 0x14 is not-ECT), DF clear');
    // An underlay hop smaller than the datagrams: with DF clear they are
    // fragmented on the way, not lost.
    for (const h of [p.vxland, p.kernel]) await exec(h.ns, ['ip', 'link', 'set', 'dev', h.dev, 'mtu', '1400']);
    const big = await ping(p.vxland.ns, KERNEL_IP, { count: 2, size: 1400, intervalS: 0.2, timeoutS: 2 });
    t.equal(big.received, 2, 'full-size inner packets cross a 1400-byte underlay hop (outer datagrams fragmented)');
  });

  t.test(`${datapath}: --df set sets DF`, async (t) => {
    if (skipUnlessRoot(t)) return;
    const p = await pair(t, datapath, ['--df', 'set']);
    const got = await encapsulated(p, 'df-set', undefined);
    t.same(got.map((o) => o.df), got.map(() => true), 'outer DF set');
    for (const h of [p.vxland, p.kernel]) await exec(h.ns, ['ip', 'link', 'set', 'dev', h.dev, 'mtu', '1400']);
    const before = await sendErrors(p.v);
    const big = await ping(p.vxland.ns, KERNEL_IP, { count: 2, size: 1400, intervalS: 0.2, timeoutS: 1 });
    t.equal(big.received, 0, 'a datagram over the underlay MTU with DF is not sent');
    await eventually(async () => (await sendErrors(p.v)) - before, { until: (n) => n >= 2, timeoutMs: CAPTURE_TIMEOUT_MS, what: 'tx_send_error counted' });
    t.pass('and counted as tx_send_error');
  });

  if (!native) {
    t.test('dgram: tos inherit is refused at start', async (t) => {
      if (skipUnlessRoot(t)) return;
      const topo = await createTopology(t, { hosts: 2 });
      const dir = tempDir(t, 'w2-refuse');
      const r = await exec(topo.hosts[0].ns, [...vxlandArgv('run', '--vni', '42', '--dev', 'vxw2r', '--local', topo.hosts[0].ip,
        '--state-dir', dir, '--socket', path.join(dir, 's.sock'), '--datapath', 'dgram', '--tos', 'inherit')], { allowFail: true, timeoutMs: 15_000 });
      t.not(r.code, 0, 'exits with an error');
      t.match(r.stderr, /tos inherit needs the native data path/, 'and says why');
    });
    t.test('dgram: IPv6 underlay: hop limit = --ttl, traffic class the fixed DSCP', async (t) => {
      if (skipUnlessRoot(t)) return;
      const p = await pair(t, datapath, ['--ttl', '33', '--tos', '0x20', '--mtu', '1430'], 6);
      const got = await encapsulated(p, 'dgram-v6', ECT0);
      t.same(got.map((o) => [o.ttl, o.tos]), got.map(() => [33, 0x20]), 'hop limit 33, traffic class 0x20 (ECN not-ECT)');
    });
    t.test('dgram: outer CE is not looked at (no received TOS)', async (t) => {
      if (skipUnlessRoot(t)) return;
      const p = await pair(t, datapath, []);
      const mac = (await p.v.json<{ mac: string }>('status')).mac;
      const tapFile = await startCapture(t, p.dir, p.vxland.ns, p.v.dev, 'dgram-tap', 'icmp');
      await sendWithOuterTos(p.kernel.ns, p.vxland.ip, CE, [craftedDatagram(mac, NOT_ECT, 7)]);
      await eventually(() => pcapIpv4(tapFile).some((ip) => ip.readUInt16BE(4) === 7), { timeoutMs: CAPTURE_TIMEOUT_MS, what: 'the frame on the TAP' });
      t.equal(pcapIpv4(tapFile).find((ip) => ip.readUInt16BE(4) === 7)![1], NOT_ECT, 'delivered unchanged');
    });
    continue;
  }

  t.test('native: TOS inherit and RFC 6040 ECN encapsulation', async (t) => {
    if (skipUnlessRoot(t)) return;
    const p = await pair(t, datapath, ['--tos', 'inherit']);
    const cases: Array<[number, number, string]> = [
      [0x14, 0x14, 'ping -Q 0x14 -> outer 0x14'],
      [ECT1, ECT1, 'ECT(1) -> ECT(1)'],
      [ECT0, ECT0, 'ECT(0) -> ECT(0)'],
      [CE, ECT0, 'CE -> ECT(0)'],
    ];
    for (const [inner, outer, label] of cases) {
      const got = await encapsulated(p, `inherit-${inner}`, inner);
      t.same(got.map((o) => o.tos), got.map(() => outer), label);
    }
  });

  t.test('native: bulk TCP with ECN under tos inherit: GSO runs carry the TOS, bytes intact', async (t) => {
    if (skipUnlessRoot(t)) return;
    const p = await pair(t, datapath, ['--tos', 'inherit']);
    for (const ns of [p.vxland.ns, p.kernel.ns]) await exec(ns, ['sysctl', '-q', '-w', 'net.ipv4.tcp_ecn=1']);
    const file = await startCapture(t, p.dir, p.kernel.ns, p.kernel.dev, 'ecn-tcp', `udp dst port ${VXLAN_PORT}`);
    const r = await verifiedTcpTransfer({ serverNs: p.kernel.ns, serverIp: KERNEL_IP, clientNs: p.vxland.ns, bytes: 8 * 1024 * 1024, timeoutMs: 60_000 });
    t.equal(r.received.sha256, r.expectedSha256, 'bytes intact');
    // Data segments of an ECN flow are ECT(0); full-size ones come out of
    // TSO splits and GSO runs (the capture keeps only their heads: the
    // inner IPv4 total length tells the size).
    const fullSize = (o: OuterPacket): boolean => { const ip = innerIpv4(o.inner); return ip !== null && ip.readUInt16BE(2) > 1400; };
    const ect = await captured(file, p.vxland.ip, 20, (o) => fullSize(o) && o.tos === ECT0);
    t.ok(ect.length >= 20, `${ect.length} full-size datagrams captured went out ECT(0)`);
    const stats = await p.v.json<{ stats: { txPackets: number } }>('status');
    t.ok(stats.stats.txPackets > 5000, 'the transfer went through vxland');
  });

  t.test('native: IPv6 underlay: hop limit = --ttl, traffic class inherited with ECN, ECN decapsulated', async (t) => {
    if (skipUnlessRoot(t)) return;
    const p = await pair(t, datapath, ['--ttl', '33', '--tos', 'inherit', '--mtu', '1430'], 6);
    for (const [inner, outer] of [[0x14, 0x14], [0x20 | CE, 0x20 | ECT0]]) {
      const got = await encapsulated(p, `v6-${inner}`, inner);
      t.same(got.map((o) => [o.ttl, o.tos]), got.map(() => [33, outer]), `inner 0x${inner.toString(16)}: hop limit 33, traffic class 0x${outer.toString(16)}`);
    }
    const mac = (await p.v.json<{ mac: string }>('status')).mac;
    const tapFile = await startCapture(t, p.dir, p.vxland.ns, p.v.dev, 'v6-tap', 'icmp');
    await sendWithOuterTos(p.kernel.ns, p.vxland.ip, CE, [craftedDatagram(mac, ECT1, 21)]);
    let seen: Buffer | undefined;
    await eventually(() => (seen = pcapIpv4(tapFile).find((ip) => ip[9] === 1 && ip.readUInt16BE(4) === 21)) !== undefined,
      { timeoutMs: CAPTURE_TIMEOUT_MS, what: 'frame 21 on the TAP' });
    t.equal(seen![1], CE, 'outer traffic class CE over inner ECT(1): inner CE');
  });

  t.test('native: RFC 6040 ECN decapsulation', async (t) => {
    if (skipUnlessRoot(t)) return;
    const p = await pair(t, datapath, []);
    const mac = (await p.v.json<{ mac: string }>('status')).mac;
    const tapFile = await startCapture(t, p.dir, p.vxland.ns, p.v.dev, 'native-tap', 'icmp');
    const before = await drops(p.v, 'rx_ecn_not_ect_ce');
    await sendWithOuterTos(p.kernel.ns, p.vxland.ip, CE, [craftedDatagram(mac, ECT0, 11), craftedDatagram(mac, 0x20 | ECT1, 12), craftedDatagram(mac, NOT_ECT, 13)]);
    await sendWithOuterTos(p.kernel.ns, p.vxland.ip, ECT0, [craftedDatagram(mac, NOT_ECT, 14)]);
    const byId = (id: number): Buffer | undefined => pcapIpv4(tapFile).find((ip) => ip[9] === 1 && ip.readUInt16BE(4) === id);
    await eventually(() => [11, 12, 14].every((id) => byId(id) !== undefined), { timeoutMs: CAPTURE_TIMEOUT_MS, what: 'frames 11, 12, 14 on the TAP' });
    t.equal(byId(11)![1], CE, 'outer CE over inner ECT(0): inner CE');
    t.equal(byId(12)![1], 0x20 | CE, 'outer CE over inner ECT(1): inner CE, DSCP kept');
    t.ok(ipv4HeaderValid(byId(11)!) && ipv4HeaderValid(byId(12)!), 'inner IPv4 checksums fixed');
    t.equal(byId(14)![1], NOT_ECT, 'outer ECT(0) over inner not-ECT: delivered unchanged');
    await eventually(async () => (await drops(p.v, 'rx_ecn_not_ect_ce')) - before, { until: (n) => n === 1, timeoutMs: CAPTURE_TIMEOUT_MS, what: 'rx_ecn_not_ect_ce counted once' });
    t.equal(byId(13), undefined, 'outer CE over inner not-ECT: dropped');
    t.pass('rx_ecn_not_ect_ce counted once');
  });
}
