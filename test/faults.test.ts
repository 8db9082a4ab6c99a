// Faults: a damaged state file, a nearly full state filesystem, a second
// daemon on the same state, kill -9 in the middle of traffic, and a peer
// where nothing listens. In each, the user must get back what was configured
// and acknowledged (or a refusal naming the file), and traffic must keep or
// resume flowing.
import { existsSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import {
  addKernelVxlan, createTopology, exec, ping, skipUnlessRoot, verifiedTcpTransfer, vxlandArgv,
} from './helpers/netns';
import { eventually } from './helpers/eventually';
import { awaitFinding, silentPeer } from './helpers/operator';
import { fillFilesystem, mountTmpfs, TMPFS_PAGE_BYTES } from './helpers/tmpfs';
import { datapathsUnderTest, startVxland, tempDir, TEST_VNI } from './helpers/vxland';

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
    t.same(await second.peers(), [b.ip], 'peer recovered from the backup');
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

  t.test(`a state filesystem with 8 KiB left: each change is acknowledged and kept across kill -9, or refused and absent (${datapath})`, async (t) => {
    if (skipUnlessRoot(t)) return;
    const topo = await createTopology(t, { hosts: 2 });
    const [a, b] = topo.hosts;
    // The peers below are reached through B (which drops what it gets), so
    // that sends to them succeed and count as sent.
    await exec(a.ns, ['ip', 'route', 'add', '198.51.100.0/24', 'via', b.ip]);
    const stateDir = mountTmpfs(t, 1024 * 1024);
    const statePath = path.join(stateDir, 'vxl0.json');
    // A saved state of almost one page (and its backup): the 50 peers below
    // push it past 4096 bytes, so a save needs more room than is left.
    const seeded: { mac: string; vtep: string }[] = [];
    let seedText = '';
    for (let i = 0; seedText.length < 3300; i++) {
      seeded.push({ mac: `02:00:00:00:aa:${i.toString(16).padStart(2, '0')}`, vtep: '198.51.100.250' });
      seedText = `${JSON.stringify({ version: 1, vni: TEST_VNI, peers: [], fdb: seeded }, null, 2)}\n`;
    }
    writeFileSync(statePath, seedText);
    writeFileSync(`${statePath}.bak`, seedText);
    const first = await startVxland(t, a, { address: '10.42.0.1/24', datapath, stateDir });
    fillFilesystem(stateDir, 2 * TMPFS_PAGE_BYTES);

    const acknowledged: string[] = [];
    const refused: string[] = [];
    for (let i = 1; i <= 50; i++) {
      const peer = `198.51.100.${i}`;
      const r = await first.cli('peer', 'add', peer);
      if (r.code === 0) {
        acknowledged.push(peer);
      } else {
        refused.push(peer);
        t.match(r.stderr, /^vxland: cannot write state file .*ENOSPC/, `peer add ${peer} refused with the reason`);
      }
    }
    t.ok(acknowledged.length > 0 && refused.length > 0, `the disk filled up part-way: ${acknowledged.length} acknowledged, ${refused.length} refused`);
    t.same((await first.peers()).sort(), [...acknowledged].sort(), 'the running daemon has exactly the acknowledged peers');
    // ARP for an absent address is flooded: to every acknowledged peer, and
    // to no refused one (the data path's flood list was rolled back too).
    const sentTo = async (): Promise<Map<string, number>> =>
      new Map((await first.json<any>('stats')).vteps.map((v: any) => [v.vtep, v.txPackets as number]));
    const sent = await eventually(async () => {
      await ping(a.ns, '10.42.0.99', { count: 1, timeoutS: 1 });
      return sentTo();
    }, {
      until: (s) => acknowledged.every((p) => (s.get(p) ?? 0) > 0), timeoutMs: 10_000,
      what: 'a broadcast sent to every acknowledged peer',
      describe: (s) => `not sent to ${acknowledged.filter((p) => !((s.get(p) ?? 0) > 0)).join(', ')}`,
    });
    t.pass('a broadcast reached every acknowledged peer');
    t.same(refused.filter((p) => (sent.get(p) ?? 0) > 0), [], 'and none of the refused ones');
    const refusedFdb = await first.cli('fdb', 'add', '02:00:00:00:bb:01', '198.51.100.251');
    t.equal(refusedFdb.code, 1, 'a static entry that does not fit is refused too');
    const deleted = acknowledged.pop()!;
    t.equal((await first.cli('peer', 'del', deleted)).code, 0, 'a peer del shrinks the file: it fits, and is acknowledged');

    first.proc.proc.kill('SIGKILL');
    await first.proc.exited;
    const second = await startVxland(t, a, { datapath, stateDir });
    t.same((await second.peers()).sort(), [...acknowledged].sort(), 'after kill -9 and a restart: every acknowledged peer, none refused or deleted');
    const fdb = await second.json<any[]>('fdb', 'show');
    t.same(fdb.filter((e) => e.kind === 'static').map((e) => e.mac).sort(), seeded.map((e) => e.mac).sort(), 'the saved static entries, without the refused one');
    t.notOk(second.proc.logs.some((l) => typeof l.msg === 'string' && l.msg.includes('backup')), 'the state file itself was good: no recovery from the backup');
    t.same(readdirSync(stateDir).filter((name) => name.includes('.tmp-')), [], 'no temp file left in the state directory');
  });

  t.test(`a second daemon on the same state refuses to start, naming the first; after kill -9 a new one starts and no temp file remains (${datapath})`, async (t) => {
    if (skipUnlessRoot(t)) return;
    const topo = await createTopology(t, { hosts: 2 });
    const [a, b] = topo.hosts;
    const stateDir = tempDir(t, 'faults-lock');
    const statePath = path.join(stateDir, 'vxl0.json');
    const lockPath = path.join(stateDir, 'vxland.lock');
    const first = await startVxland(t, a, { datapath, stateDir });
    t.equal((await first.cli('peer', 'add', '198.51.100.7')).code, 0, 'peer added on the first daemon');
    const firstPid = (await first.json<any>('status')).pid as number;
    const savedByFirst = readFileSync(statePath, 'utf8');

    // Same state directory and device, another namespace and control socket.
    const socket = path.join(stateDir, 'second.sock');
    const second = await exec(b.ns, vxlandArgv('run', '--dev', 'vxl0', '--vni', String(TEST_VNI), '--local', b.ip,
      '--state-dir', stateDir, '--socket', socket, '--datapath', datapath), { allowFail: true, timeoutMs: 15_000 });
    t.notOk(second.timedOut, 'the second daemon does not start');
    t.equal(second.code, 1, 'exit code 1');
    const lines = second.stderr.trim().split('\n');
    t.equal(lines.length, 1, 'one line on stderr');
    t.ok(lines[0].startsWith('vxland: ') && lines[0].includes(`pid ${firstPid}`) && lines[0].includes(lockPath),
      `it names the first daemon's pid and the lock: ${lines[0]}`);
    t.notOk(existsSync(socket), 'no control socket was created');
    t.not((await exec(b.ns, ['ip', 'link', 'show', 'dev', 'vxl0'], { allowFail: true })).code, 0, 'no TAP device was created');
    t.equal(readFileSync(statePath, 'utf8'), savedByFirst, 'the state file is untouched');
    t.same(await first.peers(), ['198.51.100.7'], 'the first daemon runs on with its peer');

    first.proc.proc.kill('SIGKILL');
    await first.proc.exited;
    // What a kill -9 in the middle of a save leaves behind.
    const stale = [`vxl0.json.tmp-${firstPid}`, `vxl0.json.bak.tmp-${firstPid}`];
    writeFileSync(path.join(stateDir, stale[0]), '{"version":1,"vni":42,"pe');
    writeFileSync(path.join(stateDir, stale[1]), '');
    const third = await startVxland(t, b, { datapath, stateDir });
    t.same(await third.peers(), ['198.51.100.7'], 'a new daemon starts at once, in the other namespace, with the saved peer');
    t.equal(readFileSync(lockPath, 'utf8').trim(), String((await third.json<any>('status')).pid), 'the lock file names the new holder');
    t.same(readdirSync(stateDir).filter((name) => name.includes('.tmp-')), [], 'the stale temp files are gone');
    t.ok(third.proc.logs.some((l) => Array.isArray(l.removed) && l.removed.length === stale.length), 'and their removal is logged');
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
    const rxDuringTransfer = await eventually(async () => ((await vb.json<any>('status')).stats.rxBytes as number) - rx0,
      { until: (n) => n > 20 * 1024 * 1024, timeoutMs: 30_000, what: 'B receiving 20 MB of the transfer' });
    t.ok(rxDuringTransfer > 20 * 1024 * 1024, `the transfer was under way when A was killed (${Math.round(rxDuringTransfer / 1048576)} MB through)`);
    first.proc.proc.kill('SIGKILL');
    await first.proc.exited;
    t.equal(first.proc.exitSignal, 'SIGKILL', 'A died by SIGKILL');

    const second = await startVxland(t, a, { address: '10.42.0.1/24', datapath, stateDir: first.stateDir });
    t.same(await second.peers(), [b.ip], 'the peer is back');
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

    // Doctor calls a peer silent only once the daemon has run for its grace
    // period (operability.test.ts checks that it does not before).
    const report = await awaitFinding(va, silentPeer(c.ip), { what: `doctor naming the silent peer ${c.ip}` });
    t.equal(report.code, 1, 'doctor exits 1: it found a problem');
    t.notOk(report.findings.some(silentPeer(b.ip)), 'and does not name the working one');
    const doctor = await va.cli('doctor');
    t.equal(doctor.code, 1, 'the human doctor exits 1 too');
    t.match(doctor.stdout, `nothing was ever received from peer ${c.ip}`, 'and names the silent peer');
    t.equal((await ping(a.ns, '10.42.0.2', { count: 5, intervalS: 0.1, timeoutS: 3 })).received, 5, 'B still reachable at the end');
  });
}
