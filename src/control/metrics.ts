// Prometheus metrics (opt-in, --metrics HOST:PORT): process metrics from
// prom-client plus vxland's counters and gauges, read from Stats and the FDB
// at scrape time (nothing is updated per packet). The README's metric table
// lists them with their labels; test/operability.test.ts holds it to a live scrape.

import http from 'node:http';
import client from 'prom-client';
import type { StatsReader } from '../ports/counters';
import type { Fdb } from '../fdb/fdb';
import { VxlandError } from '../errors';

export interface MetricsSources {
  dev: string;
  vni: number;
  datapath: string;
  stats: StatsReader;
  fdb: Fdb;
}

export function buildRegistry(s: MetricsSources): client.Registry {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry });
  const registers = [registry];

  new client.Gauge({
    name: 'vxland_info', help: 'Constant 1, labelled with the daemon\'s device, VNI and data path',
    labelNames: ['dev', 'vni', 'datapath'], registers,
    collect() { this.set({ dev: s.dev, vni: String(s.vni), datapath: s.datapath }, 1); },
  });
  const total = (name: string, help: string, read: () => number) =>
    new client.Counter({ name, help, registers, collect() { this.reset(); this.inc(read()); } });
  total('vxland_rx_packets_total', 'Frames decapsulated and written to the TAP device', () => s.stats.snapshot().rxPackets);
  total('vxland_rx_bytes_total', 'Bytes of inner frames written to the TAP device', () => s.stats.snapshot().rxBytes);
  total('vxland_tx_packets_total', 'VXLAN datagrams sent', () => s.stats.snapshot().txPackets);
  total('vxland_tx_bytes_total', 'Bytes of inner frames sent', () => s.stats.snapshot().txBytes);
  new client.Counter({
    name: 'vxland_learn_refused_total', help: 'New or moved MACs not learned, by reason (fdb_full, vtep_full, rate)',
    labelNames: ['reason'], registers,
    collect() {
      this.reset();
      const { fdbFull, vtepFull, rate } = s.stats.snapshot().learnRefused;
      this.inc({ reason: 'fdb_full' }, fdbFull);
      this.inc({ reason: 'vtep_full' }, vtepFull);
      this.inc({ reason: 'rate' }, rate);
    },
  });

  new client.Counter({
    name: 'vxland_drops_total', help: 'Frames and datagrams dropped, by reason', labelNames: ['reason'], registers,
    collect() {
      this.reset();
      for (const [reason, count] of Object.entries(s.stats.snapshot().drops)) this.inc({ reason }, count);
    },
  });
  new client.Gauge({
    name: 'vxland_fdb_entries', help: 'FDB entries by kind (peer, static, learned)', labelNames: ['kind'], registers,
    collect() {
      const counts: Record<string, number> = { peer: 0, static: 0, learned: 0 };
      for (const e of s.fdb.entries()) counts[e.kind]++;
      for (const [kind, n] of Object.entries(counts)) this.set({ kind }, n);
    },
  });
  new client.Gauge({
    name: 'vxland_peers', help: 'VTEPs in the flood list', registers,
    collect() { this.set(s.fdb.peers(s.vni).length); },
  });
  const perVtep = (name: string, help: string, field: 'rxPackets' | 'rxBytes' | 'txPackets' | 'txBytes' | 'drops') =>
    new client.Counter({
      name, help, labelNames: ['vtep'], registers,
      collect() {
        this.reset();
        for (const v of s.stats.vtepSnapshot()) this.inc({ vtep: v.vtep }, v[field]);
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
