#!/usr/bin/env python3
"""Writes the seed inputs of the fuzz targets into test/fuzz/corpus/<target>/
(seed-*.bin; inputs merged in by `scripts/fuzz.sh --merge` keep libFuzzer's
names). Layouts are described at the top of each harness. Deterministic:
re-running rewrites the same files."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
MAC_DST = bytes.fromhex('02000000000b')
MAC_SRC = bytes.fromhex('02000000000a')
TS_OPT = bytes.fromhex('0101080a0000000100000002')


def csum(b, init=0):
    s = init
    if len(b) % 2:
        b = b + b'\0'
    for i in range(0, len(b), 2):
        s += (b[i] << 8) | b[i + 1]
    while s > 0xffff:
        s = (s & 0xffff) + (s >> 16)
    return s


def payload(n, seed=7):
    out = bytearray(n)
    x = seed
    for i in range(n):
        x = (x * 1103515245 + 12345) & 0xffffffff
        out[i] = x >> 24
    return bytes(out)


def l2_l3(v6, proto, l4_len, ip_id, vlan, ip_opts=b'', frag=0x4000):
    """Ethernet [+802.1Q] and IPv4|IPv6 headers for an L4 segment of l4_len
    bytes, and its pseudo-header sum."""
    eth = MAC_DST + MAC_SRC
    if vlan is not None:
        eth += struct.pack('!HH', 0x8100, vlan)
    eth += struct.pack('!H', 0x86dd if v6 else 0x0800)
    if v6:
        src = bytes.fromhex('fd000000000000000000000000000001')
        dst = bytes.fromhex('fd000000000000000000000000000002')
        return eth + struct.pack('!IHBB', 0x60000000, l4_len, proto, 64) + src + dst, csum(src + dst, proto + l4_len)
    ihl = 20 + len(ip_opts)
    ip = bytearray(struct.pack('!BBHHHBBH', 0x40 | ihl // 4, 0, ihl + l4_len, ip_id & 0xffff, frag, 64, proto, 0))
    ip += bytes.fromhex('0a2a00010a2a0002') + ip_opts
    struct.pack_into('!H', ip, 10, ~csum(bytes(ip)) & 0xffff)
    return eth + bytes(ip), csum(bytes(ip[12:20]), proto + l4_len)


def tcp_frame(v6=False, data=b'', seq=1000, ip_id=100, flags=0x10, vlan=None, opts=TS_OPT,
              sport=40000, csum_mode='full', ip_opts=b''):
    """Ethernet [+802.1Q] / IPv4|IPv6 / TCP. csum_mode: full | partial | none."""
    thl = 20 + len(opts)
    tcp = bytearray(struct.pack('!HHIIBBHHH', sport, 5201, seq & 0xffffffff, 777, (thl // 4) << 4, flags, 502, 0, 0))
    tcp += opts
    headers, pseudo = l2_l3(v6, 6, thl + len(data), ip_id, vlan, ip_opts)
    seg = bytearray(bytes(tcp) + data)
    if csum_mode == 'partial':
        struct.pack_into('!H', seg, 16, pseudo)
    elif csum_mode == 'full':
        struct.pack_into('!H', seg, 16, ~csum(bytes(seg), pseudo) & 0xffff)
    return headers + bytes(seg)


def udp_frame(data=b'hello', v6=False, ip_id=1, sport=5353, dport=5353, csum_mode='partial', vlan=None,
              ip_opts=b'', frag=0x4000):
    """Ethernet [+802.1Q] / IPv4|IPv6 / UDP. csum_mode: partial (the
    pseudo-header sum, as the kernel leaves it with NEEDS_CSUM) | full (0
    sent as 0xffff) | zero (no checksum)."""
    udp_len = 8 + len(data)
    headers, pseudo = l2_l3(v6, 17, udp_len, ip_id, vlan, ip_opts, frag)
    udp = bytearray(struct.pack('!HHHH', sport, dport, udp_len, 0) + data)
    if csum_mode == 'partial':
        struct.pack_into('!H', udp, 6, pseudo)
    elif csum_mode == 'full':
        struct.pack_into('!H', udp, 6, (~csum(bytes(udp), pseudo) & 0xffff) or 0xffff)
    return headers + bytes(udp)


def udp_csum_wraps(data, **kw):
    """An IPv4 UDP datagram (untagged, no IP options) of data + 2 bytes whose
    computed checksum is 0, so that it is sent as 0xffff: the last payload
    word makes the sum of everything else 0xffff."""
    f0 = udp_frame(data + b'\0\0', csum_mode='zero', **kw)
    rest = csum(f0[34:], csum(f0[26:34], 17 + len(f0) - 34))
    f = udp_frame(data + struct.pack('!H', 0xffff - rest), csum_mode='full', **kw)
    assert f[40:42] == b'\xff\xff'
    return f


def vnet(flags=0, gso_type=0, hdr_len=0, gso_size=0, csum_start=0, csum_offset=0):
    return struct.pack('<BBHHHH', flags, gso_type, hdr_len, gso_size, csum_start, csum_offset)


def write(target, name, data, prefix='seed-'):
    d = os.path.join(HERE, 'corpus', target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, prefix + name + '.bin'), 'wb') as f:
        f.write(data)


def segment_seeds():
    # [vnet hdr][u16 mtu][u8 opts][u16 tight cap if bit 6][u16 inflate if bit 7][frame]
    opts = 63  # maxSegs 64
    for v6 in (False, True):
        mss = 1398 - (20 if v6 else 0)
        hl = 14 + (40 if v6 else 20) + 32
        gso = 4 if v6 else 1
        f = tcp_frame(v6, payload(3000), seq=0xfffff000, ip_id=65530, flags=0x18, csum_mode='partial')
        h = vnet(1, gso, hl, mss, hl - 32, 16)
        tag = '6' if v6 else '4'
        write('fuzz_segment', f'tso-v{tag}', h + struct.pack('<HB', 1450, opts) + f)
        # 64 KiB super-frame from a small input (inflate)
        small = tcp_frame(v6, payload(600), flags=0x10, csum_mode='partial')
        write('fuzz_segment', f'tso-v{tag}-64k', h + struct.pack('<HBH', 1450, opts | 0x80, 65535) + small)
        # tight output buffer, ECN + CWR
        f2 = tcp_frame(v6, payload(2000), flags=0x98 | 0x01, csum_mode='partial')
        write('fuzz_segment', f'tso-v{tag}-tight', vnet(1, gso | 0x80, hl, 500, hl - 32, 16) +
              struct.pack('<HBH', 1450, 3 | 0x40, 700) + f2)
        # header only (payload 0)
        write('fuzz_segment', f'tso-v{tag}-empty', h + struct.pack('<HB', 1450, opts) + tcp_frame(v6, b'', csum_mode='partial'))
        # plain frame needing a checksum
        f3 = tcp_frame(v6, payload(101), csum_mode='partial')
        write('fuzz_segment', f'csum-v{tag}', vnet(1, 0, 0, 0, hl - 32, 16) + struct.pack('<HB', 1450, opts) + f3)
    # VLAN-tagged, IPv4 options
    f = tcp_frame(False, payload(4000), vlan=42, ip_opts=b'\x01\x01\x01\x00', csum_mode='partial')
    write('fuzz_segment', 'tso-vlan-ipopts', vnet(1, 1, 0, 1000, 18 + 24, 16) + struct.pack('<HB', 1500, opts) + f)
    # UDP checksum completion
    u = udp_frame(b'x' * 33)
    write('fuzz_segment', 'csum-udp', vnet(1, 0, 0, 0, 34, 6) + struct.pack('<HB', 1450, opts) + u)
    # too big for the MTU, and bogus gso types
    f = tcp_frame(False, payload(3000), csum_mode='partial')
    write('fuzz_segment', 'tso-toobig', vnet(1, 1, 66, 1448, 34, 16) + struct.pack('<HB', 1000, opts) + f)
    write('fuzz_segment', 'gso-udp', vnet(1, 3, 42, 500, 34, 6) + struct.pack('<HB', 1450, opts) + u)
    # UDP_L4 (USO) super-frames, as a sender using UDP_SEGMENT hands them over
    # (NEEDS_CSUM, the pseudo-header sum in the field, loose lengths)
    for v6 in (False, True):
        tag = '6' if v6 else '4'
        l4 = 14 + (40 if v6 else 20)
        mss = 1450 - (l4 - 14) - 8
        h = vnet(1, 5, l4 + 8, mss, l4, 6)
        f = udp_frame(payload(3 * mss + 333), v6=v6, ip_id=65534, sport=4433, dport=443)
        write('fuzz_segment', f'uso-v{tag}', h + struct.pack('<HB', 1450, opts) + f)
        small = udp_frame(payload(500), v6=v6, sport=4433, dport=443)
        write('fuzz_segment', f'uso-v{tag}-64k', h + struct.pack('<HBH', 1450, opts | 0x80, 65535) + small)
        # exactly gso_size: one datagram; ECN bit in gso_type; tight buffer
        one = udp_frame(payload(mss), v6=v6)
        write('fuzz_segment', f'uso-v{tag}-one', vnet(1, 5 | 0x80, l4 + 8, mss, l4, 6) +
              struct.pack('<HBH', 1450, 1 | 0x40, 300) + one)
    # the second datagram's computed checksum is 0: it must be sent as 0xffff
    wrap = udp_csum_wraps(payload(398, 5), ip_id=2, sport=4433, dport=443)[42:]
    f = udp_frame(payload(400, 4) + wrap, ip_id=1, sport=4433, dport=443)
    write('fuzz_segment', 'uso-v4-csum-ffff', vnet(1, 5, 42, 400, 34, 6) + struct.pack('<HB', 1450, opts) + f)
    # UDP_L4 on a TCP frame and TCPV4 on a UDP one: both malformed
    t = tcp_frame(False, payload(3000), csum_mode='partial')
    write('fuzz_segment', 'uso-on-tcp', vnet(1, 5, 66, 1000, 34, 16) + struct.pack('<HB', 1450, opts) + t)
    u = udp_frame(payload(3000))
    write('fuzz_segment', 'tso-on-udp', vnet(1, 1, 42, 1000, 34, 6) + struct.pack('<HB', 1450, opts) + u)


def rec(frame, fix=0):
    return struct.pack('<HB', len(frame), fix) + frame


def coalesce_seeds():
    for v6 in (False, True):
        tag = '6' if v6 else '4'
        mss = 1000
        segs = [tcp_frame(v6, payload(mss, seed=i), seq=5000 + i * mss, ip_id=7 + i,
                          flags=0x18 if i == 9 else 0x10) for i in range(10)]
        write('fuzz_coalesce', f'stream-v{tag}', bytes([63]) + b''.join(rec(s) for s in segs))
        # two interleaved flows + a short tail segment + a pure ACK
        a = [tcp_frame(v6, payload(500, i), seq=1 + i * 500, ip_id=1 + i, sport=1111) for i in range(4)]
        b = [tcp_frame(v6, payload(500, i), seq=9 + i * 500, ip_id=50 + i, sport=2222) for i in range(4)]
        mix = [a[0], b[0], a[1], b[1], a[2], tcp_frame(v6, b'', seq=1, sport=3333), b[2], a[3][:-100], b[3]]
        write('fuzz_coalesce', f'interleaved-v{tag}', bytes([7 | 0x80]) + b''.join(rec(s) for s in mix))
        # template mode: 40 segments of 1448, a tweak flipping PSH in segment 20
        t = tcp_frame(v6, payload(1448), seq=0xfffffff0, ip_id=0xfff0)
        hl = 14 + (40 if v6 else 20) + 32
        tw = struct.pack('<BHBB', 20, hl - 32 + 13, 0x08, 1)
        write('fuzz_coalesce', f'template-v{tag}', bytes([63 | 0x40, 39]) + struct.pack('<HB', 1448, 1) + tw + t)
    # VLAN, non-TCP, fragments, bad checksums
    frames = [tcp_frame(False, payload(300, i), seq=i * 300, ip_id=i, vlan=5) for i in range(3)]
    frames.append(udp_frame())
    bad = bytearray(tcp_frame(False, payload(300, 3), seq=900, ip_id=3, vlan=5))
    bad[-1] ^= 0xff
    frames.append(bytes(bad))
    frag = bytearray(tcp_frame(False, payload(300, 4), seq=1200, ip_id=4))
    frag[20] = 0x20  # MF
    frames.append(bytes(frag))
    write('fuzz_coalesce', 'mixed', bytes([63]) + b''.join(rec(s) for s in frames))
    # hitting the 64 KiB IP length limit: 60 segments of 1448
    t = tcp_frame(False, payload(1448))
    write('fuzz_coalesce', 'template-65535', bytes([63 | 0x40, 59]) + struct.pack('<HB', 1448, 0) + t)
    udp_coalesce_seeds()


def udp_coalesce_seeds():
    """UDP flows: coalesced only in the harness's udp=true runs (GSO_UDP_L4)."""
    for v6 in (False, True):
        tag = '6' if v6 else '4'
        # ten datagrams of 1200, the last one shorter, then another flow's
        dg = [udp_frame(payload(1200 if i < 9 else 700, seed=i), v6=v6, ip_id=300 + i, sport=4433, dport=443,
                        csum_mode='full') for i in range(10)]
        dg.append(udp_frame(payload(1200, seed=99), v6=v6, ip_id=310, sport=4434, dport=443, csum_mode='full'))
        write('fuzz_coalesce', f'udp-stream-v{tag}', bytes([63]) + b''.join(rec(d) for d in dg))
        # template: 100 datagrams of 200 (more than the 64 a UDP write may
        # hold), the last truncated by 50 bytes and fixed up (shorter last)
        t = udp_frame(payload(200), v6=v6, ip_id=0xffe0, sport=4433, dport=443, csum_mode='full')
        hl = 14 + (40 if v6 else 20) + 8
        tw = struct.pack('<BHBB', 99, hl + 150, 0, 3)
        write('fuzz_coalesce', f'udp-template-v{tag}', bytes([63 | 0x40, 99]) + struct.pack('<HB', 200, 1) + tw + t)
    # zero checksums (never coalesced), a checksum of 0xffff (a computed 0),
    # a UDP length field that disagrees with the IP one, IP options, a first
    # fragment, interleaved with a TCP flow between the same hosts
    z = [udp_frame(payload(400, i), ip_id=i, csum_mode='zero') for i in range(3)]
    ok = [udp_frame(payload(400, i), ip_id=3 + i, csum_mode='full') for i in range(4)]
    tcp = [tcp_frame(False, payload(400, i), seq=i * 400, ip_id=50 + i) for i in range(3)]
    badlen = bytearray(udp_frame(payload(400, 7), ip_id=7, csum_mode='full'))
    struct.pack_into('!H', badlen, 38, 300)
    opts = udp_frame(payload(400, 8), ip_id=8, csum_mode='full', ip_opts=b'\x01\x01\x01\x00')
    frag = udp_frame(payload(400, 9), ip_id=9, csum_mode='full', frag=0x2000)
    ffff = udp_csum_wraps(payload(398, 10), ip_id=10)
    # the same, but sent with 0 (sums right, yet means "no checksum")
    zero = bytearray(udp_csum_wraps(payload(398, 12), ip_id=12))
    zero[40:42] = b'\0\0'
    frames = z + [ok[0], tcp[0], ok[1], tcp[1], ok[2], ok[3], bytes(badlen), tcp[2], opts, frag]
    frames += [udp_frame(payload(400, 1000), ip_id=9, csum_mode='full'), ffff,
               udp_frame(payload(400, 1001), ip_id=11, csum_mode='full'), bytes(zero)]
    write('fuzz_coalesce', 'udp-mixed', bytes([63]) + b''.join(rec(f) for f in frames))


