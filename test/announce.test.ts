// After a restart the TAP keeps its MAC and announces its addresses
// (src/io/announce.ts): a transfer across a peer restart resumes through the
// restarted peer and arrives intact, and peers' neighbour entries follow a
// changed MAC at once. How long the restart costs is the machine's load (a
// node start, TCP's retransmission backoff), so it is reported, not asserted.
import t from 'tap';
import { eventually } from './helpers/eventually';
import { createTopology, execJson, ping, skipUnlessRoot, verifiedTcpTransfer, type TransferResult } from './helpers/netns';
import { datapathsUnderTest, startVxland, type VxlandHandle } from './helpers/vxland';

const CALIBRATION_BYTES = 16 * 1024 * 1024;
const MAX_TRANSFER_BYTES = 1024 * 1024 * 1024;
/** The transfer cut by the restart lasts about this long without one, so
 *  that B can be killed with it under way. */
const TRANSFER_TARGET_MS = 4_000;
/** Bound on the restarted B announcing itself and traffic coming through it
 *  again: TCP doubles its retransmission timeout while B is away (up to
 *  about twice the outage after the first loss), and a busy machine makes
 *  the outage long. Generous: the waits end as soon as the event is seen. */
const RESUME_TIMEOUT_MS = 60_000;
const TRANSFER_TIMEOUT_MS = 180_000;
/** More than anything but the transfer sends B (ARP, ND): its stream is at
 *  least 4 MiB past the cut. */
const RESUMED_BYTES = 1024 * 1024;
/** A's neighbour entries follow B's announcement of a new MAC within this,
 *  counted from B sending it (its log line); how long B takes to get there
 *  (a node start, IPv6 duplicate address detection) is the machine's load,
 *  waited for up to RESUME_TIMEOUT_MS. */
const NEIGHBOUR_UPDATE_DEADLINE_MS = 3_000;

async function neighbourMac(ns: string, dev: string, address: string): Promise<string | null> {
  const entries = await execJson<Array<{ dst: string; lladdr?: string }>>(null, ['ip', '-n', ns, '-j', 'neigh', 'show', 'dev', dev, 'to', address]);
  return entries.find((e) => e.dst === address)?.lladdr ?? null;
}

function intact(r: TransferResult, bytes: number): boolean {
  return r.received.bytes === bytes && r.received.sha256 === r.expectedSha256 && r.sent.sha256 === r.expectedSha256;
}

