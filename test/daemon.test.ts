// The daemon's life as systemd and an operator see it: READY=1 once TAP and
// UDP are up, WATCHDOG=1 pings, STOPPING=1 and exit 0 on SIGTERM with the TAP
// and the control socket gone; a TAP deleted underneath is a fatal error
// (under journald at priority 2); STATUS= lines; `vxland reload`.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, fstatSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { eventually } from './helpers/eventually';
import { addKernelVxlan, createTopology, exec, ip, linkStats, ping, REPO_ROOT, skipUnlessRoot, spawnDaemon, vxlandArgv, type Host } from './helpers/netns';
import { datapathsUnderTest, startVxland, tempDir, TEST_VNI, type VxlandHandle } from './helpers/vxland';

/** How soon a daemon whose TAP was deleted must have exited. */
const TAP_GONE_EXIT_MS = 10_000;

async function linkExists(ns: string, dev: string): Promise<boolean> {
  return (await exec(ns, ['ip', 'link', 'show', 'dev', dev], { allowFail: true })).code === 0;
}

for (const datapath of datapathsUnderTest()) {
  t.test(`systemd notification and clean shutdown (${datapath})`, async (t) => {
    if (skipUnlessRoot(t)) return;
    const topo = await createTopology(t, { hosts: 2 });
    const [a, b] = topo.hosts;
    const notifyPath = path.join(tempDir(t, 'notify'), 'notify.sock');
    const listener = spawnDaemon(t, a.ns, ['python3', path.join(REPO_ROOT, 'test', 'fixtures', 'notify-listener.py'), notifyPath, '30']);
    await listener.waitForLine('listening', 5000);

    const env = { ...process.env, NOTIFY_SOCKET: notifyPath, WATCHDOG_USEC: '400000' };
    const v = await startVxland(t, a, { peers: [b.ip], address: '10.42.0.1/24', datapath, env });
    await listener.waitForLine('READY=1', 5000);
    t.pass('READY=1 sent');
    t.ok(await linkExists(a.ns, v.dev), 'TAP device exists while running');
    await listener.waitForLine('WATCHDOG=1', 3000);
    t.pass('WATCHDOG=1 sent at half WATCHDOG_USEC');
    await listener.waitForLine(`STATUS=1 network, 1 peer, 0 learned MACs, ${datapath} data path`, 3000);
    t.pass('STATUS= says what runs, for systemctl status');
    await v.cli('peer', 'add', '192.0.2.77');
    await listener.waitForLine(`STATUS=1 network, 2 peers, 0 learned MACs, ${datapath} data path`, 5000);
    t.pass('and is sent again when it changes');

    v.proc.proc.kill('SIGTERM');
    await v.proc.exited;
    t.equal(v.proc.exitCode, 0, 'SIGTERM exits 0');
    await listener.waitForLine('STOPPING=1', 3000);
    t.pass('STOPPING=1 sent');
    t.notOk(await linkExists(a.ns, v.dev), 'TAP device is gone');
    t.notOk(existsSync(v.socket), 'control socket file is removed');
  });

  t.test(`SIGINT shuts down cleanly too (${datapath})`, async (t) => {
    if (skipUnlessRoot(t)) return;
    const topo = await createTopology(t, { hosts: 2 });
    const v = await startVxland(t, topo.hosts[0], { peers: [topo.hosts[1].ip], datapath });
    v.proc.proc.kill('SIGINT');
    await v.proc.exited;
    t.equal(v.proc.exitCode, 0);
  });

  t.test(`a TAP deleted underneath is a clear, non-zero exit (${datapath})`, async (t) => {
    if (skipUnlessRoot(t)) return;
    const topo = await createTopology(t, { hosts: 2 });
    const v = await startVxland(t, topo.hosts[0], { peers: [topo.hosts[1].ip], datapath });
    await ip(topo.hosts[0].ns, 'link', 'del', v.dev);
    await eventually(() => !v.proc.running, { timeoutMs: TAP_GONE_EXIT_MS, what: 'vxland exiting once its TAP is gone' });
    t.pass('exits at all');
    t.not(v.proc.exitCode, 0, 'exits non-zero so systemd restarts it');
    const fatal = v.proc.logs.find((l) => l.level === 60);
    t.ok(fatal, 'logs one fatal line');
    t.match(JSON.stringify(fatal), /EBADFD|ENODEV|EIO|read/, 'naming the failing call');
  });

  t.test(`under journald the fatal line is priority 2 and the TAP's error line 3, without time or pid (${datapath})`, async (t) => {
    if (skipUnlessRoot(t)) return;
    const topo = await createTopology(t, { hosts: 2 });
    const [a, b] = topo.hosts;
    const dir = tempDir(t, 'h4-journal');
    const socket = path.join(dir, 'vxl0.sock');
    // stdout and stderr are one stand-in journald stream, as systemd connects them.
    const fd = openSync(path.join(dir, 'journal'), 'w');
    t.teardown(() => closeSync(fd));
    const st = fstatSync(fd, { bigint: true });
    const child = spawn('ip', ['netns', 'exec', a.ns, ...vxlandArgv('run', '--dev', 'vxl0', '--vni', String(TEST_VNI), '--local', a.ip, '--peer', b.ip,
      '--state-dir', dir, '--socket', socket, '--datapath', datapath)], { stdio: ['ignore', fd, fd], env: { ...process.env, JOURNAL_STREAM: `${st.dev}:${st.ino}` } });
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    t.teardown(() => child.kill('SIGKILL'));
    await eventually(async () => (await exec(a.ns, vxlandArgv('status', '--socket', socket), { allowFail: true })).code === 0,
      { timeoutMs: 15_000, intervalMs: 100, what: 'vxland answering' });
    await ip(a.ns, 'link', 'del', 'vxl0');
    const timer = setTimeout(() => child.kill('SIGKILL'), TAP_GONE_EXIT_MS);
    const code = await exited;
    clearTimeout(timer);
    t.not(code, null, 'exits by itself, in time');
    t.not(code, 0, `exits non-zero (${code})`);
    const lines = readFileSync(path.join(dir, 'journal'), 'utf8').split('\n').filter(Boolean);
    const atMost = (priority: number) => lines.filter((l) => Number(/^<(\d)>/.exec(l)?.[1] ?? 9) <= priority);
    const errors = atMost(3).map((l) => JSON.parse(l.slice(3)) as { level: number; msg: string });
    t.same(errors.map((e) => e.level), [50, 60], 'journalctl -p err: the TAP\'s error line, then the fatal line');
    t.match(atMost(2)[0], /^<2>\{"level":60,/, 'the fatal line is <2>');
    t.ok(lines.some((l) => l.startsWith('<6>{"level":30,')), 'info lines are <6>');
    t.same(lines.filter((l) => !/^<[0-7]>\{/.test(l)), [], 'every line carries its priority');
    t.notOk(lines.some((l) => /"time":|"pid":/.test(l)), 'no second time or pid');
  });

  t.test(`SIGHUP reloads the config file and applies the difference without dropping traffic (${datapath})`, async (t) => {
    if (skipUnlessRoot(t)) return;
    const topo = await createTopology(t, { hosts: 3 });
    const [a, b, c] = topo.hosts;
    const kb = await addKernelVxlan(b, { vni: TEST_VNI, remotes: [a.ip], address: '10.42.0.2/24' });
    await addKernelVxlan(c, { vni: TEST_VNI, remotes: [a.ip], address: '10.42.0.3/24' });
    const configFile = path.join(tempDir(t, 'config'), 'vxl0.json');
    writeFileSync(configFile, JSON.stringify({ vni: TEST_VNI, peers: [b.ip] }));
    const v = await startVxland(t, a, { address: '10.42.0.1/24', datapath, extraArgs: ['--config', configFile] });
    t.equal((await ping(a.ns, '10.42.0.3', { count: 2, intervalS: 0.2, timeoutS: 1 })).received, 0, 'C is not a peer yet');

    writeFileSync(configFile, JSON.stringify({ vni: TEST_VNI, peers: [b.ip, c.ip], logLevel: 'debug', mtu: 1400 }));
    const atB0 = (await linkStats(b.ns, kb.name)).rxPackets;
    const during = ping(a.ns, '10.42.0.2', { count: 40, intervalS: 0.05, timeoutS: 6 });
    // The reload comes once the pings are flowing, with most of them still to come.
    await eventually(async () => (await linkStats(b.ns, kb.name)).rxPackets - atB0, { until: (n) => n >= 5, what: 'pings reaching B' });
    v.proc.proc.kill('SIGHUP');
    const result = await during;
    t.equal(result.received, result.transmitted, `no ping to B lost across the reload (${result.received}/${result.transmitted})`);
    const reloaded = await v.proc.waitForJson((l) => l.msg === 'config reloaded', 5000);
    t.same((reloaded.networks as Array<{ addPeers: string[] }>)[0].addPeers, [c.ip]);
    const warning = await v.proc.waitForJson((l) => l.msg === 'these settings changed but apply only after a restart', 5000);
    t.same(warning.keys, [`networks (vni ${TEST_VNI}).mtu`], 'the MTU change is named, with its network, as needing a restart');
    t.same(await v.peers(), [b.ip, c.ip]);
    t.equal((await ping(a.ns, '10.42.0.3', { count: 3, intervalS: 0.2, timeoutS: 2 })).received, 3, 'C is reachable after the reload');
    t.equal((await v.json<any>('log-level')).level, 'debug', 'the log level applied');

    writeFileSync(configFile, '{ not json');
    v.proc.proc.kill('SIGHUP');
    const failed = await v.proc.waitForJson((l) => l.msg === 'config reload failed; keeping the running configuration', 5000);
    t.match(failed.err, /not valid JSON/, 'a broken file is reported');
    t.equal((await ping(a.ns, '10.42.0.2', { count: 2, intervalS: 0.2, timeoutS: 2 })).received, 2, 'and the daemon keeps running');
  });
}

for (const datapath of datapathsUnderTest()) {
  t.test(`vxland reload applies a good file, and fails with the reason on a bad one, changing nothing (${datapath})`, async (t) => {
    if (skipUnlessRoot(t)) return;
    const topo = await createTopology(t, { hosts: 2 });
    const [a, b] = topo.hosts;
    const configFile = path.join(tempDir(t, 'config'), 'vxl0.json');
    writeFileSync(configFile, JSON.stringify({ vni: TEST_VNI, peers: [b.ip] }));
    const v = await startVxland(t, a, { datapath, extraArgs: ['--config', configFile] });

    writeFileSync(configFile, JSON.stringify({ vni: TEST_VNI, peers: [b.ip, '192.0.2.77'] }));
    t.same(await v.cli('reload'), { code: 0, stdout: `reloaded: changed vni ${TEST_VNI}\n`, stderr: '' }, 'a good file: exit 0, what changed');
    t.same(await v.peers(), [b.ip, '192.0.2.77'], 'applied before the command returned');

    for (const [label, content, reason] of [
      ['broken JSON', '{ not json', /not valid JSON/],
      ['an invalid value', JSON.stringify({ vni: TEST_VNI, peers: ['192.0.2.300'] }), /peer.* must be an IPv4 or IPv6 address/],
    ] as const) {
      writeFileSync(configFile, content);
      const r = await v.cli('reload');
      t.equal(r.code, 2, `${label}: exit 2, so systemctl reload fails`);
      t.equal(r.stdout, '', `${label}: nothing on stdout`);
      t.match(r.stderr, reason, `${label}: the reason`);
      t.equal(r.stderr.split('\n').length, 2, `${label}: in one line`);
      t.same(await v.peers(), [b.ip, '192.0.2.77'], `${label}: nothing changed`);
    }
    t.ok(v.proc.running, 'the daemon runs on');
  });
}

/** A host file in a fresh state dir: the daemon's settings and these networks. */
function writeHostFile(t: Parameters<typeof tempDir>[0], host: Host, datapath: string, networks: object[]): { file: string; dir: string; socket: string } {
  const dir = tempDir(t, 'host');
  const socket = path.join(dir, 'vxland.sock');
  const file = path.join(dir, 'vxland.json');
  writeFileSync(file, JSON.stringify({ local: host.ip, datapath, stateDir: dir, socket, logLevel: 'debug', networks }));
  return { file, dir, socket };
}

async function startFromHostFile(t: Parameters<typeof tempDir>[0], host: Host, datapath: string, networks: object[]): Promise<VxlandHandle & { file: string }> {
  const { file, dir, socket } = writeHostFile(t, host, datapath, networks);
  const v = await startVxland(t, host, { datapath, hostFile: file, stateDir: dir, socket });
  return { ...v, file };
}

/** Host A: one vxland with networks 42 (vxl42) and 43 (vxl43); host B: kernel vxlan devices for both. */
async function twoNetworksFacingKernel(t: Parameters<typeof tempDir>[0], datapath: string): Promise<{ a: Host; b: Host; v: VxlandHandle & { file: string } }> {
    const topo = await createTopology(t, { hosts: 2 });
    const [a, b] = topo.hosts;
    await addKernelVxlan(b, { name: 'vxk42', vni: 42, remotes: [a.ip], address: '10.42.0.2/24' });
    await addKernelVxlan(b, { name: 'vxk43', vni: 43, remotes: [a.ip], address: '10.43.0.2/24' });
    const v = await startFromHostFile(t, a, datapath, [
      { vni: 42, dev: 'vxl42', peers: [b.ip], addresses: ['10.42.0.1/24'] },
      { vni: 43, dev: 'vxl43', peers: [b.ip], addresses: ['10.43.0.1/24'] },
    ]);
  return { a, b, v };
}

async function linkExistsIn(ns: string, dev: string): Promise<boolean> {
  return (await exec(ns, ['ip', 'link', 'show', 'dev', dev], { allowFail: true })).code === 0;
}

for (const datapath of datapathsUnderTest()) {
  t.test(`one daemon, two networks from a host file: status shows both, each carries its own traffic (${datapath})`, async (t) => {
    if (skipUnlessRoot(t)) return;
    const { a, b, v } = await twoNetworksFacingKernel(t, datapath);
    const status = await v.json<any>('status');
    t.same(status.networks.map((n: any) => [n.vni, n.dev, n.origin]), [[42, 'vxl42', 'config'], [43, 'vxl43', 'config']], 'status: one block per network');
    t.equal(status.datapath, datapath, 'one data path for the host');
    const human = (await v.cli('status')).stdout;
    t.match(human, /\nnetwork vni 42 \(vxl42\):\n[^]*\nnetwork vni 43 \(vxl43\):\n/, 'the human status has a block for each');
    for (const [vni, peer] of [[42, '10.42.0.2'], [43, '10.43.0.2']] as const) {
      t.equal((await ping(a.ns, peer, { count: 3, intervalS: 0.2, timeoutS: 2 })).received, 3, `network ${vni} carries a ping`);
    }
    const ambiguous = await v.cli('peer', 'list');
    t.equal(ambiguous.code, 1, 'a per-network command without --vni/--dev is refused');
    t.equal(ambiguous.stderr, 'vxland: this daemon serves 2 networks (vni 42 (vxl42), vni 43 (vxl43)); say which with --vni N or --dev NAME\n', 'naming the networks');
    const unknown = await v.cli('fdb', 'show', '--vni', '44');
    t.equal(unknown.stderr, 'vxland: no network with vni 44 (networks: vni 42 (vxl42), vni 43 (vxl43))\n', 'an unknown VNI is named');
    t.same(await v.peers('--dev', 'vxl43'), [b.ip], '--dev selects');
    t.equal((await v.cli('peer', 'add', '198.51.100.43', '--vni', '43')).code, 0);
    t.same(await v.peers('--vni', '42'), [b.ip], 'a peer added to 43 is not a peer of 42');
    t.ok(JSON.parse(readFileSync(path.join(v.stateDir, 'vxl43.json'), 'utf8')).peers.includes('198.51.100.43'), 'saved in vxl43.json');

    // A third network at run time, next to the two of the file.
    await addKernelVxlan(b, { name: 'vxk44', vni: 44, remotes: [a.ip], address: '10.44.0.2/24' });
    t.equal((await v.cli('network', 'add', '--vni', '44', '--peer', b.ip, '--address', '10.44.0.1/24')).code, 0, 'network add 44');
    t.equal((await v.cli('fdb', 'add', '02:00:00:00:44:01', '198.51.100.44', '--vni', '44')).code, 0, 'a static entry in 44');
    for (const peer of ['10.42.0.2', '10.43.0.2', '10.44.0.2']) {
      t.equal((await ping(a.ns, peer, { count: 3, intervalS: 0.2, timeoutS: 2 })).received, 3, `${peer} answers with three networks up`);
    }
    v.proc.proc.kill('SIGKILL');
    await v.proc.exited;
    const again = await startVxland(t, a, { datapath, hostFile: v.file, stateDir: v.stateDir, socket: v.socket });
    t.same((await again.json<any[]>('network', 'list')).map((n) => [n.vni, n.origin]), [[42, 'config'], [43, 'config'], [44, 'runtime']], 'after kill -9: every network');
    t.same(await again.peers('--vni', '43'), [b.ip, '198.51.100.43'], 'a runtime peer of a config network');
    t.match((await again.json<any[]>('fdb', 'show', '--vni', '44')).filter((e) => e.kind === 'static'), [{ mac: '02:00:00:00:44:01', vtep: '198.51.100.44' }], 'a static entry of a runtime network');
    t.equal((await again.cli('network', 'del', '--vni', '44')).code, 0, 'network del 44');
    for (const peer of ['10.42.0.2', '10.43.0.2']) {
      t.equal((await ping(a.ns, peer, { count: 3, intervalS: 0.2, timeoutS: 2 })).received, 3, `${peer} still answers`);
    }
  });

  t.test(`a TAP deleted under one of two networks stops that network alone; doctor names it (${datapath})`, async (t) => {
    if (skipUnlessRoot(t)) return;
    const { a, v } = await twoNetworksFacingKernel(t, datapath);
    await ip(a.ns, 'link', 'del', 'vxl43');
    const failed = await v.proc.waitForJson((l) => l.level === 50 && String(l.msg).startsWith('vxl43 failed'), TAP_GONE_EXIT_MS);
    t.match(JSON.stringify(failed), /EBADFD|ENODEV|EIO|read/, 'the error line names the failing call');
    t.equal((await ping(a.ns, '10.42.0.2', { count: 5, intervalS: 0.1, timeoutS: 2 })).received, 5, 'network 42 carries on');
    t.ok(v.proc.running, 'the daemon runs on');
    t.notOk(v.proc.logs.some((l) => l.level === 60), 'nothing fatal');
    const doctor = await v.cli('doctor', '--vni', '43');
    t.not(doctor.code, 0, 'doctor --vni 43 reports a problem');
    t.match(doctor.stdout, /vxl43 failed and this network is no longer carried/, 'and names it');
    t.equal((await v.cli('doctor', '--vni', '42')).code, 0, 'network 42 is healthy');
  });

  t.test(`network add and del at run time; kill -9 and restart brings every network, peer and static entry back (${datapath})`, async (t) => {
    if (skipUnlessRoot(t)) return;
    const topo = await createTopology(t, { hosts: 2 });
    const [a, b] = topo.hosts;
    await addKernelVxlan(b, { name: 'vxk44', vni: 44, remotes: [a.ip], address: '10.44.0.2/24' });
    const v = await startFromHostFile(t, a, datapath, []);
    t.same(await v.json('network', 'list'), [], 'a host file without networks: a daemon waiting for "network add"');
    t.equal((await v.cli('peer', 'list')).stderr, 'vxland: this daemon serves no network yet; add one with "vxland network add --vni N"\n');

    const added = await v.cli('network', 'add', '--vni', '44', '--address', '10.44.0.1/24', '--peer', b.ip, '--mtu', '1400');
    t.same([added.code, added.stdout, added.stderr], [0, 'added network vni 44 (vxl44)\n', ''], 'network add');
    t.ok(await linkExistsIn(a.ns, 'vxl44'), 'its TAP exists');
    t.equal((await ping(a.ns, '10.44.0.2', { count: 3, intervalS: 0.2, timeoutS: 2 })).received, 3, 'and carries traffic');
    t.equal((await v.cli('fdb', 'add', '02:00:00:00:44:01', '198.51.100.44')).code, 0, 'a static entry (one network: no --vni needed)');
    t.equal((await v.cli('peer', 'add', '198.51.100.45', '--vni', '44')).code, 0, 'a peer');
    const list = await v.json<any[]>('network', 'list');
    t.match(list, [{ vni: 44, dev: 'vxl44', mtu: 1400, peers: 2, origin: 'runtime' }]);
    const show = await v.json<any>('network', 'show', '--vni', '44');
    t.same([show.settings.peers, show.settings.fdb], [[b.ip, '198.51.100.45'], [{ mac: '02:00:00:00:44:01', vtep: '198.51.100.44' }]], 'network show: its peers and static entries');
    const saved = JSON.parse(readFileSync(path.join(v.stateDir, 'runtime-networks.json'), 'utf8'));
    t.match(saved, { version: 1, networks: [{ vni: 44, dev: 'vxl44', mtu: 1400, addresses: ['10.44.0.1/24'] }] }, 'the network is saved in the host state file');
    const macBefore = show.mac as string;

    v.proc.proc.kill('SIGKILL');
    await v.proc.exited;
    const again = await startVxland(t, a, { datapath, hostFile: v.file, stateDir: v.stateDir, socket: v.socket });
    t.match(await again.json<any[]>('network', 'list'), [{ vni: 44, dev: 'vxl44', mtu: 1400, origin: 'runtime', mac: macBefore }], 'after kill -9: the network is back, with its MAC');
    t.same(await again.peers('--vni', '44'), [b.ip, '198.51.100.45'], 'its peers');
    t.match(await again.json<any[]>('fdb', 'show', '--vni', '44'), [{ kind: 'peer' }, { kind: 'peer' }, { mac: '02:00:00:00:44:01', vtep: '198.51.100.44', kind: 'static' }], 'its static entry');
    t.equal((await ping(a.ns, '10.44.0.2', { count: 3, intervalS: 0.2, timeoutS: 2 })).received, 3, 'and its traffic');

    const del = await again.cli('network', 'del', '--vni', '44');
    t.same([del.code, del.stdout], [0, 'removed network vni 44 (vxl44)\n'], 'network del');
    t.notOk(await linkExistsIn(a.ns, 'vxl44'), 'the TAP is gone');
    t.same(await again.json('network', 'list'), []);
    t.same(JSON.parse(readFileSync(path.join(v.stateDir, 'runtime-networks.json'), 'utf8')).networks, [], 'and forgotten in the host state file');
    t.notOk(existsSync(path.join(v.stateDir, 'vxl44.json')), 'its own state file is removed');
    t.equal((await again.json<any>('status')).pid, again.proc.pid, 'the daemon runs on');
  });

  t.test(`a network add that fails leaves nothing behind; a config network cannot be deleted (${datapath})`, async (t) => {
    if (skipUnlessRoot(t)) return;
    const topo = await createTopology(t, { hosts: 2 });
    const [a] = topo.hosts;
    const v = await startFromHostFile(t, a, datapath, []);
    // The underlay veth's name: an interface that exists and is no TAP.
    const refused = await v.cli('network', 'add', '--vni', '45', '--dev', a.dev, '--address', '10.45.0.1/24');
    t.equal(refused.code, 1, `refused: ${refused.stderr.trim()}`);
    t.match(refused.stderr, /^vxland: .*\n$/, 'with one line');
    t.same(await v.json('network', 'list'), [], 'no network was added');
    t.notOk(existsSync(path.join(v.stateDir, 'runtime-networks.json')), 'nothing saved');
    t.notOk(existsSync(path.join(v.stateDir, `${a.dev}.json`)), 'no state file for it');
    const bad = await v.cli('network', 'add', '--vni', '45', '--mtu', '70000');
    t.same([bad.code, bad.stderr], [2, 'vxland: mtu must be an integer 68..65481 (got "70000")\n'], 'bad settings: exit 2, named as in a config file');
    t.equal((await v.cli('network', 'add', '--vni', '45')).code, 0, 'a good one is added after');
    t.equal((await v.cli('network', 'add', '--vni', '46', '--dev', 'vxl45')).stderr, 'vxland: dev vxl45 is already served (network vni 45 (vxl45))\n', 'a dev in use: VXLAND_NETWORK_EXISTS');
    t.equal((await v.json<any>('status')).pid, v.proc.pid, 'the daemon runs on');

    const withConfig = await startFromHostFile(t, topo.hosts[1], datapath, [{ vni: 42, dev: 'vxl42' }]);
    const del = await withConfig.cli('network', 'del', '--vni', '42');
    t.equal(del.code, 2);
    t.match(del.stderr, /^vxland: network vni 42 \(vxl42\) comes from the config file .*remove it there and reload/);
    t.ok(await linkExistsIn(topo.hosts[1].ns, 'vxl42'), 'and it keeps running');
  });

  t.test(`a second daemon on the same port fails with a clear error; the first runs on (${datapath})`, async (t) => {
    if (skipUnlessRoot(t)) return;
    const topo = await createTopology(t, { hosts: 2 });
    const [a, b] = topo.hosts;
    await addKernelVxlan(b, { vni: TEST_VNI, remotes: [a.ip], address: '10.42.0.2/24' });
    const first = await startVxland(t, a, { datapath, peers: [b.ip], address: '10.42.0.1/24' });
    const dir = tempDir(t, 'second');
    const second = await exec(a.ns, vxlandArgv('run', '--dev', 'vxl1', '--vni', '43', '--local', a.ip, '--state-dir', dir,
      '--socket', path.join(dir, 'vxland.sock'), '--datapath', datapath), { allowFail: true, timeoutMs: 15_000 });
    t.notOk(second.timedOut, 'the second daemon returns');
    t.equal(second.code, 1, 'exit 1');
    const lines = second.stderr.trim().split('\n');
    t.equal(lines.length, 1, 'one line on stderr');
    t.match(lines[0], new RegExp(`^vxland: .*(EADDRINUSE|Address already in use).*`), `naming the cause: ${lines[0]}`);
    t.notOk(await linkExistsIn(a.ns, 'vxl1'), 'its TAP is gone');
    t.notOk(existsSync(path.join(dir, 'vxland.sock')), 'no control socket was left');
    t.ok(first.proc.running, 'the first daemon is still running');
    t.equal((await ping(a.ns, '10.42.0.2', { count: 3, intervalS: 0.2, timeoutS: 2 })).received, 3, 'and still carries traffic');
  });
}
