import t from 'tap';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { matchesFdbFilter, type ControlHandler, type NetworkSelector, type NetworkStatus, type PeerRow, type ReloadResult, type StatusResult } from '../src/control/protocol.js';
import { ControlServer } from '../src/control/server.js';
import { VxlandError } from '../src/errors.js';
import type { FdbEntry } from '../src/fdb/fdb.js';

const CLI = path.resolve(__dirname, '..', 'src', 'cli.js');

const NET42: NetworkStatus = {
  accept: 'peers', dev: 'vxl0', mac: '02:aa:bb:cc:dd:ee', vni: 42, mtu: 1450, addresses: ['10.42.0.1/24'], bridge: null, origin: 'config',
  stats: {
    rxPackets: 10, rxBytes: 1000, txPackets: 20, txBytes: 2000,
    drops: { 'wrong-vni': 3, 'static-conflict': 1 }, dropsTotal: 4, learnRefused: { fdbFull: 2, vtepFull: 0, rate: 1 },
  },
  fdb: { size: 3, learned: 1, peers: 1 },
};
const NET43: NetworkStatus = {
  accept: 'any', dev: 'vxl43', mac: '02:aa:bb:cc:dd:43', vni: 43, mtu: 1400, addresses: [], bridge: 'br43', origin: 'runtime',
  stats: { rxPackets: 0, rxBytes: 0, txPackets: 0, txBytes: 0, drops: {}, dropsTotal: 0, learnRefused: { fdbFull: 0, vtepFull: 0, rate: 0 } },
  fdb: { size: 0, learned: 0, peers: 0 },
};
const HOST_PART = {
  port: 4789, local: '192.0.2.1', datapath: 'native', offloads: ['tso', 'uso', 'udp-gso', 'udp-gro', 'tcp-coalesce'], uptimeS: 3723, pid: 4321,
  envelope: 'ttl 64, tos inherit, df unset; ECN per RFC 6040 (encap and decap)',
  host: { drops: { rx_no_i_flag: 2 }, dropsTotal: 2 },
};
/** A daemon with two networks: no selector shows both; --vni 42 the one. */
const STATUS_BOTH: StatusResult = {
  ...HOST_PART, networks: [NET42, NET43],
  etcd: { connected: false, revision: 12, leaseTtlLeftMs: 4_200, remoteVteps: 2, lists: 3, lastError: 'etcd unreachable: Failed to connect', endpoints: ['http://192.0.2.9:2379'] },
};
const STATUS: StatusResult = { ...NET42, ...HOST_PART, networks: [NET42] };

const ENTRIES: FdbEntry[] = [
  { vni: 42, mac: '00:00:00:00:00:00', vtep: '192.0.2.2', kind: 'peer', updatedAgoMs: 0, usedAgoMs: 1500 },
  { vni: 42, mac: '02:00:00:00:00:01', vtep: '192.0.2.2', kind: 'static', updatedAgoMs: 61_000, usedAgoMs: 2_999 },
  { vni: 42, mac: '02:00:00:00:00:02', vtep: '198.51.100.10', kind: 'learned', updatedAgoMs: 12_000, usedAgoMs: 0 },
];
/** A peer only the etcd membership names (the stand-in lists it after the configured ones). */
const ETCD_PEER: PeerRow = { ip: '203.0.113.9', kind: 'etcd' };

const CONFIG_SHOWN = { local: '192.0.2.1', port: 4789, networks: [{ vni: 42, dev: 'vxl0', peers: ['192.0.2.2'] }] };

/** How the stand-in records a selector: "" for none, else " --vni 43" / " --dev x". */
function sel(n: NetworkSelector): string {
  return `${n.vni !== undefined ? ` --vni ${n.vni}` : ''}${n.dev !== undefined ? ` --dev ${n.dev}` : ''}`;
}

/** A daemon stand-in that records every call it receives; `several`: it
 *  refuses a per-network request that does not say which network. */
