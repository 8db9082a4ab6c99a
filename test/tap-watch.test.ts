// The daemon puts its TAP back as configured when an admin changes it
// (src/io/tap-watch.ts): addresses after a down/up or a removal, the MTU after
// a change; a link set down stays down; what cannot be restored is reported
// by `vxland doctor`.
import t from 'tap';
import { eventually } from './helpers/eventually';
import { createTopology, exec, execJson, ip, ping, skipUnlessRoot } from './helpers/netns';
import { datapathsUnderTest, startVxland, type VxlandHandle } from './helpers/vxland';

const RESTORE_DEADLINE_MS = 2_000;

async function addresses(ns: string, dev: string): Promise<string[]> {
  const links = await execJson<Array<{ addr_info: Array<{ local: string; prefixlen: number }> }>>(null, ['ip', '-n', ns, '-j', 'addr', 'show', 'dev', dev]);
  return (links[0]?.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`);
}

async function mtuOf(ns: string, dev: string): Promise<number> {
  const links = await execJson<Array<{ mtu: number }>>(null, ['ip', '-n', ns, '-j', 'link', 'show', 'dev', dev]);
  return links[0].mtu;
}

/** eventually(), returning the ms it took (the test reports how fast the daemon put things back). */
async function within<T>(timeoutMs: number, what: string, probe: () => Promise<T>, until: (v: T) => boolean): Promise<number> {
  const start = Date.now();
  await eventually(probe, { until, timeoutMs, what });
  return Date.now() - start;
}

async function tapFindings(v: VxlandHandle): Promise<Array<{ check: string; problem: string; fix: string }>> {
  const r = await v.cli('doctor', '--json');
  return (JSON.parse(r.stdout).findings as Array<{ check: string; problem: string; fix: string }>).filter((f) => f.check === 'tap');
}

function logged(v: VxlandHandle, pattern: RegExp): Promise<boolean> {
  return v.proc.waitForJson((l) => pattern.test(String(l.msg)), 3_000).then(() => true, () => false);
}

for (const datapath of datapathsUnderTest()) {
  t.test(`admin changes to the TAP are put back (${datapath})`, async (t) => {
    if (skipUnlessRoot(t)) return;
    const topo = await createTopology(t, { hosts: 2, disableIpv6: false });
    const [a, b] = topo.hosts;
    const va = await startVxland(t, a, { peers: [b.ip], address: '10.42.0.1/24', extraArgs: ['--address', 'fd42::1/64'], datapath });
    await startVxland(t, b, { peers: [a.ip], address: '10.42.0.2/24', extraArgs: ['--address', 'fd42::2/64'], datapath });
    const vxl0Addresses = () => addresses(a.ns, 'vxl0');
    const both = (present: string[]) => present.includes('10.42.0.1/24') && present.includes('fd42::1/64');
    t.ok(both(await vxl0Addresses()), 'both addresses are on the TAP at start');

    await ip(a.ns, 'link', 'set', 'vxl0', 'down');
    t.ok(await logged(va, /vxl0 was set down/), 'the daemon noticed the link going down');
    const link = await execJson<Array<{ flags: string[] }>>(null, ['ip', '-n', a.ns, '-j', 'link', 'show', 'dev', 'vxl0']);
    t.notOk(link[0].flags.includes('UP'), 'and left it down');
    t.match(await tapFindings(va), [{ problem: /vxl0 is down/, fix: /ip link set dev vxl0 up/ }], 'doctor reports the link down with its fix');

    await ip(a.ns, 'link', 'set', 'vxl0', 'up');
    const back = await within(RESTORE_DEADLINE_MS, 'both addresses on vxl0', vxl0Addresses, both);
    t.pass(`after down and up, the IPv6 and IPv4 addresses are back within ${RESTORE_DEADLINE_MS} ms (${back} ms)`);
    t.ok(await logged(va, /^restored address fd42::1\/64 on vxl0 \(it was missing: the kernel drops IPv6 addresses when a link goes down/), 'the log line names the address it restored and why');
    // Until duplicate address detection has finished, the address cannot be used.
    await within(5_000, 'an IPv6 echo answered', async () => (await ping(a.ns, 'fd42::2', { count: 1, timeoutS: 1 }).catch(() => ({ received: 0 }))).received, (n) => n === 1);
    t.pass('IPv6 over the overlay works again');

    await ip(a.ns, 'addr', 'del', '10.42.0.1/24', 'dev', 'vxl0');
    const v4Back = await within(RESTORE_DEADLINE_MS, 'both addresses on vxl0', vxl0Addresses, both);
    t.pass(`a removed IPv4 address is back within ${RESTORE_DEADLINE_MS} ms (${v4Back} ms)`);
    t.ok(await logged(va, /^restored address 10\.42\.0\.1\/24 on vxl0/), 'and logged');

    await ip(a.ns, 'link', 'set', 'vxl0', 'mtu', '9000');
    const mtuBack = await within(RESTORE_DEADLINE_MS, 'vxl0 MTU 1450', () => mtuOf(a.ns, 'vxl0'), (mtu) => mtu === 1450);
    t.pass(`a raised MTU is back to the configured 1450 within ${RESTORE_DEADLINE_MS} ms (${mtuBack} ms)`);
    t.ok(await logged(va, /^restored vxl0 MTU 1450 \(it was changed to 9000/), 'the log line names the MTU it restored');
    const full = await ping(a.ns, '10.42.0.2', { count: 3, intervalS: 0.2, timeoutS: 2, size: 1422, dontFragment: true });
    t.equal(full.received, 3, 'a full-size (1450-byte) ping crosses');

    // IPv6 switched off on the TAP: the addresses cannot come back until it is on again.
    await exec(a.ns, ['sysctl', '-q', '-w', 'net.ipv6.conf.vxl0.disable_ipv6=1']);
    await within(RESTORE_DEADLINE_MS, 'a doctor finding for fd42::1/64', () => tapFindings(va), (findings) => findings.some((f) => /fd42::1\/64 is missing from vxl0/.test(f.problem)));
    t.pass('doctor reports the IPv6 address it could not restore');
    t.match(await tapFindings(va), [{ fix: /ip addr add fd42::1\/64 dev vxl0.*disable_ipv6=0/ }], 'with a fix line');
    await exec(a.ns, ['sysctl', '-q', '-w', 'net.ipv6.conf.vxl0.disable_ipv6=0']);
    await within(RESTORE_DEADLINE_MS, 'both addresses on vxl0', vxl0Addresses, both);
    t.pass('once IPv6 is on again the address is restored');
    t.same(await tapFindings(va), [], 'and doctor has nothing left to report about the TAP');
  });
}
