import t from 'tap';
import { diagnose, DOCTOR_PEER_GRACE_MS, type DoctorReport, type Finding, type HostObservations, type NetworkObservations } from '../src/doctor';
import { SRC_PORT_SOCKETS } from '../src/tables/limits.generated';
import { addKernelVxlan, createTopology, exec, skipUnlessRoot } from './helpers/netns';
import { awaitFinding } from './helpers/operator';
import { datapathsUnderTest, startVxland, TEST_VNI } from './helpers/vxland';

/** How long a live daemon may take to name what a sender did. */
const SENDER_NAMED_MS = 20_000;

/** One network's observations and the host's, as a one-network daemon has them. */
type Observations = NetworkObservations & Pick<HostObservations, 'foreignVnis' | 'tcpInCsumErrors'> & { hostStats?: HostObservations['stats'] };

const NO_COUNTS = { rxPackets: 0, rxBytes: 0, txPackets: 0, txBytes: 0, drops: {}, dropsTotal: 0, learnRefused: { fdbFull: 0, vtepFull: 0, rate: 0 } };

function healthy(overrides: Partial<Observations> = {}): Observations {
  return {
    dev: 'vxl0', vni: 42, port: 4789, local: '192.0.2.1', family: 'udp4', mtu: 1450,
    uptimeMs: 60_000, peers: ['192.0.2.2'],
    vteps: [{ vtep: '192.0.2.2', rxPackets: 10, drops: 0, lastRxMs: 1 }],
    underlay: [{ interface: 'eth0', mtu: 1500, towards: '192.0.2.1' }],
    foreignVnis: [],
    refusedSenders: [],
    accept: 'peers',
    stats: { rxPackets: 10, rxBytes: 1000, txPackets: 10, txBytes: 1000, drops: {}, dropsTotal: 0, learnRefused: { fdbFull: 0, vtepFull: 0, rate: 0 } },
    tcpInCsumErrors: 0,
    tap: { dev: 'vxl0', down: false, unrestored: [], failed: null },
    ...overrides,
  };
}

function networkPart(o: Observations): NetworkObservations {
  const { foreignVnis: _foreign, tcpInCsumErrors: _csum, hostStats: _host, ...network } = o;
  return network;
}

/** The host's checks and the one network's. */
function check(o: Observations): DoctorReport {
  return diagnose({ port: o.port, served: [{ vni: o.vni, dev: o.dev }], foreignVnis: o.foreignVnis, tcpInCsumErrors: o.tcpInCsumErrors, stats: o.hostStats ?? NO_COUNTS }, [networkPart(o)]);
}

t.test('a healthy daemon has no findings', async (t) => {
  t.same(check(healthy()), { ok: true, checks: ['mtu', 'vni', 'peer', 'source', 'drops', 'checksum', 'tap', 'etcd', 'srcport'], findings: [] });
});

t.test('srcport: the range and its ports are reported; fewer ports bound than it allows is a finding', async (t) => {
  const o = healthy();
  const host = (srcPorts: HostObservations['srcPorts']): HostObservations => ({ port: o.port, srcPorts, served: [{ vni: o.vni, dev: o.dev }], foreignVnis: [], tcpInCsumErrors: 0, stats: NO_COUNTS });
  const full = diagnose(host({ min: 40000, max: 40999, bound: SRC_PORT_SOCKETS }), [networkPart(o)]);
  t.same([full.ok, full.srcport, full.findings], [true, `40000-40999 (${SRC_PORT_SOCKETS} ports)`, []], 'all bound: reported, no finding');
  t.same(diagnose(host({ min: 4000, max: 4001, bound: 2 }), [networkPart(o)]).findings, [], 'a range of 2 ports holds 2 sockets');
  const [finding] = diagnose(host({ min: 40000, max: 40999, bound: 10 }), [networkPart(o)]).findings;
  t.equal(finding?.check, 'srcport');
  t.match(finding?.problem, `only 10 of ${SRC_PORT_SOCKETS} outer source ports could be bound in 40000-40999`);
  t.match(finding?.fix, '--srcport MIN-MAX');
});