function fakeHandler(several = false): ControlHandler & { calls: string[]; reloads: ReloadResult[] } {
  const peers = ['192.0.2.2'];
  const calls: string[] = [];
  /** What the next reloads answer; none left: the file is rejected. */
  const reloads: ReloadResult[] = [];
  return {
    calls,
    reloads,
    status: (n) => (n.vni === 42 ? STATUS : STATUS_BOTH),
    networkList: () => [NET42, NET43].map((n) => ({ vni: n.vni, dev: n.dev, mac: n.mac, mtu: n.mtu, peers: n.fdb.peers, bridge: n.bridge, origin: n.origin })),
    networkShow: (n) => {
      calls.push(`network.show${sel(n)}`);
      return { ...NET43, settings: { peers: ['192.0.2.3'], fdb: [], ageingS: 300, maxFdb: 16384, maxFdbPerVtep: 4096, learnRatePerS: 500, allowVlan: false } };
    },
    networkAdd: async (flags) => {
      calls.push(`network.add ${JSON.stringify(flags)}`);
      if (flags.vni === '42') throw new VxlandError('VXLAND_NETWORK_EXISTS', 'vni 42 is already served (network vni 42 (vxl0))');
      return { vni: Number(flags.vni), dev: (flags.dev as string | undefined) ?? `vxl${String(flags.vni)}` };
    },
    networkDel: async (n) => {
      calls.push(`network.del${sel(n)}`);
      return { vni: n.vni ?? 43, dev: n.dev ?? `vxl${n.vni}` };
    },
    peerAdd: (_n, ip) => {
      calls.push(`peer.add ${ip}`);
      const changed = !peers.includes(ip);
      if (changed) peers.push(ip);
      return { ip, changed };
    },
    peerDel: (_n, ip) => {
      calls.push(`peer.del ${ip}`);
      if (!peers.includes(ip)) throw new VxlandError('VXLAND_NOT_FOUND', `${ip} is not a peer of vxl0 (vni 42)`);
      peers.splice(peers.indexOf(ip), 1);
      return { ip, changed: true };
    },
    peerList: (n) => {
      if (n.vni === 77) throw new VxlandError('VXLAND_NETWORK_UNKNOWN', 'no network with vni 77 (networks: vni 42 (vxl0), vni 43 (vxl43))');
      if (n.vni === undefined && n.dev === undefined && several) {
        throw new VxlandError('VXLAND_NETWORK_AMBIGUOUS', 'this daemon serves 2 networks (vni 42 (vxl0), vni 43 (vxl43)); say which with --vni N or --dev NAME');
      }
      calls.push(`peer.list${sel(n)}`);
      return [...peers.map((ip) => ({ ip, kind: 'peer' as const })), ETCD_PEER];
    },
    fdbShow: (_n, filter) => ENTRIES.filter((e) => matchesFdbFilter(e, filter)),
    fdbGet: (_n, mac) => {
      calls.push(`fdb.get ${mac}`);
      const entry = ENTRIES.find((e) => e.mac === mac);
      if (entry === undefined) throw new VxlandError('VXLAND_NOT_FOUND', `no fdb entry for ${mac} on vxl0 (vni 42)`);
      return entry;
    },
    configShow: () => CONFIG_SHOWN,
    fdbAdd: (_n, mac, ip) => {
      calls.push(`fdb.add ${mac} ${ip}`);
      return { mac, ip };
    },
    fdbDel: (_n, mac) => {
      calls.push(`fdb.del ${mac}`);
      throw new VxlandError('VXLAND_NOT_FOUND', `no fdb entry for ${mac} on vxl0 (vni 42)`);
    },
    fdbFlush: (_n, learnedOnly) => {
      calls.push(`fdb.flush ${learnedOnly}`);
      return { removed: learnedOnly ? 1 : 2 };
    },
    neighShow: (n) => {
      calls.push(`neigh.show${sel(n)}`);
      return {
        networks: [{ vni: 42, dev: 'vxl0', suppress: true }, { vni: 43, dev: 'vxl43', suppress: false }],
        entries: [
          { vni: 42, dev: 'vxl0', ip: '10.0.0.2', mac: '02:00:00:00:00:02', owner: 'static' },
          { vni: 42, dev: 'vxl0', ip: '10.0.0.3', mac: '02:00:00:00:00:03', owner: 'etcd', vtep: '192.0.2.3' },
        ],
      };
    },
    neighAdd: (n, ip, mac) => {
      calls.push(`neigh.add${sel(n)} ${ip} ${mac}`);
      return { vni: n.vni ?? 42, ip, mac };
    },
    neighDel: (_n, ip) => {
      calls.push(`neigh.del ${ip}`);
      throw new VxlandError('VXLAND_NOT_FOUND', `no static neighbour ${ip} on vxl0 (vni 42)`);
    },
    stats: () => ({
      stats: NET42.stats,
      vteps: [{ vtep: '192.0.2.2', rxPackets: 7, rxBytes: 700, txPackets: 5, txBytes: 500, drops: 1, lastRxMs: Date.now() - 3000 }],
    }),
    logLevel: (level) => {
      calls.push(`log.level ${level}`);
      return { level: level ?? 'info', previous: 'info' };
    },
    doctor: () => ({
      ok: false,
      checks: ['mtu', 'vni'],
      findings: [{ check: 'vni', problem: '192.0.2.7 sends VXLAN with VNI 43, but vxl0 uses VNI 42', fix: 'make both ends use one VNI' }],
    }),
    reload: async () => {
      calls.push('reload');
      if (reloads.length === 0) throw new VxlandError('VXLAND_CONFIG_INVALID', 'config file /etc/vxland/vxland.json: networks[0].vni must be an integer 0..16777215 (got "x")');
      return reloads.shift()!;
    },
    monitor: (_n, emit) => {
      // Right after the subscription is answered.
      const timer = setImmediate(() => emit({ time: '2026-01-01T00:00:00.000Z', type: 'moved', vni: 42, mac: '02:00:00:00:00:09', vtep: '192.0.2.9', previousVtep: '192.0.2.8', kind: 'learned' }));
      return () => clearImmediate(timer);
    },
  };
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI asynchronously, so the in-process server can answer it. */
function vxland(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 20_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

async function daemon(t: tap.Test, several = false): Promise<{ socket: string; handler: ReturnType<typeof fakeHandler> }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vxland-cli-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const socket = path.join(dir, 'vxl0.sock');
  const handler = fakeHandler(several);
  const server = await ControlServer.listen(socket, handler);
  t.teardown(() => server.close());
  return { socket, handler };
}

/** Exactly one line on stderr, nothing on stdout, the given exit code. */
function failsWith(t: tap.Test, run: Run, code: number, line: string): void {
  t.equal(run.code, code, `exit ${code}`);
  t.equal(run.stdout, '', 'nothing on stdout');
  t.equal(run.stderr, `vxland: ${line}\n`, 'one line on stderr');
}

t.test('peer commands, human output', async (t) => {
  const { socket, handler } = await daemon(t);
  t.same(await vxland('peer', 'list', '--socket', socket), {
    code: 0, stdout: 'PEER         KIND\n192.0.2.2    peer\n203.0.113.9  etcd\n', stderr: '',
  });
  t.same(await vxland('peer', 'add', '198.51.100.7', '--socket', socket), { code: 0, stdout: 'added peer 198.51.100.7\n', stderr: '' });
  t.same(await vxland('peer', 'add', '198.51.100.7', '--socket', socket), {
    code: 0, stdout: '198.51.100.7 is already a peer\n', stderr: '',
  });
  t.same(await vxland('peer', 'del', '192.0.2.2', '--socket', socket), { code: 0, stdout: 'removed peer 192.0.2.2\n', stderr: '' });
  t.same(handler.calls, ['peer.list', 'peer.add 198.51.100.7', 'peer.add 198.51.100.7', 'peer.del 192.0.2.2']);
});

t.test('fdb commands, human output', async (t) => {
  const { socket, handler } = await daemon(t);
  const show = await vxland('fdb', 'show', '--socket', socket);
  t.equal(show.code, 0);
  t.equal(
    show.stdout,
    [
      'MAC                DST            VNI  TYPE     UPDATED  USED',
      '00:00:00:00:00:00  192.0.2.2      42   peer     0s       1s',
      '02:00:00:00:00:01  192.0.2.2      42   static   61s      2s',
      '02:00:00:00:00:02  198.51.100.10  42   learned  12s      0s',
      '',
    ].join('\n'),
  );
  t.same(await vxland('fdb', 'add', '02:00:00:00:00:AB', '192.0.2.2', '--socket', socket), {
    code: 0, stdout: 'added 02:00:00:00:00:ab dst 192.0.2.2\n', stderr: '',
  });
  t.same(await vxland('fdb', 'flush', '--learned', '--socket', socket), { code: 0, stdout: 'removed 1 learned entry\n', stderr: '' });
  t.same(await vxland('fdb', 'flush', '--socket', socket), { code: 0, stdout: 'removed 2 entries\n', stderr: '' });
  t.same(handler.calls, ['fdb.add 02:00:00:00:00:ab 192.0.2.2', 'fdb.flush true', 'fdb.flush false']);
});

t.test('status, human output: the host, then one block per network', async (t) => {
  const { socket } = await daemon(t);
  const run = await vxland('status', '--socket', socket);
  t.equal(run.code, 0);
  t.equal(
    run.stdout,
    [
      'pid:        4321',
      'uptime:     1h 2m 3s',
      'datapath:   native (tso, uso, udp-gso, udp-gro, tcp-coalesce)',
      'envelope:   ttl 64, tos inherit, df unset; ECN per RFC 6040 (encap and decap)',
      'local:      192.0.2.1',
      'port:       4789',
      'networks:   2',
      'etcd:       disconnected (etcd unreachable: Failed to connect), revision 12, lease 5 s left, 2 remote VTEPs (http://192.0.2.9:2379)',
      'host drops: rx_no_i_flag 2',
      '',
      'network vni 42 (vxl0):',
      '  device:        vxl0 (02:aa:bb:cc:dd:ee)',
      '  vni:           42',
      '  mtu:           1450',
      '  addresses:     10.42.0.1/24',
      '  bridge:        none',
      '  origin:        config file',
      '  fdb:           3 entries (1 learned), 1 peer',
      '  rx:            10 packets, 1000 bytes',
      '  tx:            20 packets, 2000 bytes',
      '  drops:         wrong-vni 3, static-conflict 1',
      '  accept:        peers',
      '  learn refused: 2 fdb full, 0 vtep full, 1 rate',
      '',
      'network vni 43 (vxl43):',
      '  device:        vxl43 (02:aa:bb:cc:dd:43)',
      '  vni:           43',
      '  mtu:           1400',
      '  addresses:     none',
      '  bridge:        br43',
      '  origin:        added at run time',
      '  fdb:           0 entries (0 learned), 0 peers',
      '  rx:            0 packets, 0 bytes',
      '  tx:            0 packets, 0 bytes',
      '  drops:         none',
      '  accept:        any',
      '  learn refused: 0 fdb full, 0 vtep full, 0 rate',
      '',
    ].join('\n'),
  );
  const one = await vxland('status', '--vni', '42', '--socket', socket);
  t.equal(one.stdout.split('\n').filter((l) => l.startsWith('network vni')).length, 1, '--vni 42: one network block');
});

t.test('network list, show, add and del: human output and --json', async (t) => {
  const { socket, handler } = await daemon(t);
  t.same(await vxland('network', 'list', '--socket', socket), {
    code: 0, stderr: '',
    stdout: [
      'VNI  DEV    MAC                MTU   PEERS  BRIDGE  ORIGIN',
      '42   vxl0   02:aa:bb:cc:dd:ee  1450  1      -       config',
      '43   vxl43  02:aa:bb:cc:dd:43  1400  0      br43    runtime',
      '',
    ].join('\n'),
  });
  t.same(JSON.parse((await vxland('network', 'list', '--json', '--socket', socket)).stdout).map((n: { vni: number }) => n.vni), [42, 43]);
  const show = await vxland('network', 'show', '--vni', '43', '--socket', socket);
  t.equal(show.code, 0);
  t.match(show.stdout, /^network vni 43 \(vxl43\):\n {2}device: +vxl43 \(02:aa:bb:cc:dd:43\)\n/);
  t.match(show.stdout, /\n {2}peers: +192\.0\.2\.3\n {2}static: +none\n {2}limits: +ageing 300 s, max-fdb 16384, max-fdb-per-vtep 4096, learn-rate 500\/s\n {2}allow vlan: +no\n$/);
  t.same(await vxland('network', 'add', '--vni', '44', '--address', '10.44.0.1/24', '--peer', '192.0.2.4', '--peer', '192.0.2.5', '--bridge', 'br44', '--mtu', '1400', '--allow-vlan', '--socket', socket),
    { code: 0, stdout: 'added network vni 44 (vxl44)\n', stderr: '' });
  t.same(JSON.parse((await vxland('network', 'add', '--vni', '45', '--dev', 'blue', '--json', '--socket', socket)).stdout), { vni: 45, dev: 'blue' });
  t.same(await vxland('network', 'del', '--vni', '44', '--socket', socket), { code: 0, stdout: 'removed network vni 44 (vxl44)\n', stderr: '' });
  t.same(JSON.parse((await vxland('network', 'del', '--dev', 'blue', '--json', '--socket', socket)).stdout), { vni: 43, dev: 'blue' });
  failsWith(t, await vxland('network', 'add', '--vni', '42', '--socket', socket), 1, 'vni 42 is already served (network vni 42 (vxl0))');
  const before = handler.calls.length;
  failsWith(t, await vxland('network', 'del', '--socket', socket), 2, 'say which network to delete: --vni N or --dev NAME');
  failsWith(t, await vxland('network', 'show', '--vni', 'x', '--socket', socket), 2, '--vni must be an integer 0..16777215 (got "x")');
  t.equal(handler.calls.length, before, 'neither was sent');
  t.same(handler.calls.filter((c) => c.startsWith('network.')), [
    'network.show --vni 43',
    'network.add {"vni":"44","address":["10.44.0.1/24"],"peer":["192.0.2.4","192.0.2.5"],"bridge":"br44","mtu":"1400","allowVlan":true}',
    'network.add {"vni":"45","dev":"blue"}',
    'network.del --vni 44', 'network.del --dev blue', 'network.add {"vni":"42"}',
  ], 'the flags arrive as the daemon validates them');
});

t.test('per-network commands: --vni/--dev reach the daemon; its selection errors are one line, exit 1', async (t) => {
  const { socket, handler } = await daemon(t, true);
  t.equal((await vxland('peer', 'list', '--vni', '43', '--socket', socket)).code, 0);
  t.equal((await vxland('peer', 'list', '--dev', 'vxl43', '--socket', socket)).code, 0);
  t.same(handler.calls, ['peer.list --vni 43', 'peer.list --dev vxl43']);
  failsWith(t, await vxland('peer', 'list', '--vni', '77', '--socket', socket), 1, 'no network with vni 77 (networks: vni 42 (vxl0), vni 43 (vxl43))');
  failsWith(t, await vxland('peer', 'list', '--socket', socket), 1,
    'this daemon serves 2 networks (vni 42 (vxl0), vni 43 (vxl43)); say which with --vni N or --dev NAME');
});

t.test('--json prints the daemon\'s answer', async (t) => {
  const { socket } = await daemon(t);
  const status = await vxland('status', '--json', '--socket', socket);
  t.equal(status.code, 0);
  t.same(JSON.parse(status.stdout), STATUS_BOTH);
  t.same(JSON.parse((await vxland('fdb', 'show', '--json', '--socket', socket)).stdout), ENTRIES);
  t.same(JSON.parse((await vxland('peer', 'list', '--json', '--socket', socket)).stdout), [{ ip: '192.0.2.2', kind: 'peer' }, ETCD_PEER]);
  t.same(JSON.parse((await vxland('peer', 'add', 'FD00::0001', '--json', '--socket', socket)).stdout), { ip: 'fd00::1', changed: true });
});

t.test('malformed input: one line, exit 2, nothing sent', async (t) => {
  const { socket, handler } = await daemon(t);
  failsWith(t, await vxland('fdb', 'add', 'zz:00:00:00:00:01', '192.0.2.2', '--socket', socket), 2,
    'invalid MAC address "zz:00:00:00:00:01" (expected six hex pairs like 02:00:00:00:00:01)');
  failsWith(t, await vxland('fdb', 'add', '02:00:00:00:00:01', '192.0.2.256', '--socket', socket), 2, 'invalid IP address "192.0.2.256"');
  failsWith(t, await vxland('fdb', 'add', '00:00:00:00:00:00', '192.0.2.2', '--socket', socket), 2,
    '00:00:00:00:00:00 is the flood address; use "vxland peer add IP" instead');
  failsWith(t, await vxland('fdb', 'del', '02:00:00:00:01', '--socket', socket), 2,
    'invalid MAC address "02:00:00:00:01" (expected six hex pairs like 02:00:00:00:00:01)');
  failsWith(t, await vxland('peer', 'add', 'peer-b', '--socket', socket), 2, 'invalid IP address "peer-b"');
  failsWith(t, await vxland('peer', 'del', '10.1', '--socket', socket), 2, 'invalid IP address "10.1"');
  failsWith(t, await vxland('peer', 'list', '--dev', 'much-too-long-name'), 2,
    '--dev must be a Linux interface name: "much-too-long-name" is longer than 15 bytes');
  failsWith(t, await vxland('peer', 'add', '--socket', socket), 2, 'missing required argument \'ip\'');
  failsWith(t, await vxland('peer', 'list', '--frobnicate'), 2, 'unknown option \'--frobnicate\'');
  failsWith(t, await vxland('frobnicate'), 2, 'unknown command \'frobnicate\'');
  t.same(handler.calls, [], 'the daemon received nothing');
});

t.test('refusals from the daemon: one line, exit 1', async (t) => {
  const { socket } = await daemon(t);
  failsWith(t, await vxland('peer', 'del', '203.0.113.9', '--socket', socket), 1, '203.0.113.9 is not a peer of vxl0 (vni 42)');
  failsWith(t, await vxland('fdb', 'del', '02:00:00:00:00:99', '--socket', socket), 1,
    'no fdb entry for 02:00:00:00:00:99 on vxl0 (vni 42)');
});

t.test('no daemon: one line, exit 3', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vxland-cli-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const socket = path.join(dir, 'vxl0.sock');
  failsWith(t, await vxland('status', '--socket', socket), 3, `no vxland daemon is listening on ${socket}`);
  failsWith(t, await vxland('doctor', '--socket', socket), 3, `no vxland daemon is listening on ${socket}`);
  const json = await vxland('peer', 'list', '--json', '--socket', socket);
  t.same([json.code, json.stdout, JSON.parse(json.stderr)], [3, '', { code: 'VXLAND_NO_DAEMON', message: `no vxland daemon is listening on ${socket}` }],
    'under --json: the error as JSON with its stable code');
  const byDefault = await vxland('status', '--dev', 'vxl-none');
  t.ok(byDefault.code === 3 || byDefault.code === 1, `exit ${byDefault.code}: 3 when nothing listens, 1 when the socket is refused`);
  t.match(byDefault.stderr, /^vxland: (no vxland daemon is listening on|permission denied opening|refusing to trust control socket) \/run\/vxland\/vxland\.sock/, 'without --socket: the one socket per daemon');
});

