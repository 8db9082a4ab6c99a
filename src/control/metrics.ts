// Prometheus metrics (opt-in, --metrics HOST:PORT): process metrics from
// prom-client plus vxland's counters and gauges, read from Stats and the FDB
// at scrape time (nothing is updated per packet). The README's metric table
// lists them with their labels; test/operability.test.ts holds it to a live scrape.

import http from 'node:http';
import client from 'prom-client';
import type { StatsReader } from '../ports/counters';
import type { Fdb } from '../fdb/fdb';
import { VxlandError } from '../errors';
import { DROP_REASON_NAMES } from '../ports/drops';
import { NET_EVENT_NAMES } from '../tables/net-events.generated';
import type { MembershipView } from '../ports/membership';

export interface MetricsSources {
  /** vxland's version (package.json). */
  version: string;
  datapath: string;
  /** The offloads in effect now (they can drop out at run time). */
  offloads: () => readonly string[];
  /** Host-level drops (before a network is known). */
  hostStats: StatsReader;
  /** The networks served at scrape time (they come and go at run time). */
  networks: () => ReadonlyArray<{ vni: number; dev: string; stats: StatsReader; fdb: Fdb }>;
  /** The etcd membership, when configured: its series exist only then. */
  membership?: MembershipView | null;
}

/** Every per-network series carries a vni label; the per-VTEP ones stay
 *  bounded in total because all networks' Stats share one VTEP budget. */