def finding_inputs():
    """Reproducers of the known coalescer findings (fuzz_coalesce.cc
    FUZZ_STRICT_*): they pass the default build and fail the strict one."""
    def recs(frames, fix=0):
        return b''.join(struct.pack('<HB', len(f), fix) + f for f in frames)
    segs = [tcp_frame(False, payload(500, i), seq=i * 500, ip_id=i) for i in range(3)]
    bad = bytearray(segs[1])
    bad[24] ^= 0x55  # IPv4 header checksum
    write('fuzz_coalesce', 'ipv4-csum-not-verified', bytes([63]) + recs([segs[0], bytes(bad), segs[2]]), 'finding-')
    ae = bytearray(segs[1])
    ae[34 + 12] |= 0x01  # TCP AE (AccECN) bit, checksum fixed up
    write('fuzz_coalesce', 'tcp-ae-bit-lost', bytes([63]) + recs([segs[0]]) + recs([bytes(ae)], 1) + recs([segs[2]]),
          'finding-')
    opt = tcp_frame(False, payload(500, 1), seq=500, ip_id=1, ip_opts=b'\x01\x01\x01\x00')
    write('fuzz_coalesce', 'reorder-ip-options', bytes([63]) + recs([segs[0], opt]), 'finding-')
    mf = bytearray(segs[1])
    mf[20] |= 0x20  # IPv4 MF: a first fragment
    write('fuzz_coalesce', 'reorder-first-fragment', bytes([63]) + recs([segs[0], bytes(mf)]), 'finding-')