t.test('run: help, bad settings and an unavailable data path', async (t) => {
  const help = await vxland('run', '--help');
  t.equal(help.code, 0);
  t.match(help.stdout, 'Usage: vxland run [options]');
  t.match(help.stdout, '8472');
  t.match(help.stdout, '--datapath <kind>');

  failsWith(t, await vxland('run', '--vni', '16777216'), 2, 'vni must be an integer 0..16777215 (got "16777216")');
  failsWith(t, await vxland('run'), 2, 'vni is required (--vni N or "vni" in the config file)');
  failsWith(t, await vxland('run', '--vni', '1', '--peer', '192.0.2.300'), 2, 'peer must be an IPv4 or IPv6 address (got "192.0.2.300")');
  failsWith(t, await vxland('run', '--vni', '1', '--log-format', 'loud'), 2, '--log-format must be one of json, pretty (got "loud")');
  failsWith(t, await vxland('run', '--config', '/nonexistent/vxland.json'), 1,
    'cannot read config file /nonexistent/vxland.json: ENOENT');
});

t.test('stats, doctor, log-level and monitor', async (t) => {
  const { socket, handler } = await daemon(t);
  const stats = await vxland('stats', '--socket', socket);
  t.equal(stats.code, 0);
  t.match(stats.stdout, /^VTEP\s+RX PACKETS\s+RX BYTES\s+TX PACKETS\s+TX BYTES\s+DROPS\s+LAST RX\n192\.0\.2\.2\s+7\s+700\s+5\s+500\s+1\s+3s ago\n/);

  const doctor = await vxland('doctor', '--socket', socket);
  t.equal(doctor.code, 1, 'doctor exits 1 when it finds a problem');
  t.match(doctor.stdout, /✖ vni: 192\.0\.2\.7 sends VXLAN with VNI 43.*\n {2}fix: make both ends use one VNI\n1 problem found\n/);

  t.same(await vxland('log-level', 'debug', '--socket', socket), { code: 0, stdout: 'log level: debug (was info)\n', stderr: '' });
  failsWith(t, await vxland('log-level', 'loud', '--socket', socket), 2,
    'log level must be one of fatal, error, warn, info, debug, trace, silent (got "loud")');
  t.same(handler.calls, ['log.level debug'], 'the bad level was never sent');

  const monitor = await new Promise<Run>((resolve) => {
    const child = execFile(process.execPath, [CLI, 'monitor', '--json', '--socket', socket], { timeout: 10_000 }, (err, stdout, stderr) =>
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr }));
    child.stdout?.once('data', () => child.kill('SIGINT'));
  });
  t.equal(monitor.code, 0, 'monitor ends cleanly on SIGINT');
  t.same(JSON.parse(monitor.stdout.split('\n')[0]), {
    time: '2026-01-01T00:00:00.000Z', type: 'moved', vni: 42, mac: '02:00:00:00:00:09', vtep: '192.0.2.9', previousVtep: '192.0.2.8', kind: 'learned',
  });
});

