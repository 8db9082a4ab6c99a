// The conformance corpus: what each data path must do with one input, given
// the configuration it meets. test/conformance.test.ts runs every case
// through the dgram path (test/fakes.ts) and the native engine (a stand-in
// TAP and loopback UDP) and holds both to the same expected outcome, so a
// rule that differs between the paths fails here.
//
// Addresses are loopback ones so that the native run can bind them. Fields
// left out of `expect` are expected empty or zero.

import type { AcceptPolicy } from '../../src/config/config';
import { icmpv6Checksum } from '../../src/wire/ndisc';
import { ipv6Bytes } from '../../src/wire/ip';
import { LOOP_A, LOOP_B, LOOP_C, LOOP_STRANGER, frame, mac, vxlanDatagram } from '../fakes';

export const VNI = 42;
export const MTU = 1450;
/** The address of the vxland under test (the loopback addresses are test/fakes.ts's); its own MAC. */
export const LOCAL = LOOP_A;
export const OWN_MAC = '02:00:00:00:00:01';
export const OWN_MAC_2 = '02:00:00:00:00:02';
export const PEER_B = LOOP_B;
export const PEER_C = LOOP_C;
export const STRANGER = LOOP_STRANGER;
/** Every address a case may send from or to. */
export const REMOTES: readonly string[] = [PEER_B, PEER_C, STRANGER];

const MAC_X = '02:00:00:00:00:aa';
const MAC_Y = '02:00:00:00:00:bb';
const MAC_Z = '02:00:00:00:00:cc';
const BROADCAST = 'ff:ff:ff:ff:ff:ff';
/** An 802.1Q tag (VID 100) then IPv4: the payload of a tagged frame. */
const TAG_THEN_IPV4 = Buffer.from('0064080045000000', 'hex');

export interface CaseConfig {
  vni?: number;
  mtu?: number;
  allowVlan?: boolean;
  /** Default { kind: 'peers' }. */
  accept?: AcceptPolicy;
  peers?: readonly string[];
  statics?: ReadonlyArray<{ mac: string; vtep: string }>;
  /** Entries learned before the input arrives. */
  learned?: ReadonlyArray<{ mac: string; vtep: string }>;
  maxLearnedPerVtep?: number;
  /** ARP/ND suppression on (default off), and the neighbour table (static entries). */
  suppress?: boolean;
  neigh?: ReadonlyArray<{ ip: string; mac: string }>;
  /** A second network on the same host (the datagram's VNI picks it; its TAP's MAC is OWN_MAC_2). */
  second?: { vni: number; peers?: readonly string[]; accept?: AcceptPolicy };
}

export type CaseInput =
  /** A datagram arriving from `from` (one of REMOTES). */
  | { datagram: Buffer; from: string }
  /** A frame read from the TAP. */
  | { tapFrame: Buffer };

export interface Outcome {
  /** Frames written to the TAP, in order. */
  delivered: Buffer[];
  /** Datagrams sent, by destination (sorted by `to`, then in order). */
  sent: Array<{ to: string; datagram: Buffer }>;
  /** Stats drops by reason name (status, metrics). */
  drops: Record<string, number>;
  /** Per-VTEP drops (status), by VTEP ('other' = an untracked sender). */
  vtepDrops: Record<string, number>;
  rxPackets: number;
  txPackets: number;
  /** Fdb learn events: what `vxland monitor` and `fdb show` see. */
  learned: Array<{ type: 'learned' | 'moved'; mac: string; vtep: string }>;
  /** Table entries (MACs) and the flood list ('flood') marked used. */
  used: string[];
  /** Drops before a datagram's network is known: the host's Stats, and its per-VTEP drops. */
  hostDrops: Record<string, number>;
  hostVtepDrops: Record<string, number>;
  /** Doctor: senders of VNIs no network has (the host's Stats). */
  foreign: Array<{ address: string; vni: number }>;
  /** Doctor: senders the source policy refused, with datagram counts. */
  refused: Array<{ address: string; count: number }>;
  learnRefused: { fdbFull: number; vtepFull: number; rate: number };
  /** ARP/ND suppression (Stats events): answers given on the TAP. */
  suppressed: { arp: number; nd: number };
  /** ICMP too-big replies written to the TAP (Stats event icmp_too_big_sent). */
  icmpTooBig: number;
  /** The second network's side, when the case has one (fields left out: empty). */
  second?: SecondOutcome;
}

export interface SecondOutcome {
  delivered: Buffer[];
  drops: Record<string, number>;
  learned: Array<{ type: 'learned' | 'moved'; mac: string; vtep: string }>;
  refused: Array<{ address: string; count: number }>;
}

export interface ConformanceCase {
  name: string;
  config: CaseConfig;
  inputs: CaseInput[];
  expect: Partial<Omit<Outcome, 'second'>> & { second?: Partial<SecondOutcome> };
}