t.test('etcd: out of reach is a finding naming the endpoints, the revision kept and the lease time left; connected is none', async (t) => {
  const o = healthy();
  const host = (etcd: HostObservations['etcd']): HostObservations => ({ port: o.port, served: [{ vni: o.vni, dev: o.dev }], foreignVnis: [], tcpInCsumErrors: 0, stats: NO_COUNTS, etcd });
  const status = { connected: true, revision: 12, leaseTtlLeftMs: 9_500, remoteVteps: 3, lists: 1, lastError: null, endpoints: ['http://127.0.0.1:2379'] };
  t.same(diagnose(host(status), [networkPart(o)]).findings, [], 'connected: nothing to say');
  const [finding] = diagnose(host({ ...status, connected: false }), [networkPart(o)]).findings;
  t.equal(finding?.check, 'etcd');
  t.match(finding?.problem, 'etcd (http://127.0.0.1:2379) is out of reach: membership is kept as of revision 12, our lease expires in 10 s');
  t.match(finding?.fix, 'etcdctl --endpoints=http://127.0.0.1:2379 endpoint health');
  const [never] = diagnose(host({ ...status, connected: false, revision: null, leaseTtlLeftMs: null }), [networkPart(o)]).findings;
  t.match(never?.problem, 'nothing was listed yet, no lease is held');
  const [refused] = diagnose(host({ ...status, connected: false, lastError: 'etcd refused our TLS client certificate' }), [networkPart(o)]).findings;
  t.match(refused?.problem, 'etcd (http://127.0.0.1:2379) is out of reach (etcd refused our TLS client certificate): membership is kept', 'the reason is named');
});

t.test('MTU: underlay minus 50 (IPv4) or 70 (IPv6)', async (t) => {
  const v4 = check(healthy({ underlay: [{ interface: 'eth0', mtu: 1400, towards: '192.0.2.1' }] }));
  t.equal(v4.findings.length, 1);
  t.match(v4.findings[0], { check: 'mtu', problem: /vxl0 MTU 1450 .* eth0 .* MTU 1400, .* at most MTU 1350/, fix: /--mtu 1350, or raise the MTU of eth0 to 1500/ });
  const v6 = check(healthy({ family: 'udp6', local: 'fd00::1', underlay: [{ interface: 'eth0', mtu: 1500, towards: 'fd00::1' }] }));
  t.match(v6.findings, [{ check: 'mtu', fix: /--mtu 1430/ }], 'IPv6 needs 20 bytes more');
  t.equal(check(healthy({ mtu: 1430, family: 'udp6' })).findings.length, 0);
});

t.test('VNI mismatch names the sender and both VNIs', async (t) => {
  const r = check(healthy({ foreignVnis: [{ address: '192.0.2.7', vni: 43, count: 5, lastMs: 1 }] }));
  t.match(r.findings, [{ check: 'vni', problem: '192.0.2.7 sends VXLAN with VNI 43, but vxl0 uses VNI 42 (5 datagrams dropped)', fix: /id 42.*--vni 43/ }]);
});

t.test('a peer never heard from is reported after the grace period', async (t) => {
  const silent = { vteps: [{ vtep: '192.0.2.2', rxPackets: 0, drops: 0, lastRxMs: 0 }] };
  t.match(check(healthy(silent)).findings, [{ check: 'peer', problem: /nothing was ever received from peer 192\.0\.2\.2/, fix: /dst 192\.0\.2\.1.*dstport 4789/ }]);
  t.same(check(healthy({ ...silent, uptimeMs: DOCTOR_PEER_GRACE_MS - 1 })).findings, [], 'not right after start');
  t.match(check(healthy({ vteps: [] })).findings, [{ check: 'peer' }], 'untracked counts as silent');
});

t.test('drops that point to a misconfiguration', async (t) => {
  const stats = { ...healthy().stats, drops: { rx_oversize: 3, tx_no_destination: 2, rx_truncated: 9 } };
  const r = check(healthy({ stats, peers: [], vteps: [] }));
  t.match(r.findings, [
    { check: 'drops', problem: /3 × rx_oversize/, fix: /same MTU/ },
    { check: 'drops', problem: /2 × tx_no_destination: there are no peers/, fix: /vxland peer add/ },
  ]);
  t.equal(r.findings.length, 2, 'truncated garbage alone is not a misconfiguration');
});