t.test('reload: what changed; a rejected file exits 2 with the reason; a network that could not change exits 1', async (t) => {
  const { socket, handler } = await daemon(t);
  const none = { addedNetworks: [], removedNetworks: [], changedNetworks: [], logLevel: null, needRestart: [], failed: [] };
  handler.reloads.push(
    { ...none, addedNetworks: [43], changedNetworks: [42], logLevel: 'debug', needRestart: ['port'] },
    none,
    { ...none, failed: [{ vni: 44, error: 'cannot create TAP vxl44: EBUSY' }] },
  );
  t.same(await vxland('reload', '--socket', socket), {
    code: 0, stdout: 'reloaded: added vni 43; changed vni 42; log level debug\napply only after a restart: port\n', stderr: '',
  });
  t.same(await vxland('reload', '--socket', socket), { code: 0, stdout: 'reloaded: nothing to change\n', stderr: '' });
  t.same(await vxland('reload', '--socket', socket), {
    code: 1, stdout: 'reloaded: nothing to change\n', stderr: 'vxland: network vni 44 could not be changed and runs as it was: cannot create TAP vxl44: EBUSY\n',
  });
  failsWith(t, await vxland('reload', '--socket', socket), 2, 'config file /etc/vxland/vxland.json: networks[0].vni must be an integer 0..16777215 (got "x")');
  t.same(handler.calls, ['reload', 'reload', 'reload', 'reload']);
});

