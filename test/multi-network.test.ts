// One vxland serving two networks (VNI 42 and 43, one host file) on one UDP
// port, facing a kernel host with two vxlan devices on its one port: ping and
// a verified transfer in each network at the same time; tcpdump on network
// 43's TAP sees no frame of network 42, also when the same MAC lives in both
// networks (the kernel's two devices, and vxland's two TAPs, share one MAC);
// a datagram for network 43 from a host that is a peer of network 42 only is
// dropped and counted as not allowed in network 43's stats; a network added
// and deleted at run time (`vxland network add` / `network del`) while a
// transfer runs in network 42 leaves that transfer intact.
import { writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { eventually } from './helpers/eventually';
import {
  addKernelVxlan, createTopology, exec, execJson, ip, linkStats, ping, skipUnlessRoot, spawnDaemon, verifiedTcpTransfer, vxlandArgv, vxlandJson,
  type Host, type LineProcess, type TapLike,
} from './helpers/netns';
import { datapathsUnderTest, tempDir } from './helpers/vxland';

const MTU_BYTES = 1450;
/** One MAC on both of the kernel host's devices, and one on both of vxland's TAPs. */
const KERNEL_SHARED_MAC = '02:00:00:42:43:02';
const VXLAND_SHARED_MAC = '02:00:00:42:43:01';
const TRANSFER_BYTES = 20 * 1024 * 1024;
/** Network 42's transfer during `network add`/`del`: slowed by a TBF qdisc on
 *  vxland's TAP 42 so that it outlasts both commands. */
const SLOW_TRANSFER_BYTES = 24 * 1024 * 1024;
const SLOW_RATE = '40mbit';
const TRANSFER_TIMEOUT_MS = 120_000;
const START_TIMEOUT_MS = 20_000;
const STRANGER_PINGS = 5;
const COUNT_TIMEOUT_MS = 5_000;

interface HostDaemon {
  proc: LineProcess;
  socket: string;
  /** `vxland <args> --socket S --json`, parsed. */
  json<T = any>(...args: string[]): Promise<T>;
}

/** `vxland run --config FILE` with a host file (design10.md) listing networks. */
async function startHostDaemon(t: TapLike, host: Host, datapath: string, networks: object[]): Promise<HostDaemon> {
  const dir = tempDir(t, 'host');
  const socket = path.join(dir, 'vxland.sock');
  const file = path.join(dir, 'vxland.json');
  writeFileSync(file, JSON.stringify({
    local: host.ip, port: 4789, datapath, socket, stateDir: path.join(dir, 'state'), logLevel: 'debug', networks,
  }, null, 2));
  const proc = spawnDaemon(t, host.ns, vxlandArgv('run', '--config', file));
  const json = <T = any>(...args: string[]) => vxlandJson<T>(host.ns, [...args, '--socket', socket, '--json'], { timeoutMs: 10_000 });
  await eventually(async () => {
    if (!proc.running) throw new Error(`vxland exited (${proc.exitCode ?? proc.exitSignal}): ${[...proc.lines, ...proc.stderrLines].slice(-8).join(' | ')}`);
    if (!existsSync(socket)) return false;
    return json('status').then(() => true, () => false);
  }, { timeoutMs: START_TIMEOUT_MS, intervalMs: 100, what: `vxland answering on ${socket}` });
  return { proc, socket, json };
}

/** tcpdump on dev in ns printing one line per frame matching filter; resolves once it listens. */
async function startCapture(t: TapLike, ns: string, dev: string, filter: string): Promise<LineProcess> {
  const p = spawnDaemon(t, ns, ['tcpdump', '-i', dev, '-n', '-l', '-p', filter]);
  await eventually(() => {
    if (!p.running) throw new Error(`tcpdump exited: ${p.stderrLines.join(' | ')}`);
    return p.stderrLines.some((l) => l.includes('listening on'));
  }, { timeoutMs: 10_000, what: `tcpdump listening on ${dev}` });
  return p;
}

/** Frames a capture printed, once it has stopped (stdout complete). */
async function capturedFrames(p: LineProcess): Promise<string[]> {
  await p.stop();
  return p.lines.filter((l) => l.trim() !== '');
}

function network(vni: number, peers: string[]): object {
  return { vni, dev: `vxl${vni}`, mtu: MTU_BYTES, addresses: [`10.${vni}.0.1/24`], peers, mac: VXLAND_SHARED_MAC };
}

for (const datapath of datapathsUnderTest()) {
  t.test(`one vxland, networks 42 and 43, facing a kernel host with two vxlan devices (${datapath})`, async (t) => {
    if (skipUnlessRoot(t)) return;
    const topo = await createTopology(t, { hosts: 3 });
    const [a, b, stranger] = topo.hosts;
    for (const vni of [42, 43, 44]) {
      await addKernelVxlan(b, { name: `vxk${vni}`, vni, remotes: [a.ip], address: `10.${vni}.0.2/24`, mac: KERNEL_SHARED_MAC, mtu: MTU_BYTES });
    }
    // The stranger is a peer of network 42 only, and sends for network 43.
    const v = await startHostDaemon(t, a, datapath, [network(42, [b.ip, stranger.ip]), network(43, [b.ip])]);

    await t.test('ping and a verified transfer in each network at the same time; no frame of 42 on 43\'s TAP', async (t) => {
      const leaks = await startCapture(t, a.ns, 'vxl43', 'net 10.42.0.0/16 or arp net 10.42.0.0/16');
      const own = await startCapture(t, a.ns, 'vxl43', 'net 10.43.0.0/16 or arp net 10.43.0.0/16');
      const [p42, p43] = await Promise.all([42, 43].map((vni) => ping(a.ns, `10.${vni}.0.2`, { count: 5, intervalS: 0.2, timeoutS: 2 })));
      t.equal(p42.received, 5, 'network 42: A pings the kernel host');
      t.equal(p43.received, 5, 'network 43: A pings the kernel host');
      const [x42, x43] = await Promise.all([42, 43].map((vni, i) => verifiedTcpTransfer({
        serverNs: b.ns, serverIp: `10.${vni}.0.2`, clientNs: a.ns, bytes: TRANSFER_BYTES, timeoutMs: TRANSFER_TIMEOUT_MS, seed: 42 + i,
      })));
      for (const [vni, x] of [[42, x42], [43, x43]] as const) {
        t.equal(x.received.bytes, TRANSFER_BYTES, `network ${vni}: every byte arrived`);
        t.equal(x.received.sha256, x.expectedSha256, `network ${vni}: bytes intact (sha256)`);
      }
      const back = await Promise.all([42, 43].map((vni, i) => verifiedTcpTransfer({
        serverNs: a.ns, serverIp: `10.${vni}.0.1`, clientNs: b.ns, bytes: TRANSFER_BYTES, timeoutMs: TRANSFER_TIMEOUT_MS, seed: 7 + i,
      })));
      back.forEach((x, i) => t.equal(x.received.sha256, x.expectedSha256, `network ${42 + i}, kernel → vxland: bytes intact (sha256)`));
      t.same(await capturedFrames(leaks), [], 'tcpdump on vxl43: 0 frames of network 42');
      t.ok((await capturedFrames(own)).length > 0, 'while it saw network 43\'s own frames');
      for (const vni of [42, 43]) {
        const fdb = await v.json<any[]>('fdb', 'show', '--vni', String(vni));
        t.ok(fdb.some((e) => e.mac === KERNEL_SHARED_MAC && e.vtep === b.ip && e.vni === vni && e.kind === 'learned'),
          `network ${vni} learned the shared MAC ${KERNEL_SHARED_MAC} behind ${b.ip} under VNI ${vni}`);
        t.notOk(fdb.some((e) => e.vni !== vni), `network ${vni}'s fdb show lists only VNI ${vni}`);
      }
    });

    await t.test('a datagram for 43 from a peer of 42 only is dropped and counted in 43', async (t) => {
      const [tap43] = await execJson<Array<{ address: string }>>(null, ['ip', '-n', a.ns, '-j', 'link', 'show', 'dev', 'vxl43']);
      const rogue = await addKernelVxlan(stranger, { name: 'vxk43', vni: 43, remotes: [a.ip], address: '10.43.0.3/24', mtu: MTU_BYTES });
      // A permanent neighbour: exactly one datagram per echo, no ARP.
      await ip(stranger.ns, 'neigh', 'add', '10.43.0.1', 'lladdr', tap43.address, 'dev', rogue.name, 'nud', 'permanent');
      const before = { 42: await v.json('stats', '--vni', '42'), 43: await v.json('stats', '--vni', '43') };
      const tx0 = (await linkStats(stranger.ns, rogue.name)).txPackets;
      const r = await ping(stranger.ns, '10.43.0.1', { count: STRANGER_PINGS, intervalS: 0.2, timeoutS: 1 });
      t.equal(r.transmitted, STRANGER_PINGS, `the stranger sent ${STRANGER_PINGS} echoes`);
      t.equal(r.received, 0, 'and got no reply');
      const sent = (await linkStats(stranger.ns, rogue.name)).txPackets - tx0;
      t.equal(sent, STRANGER_PINGS, 'one VXLAN datagram per echo');
      const notAllowed = (s: any) => s.stats.drops.rx_source_not_allowed ?? 0;
      const after43 = await eventually(() => v.json('stats', '--vni', '43'), {
        until: (s) => notAllowed(s) - notAllowed(before[43]) >= sent,
        timeoutMs: COUNT_TIMEOUT_MS,
        what: `network 43 counting ${sent} datagrams as rx_source_not_allowed`,
        describe: (s) => JSON.stringify(s.stats.drops),
      });
      t.equal(notAllowed(after43) - notAllowed(before[43]), sent, `network 43: ${sent} × rx_source_not_allowed`);
      const after42 = await v.json('stats', '--vni', '42');
      t.equal(notAllowed(after42), notAllowed(before[42]), 'network 42 counts none of them');
    });

    await t.test('network add / del at run time while a transfer runs in 42: it completes intact', async (t) => {
      await exec(a.ns, ['tc', 'qdisc', 'add', 'dev', 'vxl42', 'root', 'tbf', 'rate', SLOW_RATE, 'burst', '256kb', 'latency', '500ms']);
      t.teardown(() => exec(a.ns, ['tc', 'qdisc', 'del', 'dev', 'vxl42', 'root'], { allowFail: true }));
      let transferDoneMs = 0;
      const transfer = verifiedTcpTransfer({ serverNs: b.ns, serverIp: '10.42.0.2', clientNs: a.ns, bytes: SLOW_TRANSFER_BYTES, timeoutMs: TRANSFER_TIMEOUT_MS, seed: 99 })
        .then((x) => { transferDoneMs = Date.now(); return x; });

      const added = await v.json('network', 'add', '--vni', '44', '--dev', 'vxl44', '--address', '10.44.0.1/24', '--peer', b.ip, '--mtu', String(MTU_BYTES));
      t.match(added, { vni: 44, dev: 'vxl44' }, 'network add --vni 44');
      t.equal((await ping(a.ns, '10.44.0.2', { count: 3, intervalS: 0.2, timeoutS: 2 })).received, 3, 'network 44 carries traffic at once');
      t.ok((await v.json<any[]>('network', 'list')).some((n) => n.vni === 44), 'network list shows 44');
      const removed = await v.json('network', 'del', '--vni', '44');
      t.match(removed, { vni: 44 }, 'network del --vni 44');
      const delDoneMs = Date.now();
      const links = await execJson<Array<{ ifname: string }>>(null, ['ip', '-n', a.ns, '-j', 'link', 'show']);
      t.notOk(links.some((l) => l.ifname === 'vxl44'), 'its TAP is gone');
      t.notOk((await v.json<any[]>('network', 'list')).some((n) => n.vni === 44), 'network list no longer shows 44');

      const x = await transfer;
      t.ok(transferDoneMs > delDoneMs, 'the transfer in 42 was still running when network 44 was deleted');
      t.equal(x.received.bytes, SLOW_TRANSFER_BYTES, 'network 42: every byte arrived');
      t.equal(x.received.sha256, x.expectedSha256, 'network 42: bytes intact (sha256)');
    });
  });
}