export function buildRegistry(s: MetricsSources): client.Registry {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const each = (fn: (n: ReturnType<MetricsSources['networks']>[number], vni: string) => void): void => {
    for (const n of s.networks()) fn(n, String(n.vni));
  };

  new client.Gauge({
    name: 'vxland_build_info', help: 'Constant 1, labelled with the version, the data path and the offloads in effect ("none" without any)',
    labelNames: ['version', 'datapath', 'offloads'], registers,
    collect() {
      this.reset();
      const offloads = s.offloads();
      this.set({ version: s.version, datapath: s.datapath, offloads: offloads.length === 0 ? 'none' : offloads.join(',') }, 1);
    },
  });
  new client.Gauge({
    name: 'vxland_info', help: 'Constant 1 per network, labelled with its device, VNI and the data path',
    labelNames: ['dev', 'vni', 'datapath'], registers,
    collect() {
      this.reset();
      each((n, vni) => this.set({ dev: n.dev, vni, datapath: s.datapath }, 1));
    },
  });
  const total = (name: string, help: string, field: 'rxPackets' | 'rxBytes' | 'txPackets' | 'txBytes') =>
    new client.Counter({
      name, help, labelNames: ['vni'], registers,
      collect() {
        this.reset();
        each((n, vni) => this.inc({ vni }, n.stats.snapshot()[field]));
      },
    });
  total('vxland_rx_packets_total', 'Frames decapsulated and written to the TAP device', 'rxPackets');
  total('vxland_rx_bytes_total', 'Bytes of inner frames written to the TAP device', 'rxBytes');
  total('vxland_tx_packets_total', 'VXLAN datagrams sent', 'txPackets');
  total('vxland_tx_bytes_total', 'Bytes of inner frames sent', 'txBytes');
  new client.Counter({
    name: 'vxland_learn_refused_total', help: 'New or moved MACs not learned, by reason (fdb_full, vtep_full, rate)',
    labelNames: ['vni', 'reason'], registers,
    collect() {
      this.reset();
      each((n, vni) => {
        const { fdbFull, vtepFull, rate } = n.stats.snapshot().learnRefused;
        this.inc({ vni, reason: 'fdb_full' }, fdbFull);
        this.inc({ vni, reason: 'vtep_full' }, vtepFull);
        this.inc({ vni, reason: 'rate' }, rate);
      });
    },
  });
  new client.Counter({
    name: 'vxland_suppressed_total', help: 'ARP requests (kind arp) and neighbour solicitations (kind nd) answered on the TAP instead of flooded',
    labelNames: ['vni', 'kind'], registers,
    collect() {
      this.reset();
      each((n, vni) => {
        const events = n.stats.snapshot().events ?? {};
        for (const name of NET_EVENT_NAMES) {
          if (name.endsWith('_suppressed')) this.inc({ vni, kind: name.replace(/_suppressed$/, '') }, events[name] ?? 0);
        }
      });
    },
  });
  new client.Counter({
    name: 'vxland_icmp_too_big_sent_total', help: 'Oversize frames with DF (or IPv6) answered on the TAP with ICMP fragmentation needed / packet too big carrying the MTU',
    labelNames: ['vni'], registers,
    collect() {
      this.reset();
      each((n, vni) => this.inc({ vni }, n.stats.snapshot().events?.icmp_too_big_sent ?? 0));
    },
  });
  new client.Counter({
    name: 'vxland_drops_total', help: 'Frames and datagrams of a network dropped, by reason', labelNames: ['vni', 'reason'], registers,
    collect() {
      this.reset();
      // Every reason, 0 until it happens: the series exist from the start.
      each((n, vni) => {
        const drops = n.stats.snapshot().drops;
        for (const reason of DROP_REASON_NAMES) this.inc({ vni, reason }, drops[reason] ?? 0);
      });
    },
  });
  new client.Counter({
    name: 'vxland_host_drops_total', help: 'Datagrams dropped before a network is known (truncated, no I flag, unknown VNI), by reason',
    labelNames: ['reason'], registers,
    collect() {
      this.reset();
      // Every reason, 0 until it happens, as for a network: which ones occur
      // before a network is known depends on the data path.
      const drops = s.hostStats.snapshot().drops;
      for (const reason of DROP_REASON_NAMES) this.inc({ reason }, drops[reason] ?? 0);
    },
  });
  new client.Gauge({
    name: 'vxland_fdb_entries', help: 'FDB entries by kind (peer, etcd, static, learned)', labelNames: ['vni', 'kind'], registers,
    collect() {
      this.reset();
      each((n, vni) => {
        const counts: Record<string, number> = { peer: 0, etcd: 0, static: 0, learned: 0 };
        for (const e of n.fdb.entries()) counts[e.kind]++;
        for (const [kind, count] of Object.entries(counts)) this.set({ vni, kind }, count);
      });
    },
  });
  const membership = s.membership;
  if (membership !== undefined && membership !== null) {
    new client.Gauge({
      name: 'vxland_etcd_connected', help: '1 while the etcd list and watch are up, 0 while etcd is out of reach', registers,
      collect() {
        this.set(membership.status().connected ? 1 : 0);
      },
    });
    new client.Gauge({
      name: 'vxland_etcd_revision', help: 'The etcd revision last seen (0 before the first list)', registers,
      collect() {
        this.set(membership.status().revision ?? 0);
      },
    });
    new client.Gauge({
      name: 'vxland_etcd_lease_ttl_seconds', help: 'Time until our etcd lease expires unless kept alive (0 without a lease)', registers,
      collect() {
        this.set((membership.status().leaseTtlLeftMs ?? 0) / 1000);
      },
    });
    new client.Gauge({
      name: 'vxland_etcd_remote_vteps', help: 'Remote VTEPs known from etcd (one per network and host)', registers,
      collect() {
        this.set(membership.status().remoteVteps);
      },
    });
  }
  new client.Gauge({
    name: 'vxland_peers', help: 'VTEPs in the flood list', labelNames: ['vni'], registers,
    collect() {
      this.reset();
      each((n, vni) => this.set({ vni }, n.fdb.peers(n.vni).length));
    },
  });
  const perVtep = (name: string, help: string, field: 'rxPackets' | 'rxBytes' | 'txPackets' | 'txBytes' | 'drops') =>
    new client.Counter({
      name, help, labelNames: ['vni', 'vtep'], registers,
      collect() {
        this.reset();
        each((n, vni) => {
          for (const v of n.stats.vtepSnapshot()) this.inc({ vni, vtep: v.vtep }, v[field]);
        });
      },
    });
  perVtep('vxland_vtep_rx_packets_total', 'Frames received from each VTEP', 'rxPackets');
  perVtep('vxland_vtep_rx_bytes_total', 'Inner bytes received from each VTEP', 'rxBytes');
  perVtep('vxland_vtep_tx_packets_total', 'Datagrams handed to the socket for each VTEP', 'txPackets');
  perVtep('vxland_vtep_tx_bytes_total', 'Inner bytes handed to the socket for each VTEP', 'txBytes');
  perVtep('vxland_vtep_drops_total', 'Datagrams from each VTEP dropped, and failed sends to it', 'drops');
  return registry;
}

export class MetricsServer {
  private constructor(private readonly server: http.Server, readonly address: string) {}

  /** Serves GET /metrics on host:port. Throws VXLAND_SOCKET if it cannot listen. */
  static async listen(host: string, port: number, registry: client.Registry): Promise<MetricsServer> {
    const server = http.createServer((req, res) => {
      if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found; try /metrics\n');
        return;
      }
      registry.metrics().then(
        (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body),
        (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${err.message}\n`),
      );
    });
    server.requestTimeout = 10_000;
    server.headersTimeout = 5_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    }).catch((err: NodeJS.ErrnoException) => {
      throw new VxlandError('VXLAND_SOCKET', `cannot serve metrics on ${host}:${port}: ${err.code ?? err.message}`, { cause: err });
    });
    return new MetricsServer(server, `${host}:${port}`);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.closeAllConnections();
      this.server.close(() => resolve());
    });
  }
}