t.test('neigh show lists every network\'s neighbours with their owner; add and del go to the daemon', async (t) => {
  const { socket, handler } = await daemon(t);
  t.same(await vxland('neigh', 'show', '--socket', socket), {
    code: 0,
    stdout: [
      'IP        MAC                VNI  DEV   OWNER',
      '10.0.0.2  02:00:00:00:00:02  42   vxl0  static',
      '10.0.0.3  02:00:00:00:00:03  42   vxl0  etcd (192.0.2.3)',
      'suppression off: vni 43 (vxl43)',
      '',
    ].join('\n'),
    stderr: '',
  });
  t.equal(JSON.parse((await vxland('neigh', 'show', '--json', '--socket', socket)).stdout).entries[1].owner, 'etcd');
  t.same(await vxland('neigh', 'add', '10.0.0.9', '02:00:00:00:00:AB', '--vni', '42', '--socket', socket), {
    code: 0, stdout: 'added neighbour 10.0.0.9 lladdr 02:00:00:00:00:ab (vni 42)\n', stderr: '',
  });
  failsWith(t, await vxland('neigh', 'del', '10.0.0.9', '--socket', socket), 1, 'no static neighbour 10.0.0.9 on vxl0 (vni 42)');
  const bad = await vxland('neigh', 'add', 'nonsense', '02:00:00:00:00:ab', '--socket', socket);
  t.equal(bad.code, 2, 'a malformed IP is a usage error');
  t.same(handler.calls.filter((c) => c.startsWith('neigh')), ['neigh.show', 'neigh.show', 'neigh.add --vni 42 10.0.0.9 02:00:00:00:00:ab', 'neigh.del 10.0.0.9'], 'nothing sent for the malformed one');
});

