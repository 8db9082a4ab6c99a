// Hosts that join by themselves (README "Joining through etcd"), end to end
// on both data paths: three vxland hosts with --etcd and no --peer ping each
// other; `fdb show` lists the others as etcd peers; a clean stop of one
// removes it from the others' flood lists at once (the lease is revoked) and
// its state file never holds an etcd entry. A minimal etcd runs in the first
// host's namespace on its underlay address with a data dir under a temp dir,
// stopped and removed at teardown (the multi-member harness of issue 11 is
// test/helpers/etcd.ts).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createTopology, ping, skipUnlessRoot, spawnDaemon, type Host, type TapLike } from './helpers/netns';
import { eventually } from './helpers/eventually';
import { parseMetrics, scrapeMetrics } from './helpers/operator';
import type { PeerRow } from '../src/control/protocol';
import { datapathsUnderTest, startVxland, type VxlandHandle } from './helpers/vxland';

/** In the first host's namespace. */
const METRICS = '127.0.0.1:9798';
/** etcd's start-up, then the three joins. */
const JOIN_TIMEOUT_MS = 20_000;

const hasEtcd = spawnSync('etcd', ['--version']).status === 0;

function startEtcd(t: TapLike, host: Host): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'vxland-etcd-join-'));
  const url = `http://${host.ip}:2379`;
  const peer = `http://${host.ip}:2380`;
  const etcd = spawnDaemon(t, host.ns, [
    'etcd', '--name', 'm', '--data-dir', path.join(dir, 'data'),
    '--listen-client-urls', url, '--advertise-client-urls', url,
    '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer, '--initial-cluster', `m=${peer}`,
    '--log-level', 'error',
  ]);
  // etcd first, then its data dir (a running etcd writes into it).
  t.teardown(async () => {
    await etcd.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  return url;
}

type FdbRow = { mac: string; vtep: string; kind: string };
const etcdPeers = async (v: VxlandHandle): Promise<string[]> =>
  ((await v.json<FdbRow[]>('fdb', 'show')).filter((e) => e.kind === 'etcd' && e.mac === '00:00:00:00:00:00').map((e) => e.vtep).sort());

for (const datapath of datapathsUnderTest()) {
  t.test(`three hosts join through etcd with no --peer (${datapath})`, { skip: hasEtcd ? false : 'etcd is not installed (apt-get install etcd-server)' }, async (t) => {
    if (skipUnlessRoot(t)) return;
    const topo = await createTopology(t, { hosts: 3 });
    const url = startEtcd(t, topo.hosts[0]);
    const vs: VxlandHandle[] = [];
    for (const h of topo.hosts) {
      const metrics = h.index === 0 ? ['--metrics', METRICS] : [];
      vs.push(await startVxland(t, h, { address: `10.42.0.${h.index + 1}/24`, datapath, extraArgs: ['--etcd', url, ...metrics] }));
    }
    for (const [i, v] of vs.entries()) {
      const others = topo.hosts.filter((h) => h.index !== i).map((h) => h.ip).sort();
      t.same(await eventually(() => etcdPeers(v), { until: (p) => p.join() === others.join(), timeoutMs: JOIN_TIMEOUT_MS, intervalMs: 100, what: `host ${i} lists the others` }), others, `host ${i}: the others are etcd peers`);
    }
    const others0 = topo.hosts.slice(1).map((h) => h.ip).sort();
    t.same((await vs[0].json<PeerRow[]>('peer', 'list')).sort((a, b) => a.ip.localeCompare(b.ip)),
      others0.map((ip) => ({ ip, kind: 'etcd' })), 'peer list --json: the others, kind etcd');
    const table = (await vs[0].cli('peer', 'list')).stdout.trim().split('\n').map((l) => l.split(/\s+/));
    t.same(table.slice(1).sort(), others0.map((ip) => [ip, 'etcd']), `peer list: ${JSON.stringify(table)}`);
    for (const [i, v] of vs.entries()) {
      for (const h of topo.hosts) {
        if (h.index === i) continue;
        const r = await ping(v.host.ns, `10.42.0.${h.index + 1}`, { count: 3, intervalS: 0.2, timeoutS: 5 });
        t.ok(r.received > 0, `host ${i} pings 10.42.0.${h.index + 1} (${r.received}/${r.transmitted})`);
      }
    }
    const status = await vs[0].json<{ etcd: { connected: boolean; revision: number; leaseTtlLeftMs: number } }>('status');
    t.ok(status.etcd.connected && status.etcd.revision > 0 && status.etcd.leaseTtlLeftMs > 0, `status: etcd connected, revision ${status.etcd.revision}, lease ${status.etcd.leaseTtlLeftMs} ms left`);
    const scraped = parseMetrics(await scrapeMetrics(topo.hosts[0].ns, METRICS));
    const value = (name: string): number | undefined => scraped.get(name)?.samples[0]?.value;
    t.equal(value('vxland_etcd_connected'), 1, 'metrics: vxland_etcd_connected 1');
    t.equal(value('vxland_etcd_remote_vteps'), 2, 'metrics: two remote VTEPs');
    t.ok((value('vxland_etcd_revision') ?? 0) > 0 && (value('vxland_etcd_lease_ttl_seconds') ?? 0) > 0, 'metrics: a revision and the lease time left');
    t.equal(scraped.get('vxland_fdb_entries')?.samples.find((x) => x.labels.kind === 'etcd')?.value, 4, 'vxland_fdb_entries{kind="etcd"}: two peers and two TAP MACs');
    const saved = JSON.parse(readFileSync(path.join(vs[0].stateDir, `${vs[0].dev}.json`), 'utf8')) as { peers: string[]; fdb: unknown[] };
    t.same([saved.peers, saved.fdb], [[], []], 'the state file holds no etcd entry');

    await vs[2].proc.stop();
    const left = [topo.hosts[1].ip];
    t.same(await eventually(() => etcdPeers(vs[0]), { until: (p) => p.join() === left.join(), timeoutMs: 5_000, intervalMs: 100, what: 'host 2 gone from host 0 (lease revoked)' }), left, 'a clean stop leaves the flood lists at once');
  });
}
