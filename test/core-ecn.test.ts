// The packet core's envelope rules (native/core_ecn.h) through the test-only
// bindings: the outer TOS for an inner frame (fixed or inherited DSCP, ECN per
// RFC 6040 §4.1 normal mode) and decapsulation (RFC 6040 §4.2, as the
// kernel's INET_ECN_decapsulate). The IPv4 checksum after marking CE is
// checked with an independent RFC 1071 sum. test/envelope.test.ts runs the
// same rules on the wire against a kernel vxlan peer.
import t from 'tap';

import { frame, loadTestAddon } from './fakes';

const addon = loadTestAddon();
const DST = '02:00:00:00:00:02';
const SRC = '02:00:00:00:00:01';
const NOT_ECT = 0x00;
const ECT1 = 0x01;
const ECT0 = 0x02;
const CE = 0x03;

function ipv4Checksum(header: Buffer): number {
  let s = 0;
  for (let i = 0; i < header.length; i += 2) s += header.readUInt16BE(i);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

/** An IPv4 frame with this TOS byte and a valid header checksum. */
function ipv4Frame(tos: number): Buffer {
  const ip = Buffer.alloc(28);
  ip[0] = 0x45;
  ip[1] = tos;
  ip.writeUInt16BE(ip.length, 2);
  ip[8] = 64;
  ip[9] = 17;
  Buffer.from([10, 0, 0, 1, 10, 0, 0, 2]).copy(ip, 12);
  ip.writeUInt16BE(0xffff - ipv4Checksum(ip.subarray(0, 20)), 10);
  return frame(DST, SRC, ip, 0x0800);
}

/** An IPv6 frame with this traffic class. */
function ipv6Frame(tclass: number): Buffer {
  const ip = Buffer.alloc(48);
  ip.writeUInt32BE((6 << 28) | (tclass << 20) | 0x12345, 0);
  ip[6] = 17;
  ip[7] = 64;
  return frame(DST, SRC, ip, 0x86dd);
}

function vlanTagged(inner: Buffer): Buffer {
  return Buffer.concat([inner.subarray(0, 12), Buffer.from([0x81, 0x00, 0x00, 0x07]), inner.subarray(12)]);
}

const ipv4Tos = (f: Buffer): number => f[15];
const ipv6Tclass = (f: Buffer): number => (f.readUInt32BE(14) >>> 20) & 0xff;

t.test('encapsulation: inherit copies the DSCP and maps ECN as RFC 6040 normal mode', async (t) => {
  const dscp = 0x14 & ~3;
  for (const [make, label] of [[ipv4Frame, 'IPv4'], [ipv6Frame, 'IPv6'], [(x: number) => vlanTagged(ipv4Frame(x)), 'tagged IPv4']] as const) {
    t.equal(addon.coreOuterTosForTest(-1, make(0x14)), 0x14, `${label}: ping -Q 0x14 gives outer 0x14`);
    t.equal(addon.coreOuterTosForTest(-1, make(dscp | ECT1)), dscp | ECT1, `${label}: ECT(1) copied`);
    t.equal(addon.coreOuterTosForTest(-1, make(dscp | ECT0)), dscp | ECT0, `${label}: ECT(0) copied`);
    t.equal(addon.coreOuterTosForTest(-1, make(dscp | CE)), dscp | ECT0, `${label}: CE goes out as ECT(0)`);
  }
});

t.test('encapsulation: a fixed TOS keeps its DSCP and takes the inner ECN', async (t) => {
  t.equal(addon.coreOuterTosForTest(0xb8, ipv4Frame(0x00)), 0xb8, 'not-ECT inner: the byte as configured, ECN not-ECT');
  t.equal(addon.coreOuterTosForTest(0xb8, ipv4Frame(0x29)), 0xb9, 'inner ECT(1) with another DSCP: 0xb8 | ECT(1)');
  t.equal(addon.coreOuterTosForTest(0xbb, ipv4Frame(0x00)), 0xb8, 'configured ECN bits give way to the inner not-ECT');
  t.equal(addon.coreOuterTosForTest(0, ipv6Frame(CE)), ECT0, 'tos 0 (the default) still carries ECN: CE -> ECT(0)');
  t.equal(addon.coreOuterTosForTest(-1, frame(DST, SRC, 46, 0x0806)), 0, 'ARP carries no TOS: 0');
  t.equal(addon.coreOuterTosForTest(0x20, frame(DST, SRC, 46, 0x0806)), 0x20, 'ARP under a fixed TOS: its DSCP');
});

t.test('decapsulation: outer CE marks an ECN-capable inner packet CE', async (t) => {
  for (const ecn of [ECT0, ECT1]) {
    const f = ipv4Frame(0x10 | ecn);
    t.equal(addon.coreDecapEcnForTest(0x03, f), null, 'delivered');
    t.equal(ipv4Tos(f), 0x10 | CE, `IPv4 0x${ecn.toString(16)} -> CE, DSCP kept`);
    t.equal(ipv4Checksum(f.subarray(14, 34)), 0xffff, 'IPv4 header checksum still valid');
    const g = ipv6Frame(0x10 | ecn);
    t.equal(addon.coreDecapEcnForTest(0xfb, g), null, 'delivered');
    t.equal(ipv6Tclass(g), 0x10 | CE, 'IPv6 ECT -> CE, DSCP kept');
    t.equal(g.readUInt32BE(14) & 0xfffff, 0x12345, 'IPv6 flow label untouched');
  }
  const tagged = vlanTagged(ipv4Frame(ECT0));
  t.equal(addon.coreDecapEcnForTest(CE, tagged), null);
  t.equal(tagged[19], CE, 'a VLAN-tagged inner IPv4 packet is marked too');
  t.equal(ipv4Checksum(tagged.subarray(18, 38)), 0xffff, 'and its checksum kept valid');
});

t.test('decapsulation: outer CE over not-ECT drops; everything else passes unchanged', async (t) => {
  t.equal(addon.coreDecapEcnForTest(CE, ipv4Frame(0x10 | NOT_ECT)), 'rx_ecn_not_ect_ce', 'IPv4 not-ECT under CE');
  t.equal(addon.coreDecapEcnForTest(CE, ipv6Frame(NOT_ECT)), 'rx_ecn_not_ect_ce', 'IPv6 not-ECT under CE');
  const cases: Array<[number, number, string]> = [
    [ECT0, NOT_ECT, 'outer ECT(0) over not-ECT'],
    [ECT1, NOT_ECT, 'outer ECT(1) over not-ECT'],
    [NOT_ECT, ECT0, 'outer not-ECT over ECT(0)'],
    [ECT0, ECT1, 'outer ECT(0) over ECT(1)'],
    [CE, CE, 'outer CE over CE'],
    [-1, NOT_ECT, 'outer TOS unknown (the dgram path)'],
  ];
  for (const [outer, inner, label] of cases) {
    const f = ipv4Frame(0x20 | inner);
    const before = Buffer.from(f);
    t.equal(addon.coreDecapEcnForTest(outer, f), null, `${label}: delivered`);
    t.same(f, before, `${label}: unchanged`);
  }
  const arp = frame(DST, SRC, 46, 0x0806);
  t.equal(addon.coreDecapEcnForTest(CE, arp), null, 'a frame without an IP header passes under CE, as the kernel lets it');
  t.equal(addon.coreDecapEcnForTest(CE, ipv4Frame(0).subarray(0, 30)), null, 'a truncated IPv4 header is left alone');
});