t.test('-j and -p: before or after the command, compact JSON by default, indented with -p', async (t) => {
  const { socket } = await daemon(t);
  const compact = `${JSON.stringify(ENTRIES)}\n`;
  const pretty = `${JSON.stringify(ENTRIES, null, 2)}\n`;
  for (const args of [['-j', 'fdb', 'show'], ['fdb', 'show', '-j'], ['--json', 'fdb', 'show'], ['fdb', 'show', '--json'], ['fdb', '-j']]) {
    t.same(await vxland(...args, '--socket', socket), { code: 0, stdout: compact, stderr: '' }, `vxland ${args.join(' ')}: compact`);
  }
  for (const args of [['-j', '-p', 'fdb', 'show'], ['fdb', 'show', '-jp'], ['-p', 'fdb', 'show', '--json'], ['--pretty', '--json', 'fdb']]) {
    t.same(await vxland(...args, '--socket', socket), { code: 0, stdout: pretty, stderr: '' }, `vxland ${args.join(' ')}: indented`);
  }
  t.equal((await vxland('-p', 'fdb', 'show', '--socket', socket)).stdout, (await vxland('fdb', 'show', '--socket', socket)).stdout, '-p alone: the human form');
  t.same(await vxland('-j', 'status', '--vni', '42', '--socket', socket), { code: 0, stdout: `${JSON.stringify(STATUS)}\n`, stderr: '' }, 'every command');
});