t.test('inner checksum errors point at the veth offload', async (t) => {
  t.match(check(healthy({ tcpInCsumErrors: 4 })).findings, [{ check: 'checksum', fix: /ethtool -K VETH tx off/ }]);
  t.same(check(healthy({ tcpInCsumErrors: null })).findings, [], 'unreadable counter: no finding');
});

t.test('senders refused by the source policy are named', async (t) => {
  const r = check(healthy({ refusedSenders: [{ address: '192.0.2.66', count: 12 }] }));
  t.match(r.findings, [{ check: 'source', problem: /192\.0\.2\.66 sent 12 VXLAN datagrams, dropped .*--accept peers/, fix: /vxland peer add 192\.0\.2\.66/ }]);
});

t.test('a TAP set down, and what the watcher could not restore, each come with a fix', async (t) => {
  const down = check(healthy({ tap: { dev: 'vxl0', down: true, unrestored: [], failed: null } }));
  t.equal(down.ok, false);
  t.match(down.findings, [{ check: 'tap', problem: /vxl0 is down/, fix: /ip link set dev vxl0 up/ }]);
  const failed = check(healthy({
    tap: {
      dev: 'vxl0', down: false, unrestored: [
        { what: 'address', value: 'fd42::1/64', reason: 'ioctl(SIOCSIFADDR) failed: Permission denied (EACCES)' },
        { what: 'mtu', value: '1450', reason: 'ioctl(SIOCSIFMTU) failed: Invalid argument (EINVAL)' },
      ],
      failed: null,
    },
  }));
  t.equal(failed.findings.length, 2);
  t.match(failed.findings[0], { check: 'tap', problem: /fd42::1\/64 is missing from vxl0.*EACCES/, fix: /ip addr add fd42::1\/64 dev vxl0.*disable_ipv6=0/ });
  t.match(failed.findings[1], { check: 'tap', problem: /could not set it back to 1450.*EINVAL/, fix: /ip link set dev vxl0 mtu 1450/ });
  const gone = check(healthy({ tap: { dev: 'vxl43', down: false, unrestored: [], failed: 'TAP device error: read failed: File descriptor in bad state (EBADFD) [vxl43]' } }));
  t.equal(gone.ok, false, 'a TAP that failed is a finding');
  t.match(gone.findings, [{ check: 'tap', problem: /vxl43 failed and this network is no longer carried.*EBADFD/, fix: /network del --dev vxl43/ }]);
});

t.test('several networks: a foreign VNI is a host finding naming the VNIs served; network findings carry their VNI', async (t) => {
  const net42 = networkPart(healthy());
  const n43 = networkPart(healthy({ vni: 43, dev: 'vxl43', peers: [], vteps: [], tap: { dev: 'vxl43', down: true, unrestored: [], failed: null } }));
  const host: HostObservations = {
    port: 4789, served: [{ vni: 42, dev: 'vxl0' }, { vni: 43, dev: 'vxl43' }], tcpInCsumErrors: 0,
    foreignVnis: [{ address: '192.0.2.7', vni: 44, count: 1, lastMs: 1 }],
    stats: { ...NO_COUNTS, drops: { rx_no_i_flag: 2, rx_wrong_vni: 1 }, dropsTotal: 3 },
  };
  const r = diagnose(host, [net42, n43]);
  t.match(r.findings, [
    { check: 'vni', problem: '192.0.2.7 sends VXLAN with VNI 44, which no network of this host has (it serves VNI 42, 43; 1 datagram dropped)', fix: /vxland network add --vni 44/ },
    { check: 'drops', problem: /2 × rx_no_i_flag/ },
    { check: 'tap', vni: 43, problem: /vxl43 is down/ },
  ]);
  t.equal(r.findings.length, 3, 'no finding for the healthy network 42');
  t.notOk('vni' in r.findings[0], 'host findings name no network');
  t.same(diagnose(host, [net42]).findings.map((f) => f.check), ['vni', 'drops'], 'doctor --vni 42: the host\'s checks and that network\'s');
});

