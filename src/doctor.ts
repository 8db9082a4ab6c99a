// `vxland doctor`: turns what the daemon can observe into findings, each a
// problem with its fix. Pure: the daemon gathers the observations (counters,
// FDB, the underlay's MTU) and this file judges them, so every rule is tested
// without a network.

import type { ForeignVniSender, StatsSnapshot } from './ports/counters';
import type { MembershipStatus } from './ports/membership';
import type { TapCondition } from './ports/tap-condition';
import { SRC_PORT_SOCKETS } from './tables/limits.generated';
import { VXLAN_OVERHEAD_IPV4_BYTES, VXLAN_OVERHEAD_IPV6_BYTES } from './wire/vxlan';

/** A peer silent for this long after start is reported. */
export const DOCTOR_PEER_GRACE_MS = 10_000;

/** What doctor judges of the host as a whole: the UDP socket all networks
 *  share and the namespace. */
export interface HostObservations {
  port: number;
  /** The outer source port range and how many send sockets bound in it. */
  srcPorts?: { min: number; max: number; bound: number };
  /** The networks served, to name them in the VNI finding. */
  served: ReadonlyArray<{ vni: number; dev: string }>;
  /** Senders of datagrams whose VNI no network has. */
  foreignVnis: readonly ForeignVniSender[];
  /** Drops before a network is known (truncated, no I flag, wrong VNI). */
  stats: StatsSnapshot;
  /** Tcp InCsumErrors of the daemon's namespace, when readable. */
  tcpInCsumErrors: number | null;
  /** The etcd membership, when configured. */
  etcd?: MembershipStatus | null;
}

/** What doctor judges of one network. */
export interface NetworkObservations {
  dev: string;
  vni: number;
  port: number;
  local: string | null;
  family: 'udp4' | 'udp6';
  mtu: number;
  uptimeMs: number;
  peers: readonly string[];
  /** Per-VTEP counters as Stats.vtepSnapshot() gives them. */
  vteps: ReadonlyArray<{ vtep: string; rxPackets: number; drops: number; lastRxMs: number }>;
  /** Underlay interfaces towards the peers (or of the local address) and their MTU. */
  underlay: ReadonlyArray<{ interface: string; mtu: number; towards: string }>;
  /** Senders the source policy refused, with counts. */
  refusedSenders: ReadonlyArray<{ address: string; count: number }>;
  /** The source policy as status shows it. */
  accept: string;
  stats: StatsSnapshot;
  /** The TAP as the daemon's watcher last saw it (src/io/tap-watch.ts). */
  tap: TapCondition;
}

export interface Finding {
  check: 'mtu' | 'vni' | 'peer' | 'source' | 'drops' | 'checksum' | 'tap' | 'etcd' | 'srcport';
  /** The network it concerns; absent for a host-level finding. */
  vni?: number;
  problem: string;
  fix: string;
}

export interface DoctorReport {
  ok: boolean;
  /** "40000-40999 (16 ports)": the outer source port range and the ports bound in it; absent when unknown. */
  srcport?: string;
  checks: string[];
  findings: Finding[];
}

/** The host-level checks once, then each network's. */
export function diagnose(host: HostObservations, networks: readonly NetworkObservations[]): DoctorReport {
  const findings = [...checkVni(host), ...checkAdvisedDrops(host.stats), ...checkChecksums(host), ...checkEtcd(host), ...checkSrcPorts(host)];
  for (const o of networks) {
    const own = [...checkMtu(o), ...checkPeers(o), ...checkSources(o), ...checkDrops(o), ...checkTap(o)];
    findings.push(...own.map((f) => ({ ...f, vni: o.vni })));
  }
  const checks = ['mtu', 'vni', 'peer', 'source', 'drops', 'checksum', 'tap', 'etcd', 'srcport'];
  const s = host.srcPorts;
  const srcport = s === undefined ? {} : { srcport: `${s.min}-${s.max} (${s.bound} ${s.bound === 1 ? 'port' : 'ports'})` };
  return { ok: findings.length === 0, ...srcport, checks, findings };
}

/** Fewer send sockets than the range allows: flows share source ports, so
 *  the underlay spreads them over fewer paths and queues. */
function checkSrcPorts(h: HostObservations): Finding[] {
  const s = h.srcPorts;
  if (s === undefined) return [];
  const wanted = Math.min(SRC_PORT_SOCKETS, s.max - s.min + 1);
  if (s.bound >= wanted) return [];
  return [{
    check: 'srcport',
    problem: `only ${s.bound} of ${wanted} outer source ports could be bound in ${s.min}-${s.max} (the rest are taken): flows share them, so the underlay spreads them over fewer paths and NIC queues`,
    fix: `free ports in that range or choose another with --srcport MIN-MAX ("ss -uanp" shows who holds them)`,
  }];
}

