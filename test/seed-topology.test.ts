// The seed's own topology, container eth0 → veth → br0 → tunnel device →
// underlay, on both hosts of a veth underlay: each host has a Linux bridge
// br0 with two container namespaces attached by veth (MTU 1450, one /24),
// and the tunnel device in br0. Host A runs vxland with "bridge": "br0";
// host B first a kernel vxlan device in its bridge (as Docker does), then
// vxland too. Every container pair pings across the hosts, a verified
// transfer runs between containers both ways, and `vxland fdb show` lists
// the remote containers' MACs behind the other host. A bridge that does not
// exist fails the start with one line and leaves nothing behind.
//
// `fdb show` is asked in the single-network form (the daemon has one
// network, so no --vni is needed); with several networks it is
// `vxland fdb show --vni 4097`.
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';
import { eventually } from './helpers/eventually';
import {
  addKernelVxlan, createNamespace, createTopology, exec, execJson, fdbShow, ip, ping, skipUnlessRoot, verifiedTcpTransfer, vxlandArgv,
  type Host, type TapLike,
} from './helpers/netns';
import { datapathsUnderTest, startVxland, tempDir, type VxlandHandle } from './helpers/vxland';

const VNI = 4097;
const MTU_BYTES = 1450;
const BRIDGE = 'br0';
const CONTAINER_PREFIX_LEN = 24;
const TRANSFER_BYTES = 20 * 1024 * 1024;
const TRANSFER_TIMEOUT_MS = 120_000;
const PINGS = 3;
/** How long a learned MAC may take to show in `fdb show` (native: learned in batches). */
const LEARN_TIMEOUT_MS = 5_000;

interface Container { ns: string; ip: string; mac: string }

/** A bridge br0 in host's namespace with `count` container namespaces, each
 *  attached by a veth pair (eth0 inside, MTU 1450) and addressed
 *  10.97.0.<first + i>/24. */
async function bridgedContainers(t: TapLike, host: Host, tag: string, first: number, count: number): Promise<Container[]> {
  await ip(host.ns, 'link', 'add', BRIDGE, 'type', 'bridge', 'stp_state', '0');
  await ip(host.ns, 'link', 'set', BRIDGE, 'up');
  const containers: Container[] = [];
  for (let i = 0; i < count; i++) {
    const ns = await createNamespace(t, `h${host.index}c${i}`, tag);
    const port = `veth${i}`;
    await ip(null, 'link', 'add', port, 'netns', host.ns, 'mtu', String(MTU_BYTES), 'type', 'veth',
      'peer', 'name', 'eth0', 'netns', ns, 'mtu', String(MTU_BYTES));
    await ip(host.ns, 'link', 'set', port, 'master', BRIDGE);
    await ip(host.ns, 'link', 'set', port, 'up');
    const address = `10.97.0.${first + i}`;
    await ip(ns, 'addr', 'add', `${address}/${CONTAINER_PREFIX_LEN}`, 'dev', 'eth0');
    await ip(ns, 'link', 'set', 'eth0', 'up');
    const [link] = await execJson<Array<{ address: string }>>(null, ['ip', '-n', ns, '-j', 'link', 'show', 'dev', 'eth0']);
    containers.push({ ns, ip: address, mac: link.address });
  }
  return containers;
}

/** A two-host underlay with two containers behind br0 on each host. */
async function seedTopology(t: TapLike): Promise<{ a: Host; b: Host; onA: Container[]; onB: Container[] }> {
  const topo = await createTopology(t, { hosts: 2 });
  const [a, b] = topo.hosts;
  const onA = await bridgedContainers(t, a, topo.tag, 1, 2);
  const onB = await bridgedContainers(t, b, topo.tag, 3, 2);
  return { a, b, onA, onB };
}

/** vxland on host with its TAP in br0; the bridge comes from a config file
 *  ("bridge": "br0") or the --bridge flag. */
async function vxlandInBridge(t: TapLike, host: Host, peer: Host, datapath: string, via: 'file' | 'flag'): Promise<VxlandHandle> {
  const extraArgs = ['--mtu', String(MTU_BYTES)];
  if (via === 'file') {
    const file = path.join(tempDir(t, 'conf'), 'vxland.json');
    writeFileSync(file, JSON.stringify({ vni: VNI, bridge: BRIDGE }));
    extraArgs.push('--config', file);
  } else {
    extraArgs.push('--bridge', BRIDGE);
  }
  const v = await startVxland(t, host, { vni: VNI, peers: [peer.ip], datapath, extraArgs });
  const [tap] = await execJson<Array<{ master?: string; mtu: number }>>(null, ['ip', '-n', host.ns, '-j', 'link', 'show', 'dev', v.dev]);
  if (tap.master !== BRIDGE) throw new Error(`${v.dev} is not in ${BRIDGE}: ${JSON.stringify(tap)}`);
  return v;
}

/** Every container on one host pings every container on the other, both
 *  ways, then a verified transfer runs A → B and B → A. */