// Against a live daemon on each data path: a kernel VTEP on another VNI is
// named with its VNI, whichever path received its datagrams.
for (const datapath of datapathsUnderTest()) {
  t.test(`${datapath}: doctor names a kernel VTEP sending another VNI`, async (t) => {
    if (skipUnlessRoot(t)) return;
    const topo = await createTopology(t, { hosts: 2 });
    const [a, b] = topo.hosts;
    await addKernelVxlan(b, { vni: TEST_VNI + 1, remotes: [a.ip], address: '10.42.0.2/24' });
    const v = await startVxland(t, a, { datapath, peers: [b.ip], address: '10.42.0.1/24' });
    const foreign = (f: Finding) => f.check === 'vni' && f.problem.startsWith(`${b.ip} sends VXLAN with VNI ${TEST_VNI + 1}, but vxl0 uses VNI ${TEST_VNI}`);
    // Each round B sends a few ARP requests, then doctor is asked.
    const report = await awaitFinding(v, foreign, {
      what: `doctor naming ${b.ip} and VNI ${TEST_VNI + 1}`, timeoutMs: SENDER_NAMED_MS,
      stimulate: () => exec(b.ns, ['ping', '-c', '2', '-i', '0.2', '-W', '1', '10.42.0.1'], { allowFail: true, timeoutMs: 10_000 }),
    });
    t.equal(report.code, 1, 'doctor exits 1');
    const human = (await v.cli('doctor')).stdout;
    t.match(human, new RegExp(`vni: ${b.ip.replace(/\./g, '\\.')} sends VXLAN with VNI ${TEST_VNI + 1}, but vxl0 uses VNI ${TEST_VNI} \\(\\d+ datagrams? dropped\\)`), `the human doctor names ${b.ip} and VNI ${TEST_VNI + 1}`);
  });
}

// The other live observations doctor judges, on each data path: a daemon
// with no peers hears a kernel VTEP it does not accept (named as a refused
// sender) and has nowhere to send its own frames (tx_no_destination).
for (const datapath of datapathsUnderTest()) {
  t.test(`${datapath}: doctor names a sender the source policy refused, and drops for want of peers`, async (t) => {
    if (skipUnlessRoot(t)) return;
    const topo = await createTopology(t, { hosts: 2 });
    const [a, b] = topo.hosts;
    await addKernelVxlan(b, { vni: TEST_VNI, remotes: [a.ip], address: '10.42.0.2/24' });
    const v = await startVxland(t, a, { datapath, address: '10.42.0.1/24' });
    const refused = (f: Finding) => f.check === 'source' && f.problem.startsWith(`${b.ip} sent `) && f.fix.includes(`vxland peer add ${b.ip}`);
    const noPeers = (f: Finding) => f.check === 'drops' && /\d+ × tx_no_destination: there are no peers/.test(f.problem);
    const report = await awaitFinding(v, refused, {
      what: `doctor naming ${b.ip} as refused`, timeoutMs: SENDER_NAMED_MS,
      stimulate: () => Promise.all([
        exec(b.ns, ['ping', '-c', '2', '-i', '0.2', '-W', '1', '10.42.0.1'], { allowFail: true, timeoutMs: 10_000 }),
        exec(a.ns, ['ping', '-c', '2', '-i', '0.2', '-W', '1', '10.42.0.2'], { allowFail: true, timeoutMs: 10_000 }),
      ]),
    });
    t.equal(report.code, 1, 'doctor exits 1');
    t.ok(report.findings.some(noPeers), `and names the frames dropped for want of peers: ${JSON.stringify(report.findings)}`);
    const status = await v.json<any>('status');
    t.ok(status.stats.drops.rx_source_not_allowed > 0 && status.stats.drops.tx_no_destination > 0,
      `status counts both (${JSON.stringify(status.stats.drops)})`);
  });
}
