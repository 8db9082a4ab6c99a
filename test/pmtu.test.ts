// Issue 13, on the wire, end to end on every data path: path-MTU feedback
// (an oversize DF / IPv6 frame from the TAP is answered with ICMP
// "fragmentation needed" / "packet too big" carrying the tunnel MTU, so the
// sender's kernel caches it; rate-limited), the IPv6 underlay (a kernel peer
// sending zero UDP checksums is heard; the MTU defaults to 1430 there and a
// larger one is refused), and an unroutable peer counted alike by both paths.
//
// A frame larger than the TAP's MTU only leaves the kernel while the TAP's MTU
// is raised; vxland's TAP watcher puts it back within TAP_WATCH_INTERVAL_MS,
// so each attempt raises it and sends at once, and a lost race is retried.
import path from 'node:path';
import t from 'tap';
import { ICMP_TOO_BIG_BURST, ICMP_TOO_BIG_PER_S } from '../src/tables/limits.generated';
import { eventually } from './helpers/eventually';
import { addKernelVxlan, createTopology, exec, ping, skipUnlessRoot, vxlandArgv, type Host } from './helpers/netns';
import { datapathsUnderTest, startVxland, tempDir, type VxlandHandle } from './helpers/vxland';

const A_IP = '10.42.0.1';
const B_IP = '10.42.0.2';
const A_IP6 = 'fd42::1';
const B_IP6 = 'fd42::2';
const TUNNEL_MTU = 1450;
/** Attempts at raising the TAP's MTU and sending before the watcher puts it back. */
const RACE_ATTEMPTS = 8;
const METRICS_PORT = 9900 + (process.pid % 90);
const ADDON = path.resolve(__dirname, '..', '..', 'build', 'Release', 'vxland.node');

/** `ip route get dst` in ns: the kernel's route, with "mtu N" once a PMTU is cached. */
async function routeGet(ns: string, dst: string): Promise<string> {
  return (await exec(ns, ['ip', ...(dst.includes(':') ? ['-6'] : []), 'route', 'get', dst])).stdout;
}

/** Raises dev's MTU to 1500 and at once sends one DF ping of 1500 bytes from ns to dst. */
async function raisedMtuPing(ns: string, dev: string, dst: string): Promise<void> {
  const v6 = dst.includes(':');
  const size = 1500 - (v6 ? 48 : 28);
  await exec(ns, ['sh', '-c', `ip link set ${dev} mtu 1500 && ping ${v6 ? '-6 ' : ''}-n -c 1 -W 1 -M do -s ${size} ${dst}`], { allowFail: true, timeoutMs: 10_000 });
}

/** Until dst has a cached PMTU in ns (one raised-MTU ping per attempt): the route text. */
async function learnPmtu(ns: string, dev: string, dst: string): Promise<string> {
  for (let i = 0; i < RACE_ATTEMPTS; i++) {
    await raisedMtuPing(ns, dev, dst);
    const route = await routeGet(ns, dst);
    if (/\bmtu \d+/.test(route)) return route;
  }
  return routeGet(ns, dst);
}

function counts(status: any): { oversize: number; icmp: number } {
  return { oversize: status.stats.drops.tx_oversize ?? 0, icmp: status.stats.events.icmp_too_big_sent ?? 0 };
}