async function checkContainers(t: Test, onA: Container[], onB: Container[]): Promise<void> {
  for (const [from, to] of [...onA.flatMap((x) => onB.map((y) => [x, y])), ...onB.flatMap((y) => onA.map((x) => [y, x]))]) {
    const r = await ping(from.ns, to.ip, { count: PINGS, intervalS: 0.2, timeoutS: 2 });
    t.equal(r.received, PINGS, `${from.ip} pings ${to.ip} across the hosts`);
  }
  const ab = await verifiedTcpTransfer({ serverNs: onB[0].ns, serverIp: onB[0].ip, clientNs: onA[0].ns, bytes: TRANSFER_BYTES, timeoutMs: TRANSFER_TIMEOUT_MS });
  t.equal(ab.received.bytes, TRANSFER_BYTES, `${onA[0].ip} → ${onB[0].ip}: every byte arrived`);
  t.equal(ab.received.sha256, ab.expectedSha256, `${onA[0].ip} → ${onB[0].ip}: bytes intact (sha256)`);
  const ba = await verifiedTcpTransfer({ serverNs: onA[1].ns, serverIp: onA[1].ip, clientNs: onB[1].ns, bytes: TRANSFER_BYTES, timeoutMs: TRANSFER_TIMEOUT_MS, seed: 7 });
  t.equal(ba.received.bytes, TRANSFER_BYTES, `${onB[1].ip} → ${onA[1].ip}: every byte arrived`);
  t.equal(ba.received.sha256, ba.expectedSha256, `${onB[1].ip} → ${onA[1].ip}: bytes intact (sha256)`);
}

/** `vxland fdb show` lists each remote container's MAC as learned behind remote. */
async function checkLearned(t: Test, v: VxlandHandle, remote: Host, containers: Container[]): Promise<void> {
  const fdb = await eventually(() => v.json<any[]>('fdb', 'show', '--vni', String(VNI)), {
    until: (entries) => containers.every((c) => entries.some((e) => e.mac === c.mac)),
    timeoutMs: LEARN_TIMEOUT_MS,
    what: `${containers.map((c) => c.mac).join(', ')} in vxland fdb show`,
    describe: (entries) => JSON.stringify(entries),
  });
  for (const c of containers) {
    t.ok(fdb.some((e) => e.mac === c.mac && e.vtep === remote.ip && e.vni === VNI && e.kind === 'learned'),
      `fdb show: container ${c.ip}'s MAC ${c.mac} learned behind ${remote.ip}`);
  }
}

/** No doctor finding about the TAP: being a bridge port is not a problem. */
async function checkDoctorQuietAboutTap(t: Test, v: VxlandHandle): Promise<void> {
  const r = await v.cli('doctor', '--json');
  const findings = (JSON.parse(r.stdout) as { findings: Array<{ check: string }> }).findings;
  t.same(findings.filter((f) => f.check === 'tap'), [], 'doctor reports nothing about the TAP in the bridge');
}

for (const datapath of datapathsUnderTest()) {
  t.test(`seed topology: vxland in br0 ↔ kernel vxlan in br0 (${datapath})`, async (t) => {
    if (skipUnlessRoot(t)) return;
    const { a, b, onA, onB } = await seedTopology(t);
    const kernel = await addKernelVxlan(b, { name: 'vxlan0', vni: VNI, remotes: [a.ip], mtu: MTU_BYTES });
    await ip(b.ns, 'link', 'set', kernel.name, 'master', BRIDGE);
    const va = await vxlandInBridge(t, a, b, datapath, 'file');

    await checkContainers(t, onA, onB);
    await checkLearned(t, va, b, onB);
    const kernelFdb = await fdbShow(b.ns, kernel.name);
    for (const c of onA) {
      t.ok(kernelFdb.some((e) => e.mac === c.mac && e.dst === a.ip), `the kernel learned container ${c.ip}'s MAC behind ${a.ip}`);
    }
    await checkDoctorQuietAboutTap(t, va);
  });

  t.test(`seed topology: vxland in br0 on both hosts (${datapath})`, async (t) => {
    if (skipUnlessRoot(t)) return;
    const { a, b, onA, onB } = await seedTopology(t);
    const va = await vxlandInBridge(t, a, b, datapath, 'file');
    const vb = await vxlandInBridge(t, b, a, datapath, 'flag');

    await checkContainers(t, onA, onB);
    await checkLearned(t, va, b, onB);
    await checkLearned(t, vb, a, onA);
    await checkDoctorQuietAboutTap(t, va);
  });

  t.test(`a bridge that does not exist fails the start (${datapath})`, async (t) => {
    if (skipUnlessRoot(t)) return;
    const topo = await createTopology(t, { hosts: 2 });
    const [a] = topo.hosts;
    const stateDir = tempDir(t, 'state');
    const socket = path.join(stateDir, 'vxl0.sock');
    const r = await exec(a.ns, vxlandArgv('run', '--dev', 'vxl0', '--vni', String(VNI), '--local', a.ip, '--state-dir', stateDir,
      '--socket', socket, '--datapath', datapath, '--bridge', 'brnone'), { allowFail: true, timeoutMs: 15_000 });
    t.equal(r.code, 1, 'exit 1');
    t.equal(r.stderr, 'vxland: cannot put vxl0 into bridge brnone: bridge brnone does not exist (ENODEV); create it first (ip link add brnone type bridge)\n',
      'one line naming the bridge and the errno');
    const links = await execJson<Array<{ ifname: string }>>(null, ['ip', '-n', a.ns, '-j', 'link', 'show']);
    t.notOk(links.some((l) => l.ifname === 'vxl0'), 'the TAP is gone');
    t.notOk(existsSync(socket), 'no control socket was left');
  });
}