t.test('a group without a command shows: fdb is fdb show, peer is peer list, network is network list', async (t) => {
  const { socket } = await daemon(t);
  for (const [group, command] of [['fdb', 'show'], ['peer', 'list'], ['network', 'list']]) {
    const shown = await vxland(group, command, '--socket', socket);
    t.equal(shown.code, 0);
    t.same(await vxland(group, '--socket', socket), shown, `vxland ${group} = vxland ${group} ${command}`);
  }
  t.same(JSON.parse((await vxland('fdb', '--type', 'learned', '-j', '--socket', socket)).stdout).map((e: FdbEntry) => e.mac), ['02:00:00:00:00:02'], 'with the default command\'s options');
});

t.test('fdb show --mac/--vtep/--type; fdb get MAC', async (t) => {
  const { socket, handler } = await daemon(t);
  t.same(await vxland('fdb', 'show', '--type', 'static', '--socket', socket), {
    code: 0, stderr: '',
    stdout: 'MAC                DST        VNI  TYPE    UPDATED  USED\n02:00:00:00:00:01  192.0.2.2  42   static  61s      2s\n',
  });
  const macs = async (...args: string[]) => JSON.parse((await vxland('fdb', 'show', ...args, '-j', '--socket', socket)).stdout).map((e: FdbEntry) => e.mac);
  t.same(await macs('--vtep', '192.0.2.2'), ['00:00:00:00:00:00', '02:00:00:00:00:01']);
  t.same(await macs('--mac', '02-00-00-00-00-02'), ['02:00:00:00:00:02'], 'the MAC normalised');
  t.same(await macs('--vtep', '192.0.2.2', '--type', 'learned'), [], 'every filter given applies');
  t.same(await vxland('fdb', 'get', '02:00:00:00:00:02', '--socket', socket), {
    code: 0, stderr: '',
    stdout: 'MAC                DST            VNI  TYPE     UPDATED  USED\n02:00:00:00:00:02  198.51.100.10  42   learned  12s      0s\n',
  });
  t.same(JSON.parse((await vxland('fdb', 'get', '02:00:00:00:00:01', '-j', '--socket', socket)).stdout), ENTRIES[1]);
  failsWith(t, await vxland('fdb', 'get', '02:00:00:00:00:99', '--socket', socket), 1, 'no fdb entry for 02:00:00:00:00:99 on vxl0 (vni 42)');
  const absent = await vxland('fdb', 'get', '02:00:00:00:00:98', '-j', '--socket', socket);
  t.same([absent.code, absent.stdout, JSON.parse(absent.stderr)], [1, '', { code: 'VXLAND_NOT_FOUND', message: 'no fdb entry for 02:00:00:00:00:98 on vxl0 (vni 42)' }]);
  const sent = handler.calls.length;
  failsWith(t, await vxland('fdb', 'show', '--type', 'dynamic', '--socket', socket), 2, '--type must be one of static, learned, etcd, peer (got "dynamic")');
  failsWith(t, await vxland('fdb', 'show', '--vtep', 'x', '--socket', socket), 2, 'invalid IP address "x"');
  failsWith(t, await vxland('fdb', 'get', '00:00:00:00:00:00', '--socket', socket), 2, '00:00:00:00:00:00 is the flood address; use "vxland peer add IP" instead');
  t.equal(handler.calls.length, sent, 'nothing sent for bad filters');
});

/** Exit code, nothing on stdout, and stderr one JSON object: the error. */
function failsWithJson(t: tap.Test, run: Run, code: number, error: Record<string, unknown>): void {
  t.equal(run.code, code, `exit ${code}`);
  t.equal(run.stdout, '', 'nothing on stdout');
  t.equal(run.stderr.split('\n').length, 2, 'one line on stderr');
  t.match(JSON.parse(run.stderr), error);
}

