// The engine's pure offload functions (native/engine_offload.h) through the
// test-only bindings: TSO splitting of TAP super-frames, completion of
// partial checksums, and coalescing of received TCP segments. Checksums are
// verified here with an independent RFC 1071 implementation. Last, the
// same work in two engines' own loops, on stand-in TAPs (no root).
import t from 'tap';

import { loadTestAddon, type TapMessage } from './fakes';
import { eventually } from './helpers/eventually';
import { openNativeHost } from './helpers/native-host';

const addon = loadTestAddon();
const MTU = 1450;
const MSS = 1398; // 1450 - 20 (IPv4) - 32 (TCP with timestamps)
const VNET_F_NEEDS_CSUM = 1;
const GSO_TCPV4 = 1;
const GSO_TCPV6 = 4;
const TCP_PSH = 0x08;
const TCP_ACK = 0x10;

function sum16(buf: Buffer, initial = 0): number {
  let s = initial;
  for (let i = 0; i + 1 < buf.length; i += 2) s += buf.readUInt16BE(i);
  if (buf.length % 2) s += buf[buf.length - 1] << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

interface Parsed { v6: boolean; l3: number; l4: number; hdrLen: number; tcpLen: number }

function parse(f: Buffer): Parsed {
  const v6 = f.readUInt16BE(12) === 0x86dd;
  const l3 = 14;
  const l4 = v6 ? l3 + 40 : l3 + (f[l3] & 0x0f) * 4;
  const hdrLen = l4 + (f[l4 + 12] >> 4) * 4;
  const ipEnd = v6 ? l4 + f.readUInt16BE(l3 + 4) : l3 + f.readUInt16BE(l3 + 2);
  return { v6, l3, l4, hdrLen, tcpLen: ipEnd - l4 };
}

function pseudo(f: Buffer, p: Parsed): number {
  const addrs = p.v6 ? f.subarray(p.l3 + 8, p.l3 + 40) : f.subarray(p.l3 + 12, p.l3 + 20);
  return sum16(addrs, 6 + p.tcpLen);
}

function tcpChecksumOk(f: Buffer): boolean {
  const p = parse(f);
  return sum16(f.subarray(p.l4, p.l4 + p.tcpLen), pseudo(f, p)) === 0xffff;
}

function ipv4ChecksumOk(f: Buffer): boolean {
  return sum16(f.subarray(14, 34)) === 0xffff;
}

/** An Ethernet/IPv4-or-IPv6/TCP frame with timestamps; checksum fields as given by `csum`. */
function tcpFrame(o: { v6?: boolean; payload: Buffer; seq: number; id?: number; flags?: number; srcPort?: number; csum: 'full' | 'partial' }): Buffer {
  const v6 = o.v6 ?? false;
  const eth = Buffer.from('02000000000b02000000000a' + (v6 ? '86dd' : '0800'), 'hex');
  const tcp = Buffer.alloc(32);
  tcp.writeUInt16BE(o.srcPort ?? 40000, 0);
  tcp.writeUInt16BE(5201, 2);
  tcp.writeUInt32BE(o.seq >>> 0, 4);
  tcp.writeUInt32BE(777, 8);
  tcp[12] = 8 << 4;
  tcp[13] = o.flags ?? TCP_ACK;
  tcp.writeUInt16BE(502, 14);
  Buffer.from('0101080a0000000100000002', 'hex').copy(tcp, 20);
  const tcpLen = 32 + o.payload.length;
  let ip: Buffer;
  if (v6) {
    ip = Buffer.alloc(40);
    ip.writeUInt32BE(0x60000000, 0);
    ip.writeUInt16BE(tcpLen, 4);
    ip[6] = 6;
    ip[7] = 64;
    Buffer.from('fd000000000000000000000000000001fd000000000000000000000000000002', 'hex').copy(ip, 8);
  } else {
    ip = Buffer.alloc(20);
    ip[0] = 0x45;
    ip.writeUInt16BE(20 + tcpLen, 2);
    ip.writeUInt16BE(o.id ?? 100, 4);
    ip.writeUInt16BE(0x4000, 6);
    ip[8] = 64;
    ip[9] = 6;
    Buffer.from('0a2a00010a2a0002', 'hex').copy(ip, 12);
    ip.writeUInt16BE(~sum16(ip) & 0xffff, 10);
  }
  const f = Buffer.concat([eth, ip, tcp, o.payload]);
  const p = parse(f);
  const ps = pseudo(f, p);
  if (o.csum === 'partial') f.writeUInt16BE(ps, p.l4 + 16);
  else f.writeUInt16BE(~sum16(f.subarray(p.l4), ps) & 0xffff, p.l4 + 16);
  return f;
}

function vnetHdr(o: { flags: number; gsoType: number; hdrLen: number; gsoSize: number; csumStart: number; csumOffset: number }): Buffer {
  const h = Buffer.alloc(10);
  h[0] = o.flags;
  h[1] = o.gsoType;
  h.writeUInt16LE(o.hdrLen, 2);
  h.writeUInt16LE(o.gsoSize, 4);
  h.writeUInt16LE(o.csumStart, 6);
  h.writeUInt16LE(o.csumOffset, 8);
  return h;
}

function payloadOf(n: number, seed = 7): Buffer {
  const b = Buffer.alloc(n);
  let x = seed;
  for (let i = 0; i < n; i++) { x = (x * 1103515245 + 12345) >>> 0; b[i] = x >>> 24; }
  return b;
}

function split(superFrame: Buffer, v6: boolean, mss: number, mtu = MTU): Buffer[] | number {
  const p = parse(superFrame);
  const hdr = vnetHdr({ flags: VNET_F_NEEDS_CSUM, gsoType: v6 ? GSO_TCPV6 : GSO_TCPV4, hdrLen: p.hdrLen, gsoSize: mss, csumStart: p.l4, csumOffset: 16 });
  return addon.engineSegmentForTest(Buffer.concat([hdr, superFrame]), mtu);
}

for (const v6 of [false, true]) {
  t.test(`TSO split of an IPv${v6 ? 6 : 4} super-frame`, async (t) => {
    const mss = v6 ? MSS - 20 : MSS;
    const payload = payloadOf(10_000);
    const segs = split(tcpFrame({ v6, payload, seq: 0xfffff000, id: 65530, flags: TCP_ACK | TCP_PSH, csum: 'partial' }), v6, mss);
    if (typeof segs === 'number') throw new Error(`split failed: ${segs}`);
    t.equal(segs.length, Math.ceil(10_000 / mss), 'one segment per MSS');
    const joined: Buffer[] = [];
    segs.forEach((s, i) => {
      const p = parse(s);
      t.ok(s.length <= 14 + MTU, `segment ${i} fits the MTU`);
      t.equal(p.tcpLen + p.l4, s.length, `segment ${i}: IP length field matches`);
      t.ok(tcpChecksumOk(s), `segment ${i}: TCP checksum valid`);
      if (!v6) {
        t.ok(ipv4ChecksumOk(s), `segment ${i}: IPv4 header checksum valid`);
        t.equal(s.readUInt16BE(18), (65530 + i) & 0xffff, `segment ${i}: IPv4 ID increments (wrapping)`);
      }
      t.equal(s.readUInt32BE(p.l4 + 4), (0xfffff000 + i * mss) >>> 0, `segment ${i}: sequence number (wrapping)`);
      t.equal(s[p.l4 + 13] & TCP_PSH, i === segs.length - 1 ? TCP_PSH : 0, `segment ${i}: PSH only on the last`);
      joined.push(s.subarray(p.hdrLen));
    });
    t.ok(Buffer.concat(joined).equals(payload), 'payload preserved in order');
  });
}

t.test('split refuses segments over the MTU and non-TCP super-frames', async (t) => {
  const f = tcpFrame({ payload: payloadOf(5000), seq: 1, csum: 'partial' });
  t.equal(split(f, false, 1500), -2, 'gso_size too large for the MTU: kSplitTooBig');
  t.equal(split(f, true, MSS), -1, 'gso type does not match the frame: kSplitMalformed');
});

t.test('a non-GSO frame with NEEDS_CSUM gets its checksum completed', async (t) => {
  const f = tcpFrame({ payload: payloadOf(333), seq: 5, csum: 'partial' });
  t.notOk(tcpChecksumOk(f), 'partial checksum does not verify yet');
  const p = parse(f);
  const out = addon.engineSegmentForTest(
    Buffer.concat([vnetHdr({ flags: VNET_F_NEEDS_CSUM, gsoType: 0, hdrLen: 0, gsoSize: 0, csumStart: p.l4, csumOffset: 16 }), f]), MTU);
  if (typeof out === 'number') throw new Error(`failed: ${out}`);
  t.equal(out.length, 1, 'one frame');
  t.ok(tcpChecksumOk(out[0]), 'checksum completed');
});

function segmentsOf(total: number, o: { seq?: number; id?: number; srcPort?: number; v6?: boolean } = {}): Buffer[] {
  const superFrame = tcpFrame({ v6: o.v6, payload: payloadOf(total, o.srcPort ?? 7), seq: o.seq ?? 1000, id: o.id ?? 1, srcPort: o.srcPort, flags: TCP_ACK | TCP_PSH, csum: 'partial' });
  const segs = split(superFrame, o.v6 ?? false, o.v6 ? MSS - 20 : MSS);
  if (typeof segs === 'number') throw new Error(`split failed: ${segs}`);
  return segs;
}

t.test('coalescing in-order segments of one flow into one TSO write', async (t) => {
  const segs = segmentsOf(10_000);
  const writes = addon.engineCoalesceForTest(segs);
  t.equal(writes.length, 1, 'one write');
  const w = writes[0];
  t.equal(w.count, segs.length, 'all segments');
  t.same(w.hdr, { flags: VNET_F_NEEDS_CSUM, gsoType: GSO_TCPV4, hdrLen: 14 + 20 + 32, gsoSize: MSS, csumStart: 34, csumOffset: 16 }, 'virtio_net_hdr for TSO');
  const p = parse(w.frame);
  t.equal(p.l4 + p.tcpLen, w.frame.length, 'IPv4 total length covers the coalesced payload');
  t.ok(ipv4ChecksumOk(w.frame), 'IPv4 header checksum valid');
  t.equal(w.frame.readUInt16BE(p.l4 + 16), pseudo(w.frame, p), 'TCP checksum field holds the pseudo-header sum (CHECKSUM_PARTIAL)');
  t.equal(w.frame[p.l4 + 13] & TCP_PSH, TCP_PSH, 'PSH of the last segment kept');
  t.ok(w.frame.subarray(p.hdrLen).equals(payloadOf(10_000)), 'payload in order');

  const v6 = addon.engineCoalesceForTest(segmentsOf(6000, { v6: true }));
  t.equal(v6.length, 1, 'IPv6 segments coalesce too');
  t.equal(v6[0].hdr.gsoType, GSO_TCPV6, 'as TCPV6');
});

/** Which input frames each write carries, in its order: a write is the
 *  first frame's headers and the payloads of its segments, so its payload is
 *  cut at the input segments' sequence numbers, and each piece must be one
 *  input frame's payload, byte for byte. Throws on a piece that is none. */
function framesOfWrites(inputs: Buffer[], writes: Array<{ frame: Buffer; count: number }>): number[][] {
  const bySeq = new Map<number, number>();
  inputs.forEach((f, i) => bySeq.set(f.readUInt32BE(parse(f).l4 + 4), i));
  return writes.map((w) => {
    const p = parse(w.frame);
    const payload = w.frame.subarray(p.hdrLen, p.l4 + p.tcpLen);
    const seq0 = w.frame.readUInt32BE(p.l4 + 4);
    const carried: number[] = [];
    for (let off = 0; off < payload.length;) {
      const i = bySeq.get((seq0 + off) >>> 0);
      if (i === undefined) throw new Error(`a write holds bytes at seq ${(seq0 + off) >>> 0} that start no input frame`);
      const q = parse(inputs[i]);
      const own = inputs[i].subarray(q.hdrLen, q.l4 + q.tcpLen);
      if (!payload.subarray(off, off + own.length).equals(own)) throw new Error(`frame ${i}'s payload is altered in its write`);
      carried.push(i);
      off += own.length;
    }
    if (carried.length !== w.count) throw new Error(`a write of ${w.count} frames carries ${carried.length}`);
    return carried;
  });
}

t.test('coalescing never reorders a flow and skips what it cannot merge', async (t) => {
  const segs = segmentsOf(10_000);
  const swapped = [segs[0], segs[1], segs[3], segs[2], ...segs.slice(4)];
  const writes = addon.engineCoalesceForTest(swapped);
  t.ok(writes.length > 1, 'a gap ends the run');
  const carried = framesOfWrites(swapped, writes);
  t.same(carried.flat(), swapped.map((_, i) => i), 'every frame is written exactly once, intact, in arrival order');

  const bad = segmentsOf(5000);
  bad[2] = Buffer.from(bad[2]);
  bad[2][bad[2].length - 1] ^= 0xff;
  const badWrites = addon.engineCoalesceForTest(bad);
  const alone = badWrites.find((w) => w.first === 2);
  t.equal(alone?.count, 1, 'a segment with a bad checksum is written alone');
  t.same(alone?.hdr.flags, 0, 'with a zero header: the kernel checks it and counts the error');

  const a = segmentsOf(5000, { srcPort: 40001 });
  const b = segmentsOf(5000, { srcPort: 40002, seq: 9_000_000, id: 5000 });
  const interleaved = a.flatMap((s, i) => [s, b[i]]);
  const both = addon.engineCoalesceForTest(interleaved);
  t.equal(both.length, 2, 'two interleaved flows make two writes');
  t.same(both.map((w) => w.count), [a.length, b.length], 'each with all its segments');
});

/** Rewrites the IPv4 header checksum of a frame (IPv4 at offset 14). */
function refreshIpv4Checksum(f: Buffer): void {
  const ihlBytes = (f[14] & 0x0f) * 4;
  f.writeUInt16BE(0, 24);
  f.writeUInt16BE(~sum16(f.subarray(14, 14 + ihlBytes)) & 0xffff, 24);
}

/** Rewrites the TCP checksum of a frame. */
function refreshTcpChecksum(f: Buffer): void {
  const p = parse(f);
  f.writeUInt16BE(0, p.l4 + 16);
  f.writeUInt16BE(~sum16(f.subarray(p.l4, p.l4 + p.tcpLen), pseudo(f, p)) & 0xffff, p.l4 + 16);
}

/** The same IPv4 frame with 4 bytes of IP options (NOP, NOP, NOP, EOL). */
function withIpOptions(f: Buffer): Buffer {
  const out = Buffer.concat([f.subarray(0, 34), Buffer.from([1, 1, 1, 0]), f.subarray(34)]);
  out[14] = 0x46;
  out.writeUInt16BE(out.readUInt16BE(16) + 4, 16);
  refreshIpv4Checksum(out);
  return out;
}

t.test('coalescing refuses a segment whose IPv4 header checksum is wrong', async (t) => {
  const segs = segmentsOf(5000);
  const bad = Buffer.from(segs[1]);
  bad[24] ^= 0x55;
  const input = [segs[0], bad, ...segs.slice(2)];
  const writes = addon.engineCoalesceForTest(input);
  const alone = writes.find((w) => w.first === 1);
  t.equal(alone?.count, 1, 'the corrupt segment is written alone');
  t.ok(alone?.frame.equals(bad), 'unmodified: its checksum is not "repaired", the kernel drops it');
  t.same(writes.map((w) => w.first), [0, 1, 2], 'before it, itself, then the rest of the flow, in order');
});

t.test('coalescing keeps segments apart whose TCP reserved/AE bits differ', async (t) => {
  const segs = segmentsOf(5000);
  const ae = Buffer.from(segs[1]);
  ae[34 + 12] |= 0x01; // AccECN AE bit
  refreshTcpChecksum(ae);
  const writes = addon.engineCoalesceForTest([segs[0], ae, ...segs.slice(2)]);
  t.same(writes.map((w) => w.first), [0, 1, 2], 'the AE segment starts and ends a write of its own');
  const withAe = writes.find((w) => w.first === 1);
  t.equal(withAe?.count, 1, 'not merged with the segments after it either');
  t.equal((withAe?.frame[34 + 12] ?? 0) & 0x01, 1, 'its AE bit reaches the TAP');
  t.equal(writes.find((w) => w.first === 2)?.count, segs.length - 2, 'the segments after it still coalesce');
});

t.test('a frame of a held flow that cannot be merged does not overtake it', async (t) => {
  const segs = segmentsOf(5000);
  const options = withIpOptions(segs[2]);
  t.ok(tcpChecksumOk(options) && sum16(options.subarray(14, 38)) === 0xffff, 'the IP-options segment is valid');
  const optWrites = addon.engineCoalesceForTest([segs[0], segs[1], options]);
  t.same(optWrites.map((w) => [w.first, w.count]), [[0, 2], [2, 1]], 'IPv4 options: the held segments are written first');

  const fragment = Buffer.from(segs[2]);
  fragment[20] |= 0x20; // MF: a first fragment, which ParseTcp refuses
  refreshIpv4Checksum(fragment);
  const fragWrites = addon.engineCoalesceForTest([segs[0], segs[1], fragment]);
  t.same(fragWrites.map((w) => [w.first, w.count]), [[0, 2], [2, 1]], 'first fragment: the held segments are written first');

  const other = segmentsOf(3000, { srcPort: 40009, seq: 7_000_000, id: 900 });
  const mixed = addon.engineCoalesceForTest([segs[0], segs[1], other[0], other[1], fragment]);
  t.same(mixed.map((w) => [w.first, w.count]), [[0, 2], [2, 2], [4, 1]],
    'a fragment closes every held flow between its hosts (its ports may be unreadable)');
});

// ---- UDP: USO super-frames from the TAP, coalesced UDP writes to it ----

const GSO_UDP_L4 = 5;
const UDP_HDR_BYTES = 8;

interface UdpParsed { v6: boolean; l3: number; l4: number; udpLen: number }

function parseUdp(f: Buffer): UdpParsed {
  const v6 = f.readUInt16BE(12) === 0x86dd;
  const l3 = 14;
  const l4 = v6 ? l3 + 40 : l3 + (f[l3] & 0x0f) * 4;
  const ipEnd = v6 ? l4 + f.readUInt16BE(l3 + 4) : l3 + f.readUInt16BE(l3 + 2);
  return { v6, l3, l4, udpLen: ipEnd - l4 };
}

function udpPseudo(f: Buffer, p: UdpParsed, udpLen = p.udpLen): number {
  const addrs = p.v6 ? f.subarray(p.l3 + 8, p.l3 + 40) : f.subarray(p.l3 + 12, p.l3 + 20);
  return sum16(addrs, 17 + udpLen);
}

function udpChecksumOk(f: Buffer): boolean {
  const p = parseUdp(f);
  return f.readUInt16BE(p.l4 + 6) !== 0 && sum16(f.subarray(p.l4, p.l4 + p.udpLen), udpPseudo(f, p)) === 0xffff;
}

/** An Ethernet/IPv4-or-IPv6/UDP frame; its checksum full, the pseudo-header
 *  sum a sender with offloads leaves (partial), or none (zero, IPv4 only). */
function udpFrame(o: { v6?: boolean; payload: Buffer; id?: number; ttl?: number; srcPort?: number; csum: 'full' | 'partial' | 'zero' }): Buffer {
  const v6 = o.v6 ?? false;
  const eth = Buffer.from('02000000000b02000000000a' + (v6 ? '86dd' : '0800'), 'hex');
  const udpLen = UDP_HDR_BYTES + o.payload.length;
  const udp = Buffer.alloc(UDP_HDR_BYTES);
  udp.writeUInt16BE(o.srcPort ?? 40000, 0);
  udp.writeUInt16BE(5300, 2);
  udp.writeUInt16BE(udpLen & 0xffff, 4);
  let ip: Buffer;
  if (v6) {
    ip = Buffer.alloc(40);
    ip.writeUInt32BE(0x60000000, 0);
    ip.writeUInt16BE(udpLen & 0xffff, 4);
    ip[6] = 17;
    ip[7] = o.ttl ?? 64;
    Buffer.from('fd000000000000000000000000000001fd000000000000000000000000000002', 'hex').copy(ip, 8);
  } else {
    ip = Buffer.alloc(20);
    ip[0] = 0x45;
    ip.writeUInt16BE((20 + udpLen) & 0xffff, 2);
    ip.writeUInt16BE(o.id ?? 100, 4);
    ip.writeUInt16BE(0x4000, 6);
    ip[8] = o.ttl ?? 64;
    ip[9] = 17;
    Buffer.from('0a2a00010a2a0002', 'hex').copy(ip, 12);
    ip.writeUInt16BE(~sum16(ip) & 0xffff, 10);
  }
  const f = Buffer.concat([eth, ip, udp, o.payload]);
  const p = parseUdp(f);
  if (o.csum === 'partial') f.writeUInt16BE(udpPseudo(f, p, udpLen), p.l4 + 6);
  else if (o.csum === 'full') f.writeUInt16BE((~sum16(f.subarray(p.l4), udpPseudo(f, p, udpLen)) & 0xffff) || 0xffff, p.l4 + 6);
  return f;
}

function splitUdp(superFrame: Buffer, gsoSize: number, mtu = MTU): Buffer[] | number {
  const p = parseUdp(superFrame);
  const hdr = vnetHdr({ flags: VNET_F_NEEDS_CSUM, gsoType: GSO_UDP_L4, hdrLen: p.l4 + UDP_HDR_BYTES, gsoSize, csumStart: p.l4, csumOffset: 6 });
  return addon.engineSegmentForTest(Buffer.concat([hdr, superFrame]), mtu);
}

/** Datagrams of one flow as a sender's stack would put them on the TAP:
 *  consecutive IPv4 IDs, full checksums. */
function datagramsOf(sizes: number[], o: { v6?: boolean; id?: number; srcPort?: number } = {}): Buffer[] {
  return sizes.map((n, i) => udpFrame({ v6: o.v6, payload: payloadOf(n, 100 + i + (o.srcPort ?? 0)), id: (o.id ?? 1) + i, srcPort: o.srcPort, csum: 'full' }));
}

for (const v6 of [false, true]) {
  t.test(`USO split of an IPv${v6 ? 6 : 4} UDP super-frame (a UDP_SEGMENT sender's)`, async (t) => {
    const gsoSize = 1000;
    const payload = payloadOf(7 * gsoSize + 333);
    const segs = splitUdp(udpFrame({ v6, payload, id: 65534, csum: 'partial' }), gsoSize);
    if (typeof segs === 'number') throw new Error(`split failed: ${segs}`);
    t.equal(segs.length, 8, 'one datagram per gso_size, the last shorter');
    segs.forEach((s, i) => {
      const p = parseUdp(s);
      const want = i < 7 ? gsoSize : 333;
      t.equal(p.l4 + p.udpLen, s.length, `datagram ${i}: IP length field matches`);
      t.equal(s.readUInt16BE(p.l4 + 4), UDP_HDR_BYTES + want, `datagram ${i}: its own UDP length`);
      t.ok(udpChecksumOk(s), `datagram ${i}: UDP checksum valid and not zero`);
      if (!v6) {
        t.ok(ipv4ChecksumOk(s), `datagram ${i}: IPv4 header checksum valid`);
        t.equal(s.readUInt16BE(18), (65534 + i) & 0xffff, `datagram ${i}: IPv4 ID increments (wrapping)`);
      }
    });
    t.ok(Buffer.concat(segs.map((s) => s.subarray(parseUdp(s).l4 + UDP_HDR_BYTES))).equals(payload), 'payload preserved in order');
    t.equal(splitUdp(udpFrame({ v6, payload, csum: 'partial' }), MTU), -2, 'gso_size too large for the MTU: kSplitTooBig');
  });
}

t.test('coalescing consecutive datagrams of one UDP flow into one USO write, only for a TAP that takes USO', async (t) => {
  for (const v6 of [false, true]) {
    const sizes = [1200, 1200, 1200, 1200, 700];
    const dgs = datagramsOf(sizes, { v6 });
    const writes = addon.engineCoalesceForTest(dgs, true);
    t.equal(writes.length, 1, `IPv${v6 ? 6 : 4}: one write`);
    const w = writes[0];
    const l4 = v6 ? 54 : 34;
    t.same(w.hdr, { flags: VNET_F_NEEDS_CSUM, gsoType: GSO_UDP_L4, hdrLen: l4 + 8, gsoSize: 1200, csumStart: l4, csumOffset: 6 }, 'virtio_net_hdr for USO');
    const p = parseUdp(w.frame);
    const total = sizes.reduce((a, b) => a + b, 0);
    t.equal(p.udpLen, UDP_HDR_BYTES + total, 'IP length covers every datagram');
    t.equal(w.frame.readUInt16BE(l4 + 4), UDP_HDR_BYTES + total, 'UDP length too (the kernel derives each datagram\'s from it)');
    if (!v6) t.ok(ipv4ChecksumOk(w.frame), 'IPv4 header checksum valid');
    t.equal(w.frame.readUInt16BE(l4 + 6), udpPseudo(w.frame, p), 'UDP checksum field holds the pseudo-header sum (CHECKSUM_PARTIAL)');
    const back = addon.engineSegmentForTest(Buffer.concat([vnetHdr(w.hdr), w.frame]), MTU);
    if (typeof back === 'number') throw new Error(`split failed: ${back}`);
    t.same(back.map((b) => b.toString('hex')), dgs.map((d) => d.toString('hex')), 'segmenting the write gives back every datagram byte for byte');
    t.same(addon.engineCoalesceForTest(datagramsOf(sizes, { v6 })).map((x) => x.count), [1, 1, 1, 1, 1], 'a TAP without USO: written one by one');
  }
});

t.test('UDP coalescing refuses what the kernel would not give back unchanged', async (t) => {
  const counts = (frames: Buffer[]): number[] => addon.engineCoalesceForTest(frames, true).map((w) => w.count);
  t.same(counts(datagramsOf([500, 500, 900, 500])), [2, 2], 'a longer datagram ends the run and starts one of its own size');
  t.same(counts(datagramsOf([500, 300, 500])), [2, 1], 'a shorter one is the last of its run');
  const zero = datagramsOf([500, 500, 500]).map((d, i) => (i === 1 ? udpFrame({ payload: d.subarray(42), id: 2, csum: 'zero' }) : d));
  t.same(counts(zero), [1, 1, 1], 'a datagram without checksum (IPv4 zero) is written alone, and splits the run');
  const bad = datagramsOf([500, 500, 500]);
  bad[1] = Buffer.from(bad[1]);
  bad[1][bad[1].length - 1] ^= 0x5a;
  const badWrites = addon.engineCoalesceForTest(bad, true);
  t.same(badWrites.map((w) => [w.first, w.count, w.hdr.flags]), [[0, 1, 0], [1, 1, 0], [2, 1, 0]], 'a corrupt datagram is written alone with a zero header: the kernel counts it');
  const ttl = datagramsOf([500, 500, 500]);
  ttl[2] = udpFrame({ payload: ttl[2].subarray(42), id: 3, ttl: 63, csum: 'full' });
  t.same(counts(ttl), [2, 1], 'another TTL ends the run');
  const ids = datagramsOf([500, 500, 500]);
  ids[1] = udpFrame({ payload: ids[1].subarray(42), id: 9, csum: 'full' });
  t.same(counts(ids), [1, 1, 1], 'IPv4 IDs that do not count up are not merged');
  t.same(counts(datagramsOf(new Array<number>(100).fill(64))), [64, 36], 'at most 64 datagrams in one write');
  const a = datagramsOf([400, 400, 400], { srcPort: 40001 });
  const b = datagramsOf([400, 400, 400], { srcPort: 40002, id: 500 });
  const mixed = addon.engineCoalesceForTest([a[0], b[0], a[1], b[1], a[2], b[2]], true);
  t.same(mixed.map((w) => [w.first, w.count]), [[0, 3], [1, 3]], 'two interleaved flows, each coalesced in its order');
  const tcp = segmentsOf(3000);
  const tcpAndUdp = addon.engineCoalesceForTest([...tcp, ...datagramsOf([400, 400])], true);
  t.same(tcpAndUdp.map((w) => [w.hdr.gsoType, w.count]), [[GSO_TCPV4, tcp.length], [GSO_UDP_L4, 2]], 'TCP and UDP flows side by side');
});

// The same functions in the engine's own loops, without root: A reads a TSO
// super-frame from its stand-in TAP (virtio header and all, as the kernel
// would hand it over with TUNSETOFFLOAD), cuts it, sends it over loopback
// with UDP GSO; B receives it with UDP_GRO and writes it to its stand-in as
// one coalesced TSO write.
t.test('through two engines on stand-in TAPs: a TSO super-frame is cut, sent and coalesced back intact', async (t) => {
  const VNI = 42;
  const a = openNativeHost(t, { vni: VNI, mac: Buffer.from('02000000000a', 'hex'), local: '127.0.0.1', peers: ['127.0.0.2'], mtu: MTU });
  const b = openNativeHost(t, { vni: VNI, mac: Buffer.from('02000000000b', 'hex'), local: '127.0.0.2', port: a.engine.port, peers: ['127.0.0.1'], mtu: MTU });
  const payload = payloadOf(5000);
  const superFrame = tcpFrame({ payload, seq: 1000, flags: TCP_ACK | TCP_PSH, csum: 'partial' });
  const p = parse(superFrame);
  a.tap.inject(superFrame, vnetHdr({ flags: VNET_F_NEEDS_CSUM, gsoType: GSO_TCPV4, hdrLen: p.hdrLen, gsoSize: MSS, csumStart: p.l4, csumOffset: 16 }));
  const segments = Math.ceil(payload.length / MSS);

  const got: TapMessage[] = [];
  const arrived = (): number => got.reduce((n, m) => n + m.frame.length - parse(m.frame).hdrLen, 0);
  t.ok(await eventually(() => {
    got.push(...b.tap.take());
    return arrived() >= payload.length;
  }, { timeoutMs: 3000 }), 'the payload came out of B');
  t.same(Buffer.concat(got.map((m) => m.frame.subarray(parse(m.frame).hdrLen))), payload, 'intact and in order');
  t.equal(got.length, 1, 'as one write');
  const hdr = got[0].hdr;
  t.same({ gsoType: hdr[1], gsoSize: hdr.readUInt16LE(4) }, { gsoType: GSO_TCPV4, gsoSize: MSS }, 'a TSO write of the sender MSS');
  t.ok(ipv4ChecksumOk(got[0].frame), 'its IPv4 header checksum is valid');
  t.ok(await eventually(() => b.engine.counters().rxPackets === segments, { timeoutMs: 3000 }), `B counted ${segments} frames`);
  const da = a.engine.counters();
  t.match(da, { txPackets: segments, detail: { txTapReads: 1, txTsoFrames: 1 } }, `A read one super-frame and sent ${segments} segments`);
  // B merges only segments whose TCP checksum is valid: A's were.
  t.match(b.engine.counters().detail, { rxCoalescedWrites: 1, rxTapWrites: 1 }, 'B coalesced them into one TAP write');
});

t.test('a frame from the TAP is judged before any lookup: runt, tag, size, offload header', async (t) => {
  const f = tcpFrame({ payload: payloadOf(333), seq: 5, csum: 'partial' });
  const p = parse(f);
  const csum = (start: number, offset: number) => vnetHdr({ flags: VNET_F_NEEDS_CSUM, gsoType: 0, hdrLen: 0, gsoSize: 0, csumStart: start, csumOffset: offset });
  const none = vnetHdr({ flags: 0, gsoType: 0, hdrLen: 0, gsoSize: 0, csumStart: 0, csumOffset: 0 });
  t.equal(addon.engineTxDropForTest(Buffer.concat([csum(p.l4, 16), f]), MTU, false), null, 'a good frame goes on');
  t.equal(addon.engineTxDropForTest(Buffer.concat([csum(f.length - 1, 16), f]), MTU, false), 'tx_bad_offload', 'checksum field beyond the frame');
  t.equal(addon.engineTxDropForTest(Buffer.concat([csum(f.length + 100, 0), f]), MTU, false), 'tx_bad_offload', 'checksum start beyond the frame');
  t.equal(addon.engineTxDropForTest(Buffer.concat([none, f.subarray(0, 13)]), MTU, false), 'tx_runt');
  t.equal(addon.engineTxDropForTest(Buffer.concat([none, f]), f.length - 15, false), 'tx_oversize', 'one byte over the MTU');
  const tagged = Buffer.concat([f.subarray(0, 12), Buffer.from([0x81, 0x00, 0x00, 0x05]), f.subarray(12)]);
  t.equal(addon.engineTxDropForTest(Buffer.concat([none, tagged]), MTU, false), 'tx_vlan_tagged');
  t.equal(addon.engineTxDropForTest(Buffer.concat([none, tagged]), MTU, true), null, 'allowed with --allow-vlan');
});