def vxlan(vni, frame, flags=0x08):
    return bytes([flags, 0, 0, 0, vni >> 16 & 0xff, vni >> 8 & 0xff, vni & 0xff, 0]) + frame


def decode_seeds():
    vni = 42
    head = struct.pack('!I', vni)[1:] + struct.pack('<H', 1450) + bytes.fromhex('020000000001') + b'\0'
    for v6 in (False, True):
        tag = '6' if v6 else '4'
        hl = 14 + (40 if v6 else 20) + 32
        mss = 1450 - (hl - 14)
        segs = [vxlan(vni, tcp_frame(v6, payload(mss, i), seq=i * mss, ip_id=i)) for i in range(8)]
        # one UDP_GRO message carrying all eight datagrams
        msg = b''.join(segs)
        write('fuzz_decode', f'gro-v{tag}', head + struct.pack('<HH', len(msg), len(segs[0])) + msg)
        # separate messages, one with the wrong VNI, one without the I flag
        msgs = [segs[0], segs[1], vxlan(7, segs[2][8:]), vxlan(vni, segs[3][8:], flags=0), segs[4]]
        write('fuzz_decode', f'msgs-v{tag}', head + b''.join(struct.pack('<HH', len(m), 0) + m for m in msgs))
    # UDP_GRO messages whose inner frames are UDP datagrams (USO writes)
    for v6 in (False, True):
        tag = '6' if v6 else '4'
        pl = 1450 - (40 if v6 else 20) - 8
        dgs = [vxlan(vni, udp_frame(payload(pl, i), v6=v6, ip_id=i, sport=4433, dport=443, csum_mode='full'))
               for i in range(8)]
        msg = b''.join(dgs)
        write('fuzz_decode', f'gro-udp-v{tag}', head + struct.pack('<HH', len(msg), len(dgs[0])) + msg)
    # short datagram, own MAC, multicast source, oversize
    own = bytearray(tcp_frame(False, b'x'))
    own[6:12] = bytes.fromhex('020000000001')
    mc = bytearray(tcp_frame(False, b'y'))
    mc[6] = 0x01
    msgs = [b'\x08\0\0\0\0\0\x2a\0' + b'\0' * 10, vxlan(vni, bytes(own)), vxlan(vni, bytes(mc)),
            vxlan(vni, tcp_frame(False, payload(1500)))]
    write('fuzz_decode', 'drops', head + b''.join(struct.pack('<HH', len(m), 0) + m for m in msgs))
    # VLAN-tagged frames with VLAN allowed (options bit 1), and an empty datagram
    allow = head[:-1] + b'\x02'
    tagged = [vxlan(vni, tcp_frame(False, payload(700, i), seq=i * 700, ip_id=i, vlan=9)) for i in range(3)]
    msg = b''.join(tagged)
    write('fuzz_decode', 'vlan-allowed', allow + struct.pack('<HH', len(msg), len(tagged[0])) + msg +
          struct.pack('<HH', 0, 0))
    # the sender refused by the source policy (options bit 2), and every
    # source MAC pinned at another VTEP (bit 3)
    frames = [vxlan(vni, tcp_frame(False, payload(300, i), seq=i * 300, ip_id=i)) for i in range(2)]
    recs = b''.join(struct.pack('<HH', len(m), 0) + m for m in frames)
    write('fuzz_decode', 'refused', head[:-1] + b'\x04' + recs)
    write('fuzz_decode', 'pinned', head[:-1] + b'\x08' + recs)