for (const datapath of datapathsUnderTest()) {
  t.test(`an oversize DF frame is answered with the tunnel MTU, IPv4 and IPv6 (${datapath})`, async (t) => {
    if (skipUnlessRoot(t)) return;
    const topo = await createTopology(t, { hosts: 2, disableIpv6: false });
    const [a, b] = topo.hosts;
    const va = await startVxland(t, a, {
      peers: [b.ip], address: `${A_IP}/24`, datapath, extraArgs: ['--address', `${A_IP6}/64`, '--metrics', `127.0.0.1:${METRICS_PORT}`],
    });
    await startVxland(t, b, { peers: [a.ip], address: `${B_IP}/24`, datapath, extraArgs: ['--address', `${B_IP6}/64`] });
    t.equal((await ping(a.ns, B_IP)).received, 3, 'A reaches B at the normal size');
    await eventually(async () => (await exec(a.ns, ['ping', '-6', '-n', '-c', '1', '-W', '1', B_IP6], { allowFail: true })).code === 0,
      { timeoutMs: 15_000, what: 'A reaches B over IPv6 (DAD done)' });
    t.notMatch(await routeGet(a.ns, B_IP), /\bmtu \d+/, 'no PMTU is cached for B yet');

    const route = await learnPmtu(a.ns, va.dev, B_IP);
    t.match(route, new RegExp(`\\bmtu ${TUNNEL_MTU}\\b`), `A's kernel caches B's path MTU as the tunnel's: ${route.trim()}`);
    const route6 = await learnPmtu(a.ns, va.dev, B_IP6);
    t.match(route6, new RegExp(`\\bmtu ${TUNNEL_MTU}\\b`), `and over IPv6 (packet too big): ${route6.trim()}`);
    await eventually(async () => (await va.json('status')).networks[0].mtu === TUNNEL_MTU &&
      (await exec(a.ns, ['cat', `/sys/class/net/${va.dev}/mtu`])).stdout.trim() === String(TUNNEL_MTU), { timeoutMs: 5000, what: 'the TAP MTU put back' });
    const status = await va.json('status');
    const c = counts(status);
    t.ok(c.icmp >= 2, `status counts the replies as icmp_too_big_sent (${c.icmp})`);
    t.ok(c.oversize >= c.icmp, `each answered frame is still dropped as tx_oversize (${c.oversize})`);
    const metrics = (await exec(a.ns, ['curl', '-sf', `http://127.0.0.1:${METRICS_PORT}/metrics`])).stdout;
    t.match(metrics, new RegExp(`vxland_icmp_too_big_sent_total\\{vni="42"\\} ${c.icmp}\\b`), '/metrics counts them');
    t.notMatch(metrics, /vxland_suppressed_total\{[^}]*kind="icmp/, 'and not as a suppression');

    // The sender is told: locally once its kernel has the PMTU ("message too long, mtu=1450"), or by vxland's answer.
    await exec(a.ns, ['ip', 'link', 'set', va.dev, 'mtu', '1500'], { allowFail: true });
    const told = await exec(a.ns, ['ping', '-n', '-c', '1', '-W', '1', '-M', 'do', '-s', '1472', B_IP], { allowFail: true });
    // (A raised device MTU resets a PMTU equal to the old one: then the frame goes out and is answered again.)
    t.match(`${told.stdout}${told.stderr}`, new RegExp(`message too long, mtu=${TUNNEL_MTU}|Frag needed and DF set \\(mtu = ${TUNNEL_MTU}\\)`),
      'ping -M do -s 1472 is told the tunnel MTU');
  });

  t.test(`ICMP too-big replies are rate-limited, the drops all counted (${datapath})`, async (t) => {
    if (skipUnlessRoot(t)) return;
    const topo = await createTopology(t, { hosts: 2 });
    const [a, b] = topo.hosts;
    const va = await startVxland(t, a, { peers: [b.ip], address: `${A_IP}/24`, datapath });
    const frames = 4 * ICMP_TOO_BIG_BURST;
    const before = counts(await va.json('status'));
    // One process raises the TAP's MTU and sends every frame (IPv4, DF, 1500
    // bytes: 1514 on the wire) through an AF_PACKET socket right after.
    const script = `
      const a = require(${JSON.stringify(ADDON)});
      const f = Buffer.alloc(1514, 0xab);
      Buffer.from('${(await va.json('status')).mac.replace(/:/g, '')}', 'hex').copy(f, 6);
      Buffer.from('02000000bbbb0800', 'hex').copy(f, 0);
      f.writeUInt16BE(0x0800, 12);
      f[14] = 0x45; f.writeUInt16BE(1500, 16); f.writeUInt16BE(0x4000, 20); f[22] = 64; f[23] = 17;
      Buffer.from([10, 42, 0, 1, 10, 42, 0, 2]).copy(f, 26);
      let sent = 0;
      const t0 = Date.now();
      try { a.tapSetMtu(${JSON.stringify(va.dev)}, 1500); for (; sent < ${frames}; sent++) a.packetSend(${JSON.stringify(va.dev)}, f); } catch {}
      console.log(JSON.stringify({ sent, ms: Date.now() - t0 }));`;
    let sent = 0;
    const startedMs = Date.now();
    for (let i = 0; i < RACE_ATTEMPTS && sent < frames; i++) {
      sent += JSON.parse((await exec(a.ns, [process.execPath, '-e', script])).stdout).sent;
    }
    t.ok(sent >= frames, `${sent} oversize DF frames left the TAP`);
    const after = await eventually(async () => counts(await va.json('status')), {
      until: (c) => c.oversize - before.oversize >= sent, timeoutMs: 10_000, what: 'every frame counted',
    });
    const elapsedS = (Date.now() - startedMs) / 1000;
    t.equal(after.oversize - before.oversize, sent, 'every oversize frame is counted tx_oversize');
    const replies = after.icmp - before.icmp;
    t.ok(replies >= 1, `some are answered (${replies})`);
    // The bucket may have been full when the first frame came, and refilled until the status was read.
    t.ok(replies <= ICMP_TOO_BIG_BURST + Math.ceil(ICMP_TOO_BIG_PER_S * elapsedS),
      `at most the bucket (${ICMP_TOO_BIG_BURST}) and its refill are answered: ${replies} of ${sent}`);
    t.ok(replies < sent, 'not every one');
  });
}

/** host with an IPv6 underlay address (fd18::<index+1>/64 on its underlay device). */
async function withIpv6Underlay(host: Host): Promise<Host> {
  const ip6 = `fd18::${host.index + 1}`;
  await exec(host.ns, ['ip', '-6', 'addr', 'add', `${ip6}/64`, 'dev', host.dev, 'nodad']);
  return { ...host, ip: ip6, cidr: `${ip6}/64` };
}

for (const datapath of datapathsUnderTest()) {
  t.test(`over an IPv6 underlay: a kernel peer with zero UDP checksums is heard; MTU 1430 (${datapath})`, async (t) => {
    if (skipUnlessRoot(t)) return;
    const topo = await createTopology(t, { hosts: 2, disableIpv6: false });
    const a = await withIpv6Underlay(topo.hosts[0]);
    const b = await withIpv6Underlay(topo.hosts[1]);
    await addKernelVxlan(b, {
      vni: 42, local: b.ip, dev: b.dev, remotes: [a.ip], mtu: 1430, address: `${B_IP}/24`,
      extra: ['udp6zerocsumtx', 'udp6zerocsumrx'],
    });
    const csumErrors = async (): Promise<number> => {
      const snmp = (await exec(a.ns, ['cat', '/proc/net/snmp6'])).stdout;
      return Number(/^Udp6InCsumErrors\s+(\d+)/m.exec(snmp)?.[1] ?? 0);
    };
    const va = await startVxland(t, a, { peers: [b.ip], address: `${A_IP}/24`, datapath });
    // Counted from here: before vxland binds, a zero-checksum datagram (B's own
    // IPv6 neighbour discovery, flooded) finds no socket and counts as a checksum error.
    const errorsBefore = await csumErrors();
    const status = await va.json('status');
    t.equal(status.networks[0].mtu, 1430, 'the MTU defaults to 1430 over IPv6 (status)');
    t.equal((await exec(a.ns, ['cat', `/sys/class/net/${va.dev}/mtu`])).stdout.trim(), '1430', 'and the TAP has it');
    const r = await ping(a.ns, B_IP, { count: 5, intervalS: 0.2 });
    t.equal(r.received, 5, 'vxland and the kernel peer (udp6zerocsumtx) ping each other');
    t.equal(await csumErrors(), errorsBefore, 'the host\'s UDP layer dropped nothing for its checksum (Udp6InCsumErrors)');
    const full = await ping(a.ns, B_IP, { count: 2, size: 1430 - 28, dontFragment: true });
    t.equal(full.received, 2, 'full-size frames of 1430 cross unfragmented');

    // A larger MTU is refused before anything starts, with the reason.
    const refused = await exec(a.ns, [...vxlandArgv('run', '--vni', '43', '--dev', 'vxl3', '--local', a.ip, '--mtu', '1450',
      '--state-dir', tempDir(t, 'w3-v6mtu'), '--socket', path.join(tempDir(t, 'w3-v6sock'), 's.sock'), '--datapath', datapath)],
    { allowFail: true, timeoutMs: 15_000 });
    t.not(refused.code, 0, 'vxland run --mtu 1450 over IPv6 exits non-zero');
    t.match(refused.stderr, `mtu 1450 does not fit the underlay: at most 1430 (${a.dev} (which holds local) has MTU 1500, less 70 bytes of IPv6 VXLAN headers)`,
      'and says why');
  });
}

t.test('both data paths count sends to an unroutable peer alike: not sent, one tx_send_error each', async (t) => {
  if (skipUnlessRoot(t)) return;
  const paths = datapathsUnderTest();
  const topo = await createTopology(t, { hosts: 2 });
  const unroutable = '203.0.113.9';  // TEST-NET-3: no route in the namespaces
  const frames = 10;
  const daemons: Array<{ datapath: string; v: VxlandHandle }> = [];
  for (let i = 0; i < paths.length; i++) {
    daemons.push({ datapath: paths[i], v: await startVxland(t, topo.hosts[i], { peers: [unroutable], datapath: paths[i] }) });
  }
  const deltas: Record<string, unknown> = {};
  for (const { datapath, v } of daemons) {
    const read = async () => {
      const s = await v.json('stats');  // one snapshot: every counter of it from the same moment
      const peer = s.vteps.find((x: any) => x.vtep === unroutable) ?? { txPackets: 0, drops: 0 };
      return { tx: s.stats.txPackets as number, peerTx: peer.txPackets as number, peerDrops: peer.drops as number, sendErrors: (s.stats.drops.tx_send_error ?? 0) as number };
    };
    const before = await read();
    const mac = (await v.json('status')).mac.replace(/:/g, '');
    const frame = `ffffffffffff${mac}88b5${'00'.repeat(46)}`;  // broadcast, local experimental ethertype: flooded
    await exec(v.host.ns, [process.execPath, '-e',
      `const a = require(${JSON.stringify(ADDON)}); for (let i = 0; i < ${frames}; i++) a.packetSend(${JSON.stringify(v.dev)}, Buffer.from('${frame}', 'hex'));`]);
    const after = await eventually(read, { until: (c) => c.sendErrors - before.sendErrors >= frames, timeoutMs: 10_000, what: `${datapath}: ${frames} send errors` });
    const delta = { tx: after.tx - before.tx, peerTx: after.peerTx - before.peerTx, peerDrops: after.peerDrops - before.peerDrops, sendErrors: after.sendErrors - before.sendErrors };
    t.same(delta, { tx: 0, peerTx: 0, peerDrops: frames, sendErrors: frames }, `${datapath}: tx +0, the peer's drops +${frames}, tx_send_error +${frames}`);
    deltas[datapath] = delta;
  }
  if (paths.length === 2) t.same(deltas[paths[0]], deltas[paths[1]], 'the same deltas on both paths');
});
