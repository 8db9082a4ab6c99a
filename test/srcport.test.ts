// Source-port entropy (RFC 7348 §5) on the wire: vxland ↔ a kernel vxlan,
// 8 parallel TCP flows (iperf3 -P 8) across the overlay, tcpdump on vxland's
// underlay veth. Every datagram vxland sends leaves from a port of the range
// (--srcport, or by default the namespace's ip_local_port_range at start),
// the flows spread over at least 6 ports, and each inner flow (its 5-tuple,
// decoded from the capture) keeps exactly one outer port.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';

import { SRC_PORT_SOCKETS } from '../src/tables/limits.generated';
import { eventually } from './helpers/eventually';
import { addKernelVxlan, createTopology, exec, ping, skipUnlessRoot, spawnDaemon, type Host } from './helpers/netns';
import { datapathsUnderTest, startVxland, tempDir, TEST_VNI } from './helpers/vxland';

const FLOWS = 8;
const MIN_DISTINCT_PORTS = 6;
const IPERF_PORT = 5201;
const IPERF_SECONDS = 2;
/** Per flow: keeps the capture small (about 1 MB per flow per second). */
const IPERF_RATE = '8M';
/** Headers only: outer Ethernet/IPv4/UDP/VXLAN, inner Ethernet/IPv4/TCP. */
const SNAP_BYTES = 160;
const CAPTURE_MAX_PACKETS = 100_000;
const VXLAN_PORT = 4789;
const EXPLICIT_RANGE = { min: 40000, max: 40999 };
/** The default case narrows the namespace's ephemeral range to this first. */
const NAMESPACE_RANGE = { min: 50000, max: 50999 };

interface Datagram {
  outerSrcPort: number;
  /** Inner TCP 5-tuple, or null for anything else. */
  flow: string | null;
}

/** The datagrams to UDP port 4789 in a pcap file (Ethernet link type). */
function readCapture(file: string): Datagram[] {
  const b = readFileSync(file);
  if (b.length < 24 || b.readUInt32LE(0) !== 0xa1b2c3d4 || b.readUInt32LE(20) !== 1) throw new Error(`${file}: not a little-endian Ethernet pcap`);
  const out: Datagram[] = [];
  for (let off = 24; off + 16 <= b.length;) {
    const caplen = b.readUInt32LE(off + 8);
    const p = b.subarray(off + 16, off + 16 + caplen);
    off += 16 + caplen;
    if (p.length < 14 + 20 + 8 || p.readUInt16BE(12) !== 0x0800 || p[14 + 9] !== 17) continue;
    const udp = 14 + (p[14] & 0x0f) * 4;
    if (p.length < udp + 8 || p.readUInt16BE(udp + 2) !== VXLAN_PORT) continue;
    const outerSrcPort = p.readUInt16BE(udp);
    const inner = udp + 8 + 8;
    let flow: string | null = null;
    if (p.length >= inner + 14 + 20 && p.readUInt16BE(inner + 12) === 0x0800 && p[inner + 14 + 9] === 6) {
      const ip = inner + 14;
      const tcp = ip + (p[ip] & 0x0f) * 4;
      if (p.length >= tcp + 4) {
        const src = [...p.subarray(ip + 12, ip + 16)].join('.');
        const dst = [...p.subarray(ip + 16, ip + 20)].join('.');
        flow = `tcp ${src}:${p.readUInt16BE(tcp)} > ${dst}:${p.readUInt16BE(tcp + 2)}`;
      }
    }
    out.push({ outerSrcPort, flow });
  }
  return out;
}

/** tcpdump writing what `from` sends to VXLAN port 4789 into a pcap; resolves once it listens. */
async function startCapture(tt: Parameters<typeof skipUnlessRoot>[0], from: Host, file: string) {
  const p = spawnDaemon(tt, from.ns, [
    'tcpdump', '-i', from.dev, '-n', '-p', '-U', '-s', String(SNAP_BYTES), '-c', String(CAPTURE_MAX_PACKETS), '-w', file,
    `udp and src host ${from.ip} and dst port ${VXLAN_PORT}`,
  ]);
  await eventually(() => {
    if (!p.running) throw new Error(`tcpdump exited: ${p.stderrLines.join(' | ')}`);
    return p.stderrLines.some((l) => l.includes('listening on'));
  }, { timeoutMs: 10_000, what: `tcpdump listening on ${from.dev}` });
  return p;
}