const rx = (from: string, inner: Buffer, vni = VNI, flags = 0x08): CaseInput => ({ datagram: vxlanDatagram(vni, inner, flags), from });
const tx = (f: Buffer): CaseInput => ({ tapFrame: f });
const toUs = (src: string, payload: Buffer | number = 46, ethertype = 0x0800) => frame(OWN_MAC, src, payload, ethertype);
const fromUs = (dst: string, payload: Buffer | number = 46, ethertype = 0x0800) => frame(dst, OWN_MAC, payload, ethertype);
const sentTo = (to: string, f: Buffer) => ({ to, datagram: vxlanDatagram(VNI, f) });


const valid = toUs(MAC_X);
const fullMtu = toUs(MAC_X, MTU);
const oversize = toUs(MAC_X, MTU + 1);
const tagged = toUs(MAC_X, TAG_THEN_IPV4, 0x8100);
/** An IPv4 header (checksum left zero: the data path never checks it) with this TOS byte, then padding. */
const ipv4WithTos = (tos: number): Buffer => { const b = Buffer.alloc(46); b[0] = 0x45; b[1] = tos; b.writeUInt16BE(46, 2); b[8] = 64; b[9] = 17; return b; };
const innerCe = toUs(MAC_X, ipv4WithTos(0x03));
const innerNotEct = fromUs(MAC_Y, ipv4WithTos(0x00));
const taggedFullMtu = frame(OWN_MAC, MAC_X, Buffer.concat([TAG_THEN_IPV4, Buffer.alloc(MTU - 4)]), 0x8100);

// ---- ARP/ND suppression: requests as the TAP's kernel sends them, and the
// answers the address's owner would give (built here, independently of the core) ----
const OUR_IP = '10.9.0.1';
const KNOWN_IP = '10.9.0.2';
const UNKNOWN_IP = '10.9.0.3';
const KNOWN_MAC = '02:00:00:00:00:dd';
const OUR_IP6 = 'fd00::1';
const KNOWN_IP6 = 'fd00::2';
const UNKNOWN_IP6 = 'fd00::3';
const ipv4 = (ip: string) => Buffer.from(ip.split('.').map(Number));
function arp(op: number, sha: string, spa: string, tha: string, tpa: string): Buffer {
  const a = Buffer.alloc(28);
  a.writeUInt16BE(1, 0);
  a.writeUInt16BE(0x0800, 2);
  a[4] = 6;
  a[5] = 4;
  a.writeUInt16BE(op, 6);
  mac(sha).copy(a, 8);
  ipv4(spa).copy(a, 14);
  mac(tha).copy(a, 18);
  ipv4(tpa).copy(a, 24);
  return a;
}
const arpRequest = (spa: string, tpa: string) => fromUs(BROADCAST, arp(1, OWN_MAC, spa, '00:00:00:00:00:00', tpa), 0x0806);
const arpReply = frame(OWN_MAC, KNOWN_MAC, arp(2, KNOWN_MAC, KNOWN_IP, OWN_MAC, OUR_IP), 0x0806);
/** IPv6 + ICMPv6 (type, flags word, target, options) from src to dst, checksummed. */
function icmp6(dstMac: string, srcMac: string, src: string, dst: string, type: number, flags: number, target: string, opts: Buffer, hopLimit = 255): Buffer {
  const body = Buffer.concat([Buffer.from([type, 0, 0, 0, flags, 0, 0, 0]), ipv6Bytes(target), opts]);
  const ip = Buffer.alloc(40);
  ip[0] = 0x60;
  ip.writeUInt16BE(body.length, 4);
  ip[6] = 58;
  ip[7] = hopLimit;
  ipv6Bytes(src).copy(ip, 8);
  ipv6Bytes(dst).copy(ip, 24);
  const f = frame(dstMac, srcMac, Buffer.concat([ip, body]), 0x86dd);
  f.writeUInt16BE(icmpv6Checksum(f, 14), 14 + 40 + 2);
  return f;
}
const lla = (type: number, m: string) => Buffer.concat([Buffer.from([type, 1]), mac(m)]);
const solicitedNode = (ip: string) => `ff02::1:ff00:${ip.split(':').at(-1)}`;
const ns = (src: string, target: string, slla: boolean, hopLimit = 255) =>
  icmp6('33:33:ff:00:00:02', OWN_MAC, src, solicitedNode(target), 135, 0, target, slla ? lla(1, OWN_MAC) : Buffer.alloc(0), hopLimit);
