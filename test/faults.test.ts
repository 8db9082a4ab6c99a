// Faults: a damaged state file, kill -9 in the middle of traffic, and a peer
// where nothing listens. In each, the user must get back what was configured
// (or a refusal naming the file), and traffic must keep or resume flowing.
import { existsSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import {
  addKernelVxlan, createTopology, exec, ping, skipUnlessRoot, verifiedTcpTransfer, vxlandArgv,
} from './helpers/netns';
import { datapathsUnderTest, startVxland, tempDir, TEST_VNI } from './helpers/vxland';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

for (const datapath of datapathsUnderTest()) {
  t.test(`a corrupt state file is recovered from its backup; both corrupt: refusal naming the file (${datapath})`, async (t) => {
    if (skipUnlessRoot(t)) return;
    const topo = await createTopology(t, { hosts: 2 });
    const [a, b] = topo.hosts;
    await addKernelVxlan(b, { vni: TEST_VNI, remotes: [a.ip], address: '10.42.0.2/24' });
    const stateDir = tempDir(t, 'faults-state');
    const statePath = path.join(stateDir, 'vxl0.json');
    const backupPath = `${statePath}.bak`;

    const first = await startVxland(t, a, { address: '10.42.0.1/24', datapath, stateDir });
    t.equal((await first.cli('peer', 'add', b.ip)).code, 0, 'peer added');
    t.equal((await first.cli('fdb', 'add', '02:00:00:00:aa:01', '198.18.1.50')).code, 0, 'static entry added');
    // The backup holds the state before the last change: make one more, so
    // that it holds both the peer and the first static entry.
    t.equal((await first.cli('fdb', 'add', '02:00:00:00:aa:02', '198.18.1.51')).code, 0, 'second static entry added');
    t.ok(existsSync(statePath) && existsSync(backupPath), 'state file and its backup exist');
    await first.proc.stop();
    t.equal(first.proc.exitCode, 0, 'SIGTERM: clean exit');

    truncateSync(statePath, Math.floor(statSync(statePath).size / 2));
    const second = await startVxland(t, a, { address: '10.42.0.1/24', datapath, stateDir });
    t.same(await second.json('peer', 'list'), [b.ip], 'peer recovered from the backup');
    const fdb = await second.json<any[]>('fdb', 'show');
    t.ok(fdb.some((e) => e.mac === '02:00:00:00:aa:01' && e.vtep === '198.18.1.50' && e.kind === 'static'), 'static entry recovered from the backup');
    t.notOk(fdb.some((e) => e.mac === '02:00:00:00:aa:02'), 'the change after the backup was taken is lost, as documented');
    const warning = second.proc.logs.find((l) => l.level === 40 && l.path === statePath);
    t.ok(warning, 'a warning log line names the damaged file');
    t.match(warning, { backup: backupPath, msg: /backup/ }, 'and says the backup was used');
    t.equal((await ping(a.ns, '10.42.0.2', { count: 3, intervalS: 0.2, timeoutS: 3 })).received, 3, 'the recovered peer carries traffic');
    await second.proc.stop();
    t.equal(second.proc.exitCode, 0);

    const damagedMain = '{"version":1,"vni":42,"peers":["198.18.';
    writeFileSync(statePath, damagedMain);
    truncateSync(backupPath, Math.floor(statSync(backupPath).size / 2));
    const damagedBackup = readFileSync(backupPath, 'utf8');
    const socket = path.join(stateDir, 'refused.sock');
    const refused = await exec(a.ns, vxlandArgv('run', '--dev', 'vxl0', '--vni', String(TEST_VNI), '--local', a.ip,
      '--state-dir', stateDir, '--socket', socket, '--datapath', datapath, '--address', '10.42.0.1/24'),
    { allowFail: true, timeoutMs: 15_000 });
    t.notOk(refused.timedOut, 'the daemon does not start');
    t.equal(refused.code, 1, 'exit code 1');
    const lines = refused.stderr.trim().split('\n');
    t.equal(lines.length, 1, 'one line on stderr');
    t.match(lines[0], /^vxland: /, 'in the CLI\'s error format');
    t.ok(lines[0].includes(statePath) && lines[0].includes(backupPath), `it names the state file and its backup: ${lines[0]}`);
    t.equal(readFileSync(statePath, 'utf8'), damagedMain, 'the damaged state file is left as it was, for the operator');
    t.equal(readFileSync(backupPath, 'utf8'), damagedBackup, 'and so is the backup');
    t.notOk(existsSync(socket), 'no control socket was left behind');
    const link = await exec(a.ns, ['ip', 'link', 'show', 'dev', 'vxl0'], { allowFail: true });
    t.not(link.code, 0, 'no TAP device was left behind');
  });

  t.test(`kill -9 in the middle of a transfer: a new start restores peers and static entries (${datapath})`, async (t) => {
    if (skipUnlessRoot(t)) return;
    const topo = await createTopology(t, { hosts: 2 });
    const [a, b] = topo.hosts;
    const vb = await startVxland(t, b, { peers: [a.ip], address: '10.42.0.2/24', datapath });
    const first = await startVxland(t, a, { address: '10.42.0.1/24', datapath });
    const bMac = (await vb.json<any>('status')).mac as string;
    t.equal((await first.cli('peer', 'add', b.ip)).code, 0, 'peer added at run time');
    t.equal((await first.cli('fdb', 'add', bMac, b.ip)).code, 0, 'B\'s MAC pinned to B at run time');
    t.equal((await ping(a.ns, '10.42.0.2', { count: 3, intervalS: 0.2, timeoutS: 3 })).received, 3, 'traffic flows');

    // A transfer long enough to be cut: kill -9 once B has received 20 MB of
    // it, then start again. TCP retransmits across the gap, so the same
    // transfer completes once the tunnel is back.
    const bytes = 400 * 1024 * 1024;
    const rx0 = (await vb.json<any>('status')).stats.rxBytes as number;
    const transfer = verifiedTcpTransfer({ serverNs: b.ns, serverIp: '10.42.0.2', clientNs: a.ns, bytes, timeoutMs: 120_000, seed: 9 });
    transfer.catch(() => undefined); // awaited below; not an unhandled rejection meanwhile
    const waitUntil = Date.now() + 30_000;
    let rxDuringTransfer = 0;
    while (Date.now() < waitUntil) {
      rxDuringTransfer = ((await vb.json<any>('status')).stats.rxBytes as number) - rx0;
      if (rxDuringTransfer > 20 * 1024 * 1024) break;
      await sleep(20);
    }
    t.ok(rxDuringTransfer > 20 * 1024 * 1024, `the transfer was under way when A was killed (${Math.round(rxDuringTransfer / 1048576)} MB through)`);
    first.proc.proc.kill('SIGKILL');
    await first.proc.exited;
    t.equal(first.proc.exitSignal, 'SIGKILL', 'A died by SIGKILL');

    const second = await startVxland(t, a, { address: '10.42.0.1/24', datapath, stateDir: first.stateDir });
    t.same(await second.json('peer', 'list'), [b.ip], 'the peer is back');
    const fdb = await second.json<any[]>('fdb', 'show');
    t.ok(fdb.some((e) => e.mac === bMac && e.vtep === b.ip && e.kind === 'static'), 'the static entry is back');

    const r = await transfer;
    t.ok(r.received.bytes === bytes && r.received.sha256 === r.expectedSha256 && r.sent.sha256 === r.expectedSha256,
      `the cut transfer completed intact after the restart (${r.durationMs} ms)`, { sent: r.sent, received: r.received });
    t.equal((await ping(a.ns, '10.42.0.2', { count: 5, intervalS: 0.1, timeoutS: 3 })).received, 5, 'traffic flows after the restart');
    const stats = await second.json<any>('stats');
    const toB = stats.vteps.find((v: any) => v.vtep === b.ip);
    t.ok(toB && toB.txPackets > 0 && toB.rxPackets > 0, 'through the restored peer');
  });

  t.test(`a peer where nothing listens: no crash, the other peer keeps working, doctor names it (${datapath})`, async (t) => {
    if (skipUnlessRoot(t)) return;
    const topo = await createTopology(t, { hosts: 3, kind: 'bridge' });
    const [a, b, c] = topo.hosts;
    // C is a plain host: nothing on UDP 4789, so its kernel answers every
    // datagram with ICMP port unreachable.
    // B first: A's gratuitous ARPs at start must find B listening, or B's
    // ICMP port unreachable would count as drops against B.
    await startVxland(t, b, { peers: [a.ip], address: '10.42.0.2/24', datapath });
    const va = await startVxland(t, a, { peers: [b.ip, c.ip], address: '10.42.0.1/24', datapath });
    const startedMs = Date.now();

    t.equal((await ping(a.ns, '10.42.0.2', { count: 20, intervalS: 0.05, timeoutS: 5 })).received, 20, 'traffic to B flows');
    // Broadcasts (ARP) are flooded to C as well; keep some going.
    await exec(a.ns, ['ip', 'neigh', 'flush', 'dev', 'vxl0'], { allowFail: true });
    const r = await verifiedTcpTransfer({ serverNs: b.ns, serverIp: '10.42.0.2', clientNs: a.ns, bytes: 20 * 1024 * 1024, timeoutMs: 60_000 });
    t.ok(r.received.sha256 === r.expectedSha256 && r.received.bytes === 20 * 1024 * 1024, 'a transfer to B arrives intact');
    t.equal((await ping(a.ns, '10.42.0.99', { count: 2, intervalS: 0.2, timeoutS: 2 })).received, 0, 'an unknown address: ARP floods to both peers');

    const icmp = (await exec(c.ns, ['cat', '/proc/net/snmp'])).stdout.split('\n').filter((l) => l.startsWith('Icmp:'));
    const icmpOut = Object.fromEntries(icmp[0].split(/\s+/).slice(1).map((k, i) => [k, Number(icmp[1].split(/\s+/)[i + 1])]));
    t.ok(icmpOut.OutDestUnreachs > 0, `C's kernel answered with ICMP destination unreachable (${icmpOut.OutDestUnreachs})`);

    // Both paths hear ICMP errors for what they sent (dgram through a socket
    // connected to each destination, native through IP_RECVERR) and count
    // them as tx_send_error against C.
    const stats = await va.json<any>('stats');
    const toC = stats.vteps.find((v: any) => v.vtep === c.ip);
    const toB = stats.vteps.find((v: any) => v.vtep === b.ip);
    t.ok(toC && toC.txPackets > 0, `stats shows datagrams sent to C (${toC?.txPackets})`);
    t.ok(toC && toC.rxPackets === 0 && toC.lastRxMs === 0, 'and nothing ever received from C');
    t.ok(toC && toC.drops > 0, `the ICMP errors are counted against C (${toC?.drops})`);
    t.ok((stats.stats.drops.tx_send_error ?? 0) > 0, `as tx_send_error (${stats.stats.drops.tx_send_error})`);
    t.ok(toB && toB.rxPackets > 0 && toB.lastRxMs > 0 && toB.drops === 0, 'while B is heard, with no errors');
    t.ok(va.proc.running, 'vxland is still running');

    await sleep(Math.max(0, startedMs + 11_000 - Date.now()));
    const doctor = await va.cli('doctor');
    t.equal(doctor.code, 1, 'doctor exits 1: it found a problem');
    t.match(doctor.stdout, `nothing was ever received from peer ${c.ip}`, 'doctor names the silent peer');
    t.notMatch(doctor.stdout, `nothing was ever received from peer ${b.ip}`, 'and not the working one');
    const report = await va.json<any>('doctor').catch((err) => JSON.parse(err.result.stdout));
    t.ok(report.findings.some((f: any) => f.check === 'peer' && f.problem.includes(c.ip)), 'doctor --json has a peer finding for C');
    t.equal((await ping(a.ns, '10.42.0.2', { count: 5, intervalS: 0.1, timeoutS: 3 })).received, 5, 'B still reachable at the end');
  });
}