for (const datapath of datapathsUnderTest()) {
  for (const explicit of [true, false]) {
    const range = explicit ? EXPLICIT_RANGE : NAMESPACE_RANGE;
    const label = explicit ? `--srcport ${range.min}-${range.max}` : 'default: the namespace\'s ephemeral range';
    t.test(`outer source ports per flow, ${label} (${datapath})`, async (t) => {
      if (skipUnlessRoot(t)) return;
      const topo = await createTopology(t, { hosts: 2 });
      const [a, b] = topo.hosts;
      if (!explicit) await exec(a.ns, ['sysctl', '-q', '-w', `net.ipv4.ip_local_port_range=${range.min} ${range.max}`]);
      await addKernelVxlan(b, { vni: TEST_VNI, remotes: [a.ip], address: '10.42.0.2/24' });
      const v = await startVxland(t, a, {
        peers: [b.ip], address: '10.42.0.1/24', datapath,
        extraArgs: explicit ? ['--srcport', `${range.min}-${range.max}`] : [],
      });

      const status = await v.json('status');
      t.same({ min: status.srcport.min, max: status.srcport.max }, range, 'status shows the range');
      t.equal(status.srcport.ports.length, SRC_PORT_SOCKETS, `${SRC_PORT_SOCKETS} send sockets bound`);
      t.ok(status.srcport.ports.every((port: number) => port >= range.min && port <= range.max), 'all inside the range');
      t.match((await v.cli('status')).stdout, new RegExp(`srcport:\\s+${range.min}-${range.max} \\(${SRC_PORT_SOCKETS} ports\\)`), 'the CLI shows it');
      t.match((await v.cli('doctor')).stdout, `outer source ports ${range.min}-${range.max} (${SRC_PORT_SOCKETS} ports)`, 'so does doctor');

      // The peers learn each other first, so the flows go unicast.
      t.equal((await ping(a.ns, '10.42.0.2', { count: 3, intervalS: 0.2, timeoutS: 2 })).received, 3, 'overlay up');
      const file = path.join(tempDir(t, 'srcport-w1'), 'underlay.pcap');
      const capture = await startCapture(t, a, file);
      const server = spawnDaemon(t, b.ns, ['iperf3', '-s', '-1', '--forceflush', '-B', '10.42.0.2', '-p', String(IPERF_PORT)]);
      await server.waitForLine('Server listening', 10_000);
      const client = await exec(a.ns, [
        'iperf3', '-c', '10.42.0.2', '-p', String(IPERF_PORT), '-P', String(FLOWS), '-t', String(IPERF_SECONDS), '-b', IPERF_RATE,
      ], { timeoutMs: 30_000 });
      t.match(client.stdout, /\[SUM\].*receiver/, 'iperf3 ran its flows to the end');
      await capture.stop();

      const datagrams = readCapture(file);
      const ports = new Set(datagrams.map((d) => d.outerSrcPort));
      const outside = [...ports].filter((port) => port < range.min || port > range.max);
      t.same(outside, [], `every datagram leaves from a port in ${range.min}-${range.max}`);
      const portsOfFlow = new Map<string, Set<number>>();
      for (const d of datagrams) {
        if (d.flow === null || !d.flow.endsWith(`10.42.0.2:${IPERF_PORT}`)) continue;
        const seen = portsOfFlow.get(d.flow) ?? new Set<number>();
        seen.add(d.outerSrcPort);
        portsOfFlow.set(d.flow, seen);
      }
      // iperf3's control connection is one more flow to its port.
      t.ok(portsOfFlow.size >= FLOWS, `the capture holds the ${FLOWS} flows (${portsOfFlow.size} to port ${IPERF_PORT})`);
      const split = [...portsOfFlow].filter(([, seen]) => seen.size !== 1).map(([flow, seen]) => `${flow} on ${[...seen].join(',')}`);
      t.same(split, [], 'each flow leaves from exactly one outer port');
      const flowPorts = new Set([...portsOfFlow.values()].map((seen) => [...seen][0]));
      t.ok(flowPorts.size >= MIN_DISTINCT_PORTS, `the flows spread over ${flowPorts.size} outer ports (>= ${MIN_DISTINCT_PORTS})`);
    });
  }
}
