// ARP/ND suppression end to end (issue 11), on every data path: vxland A
// (suppression on, from its config file) and vxland B in two namespaces.
// With `vxland neigh add` on A for B's overlay address, A's ARP request for
// it is answered on A's TAP (ping works) and never crosses the underlay; a
// gratuitous ARP still reaches B; with suppression turned off by a reload
// the request floods as before. Counted in status and /metrics. With etcd,
// suppression is on by default and the remote hosts' bindings answer.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { skipUnlessEtcd, startEtcd } from './helpers/etcd';
import { eventually } from './helpers/eventually';
import { createTopology, exec, ping, skipIf, skipUnlessRoot, spawnDaemon, type LineProcess, type TapLike } from './helpers/netns';
import { datapathsUnderTest, startVxland, tempDir } from './helpers/vxland';

const A_IP = '10.42.0.1';
const B_IP = '10.42.0.2';
/** An address only the crafted gratuitous ARP announces (known to A's table too). */
const ANNOUNCED_IP = '10.42.0.77';
const ANNOUNCED_MAC = '02:00:00:00:77:77';
const METRICS_PORT = 9400 + (process.pid % 500);

/** tcpdump on dev in ns, one line per packet matching filter; resolves once it listens. */
async function startCapture(t: TapLike, ns: string, dev: string, filter: string): Promise<LineProcess> {
  const p = spawnDaemon(t, ns, ['tcpdump', '-i', dev, '-n', '-l', '-p', '-v', filter]);
  await eventually(() => {
    if (!p.running) throw new Error(`tcpdump exited: ${p.stderrLines.join(' | ')}`);
    return p.stderrLines.some((l) => l.includes('listening on'));
  }, { timeoutMs: 10_000, what: `tcpdump listening on ${dev}` });
  return p;
}

/** What a capture printed once stopped (stdout complete). */
async function captured(p: LineProcess): Promise<string> {
  await p.stop();
  return p.lines.join('\n');
}

/** A's requests for B's address in a capture (B's own gratuitous announcements, "tell B_IP", are not A's). */
const whoHasB = (text: string): number => (text.match(new RegExp(`who-has ${B_IP.replace(/\./g, '\\.')} tell ${A_IP.replace(/\./g, '\\.')}`, 'g')) ?? []).length;

/** A gratuitous ARP request (sender = target = ip) out of dev, as a host announcing ip sends it. */
async function sendGratuitousArp(ns: string, dev: string, mac: string, ip: string): Promise<void> {
  const macHex = mac.replace(/:/g, '');
  const ipHex = ip.split('.').map((o) => Number(o).toString(16).padStart(2, '0')).join('');
  const frame = `ffffffffffff${macHex}0806` + `000108000604` + `0001${macHex}${ipHex}000000000000${ipHex}`;
  const addon = path.resolve(__dirname, '..', '..', 'build', 'Release', 'vxland.node');
  await exec(ns, [process.execPath, '-e', `require(${JSON.stringify(addon)}).packetSend(${JSON.stringify(dev)}, Buffer.from('${frame}', 'hex'))`]);
}