const naReply = icmp6(OWN_MAC, KNOWN_MAC, KNOWN_IP6, OUR_IP6, 136, 0x60, KNOWN_IP6, lla(2, KNOWN_MAC));
const SUPPRESSING: CaseConfig = { peers: [PEER_B], suppress: true, neigh: [{ ip: KNOWN_IP, mac: KNOWN_MAC }, { ip: KNOWN_IP6, mac: KNOWN_MAC }] };
const floods = (f: Buffer) => ({ sent: [sentTo(PEER_B, f)], txPackets: 1, used: ['flood'] });

// ---- PMTU: oversize frames no router may fragment, and the ICMP error a
// router would send back (built here, independently of the core) ----
const HOST_IP = '10.9.0.1';
const FAR_IP = '10.9.0.9';
const HOST_IP6 = 'fd00::1';
const FAR_IP6 = 'fd00::9';
/** The Internet checksum of b (RFC 1071). */
function inetChecksum(b: Buffer): number {
  let sum = 0;
  for (let i = 0; i + 1 < b.length; i += 2) sum += b.readUInt16BE(i);
  if (b.length % 2 === 1) sum += b[b.length - 1] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return ~sum & 0xffff;
}
/** An IPv4 packet of totalBytes (payload 0xab) from src to dst. */
function ipv4Packet(src: string, dst: string, totalBytes: number, fragWord: number, proto = 17, firstPayloadByte = 0xab): Buffer {
  const p = Buffer.alloc(totalBytes, 0xab);
  p[0] = 0x45;
  p.writeUInt16BE(totalBytes, 2);
  p.writeUInt16BE(0x1234, 4);
  p.writeUInt16BE(fragWord, 6);
  p[8] = 61;
  p[9] = proto;
  p.writeUInt16BE(0, 10);
  ipv4(src).copy(p, 12);
  ipv4(dst).copy(p, 16);
  p.writeUInt16BE(inetChecksum(p.subarray(0, 20)), 10);
  p[20] = firstPayloadByte;
  return p;
}
/** An IPv6 packet of totalBytes (payload 0xab) from src to dst. */
function ipv6Packet(src: string, dst: string, totalBytes: number, nextHeader = 17, firstPayloadByte = 0xab): Buffer {
  const p = Buffer.alloc(totalBytes, 0xab);
  p[0] = 0x60;
  p.writeUInt16BE(totalBytes - 40, 4);
  p[6] = nextHeader;
  p[7] = 61;
  ipv6Bytes(src).copy(p, 8);
  ipv6Bytes(dst).copy(p, 24);
  p[40] = firstPayloadByte;
  return p;
}
const DF = 0x4000;
const bigV4 = (frag = DF, proto = 17, first = 0xab) => fromUs(MAC_X, ipv4Packet(HOST_IP, FAR_IP, MTU + 1, frag, proto, first));
const bigV6 = (dst = FAR_IP6, next = 17, first = 0xab) => fromUs(MAC_X, ipv6Packet(HOST_IP6, dst, MTU + 1, next, first), 0x86dd);
/** What a router answers bigV4() with (RFC 1191, RFC 1812 §4.3.2.3: 576 bytes in all). */
function fragNeeded(original: Buffer): Buffer {
  const quote = original.subarray(14, 14 + 576 - 28);
  const icmp = Buffer.concat([Buffer.from([3, 4, 0, 0, 0, 0, MTU >> 8, MTU & 0xff]), quote]);
  icmp.writeUInt16BE(inetChecksum(icmp), 2);
  const ip = Buffer.alloc(20);
  ip[0] = 0x45;
  ip.writeUInt16BE(20 + icmp.length, 2);
  ip.writeUInt16BE(DF, 6);
  ip[8] = 61;  // the original's TTL, as the kernel's tunnel
  ip[9] = 1;
  ipv4(FAR_IP).copy(ip, 12);
  ipv4(HOST_IP).copy(ip, 16);
  ip.writeUInt16BE(inetChecksum(ip), 10);
  return frame(OWN_MAC, MAC_X, Buffer.concat([ip, icmp]));
}
/** What a router answers bigV6() with (RFC 4443 §3.2: 1280 bytes in all). */
function packetTooBig(original: Buffer): Buffer {
  const quote = original.subarray(14, 14 + 1280 - 48);
  const ip = Buffer.alloc(40);
  ip[0] = 0x60;
  ip.writeUInt16BE(8 + quote.length, 4);
  ip[6] = 58;
  ip[7] = 61;
  ipv6Bytes(FAR_IP6).copy(ip, 8);
  ipv6Bytes(HOST_IP6).copy(ip, 24);
  const f = frame(OWN_MAC, MAC_X, Buffer.concat([ip, Buffer.from([2, 0, 0, 0, 0, 0, MTU >> 8, MTU & 0xff]), quote]), 0x86dd);
  f.writeUInt16BE(icmpv6Checksum(f, 14), 14 + 40 + 2);
  return f;
}
const oversizeOnly = { drops: { tx_oversize: 1 } };

