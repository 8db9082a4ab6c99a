// The daemon's life as systemd and an operator see it: READY=1 once TAP and
// UDP are up, WATCHDOG=1 pings, STOPPING=1 and exit 0 on SIGTERM with the TAP
// and the control socket gone; a TAP deleted underneath is a fatal error.
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { eventually } from './helpers/eventually';
import { addKernelVxlan, createTopology, exec, ip, linkStats, ping, REPO_ROOT, skipUnlessRoot, spawnDaemon } from './helpers/netns';
import { datapathsUnderTest, startVxland, tempDir, TEST_VNI } from './helpers/vxland';

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
    t.same(reloaded.addPeers, [c.ip]);
    const warning = await v.proc.waitForJson((l) => l.msg === 'these settings changed but apply only after a restart', 5000);
    t.same(warning.keys, ['mtu'], 'the MTU change is named as needing a restart');
    t.same(await v.json('peer', 'list'), [b.ip, c.ip]);
    t.equal((await ping(a.ns, '10.42.0.3', { count: 3, intervalS: 0.2, timeoutS: 2 })).received, 3, 'C is reachable after the reload');
    t.equal((await v.json<any>('log-level')).level, 'debug', 'the log level applied');

    writeFileSync(configFile, '{ not json');
    v.proc.proc.kill('SIGHUP');
    const failed = await v.proc.waitForJson((l) => l.msg === 'config reload failed; keeping the running configuration', 5000);
    t.match(failed.err, /not valid JSON/, 'a broken file is reported');
    t.equal((await ping(a.ns, '10.42.0.2', { count: 2, intervalS: 0.2, timeoutS: 2 })).received, 2, 'and the daemon keeps running');
  });
}