function checkEtcd(h: HostObservations): Finding[] {
  const e = h.etcd;
  if (e === undefined || e === null || e.connected) return [];
  const seen = e.revision === null ? 'nothing was listed yet' : `membership is kept as of revision ${e.revision}`;
  const lease = e.leaseTtlLeftMs === null ? 'no lease is held' : `our lease expires in ${Math.ceil(e.leaseTtlLeftMs / 1000)} s unless etcd is back`;
  return [{
    check: 'etcd',
    problem: `etcd (${e.endpoints.join(', ')}) is out of reach${e.lastError === null ? '' : ` (${e.lastError})`}: ${seen}, ${lease}; vxland keeps retrying`,
    fix: `check that etcd runs and that this host reaches it ("etcdctl --endpoints=${e.endpoints.join(',')} endpoint health"; with TLS, the certificates named in etcd.tls)`,
  }];
}

function checkMtu(o: NetworkObservations): Finding[] {
  const overhead = o.family === 'udp6' ? VXLAN_OVERHEAD_IPV6_BYTES : VXLAN_OVERHEAD_IPV4_BYTES;
  const seen = new Set<string>();
  const out: Finding[] = [];
  for (const u of o.underlay) {
    if (seen.has(u.interface)) continue;
    seen.add(u.interface);
    const fitting = u.mtu - overhead;
    if (o.mtu > fitting) {
      out.push({
        check: 'mtu',
        problem: `${o.dev} MTU ${o.mtu} does not fit the underlay: ${u.interface} (towards ${u.towards}) has MTU ${u.mtu}, which carries inner frames of at most MTU ${fitting} (${u.mtu} - ${overhead})`,
        fix: `run vxland with --mtu ${fitting}, or raise the MTU of ${u.interface} to ${o.mtu + overhead}`,
      });
    }
  }
  return out;
}

function checkVni(h: HostObservations): Finding[] {
  const only = h.served.length === 1 ? h.served[0] : null;
  const vnis = h.served.map((n) => n.vni).join(', ');
  return h.foreignVnis.map((s) => ({
    check: 'vni' as const,
    problem: only !== null
      ? `${s.address} sends VXLAN with VNI ${s.vni}, but ${only.dev} uses VNI ${only.vni} (${s.count} datagram${s.count === 1 ? '' : 's'} dropped)`
      : `${s.address} sends VXLAN with VNI ${s.vni}, which no network of this host has (${h.served.length === 0 ? 'it has none' : `it serves VNI ${vnis}`}; ${s.count} datagram${s.count === 1 ? '' : 's'} dropped)`,
    fix: only !== null
      ? `make both ends use one VNI: set "id ${only.vni}" on ${s.address}'s vxlan device, or run vxland with --vni ${s.vni}`
      : `set ${s.address}'s vxlan device to a VNI served here, or add the network: "vxland network add --vni ${s.vni} ..."`,
  }));
}

function checkPeers(o: NetworkObservations): Finding[] {
  if (o.uptimeMs < DOCTOR_PEER_GRACE_MS) return [];
  const byVtep = new Map(o.vteps.map((v) => [v.vtep, v]));
  return o.peers
    .filter((peer) => (byVtep.get(peer)?.lastRxMs ?? 0) === 0)
    .map((peer) => ({
      check: 'peer' as const,
      problem: `nothing was ever received from peer ${peer} (${Math.round(o.uptimeMs / 1000)} s since start)`,
      fix: `on ${peer}, add this host${o.local ? ` (${o.local})` : ''} to its flood list (e.g. "bridge fdb append 00:00:00:00:00:00 dev vxlan0 dst ${o.local ?? 'THIS_HOST'}"), check that it sends to UDP port ${o.port} ("dstport ${o.port}") and that no firewall drops UDP ${o.port} between the hosts`,
    }));
}

function checkSources(o: NetworkObservations): Finding[] {
  return o.refusedSenders.map((s) => ({
    check: 'source' as const,
    problem: `${s.address} sent ${s.count} VXLAN datagram${s.count === 1 ? '' : 's'}, dropped because it is not an accepted VTEP (--accept ${o.accept})`,
    fix: `if ${s.address} belongs to the overlay, add it with "vxland peer add ${s.address}" (or widen --accept); otherwise find out why it sends to UDP port ${o.port}`,
  }));
}