t.test('with -j every error is JSON {code, message} on stderr, with the stable code', async (t) => {
  const { socket } = await daemon(t, true);
  failsWithJson(t, await vxland('-j', 'peer', 'list', '--frobnicate'), 2, { code: 'VXLAND_BAD_ARGUMENT', message: 'unknown option \'--frobnicate\'' });
  failsWithJson(t, await vxland('frobnicate', '--json'), 2, { code: 'VXLAND_BAD_ARGUMENT', message: 'unknown command \'frobnicate\'' });
  failsWithJson(t, await vxland('fdb', 'add', 'zz', '192.0.2.2', '-j', '--socket', socket), 2, { code: 'VXLAND_BAD_ARGUMENT', message: /^invalid MAC address "zz"/ });
  failsWithJson(t, await vxland('-j', 'peer', 'list', '--socket', socket), 1, { code: 'VXLAND_NETWORK_AMBIGUOUS', message: /^this daemon serves 2 networks/ });
  failsWithJson(t, await vxland('-jp', 'peer', 'list', '--vni', '77', '--socket', socket), 1, { code: 'VXLAND_NETWORK_UNKNOWN' });
  const help = await vxland('-j', 'fdb', '--help');
  t.same([help.code, help.stderr], [0, ''], 'help is still help');
});

function configFile(t: tap.Test, content: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vxland-cli-config-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'vxland.json');
  fs.writeFileSync(file, content);
  return file;
}

t.test('config check FILE: exit 0 when valid, 2 with every problem when not; no daemon needed', async (t) => {
  const valid = configFile(t, JSON.stringify({ $schema: '../schema/vxland.schema.json', local: '192.0.2.1', networks: [{ vni: 42 }, { vni: 43, dev: 'blue' }] }));
  t.same(await vxland('config', 'check', valid), { code: 0, stdout: `${valid}: valid, 2 networks (vni 42 (vxl42), vni 43 (blue))\n`, stderr: '' });
  t.same(JSON.parse((await vxland('-j', 'config', 'check', valid)).stdout), { file: valid, valid: true, networks: [{ vni: 42, dev: 'vxl42' }, { vni: 43, dev: 'blue' }] });

  const invalid = configFile(t, [
    '{',
    '  "port": 0,',
    '  "colour": "red",',
    '  "networks": [',
    '    { "vni": 42, "mtu": 9, "peers": ["x"] },',
    '    { "vni": 43, "dev": "vxl42" }',
    '  ]',
    '}',
  ].join('\n'));
  const human = await vxland('config', 'check', invalid);
  t.same([human.code, human.stdout], [2, '']);
  t.same(human.stderr.split('\n'), [
    `vxland: config file ${invalid}: unknown key "colour" (known keys: local, port, srcport, datapath, socket, stateDir, logLevel, metrics, controlGroup, etcd, ttl, tos, df, networks) (line 3, column 3)`,
    'vxland: port must be an integer 1..65535 (got 0) (line 2, column 3)',
    'vxland: networks[0] (vni 42): mtu must be an integer 68..65481 (got 9) (line 5, column 18)',
    'vxland: networks[0] (vni 42): peer must be an IPv4 or IPv6 address (got "x") (line 5, column 28)',
    '',
  ], 'one line per problem, with where it is (networks[1] is not compared with a network that has problems)');
  const json = await vxland('config', 'check', invalid, '-j');
  t.equal(json.code, 2);
  t.match(JSON.parse(json.stderr), {
    code: 'VXLAND_CONFIG_INVALID',
    problems: [
      { path: 'colour', line: 3, column: 3 }, { path: 'port', message: 'port must be an integer 1..65535 (got 0)', line: 2, column: 3 },
      { path: 'networks[0].mtu', line: 5, column: 18 }, { path: 'networks[0].peers', line: 5, column: 28 },
    ],
  });

  const syntax = configFile(t, '{\n  "vni": 42,\n}\n');
  const bad = await vxland('-j', 'config', 'check', syntax);
  t.equal(bad.code, 2);
  t.match(JSON.parse(bad.stderr), { code: 'VXLAND_CONFIG_INVALID', problems: [{ path: '', line: 3, column: 1, message: /at line 3, column 1$/ }] });
  failsWith(t, await vxland('config', 'check', path.join(path.dirname(syntax), 'missing.json')), 1, `cannot read config file ${path.join(path.dirname(syntax), 'missing.json')}: ENOENT`);
});

t.test('config show: the daemon\'s running configuration, as a file (indented) or compact with -j', async (t) => {
  const { socket } = await daemon(t);
  t.same(await vxland('config', 'show', '--socket', socket), { code: 0, stdout: `${JSON.stringify(CONFIG_SHOWN, null, 2)}\n`, stderr: '' });
  t.same(await vxland('config', 'show', '-j', '--socket', socket), { code: 0, stdout: `${JSON.stringify(CONFIG_SHOWN)}\n`, stderr: '' });
});