export const CASES: readonly ConformanceCase[] = [
  // ---- rx: UDP -> TAP ----
  {
    name: 'rx: a valid frame from a peer is delivered and its source learned',
    config: { peers: [PEER_B] },
    inputs: [rx(PEER_B, valid)],
    expect: { delivered: [valid], rxPackets: 1, learned: [{ type: 'learned', mac: MAC_X, vtep: PEER_B }] },
  },
  {
    name: 'rx: a frame of exactly the MTU is delivered',
    config: { peers: [PEER_B] },
    inputs: [rx(PEER_B, fullMtu)],
    expect: { delivered: [fullMtu], rxPackets: 1, learned: [{ type: 'learned', mac: MAC_X, vtep: PEER_B }] },
  },
  {
    // native/core_ecn.h: only an outer CE changes or drops the inner packet;
    // the loopback peers send not-ECT (and the dgram path sees no outer TOS).
    name: 'rx: ECN: an inner CE packet under an outer not-ECT header is delivered unchanged',
    config: { peers: [PEER_B] },
    inputs: [rx(PEER_B, innerCe)],
    expect: { delivered: [innerCe], rxPackets: 1, learned: [{ type: 'learned', mac: MAC_X, vtep: PEER_B }] },
  },
  {
    // The outer TOS is not part of the datagram's bytes: the payload is the frame as read.
    name: 'tx: ECN: an inner IPv4 packet goes out as read, whatever its TOS',
    config: { peers: [PEER_B] },
    inputs: [tx(innerNotEct)],
    expect: { sent: [sentTo(PEER_B, innerNotEct)], txPackets: 1, used: ['flood'] },
  },
  {
    name: 'rx: shorter than a VXLAN header is truncated',
    config: { peers: [PEER_B] },
    inputs: [{ datagram: Buffer.alloc(5, 0x08), from: PEER_B }],
    expect: { hostDrops: { rx_truncated: 1 }, hostVtepDrops: { [PEER_B]: 1 } },
  },
  {
    name: 'rx: a VXLAN header with less than an Ethernet header behind it is truncated',
    config: { peers: [PEER_B] },
    inputs: [{ datagram: vxlanDatagram(VNI, valid).subarray(0, 8 + 13), from: PEER_B }],
    expect: { hostDrops: { rx_truncated: 1 }, hostVtepDrops: { [PEER_B]: 1 } },
  },
  {
    // RFC 7348 §5: a receiver ignores the reserved bits (the Linux driver
    // departs from this and drops unknown flags).
    name: 'rx: reserved flag and header bits are ignored',
    config: { peers: [PEER_B] },
    inputs: [{ datagram: (() => { const d = vxlanDatagram(VNI, valid, 0xff); d.writeUIntBE(0xffffff, 1, 3); d[7] = 0xff; return d; })(), from: PEER_B }],
    expect: { delivered: [valid], rxPackets: 1, learned: [{ type: 'learned', mac: MAC_X, vtep: PEER_B }] },
  },
  {
    name: 'rx: the I flag clear',
    config: { peers: [PEER_B] },
    inputs: [rx(PEER_B, valid, VNI, 0xf7)],
    expect: { hostDrops: { rx_no_i_flag: 1 }, hostVtepDrops: { [PEER_B]: 1 } },
  },
  {
    name: 'rx: a foreign VNI is dropped and its sender named for doctor',
    config: { peers: [PEER_B] },
    inputs: [rx(PEER_B, valid, VNI + 1)],
    expect: { hostDrops: { rx_wrong_vni: 1 }, hostVtepDrops: { [PEER_B]: 1 }, foreign: [{ address: PEER_B, vni: VNI + 1 }] },
  },
  // ---- several networks on one host ----
  {
    name: 'rx: with two networks, a VNI neither has is a host-level drop',
    config: { peers: [PEER_B], second: { vni: VNI + 1, peers: [PEER_B] } },
    inputs: [rx(PEER_B, valid, VNI + 2)],
    expect: { hostDrops: { rx_wrong_vni: 1 }, hostVtepDrops: { [PEER_B]: 1 }, foreign: [{ address: PEER_B, vni: VNI + 2 }] },
  },
  {
    name: 'rx: a peer of network 42 only is not allowed in network 43',
    config: { peers: [PEER_B], second: { vni: VNI + 1, peers: [PEER_C] } },
    inputs: [rx(PEER_B, valid, VNI + 1)],
    expect: { second: { drops: { rx_source_not_allowed: 1 }, refused: [{ address: PEER_B, count: 1 }] } },
  },
  {
    name: 'rx: the same MAC in two networks is delivered to each and learned in each',
    config: { peers: [PEER_B], second: { vni: VNI + 1, peers: [PEER_B] } },
    inputs: [rx(PEER_B, valid), rx(PEER_B, valid, VNI + 1)],
    expect: {
      delivered: [valid], rxPackets: 1, learned: [{ type: 'learned', mac: MAC_X, vtep: PEER_B }],
      second: { delivered: [valid], learned: [{ type: 'learned', mac: MAC_X, vtep: PEER_B }] },
    },
  },
  {
    name: 'rx: a sender outside the accepted set is refused and remembered',
    config: { peers: [PEER_B] },
    inputs: [rx(STRANGER, valid)],
    expect: { drops: { rx_source_not_allowed: 1 }, vtepDrops: { other: 1 }, refused: [{ address: STRANGER, count: 1 }] },
  },
  {
    // The source policy is a network's: it applies once the VNI names one,
    // so a stranger's runt is a host-level drop like anyone's.
    name: 'rx: a truncated datagram from a stranger is a host-level drop',
    config: { peers: [PEER_B] },
    inputs: [{ datagram: Buffer.alloc(5, 0x08), from: STRANGER }],
    expect: { hostDrops: { rx_truncated: 1 }, hostVtepDrops: { other: 1 } },
  },
  {
    name: 'rx: --accept CIDRs admit a stranger in range',
    config: { peers: [PEER_B], accept: { kind: 'cidrs', cidrs: [{ address: '127.0.0.64', prefixLength: 26, family: 4 }] } },
    inputs: [rx(STRANGER, valid)],
    expect: { delivered: [valid], rxPackets: 1, learned: [{ type: 'learned', mac: MAC_X, vtep: STRANGER }] },
  },
  {
    name: 'rx: --accept CIDRs refuse a stranger out of range and admit a non-peer in range',
    config: { peers: [PEER_B], accept: { kind: 'cidrs', cidrs: [{ address: '127.0.0.0', prefixLength: 30, family: 4 }] } },
    inputs: [rx(STRANGER, valid), rx(PEER_C, valid)],
    expect: {
      delivered: [valid], rxPackets: 1, learned: [{ type: 'learned', mac: MAC_X, vtep: PEER_C }],
      drops: { rx_source_not_allowed: 1 }, vtepDrops: { other: 1 }, refused: [{ address: STRANGER, count: 1 }],
    },
  },
  {
    name: 'rx: the VTEP of a static entry is heard though it is no peer',
    config: { peers: [PEER_B], statics: [{ mac: MAC_Y, vtep: PEER_C }] },
    inputs: [rx(PEER_C, toUs(MAC_Y))],
    expect: { delivered: [toUs(MAC_Y)], rxPackets: 1 },
  },
  {
    name: 'rx: --accept any admits anyone',
    config: { peers: [PEER_B], accept: { kind: 'any' } },
    inputs: [rx(STRANGER, valid)],
    expect: { delivered: [valid], rxPackets: 1, learned: [{ type: 'learned', mac: MAC_X, vtep: STRANGER }] },
  },
  {
    name: 'rx: a multicast source MAC',
    config: { peers: [PEER_B] },
    inputs: [rx(PEER_B, toUs('01:00:5e:00:00:01'))],
    expect: { drops: { rx_bad_source_mac: 1 }, vtepDrops: { [PEER_B]: 1 } },
  },
  {
    name: 'rx: a broadcast source MAC',
    config: { peers: [PEER_B] },
    inputs: [rx(PEER_B, toUs(BROADCAST))],
    expect: { drops: { rx_bad_source_mac: 1 }, vtepDrops: { [PEER_B]: 1 } },
  },
  {
    name: 'rx: an all-zero source MAC',
    config: { peers: [PEER_B] },
    inputs: [rx(PEER_B, toUs('00:00:00:00:00:00'))],
    expect: { drops: { rx_bad_source_mac: 1 }, vtepDrops: { [PEER_B]: 1 } },
  },
  {
    name: 'rx: our own source MAC is a loop',
    config: { peers: [PEER_B] },
    inputs: [rx(PEER_B, toUs(OWN_MAC))],
    expect: { drops: { rx_own_source_mac: 1 }, vtepDrops: { [PEER_B]: 1 } },
  },
  {
    name: 'rx: one byte over the MTU',
    config: { peers: [PEER_B] },
    inputs: [rx(PEER_B, oversize)],
    expect: { drops: { rx_oversize: 1 }, vtepDrops: { [PEER_B]: 1 } },
  },
  {
    name: 'rx: VLAN-tagged without --allow-vlan',
    config: { peers: [PEER_B] },
    inputs: [rx(PEER_B, tagged)],
    expect: { drops: { rx_vlan_tagged: 1 }, vtepDrops: { [PEER_B]: 1 } },
  },
  {
    name: 'rx: VLAN-tagged with --allow-vlan, the tag on top of a full MTU',
    config: { peers: [PEER_B], allowVlan: true },
    inputs: [rx(PEER_B, tagged), rx(PEER_B, taggedFullMtu)],
    expect: { delivered: [tagged, taggedFullMtu], rxPackets: 2, learned: [{ type: 'learned', mac: MAC_X, vtep: PEER_B }] },
  },
  {
    name: 'rx: a source MAC that is a static entry at another VTEP',
    config: { peers: [PEER_B], statics: [{ mac: MAC_X, vtep: PEER_C }] },
    inputs: [rx(PEER_B, valid)],
    expect: { drops: { rx_static_mac_conflict: 1 }, vtepDrops: { [PEER_B]: 1 } },
  },
  {
    name: 'rx: a source MAC that is a static entry at the sender is delivered, not learned',
    config: { peers: [PEER_B], statics: [{ mac: MAC_X, vtep: PEER_B }] },
    inputs: [rx(PEER_B, valid)],
    expect: { delivered: [valid], rxPackets: 1 },
  },
  {
    name: 'rx: frames from a new MAC are all delivered and it is learned once',
    config: { peers: [PEER_B] },
    inputs: [rx(PEER_B, valid), rx(PEER_B, fullMtu), rx(PEER_B, valid)],
    expect: { delivered: [valid, fullMtu, valid], rxPackets: 3, learned: [{ type: 'learned', mac: MAC_X, vtep: PEER_B }] },
  },
  {
    name: 'rx: a MAC learned at the sender already is delivered with no new learn event',
    config: { peers: [PEER_B], learned: [{ mac: MAC_X, vtep: PEER_B }] },
    inputs: [rx(PEER_B, valid)],
    expect: { delivered: [valid], rxPackets: 1 },
  },
  {
    name: 'rx: a learned MAC heard from another peer moves there',
    config: { peers: [PEER_B, PEER_C], learned: [{ mac: MAC_X, vtep: PEER_B }] },
    inputs: [rx(PEER_C, valid)],
    expect: { delivered: [valid], rxPackets: 1, learned: [{ type: 'moved', mac: MAC_X, vtep: PEER_C }] },
  },
  {
    // Within the core's once-a-second bound on learning offers for one MAC:
    // the offer from the new VTEP is not held back by the one from the old.
    name: 'rx: a MAC heard from one peer, then from another right after, is learned there and moves at once',
    config: { peers: [PEER_B, PEER_C] },
    inputs: [rx(PEER_B, valid), rx(PEER_C, valid)],
    expect: {
      delivered: [valid, valid], rxPackets: 2,
      learned: [{ type: 'learned', mac: MAC_X, vtep: PEER_B }, { type: 'moved', mac: MAC_X, vtep: PEER_C }],
    },
  },
  {
    name: 'rx: a VTEP past its share of learned MACs: delivered, learning refused once per MAC',
    config: { peers: [PEER_C, PEER_B], learned: [{ mac: MAC_Y, vtep: PEER_B }], maxLearnedPerVtep: 1 },
    inputs: [rx(PEER_B, valid), rx(PEER_B, valid)],
    expect: { delivered: [valid, valid], rxPackets: 2, learnRefused: { fdbFull: 0, vtepFull: 1, rate: 0 } },
  },

  // ---- tx: TAP -> UDP ----
  {
    name: 'tx: shorter than an Ethernet header is a runt',
    config: { peers: [PEER_B] },
    inputs: [tx(Buffer.alloc(10, 0xff))],
    expect: { drops: { tx_runt: 1 } },
  },
  {
    name: 'tx: a bare Ethernet header is no runt: it floods',
    config: { peers: [PEER_B] },
    inputs: [tx(fromUs(BROADCAST, 0))],
    expect: { sent: [sentTo(PEER_B, fromUs(BROADCAST, 0))], txPackets: 1, used: ['flood'] },
  },
  {
    name: 'tx: one byte over the MTU is dropped, never fragmented',
    config: { peers: [PEER_B] },
    inputs: [tx(fromUs(BROADCAST, MTU + 1))],
    expect: { drops: { tx_oversize: 1 } },
  },
  {
    name: 'tx: an oversize frame to a learned MAC does not use the entry',
    config: { peers: [PEER_B], learned: [{ mac: MAC_X, vtep: PEER_C }] },
    inputs: [tx(fromUs(MAC_X, MTU + 1))],
    expect: { drops: { tx_oversize: 1 } },
  },
  {
    name: 'tx: VLAN-tagged without --allow-vlan',
    config: { peers: [PEER_B] },
    inputs: [tx(fromUs(BROADCAST, TAG_THEN_IPV4, 0x8100))],
    expect: { drops: { tx_vlan_tagged: 1 } },
  },
  {
    name: 'tx: VLAN-tagged with --allow-vlan, the tag on top of a full MTU',
    config: { peers: [PEER_B], allowVlan: true },
    inputs: [tx(frame(BROADCAST, OWN_MAC, Buffer.concat([TAG_THEN_IPV4, Buffer.alloc(MTU - 4)]), 0x8100))],
    expect: {
      sent: [sentTo(PEER_B, frame(BROADCAST, OWN_MAC, Buffer.concat([TAG_THEN_IPV4, Buffer.alloc(MTU - 4)]), 0x8100))],
      txPackets: 1,
      used: ['flood'],
    },
  },
  {
    name: 'tx: unicast to a learned MAC goes to its VTEP alone',
    config: { peers: [PEER_B, PEER_C], learned: [{ mac: MAC_X, vtep: PEER_C }] },
    inputs: [tx(fromUs(MAC_X, 100))],
    expect: { sent: [sentTo(PEER_C, fromUs(MAC_X, 100))], txPackets: 1, used: [MAC_X] },
  },
  {
    name: 'tx: unicast to a static MAC goes to its VTEP, even one that is no peer',
    config: { peers: [PEER_B], statics: [{ mac: MAC_Z, vtep: PEER_C }] },
    inputs: [tx(fromUs(MAC_Z, 100))],
    expect: { sent: [sentTo(PEER_C, fromUs(MAC_Z, 100))], txPackets: 1, used: [MAC_Z] },
  },
  {
    name: 'tx: broadcast floods to every peer',
    config: { peers: [PEER_B, PEER_C] },
    inputs: [tx(fromUs(BROADCAST, 60))],
    expect: { sent: [sentTo(PEER_B, fromUs(BROADCAST, 60)), sentTo(PEER_C, fromUs(BROADCAST, 60))], txPackets: 2, used: ['flood'] },
  },
  {
    name: 'tx: multicast floods to every peer',
    config: { peers: [PEER_B, PEER_C] },
    inputs: [tx(fromUs('33:33:00:00:00:01', 60))],
    expect: {
      sent: [sentTo(PEER_B, fromUs('33:33:00:00:00:01', 60)), sentTo(PEER_C, fromUs('33:33:00:00:00:01', 60))],
      txPackets: 2,
      used: ['flood'],
    },
  },
  {
    name: 'tx: unknown unicast floods to every peer',
    config: { peers: [PEER_B, PEER_C], learned: [{ mac: MAC_X, vtep: PEER_C }] },
    inputs: [tx(fromUs(MAC_Y, 60))],
    expect: { sent: [sentTo(PEER_B, fromUs(MAC_Y, 60)), sentTo(PEER_C, fromUs(MAC_Y, 60))], txPackets: 2, used: ['flood'] },
  },
  {
    name: 'tx: no peer and no entry: no destination',
    config: {},
    inputs: [tx(fromUs(BROADCAST, 60)), tx(fromUs(MAC_Y, 60))],
    expect: { drops: { tx_no_destination: 2 } },
  },
  // ---- ARP/ND suppression ----
  {
    name: 'suppress: an ARP request for a known address is answered on the TAP, nothing is flooded',
    config: SUPPRESSING,
    inputs: [tx(arpRequest(OUR_IP, KNOWN_IP))],
    expect: { delivered: [arpReply], suppressed: { arp: 1, nd: 0 } },
  },
  {
    name: 'suppress: an ARP request for an unknown address floods',
    config: SUPPRESSING,
    inputs: [tx(arpRequest(OUR_IP, UNKNOWN_IP))],
    expect: floods(arpRequest(OUR_IP, UNKNOWN_IP)),
  },
  {
    name: 'suppress: a gratuitous ARP (sender = target) floods even for a known address',
    config: SUPPRESSING,
    inputs: [tx(arpRequest(KNOWN_IP, KNOWN_IP))],
    expect: floods(arpRequest(KNOWN_IP, KNOWN_IP)),
  },
  {
    name: 'suppress: an ARP probe (sender 0.0.0.0) floods even for a known address',
    config: SUPPRESSING,
    inputs: [tx(arpRequest('0.0.0.0', KNOWN_IP))],
    expect: floods(arpRequest('0.0.0.0', KNOWN_IP)),
  },
  {
    name: 'suppress: off, an ARP request for a known address floods',
    config: { ...SUPPRESSING, suppress: false },
    inputs: [tx(arpRequest(OUR_IP, KNOWN_IP))],
    expect: floods(arpRequest(OUR_IP, KNOWN_IP)),
  },
  {
    name: 'suppress: a VLAN-tagged ARP request floods (the table has no VLANs)',
    config: { ...SUPPRESSING, allowVlan: true },
    inputs: [tx(fromUs(BROADCAST, Buffer.concat([Buffer.from('00640806', 'hex'), arp(1, OWN_MAC, OUR_IP, '00:00:00:00:00:00', KNOWN_IP)]), 0x8100))],
    expect: floods(fromUs(BROADCAST, Buffer.concat([Buffer.from('00640806', 'hex'), arp(1, OWN_MAC, OUR_IP, '00:00:00:00:00:00', KNOWN_IP)]), 0x8100)),
  },
  {
    name: 'suppress: a neighbour solicitation for a known address is answered with an NA (S, O, TLLA)',
    config: SUPPRESSING,
    inputs: [tx(ns(OUR_IP6, KNOWN_IP6, true))],
    expect: { delivered: [naReply], suppressed: { arp: 0, nd: 1 } },
  },
  {
    name: 'suppress: a solicitation without SLLA gets the longer NA, to its Ethernet source',
    config: SUPPRESSING,
    inputs: [tx(ns(OUR_IP6, KNOWN_IP6, false))],
    expect: { delivered: [naReply], suppressed: { arp: 0, nd: 1 } },
  },
  {
    name: 'suppress: duplicate address detection (source ::) floods',
    config: SUPPRESSING,
    inputs: [tx(ns('::', KNOWN_IP6, false))],
    expect: floods(ns('::', KNOWN_IP6, false)),
  },
  {
    name: 'suppress: a solicitation for an unknown address floods',
    config: SUPPRESSING,
    inputs: [tx(ns(OUR_IP6, UNKNOWN_IP6, true))],
    expect: floods(ns(OUR_IP6, UNKNOWN_IP6, true)),
  },
  {
    name: 'suppress: a solicitation with hop limit below 255 is not valid: it floods',
    config: SUPPRESSING,
    inputs: [tx(ns(OUR_IP6, KNOWN_IP6, true, 64))],
    expect: floods(ns(OUR_IP6, KNOWN_IP6, true, 64)),
  },
  // ---- PMTU: ICMP too-big for oversize frames ----
  {
    name: 'pmtu: an oversize IPv4 frame with DF is dropped and answered with fragmentation needed carrying the MTU',
    config: { peers: [PEER_B] },
    inputs: [tx(bigV4())],
    expect: { drops: { tx_oversize: 1 }, delivered: [fragNeeded(bigV4())], icmpTooBig: 1 },
  },
  {
    name: 'pmtu: an oversize IPv6 frame is dropped and answered with packet too big carrying the MTU',
    config: { peers: [PEER_B] },
    inputs: [tx(bigV6())],
    expect: { drops: { tx_oversize: 1 }, delivered: [packetTooBig(bigV6())], icmpTooBig: 1 },
  },
  {
    name: 'pmtu: an oversize IPv4 frame without DF is only dropped (a router would fragment it; we never do)',
    config: { peers: [PEER_B] },
    inputs: [tx(bigV4(0))],
    expect: oversizeOnly,
  },
  {
    name: 'pmtu: an oversize IPv4 fragment with DF is only dropped',
    config: { peers: [PEER_B] },
    inputs: [tx(bigV4(DF | 0x2000))],
    expect: oversizeOnly,
  },
  {
    name: 'pmtu: an oversize ICMP error is never answered with one',
    config: { peers: [PEER_B] },
    inputs: [tx(bigV4(DF, 1, 3)), tx(bigV6(FAR_IP6, 58, 1))],
    expect: { drops: { tx_oversize: 2 } },
  },
  {
    name: 'pmtu: an oversize ICMP echo with DF is answered',
    config: { peers: [PEER_B] },
    inputs: [tx(bigV4(DF, 1, 8))],
    expect: { drops: { tx_oversize: 1 }, delivered: [fragNeeded(bigV4(DF, 1, 8))], icmpTooBig: 1 },
  },
  {
    name: 'pmtu: an oversize IPv6 frame to a multicast group is only dropped',
    config: { peers: [PEER_B] },
    inputs: [tx(bigV6('ff02::1'))],
    expect: oversizeOnly,
  },
  {
    name: 'pmtu: a frame of exactly the MTU with DF is sent, not answered',
    config: { peers: [PEER_B] },
    inputs: [tx(fromUs(MAC_X, ipv4Packet(HOST_IP, FAR_IP, MTU, DF)))],
    expect: floods(fromUs(MAC_X, ipv4Packet(HOST_IP, FAR_IP, MTU, DF))),
  },
  {
    name: 'pmtu: below 576 bytes of MTU nothing is answered (as the kernel)',
    config: { peers: [PEER_B], mtu: 500 },
    inputs: [tx(fromUs(MAC_X, ipv4Packet(HOST_IP, FAR_IP, 501, DF)))],
    expect: oversizeOnly,
  },
];