const DROP_ADVICE: Readonly<Record<string, { problem: string; fix: string }>> = {
  rx_oversize: {
    problem: 'peers send inner frames larger than this MTU allows',
    fix: 'give every VTEP of the overlay the same MTU (1450 over a 1500-byte IPv4 underlay)',
  },
  tx_oversize: {
    problem: 'the TAP device hands out frames larger than its MTU',
    fix: 'check that nothing raised the MTU of the TAP device or of devices bridged to it',
  },
  rx_static_mac_conflict: {
    problem: 'frames arrive with a source MAC that a static entry pins to another VTEP',
    fix: 'correct the static entry ("vxland fdb add MAC IP") or find the host that spoofs that MAC',
  },
  tx_send_error: {
    problem: 'the underlay refuses datagrams to some VTEP (no route to it, or ICMP port unreachable: nothing listens there)',
    fix: 'check the route to that VTEP and that it listens on the VXLAN port; see "vxland stats" for which VTEP',
  },
  tx_queue_full: {
    problem: 'the UDP socket is backed up and frames are dropped',
    fix: 'raise net.core.wmem_max, or use --datapath native',
  },
  rx_no_i_flag: {
    problem: 'datagrams without the VXLAN I flag arrive on the VXLAN port',
    fix: 'something that is not a VTEP sends to this port; use --port to move, or filter it',
  },
  rx_own_source_mac: {
    problem: 'our own frames come back to us: a forwarding loop in the overlay',
    fix: 'check that no peer floods our frames back (bridged vxlan devices, duplicated peers)',
  },
};

function checkAdvisedDrops(stats: StatsSnapshot): Finding[] {
  const out: Finding[] = [];
  for (const [reason, count] of Object.entries(stats.drops)) {
    const advice = DROP_ADVICE[reason];
    if (advice !== undefined) out.push({ check: 'drops', problem: `${count} × ${reason}: ${advice.problem}`, fix: advice.fix });
  }
  return out;
}

function checkDrops(o: NetworkObservations): Finding[] {
  const out = checkAdvisedDrops(o.stats);
  if ((o.stats.drops.tx_no_destination ?? 0) > 0 && o.peers.length === 0) {
    out.push({
      check: 'drops',
      problem: `${o.stats.drops.tx_no_destination} × tx_no_destination: there are no peers, so broadcast and unknown unicast go nowhere`,
      fix: 'add the other VTEPs with "vxland peer add IP"',
    });
  }
  return out;
}

function checkChecksums(o: HostObservations): Finding[] {
  if (o.tcpInCsumErrors === null || o.tcpInCsumErrors === 0) return [];
  return [{
    check: 'checksum',
    problem: `the TCP stack of vxland's namespace counted ${o.tcpInCsumErrors} segments with bad checksums (TcpInCsumErrors); a kernel vxlan peer behind a veth sends inner checksums unfinished`,
    fix: 'on that peer, turn tx checksum offload off on its underlay veth ("ethtool -K VETH tx off")',
  }];
}

function checkTap(o: NetworkObservations): Finding[] {
  const { dev, down, unrestored, failed } = o.tap;
  const out: Finding[] = [];
  if (failed !== null) {
    return [{
      check: 'tap',
      problem: `${dev} failed and this network is no longer carried (the others are): ${failed}`,
      fix: `restart vxland, or remove the network (vxland network del --dev ${dev}) and add it again`,
    }];
  }
  if (down) {
    out.push({
      check: 'tap',
      problem: `${dev} is down (set down by an admin), so no traffic passes; vxland does not force it up`,
      fix: `ip link set dev ${dev} up (vxland then restores its addresses)`,
    });
  }
  for (const u of unrestored) {
    out.push({
      check: 'tap',
      problem: u.what === 'mtu'
        ? `${dev} MTU was changed and vxland could not set it back to ${u.value}: ${u.reason}`
        : `address ${u.value} is missing from ${dev} and vxland could not restore it: ${u.reason}`,
      fix: u.what === 'mtu'
        ? `ip link set dev ${dev} mtu ${u.value}, or restart vxland`
        : `ip addr add ${u.value} dev ${dev}, or restart vxland${u.value.includes(':') ? ` (IPv6 needs ${dev} MTU >= 1280 and IPv6 enabled: sysctl net.ipv6.conf.${dev}.disable_ipv6=0)` : ''}`,
    });
  }
  return out;
}