for (const datapath of datapathsUnderTest()) {
  t.test(`ARP suppression between two vxland hosts (${datapath})`, async (t) => {
    if (skipUnlessRoot(t)) return;
    const topo = await createTopology(t, { hosts: 2 });
    const [a, b] = topo.hosts;
    const file = path.join(tempDir(t, 'h1-suppress'), 'a.json');
    writeFileSync(file, JSON.stringify({ suppress: true }));
    const va = await startVxland(t, a, {
      peers: [b.ip], address: `${A_IP}/24`, datapath, extraArgs: ['--config', file, '--metrics', `127.0.0.1:${METRICS_PORT}`],
    });
    const vb = await startVxland(t, b, { peers: [a.ip], address: `${B_IP}/24`, datapath });
    const macA = (await va.json('status')).mac as string;
    const macB = (await vb.json('status')).mac as string;

    t.equal((await va.cli('neigh', 'add', B_IP, macB)).code, 0, 'neigh add on A for B\'s address');
    t.equal((await va.cli('neigh', 'add', ANNOUNCED_IP, ANNOUNCED_MAC)).code, 0);
    const shown = await va.json('neigh', 'show');
    t.same(shown.networks, [{ vni: 42, dev: 'vxl0', suppress: true }], 'A suppresses');
    t.same(shown.entries.map((e: any) => [e.ip, e.mac, e.owner]), [[B_IP, macB, 'static'], [ANNOUNCED_IP, ANNOUNCED_MAC, 'static']]);

    // On: A's request for B is answered on A's TAP; nothing of it on the underlay.
    const underlay = await startCapture(t, a.ns, a.dev, 'udp port 4789');
    const onB = await startCapture(t, b.ns, 'vxl0', `arp host ${ANNOUNCED_IP}`);
    const on = await ping(a.ns, B_IP, { count: 3, intervalS: 0.2, timeoutS: 2 });
    t.equal(on.received, 3, 'A pings B: its ARP request was answered');
    const neighA = await exec(a.ns, ['ip', 'neigh', 'show', B_IP, 'dev', 'vxl0']);
    t.match(neighA.stdout, macB, 'A\'s kernel resolved B\'s address to B\'s MAC');
    await sendGratuitousArp(a.ns, 'vxl0', macA, ANNOUNCED_IP);
    await onB.waitForLine(ANNOUNCED_IP, 10_000);
    t.pass('a gratuitous ARP for a known address still reached B');
    const onText = await captured(underlay);
    t.match(onText, /ICMP echo request/, 'the capture saw the pings cross the underlay');
    t.equal(whoHasB(onText), 0, 'tcpdump on the underlay: 0 ARP requests for B\'s address');
    await onB.stop();

    const status = await va.json('status');
    t.equal(status.stats.events.arp_suppressed, 1, 'status counts one suppressed ARP request');
    t.equal(status.stats.events.nd_suppressed, 0);
    t.same(status.networks[0].suppress, { on: true, neighbours: 2 });
    const metrics = await exec(a.ns, ['curl', '-sf', `http://127.0.0.1:${METRICS_PORT}/metrics`]);
    t.match(metrics.stdout, /vxland_suppressed_total\{vni="42",kind="arp"\} 1/, '/metrics counts it');
    t.match(metrics.stdout, /vxland_suppressed_total\{vni="42",kind="nd"\} 0/);

    // Off (a reload turns it off): the request floods as before.
    writeFileSync(file, JSON.stringify({ suppress: false }));
    const reloaded = va.proc.logs.length;
    va.proc.proc.kill('SIGHUP');
    await eventually(() => va.proc.logs.slice(reloaded).some((l) => l.msg === 'config reloaded'), { timeoutMs: 10_000, what: 'config reloaded' });
    t.same((await va.json('neigh', 'show')).networks, [{ vni: 42, dev: 'vxl0', suppress: false }], 'A no longer suppresses');
    await exec(a.ns, ['ip', 'neigh', 'flush', 'dev', 'vxl0']);
    const offCapture = await startCapture(t, a.ns, a.dev, 'udp port 4789');
    const off = await ping(a.ns, B_IP, { count: 3, intervalS: 0.2, timeoutS: 2 });
    t.equal(off.received, 3, 'A pings B with suppression off');
    await offCapture.waitForLine(new RegExp(`who-has ${B_IP} tell ${A_IP}`), 10_000);
    t.ok(whoHasB(await captured(offCapture)) >= 1, 'tcpdump on the underlay: the ARP request for B flooded');
    t.equal((await va.json('status')).stats.events.arp_suppressed, 1, 'nothing more was suppressed');
  });
}

for (const datapath of datapathsUnderTest()) {
  t.test(`with etcd, suppression is on by default and a remote host's binding is answered locally (${datapath})`, async (t) => {
    if (skipUnlessRoot(t) || skipUnlessEtcd(t)) return;
    const topo = await createTopology(t, { hosts: 3 });
    const [etcdHost, a, b] = topo.hosts;
    const etcd = await startEtcd(t, { ns: etcdHost.ns, ip: etcdHost.ip });
    const extraArgs = ['--etcd', etcd.endpoints.join(',')];
    const va = await startVxland(t, a, { address: `${A_IP}/24`, datapath, extraArgs });
    const vb = await startVxland(t, b, { address: `${B_IP}/24`, datapath, extraArgs });
    const macB = (await vb.json('status')).mac as string;
    const shown = await eventually(() => va.json('neigh', 'show'), {
      until: (r: any) => r.entries.some((e: any) => e.ip === B_IP),
      timeoutMs: 10_000,
      what: 'A lists B\'s binding',
    });
    t.same(shown.networks, [{ vni: 42, dev: 'vxl0', suppress: true }], 'on by default with etcd');
    t.same(shown.entries, [{ vni: 42, dev: 'vxl0', ip: B_IP, mac: macB, owner: 'etcd', vtep: b.ip }], 'B\'s binding, owned by etcd');

    const underlay = await startCapture(t, a.ns, a.dev, 'udp port 4789');
    const r = await ping(a.ns, B_IP, { count: 3, intervalS: 0.2, timeoutS: 2 });
    t.equal(r.received, 3, 'A pings B');
    const text = await captured(underlay);
    t.match(text, /ICMP echo request/, 'the capture saw the pings');
    t.equal(whoHasB(text), 0, 'tcpdump on A\'s underlay: 0 ARP requests for B\'s address');
    t.equal((await va.json('status')).stats.events.arp_suppressed, 1, 'A answered it');
  });
}