for (const datapath of datapathsUnderTest()) {
  t.test(`a verified transfer resumes across a peer restart and arrives intact; neighbours follow a new MAC at once (${datapath})`, async (t) => {
    if (skipUnlessRoot(t)) return;
    const topo = await createTopology(t, { hosts: 2, disableIpv6: false });
    const [a, b] = topo.hosts;
    const bArgs = { peers: [a.ip], address: '10.42.0.2/24', extraArgs: ['--address', 'fd42::2/64'], datapath };
    await startVxland(t, a, { peers: [b.ip], address: '10.42.0.1/24', extraArgs: ['--address', 'fd42::1/64'], datapath });
    let vb: VxlandHandle = await startVxland(t, b, bArgs);
    const bMac = (await vb.json<any>('status')).mac as string;

    // Size the transfer so that it takes about TRANSFER_TARGET_MS here; the
    // last run is the baseline (same size, same path, no restart), reported.
    let bytes = CALIBRATION_BYTES;
    let baseline = await verifiedTcpTransfer({ serverNs: b.ns, serverIp: '10.42.0.2', clientNs: a.ns, bytes, timeoutMs: 60_000, seed: 3 });
    for (let round = 0; round < 4 && baseline.durationMs < TRANSFER_TARGET_MS * 0.75 && bytes < MAX_TRANSFER_BYTES; round++) {
      t.ok(intact(baseline, bytes), `sizing run: ${Math.round(bytes / 1048576)} MB intact in ${baseline.durationMs} ms`);
      bytes = Math.min(MAX_TRANSFER_BYTES, Math.round(bytes * Math.min(8, TRANSFER_TARGET_MS / baseline.durationMs)));
      baseline = await verifiedTcpTransfer({ serverNs: b.ns, serverIp: '10.42.0.2', clientNs: a.ns, bytes, timeoutMs: 120_000, seed: 4 + round });
    }
    t.ok(intact(baseline, bytes), `baseline: ${Math.round(bytes / 1048576)} MB intact in ${baseline.durationMs} ms`);

    const rx0 = (await vb.json<any>('status')).stats.rxBytes as number;
    const cut = verifiedTcpTransfer({ serverNs: b.ns, serverIp: '10.42.0.2', clientNs: a.ns, bytes, timeoutMs: TRANSFER_TIMEOUT_MS, seed: 9 });
    cut.catch(() => undefined); // awaited below
    const through = await eventually(async () => ((await vb.json<any>('status')).stats.rxBytes as number) - rx0,
      { until: (n) => n >= bytes / 4, timeoutMs: 60_000, intervalMs: 0, what: 'a quarter of the transfer through B' });
    t.ok(through >= bytes / 4, `B was killed with the transfer under way (${Math.round(through / 1048576)} MB through)`);
    vb.proc.proc.kill('SIGKILL');
    await vb.proc.exited;
    const killedMs = Date.now();
    vb = await startVxland(t, b, { ...bArgs, stateDir: vb.stateDir });
    const outageMs = Date.now() - killedMs;
    t.comment(`B answered again ${outageMs} ms after kill -9`);
    const restarted = vb;
    t.ok(await restarted.proc.waitForJson((l) => String(l.msg).startsWith('announced 10.42.0.2 '), RESUME_TIMEOUT_MS).then(() => true, () => false),
      'the restarted B announced 10.42.0.2');
    t.equal(await neighbourMac(a.ns, 'vxl0', '10.42.0.2'), bMac, 'A\'s neighbour entry for B points at B\'s TAP MAC (kept across the restart)');
    const resumed = await eventually(async () => (await restarted.json<any>('status')).stats.rxBytes as number,
      { until: (n) => n >= RESUMED_BYTES, timeoutMs: RESUME_TIMEOUT_MS, intervalMs: 100, what: 'the transfer coming through the restarted B' });
    t.ok(resumed >= RESUMED_BYTES, `the transfer resumed through the restarted B (${resumed} bytes so far)`);
    const r = await cut;
    t.ok(intact(r, bytes), 'the transfer across the restart is intact (sha256)', { sent: r.sent, received: r.received });
    t.comment(`it took ${r.durationMs} ms; without a restart ${baseline.durationMs} ms; the outage ${outageMs} ms`);

    // An admin gives B another MAC. A sends B nothing meanwhile, so only B's
    // announcements can move A's neighbour entries to the new MAC.
    t.equal((await ping(a.ns, 'fd42::2', { count: 2, intervalS: 0.2, timeoutS: 3 })).received, 2, 'A has talked to B over IPv6');
    t.equal(await neighbourMac(a.ns, 'vxl0', 'fd42::2'), bMac, 'A\'s IPv6 neighbour entry has the old MAC');
    const newMac = '02:42:0a:2a:00:02';
    await vb.proc.stop();
    vb = await startVxland(t, b, { ...bArgs, stateDir: vb.stateDir, extraArgs: [...bArgs.extraArgs, '--mac', newMac] });
    const answeredMs = Date.now();
    const announced = (address: string) => vb.proc.waitForJson((l) => String(l.msg).startsWith(`announced ${address} `), RESUME_TIMEOUT_MS)
      .then((l) => l.time as number, () => null);
    const [arpMs, naMs] = [await announced('10.42.0.2'), await announced('fd42::2')];
    t.ok(arpMs !== null, 'B logged the gratuitous ARP');
    t.ok(naMs !== null, 'B logged the unsolicited NA');
    const lastAnnouncedMs = Math.max(arpMs ?? 0, naMs ?? 0);
    t.comment(`B announced ${arpMs === null ? '-' : arpMs - answeredMs} ms (ARP) and ${naMs === null ? '-' : naMs - answeredMs} ms (NA) after answering`);
    const moved = await eventually(async () => ({
      v4: await neighbourMac(a.ns, 'vxl0', '10.42.0.2'),
      v6: await neighbourMac(a.ns, 'vxl0', 'fd42::2'),
    }), {
      until: (m) => m.v4 === newMac && m.v6 === newMac, timeoutMs: Math.max(0, lastAnnouncedMs + NEIGHBOUR_UPDATE_DEADLINE_MS - Date.now()), intervalMs: 0,
      what: `A's neighbour entries for 10.42.0.2 and fd42::2 moving to ${newMac} within ${NEIGHBOUR_UPDATE_DEADLINE_MS} ms of B's announcements`,
    });
    const afterMs = Date.now() - lastAnnouncedMs;
    t.equal(moved.v4, newMac, `the gratuitous ARP moved A's entry for 10.42.0.2 to ${newMac}`);
    t.equal(moved.v6, newMac, `the unsolicited NA moved A's entry for fd42::2 to ${newMac} (seen ${afterMs} ms after B's last announcement)`);
    t.equal((await ping(a.ns, '10.42.0.2', { count: 3, intervalS: 0.2, timeoutS: 3 })).received, 3, 'traffic flows to the new MAC');
  });
}