def suppress_seeds():
    """fuzz_suppress: [opts][capacity beyond the frame u16][frame]."""
    me = bytes.fromhex('020000000001')
    def arp(spa, tpa, op=1):
        return (b'\xff' * 6 + me + b'\x08\x06' + struct.pack('!HHBBH', 1, 0x0800, 6, 4, op) + me + bytes(spa) +
                bytes(6) + bytes(tpa))
    def ns(src, target, slla=True, hop=255):
        opts = b'\x01\x01' + me if slla else b''
        body = bytes([135, 0, 0, 0, 0, 0, 0, 0]) + target + opts
        dst = bytes.fromhex('ff0200000000000000000001ff') + target[13:]
        ip = struct.pack('!IHBB', 0x60000000, len(body), 58, hop) + src + dst
        pseudo = src + dst + struct.pack('!IxxxB', len(body), 58)
        c = (~csum(pseudo + body)) & 0xffff
        body = body[:2] + struct.pack('!H', c) + body[4:]
        return bytes.fromhex('3333ff000002') + me + b'\x86\xdd' + ip + body
    ours, known = [10, 9, 0, 1], [10, 9, 0, 2]
    src6, tgt6 = bytes.fromhex('fd000000000000000000000000000001'), bytes.fromhex('fd000000000000000000000000000002')
    room = struct.pack('<H', 64)
    write('fuzz_suppress', 'arp-known', b'\x01' + room + arp(ours, known))
    write('fuzz_suppress', 'arp-unknown', b'\x00' + room + arp(ours, known))
    write('fuzz_suppress', 'arp-gratuitous', b'\x01' + room + arp(known, known))
    write('fuzz_suppress', 'arp-probe', b'\x01' + room + arp([0, 0, 0, 0], known))
    write('fuzz_suppress', 'ns-known', b'\x02' + room + ns(src6, tgt6))
    write('fuzz_suppress', 'ns-no-slla', b'\x02' + room + ns(src6, tgt6, slla=False))
    write('fuzz_suppress', 'ns-no-room', b'\x02' + struct.pack('<H', 0xffff) + ns(src6, tgt6, slla=False))
    write('fuzz_suppress', 'ns-dad', b'\x02' + room + ns(bytes(16), tgt6, slla=False))
    write('fuzz_suppress', 'ns-hop-64', b'\x06' + room + ns(src6, tgt6, hop=64))


if __name__ == '__main__':
    segment_seeds()
    coalesce_seeds()
    finding_inputs()
    decode_seeds()
    suppress_seeds()
