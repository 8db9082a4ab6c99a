// The unit, systemd/vxland.service: its settings parsed and asserted
// (always); `systemd-analyze verify` and `systemd-analyze security` (when
// installed: the exposure must stay at 2.0 or below); and the daemon run as
// the unit runs it (root only): setpriv drops to the unit's user, group and
// capabilities (read from the unit), in a test namespace, with a private
// 0666 /dev/net/tun bind-mounted there as udev makes it on a host. verify
// insists that ExecStart's binary exists and is executable, so the unit is
// copied to a temp dir with /usr/bin/vxland rewritten to a temp stub.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { eventually } from './helpers/eventually';
import { CLI_PATH, createNamespace, exec, skipIf, skipUnlessRoot, spawnDaemon, type TapLike } from './helpers/netns';
import { datapathsUnderTest, tempDir, TEST_VNI } from './helpers/vxland';

const UNIT_DIR = path.resolve(__dirname, '..', '..', 'systemd');
const UNIT_NAME = 'vxland.service';
const BIN = '/usr/bin/vxland';
const HOST_FILE = '/etc/vxland/vxland.json';

/** key -> every value it is given, in order ("Key=" lines; comments and section headers skipped). */
function parseUnit(text: string): Map<string, string[]> {
  const settings = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (m === null) continue;
    settings.set(m[1], [...(settings.get(m[1]) ?? []), m[2]]);
  }
  return settings;
}

function which(cmd: string): string | null {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

const text = fs.readFileSync(path.join(UNIT_DIR, UNIT_NAME), 'utf8');
const unit = parseUnit(text);

t.test('one unit per host, the only one to own /run/vxland', async (t) => {
  const units = fs.readdirSync(UNIT_DIR).filter((f) => /\.(service|socket|timer)$/.test(f));
  t.same(units, [UNIT_NAME], 'systemd/ holds vxland.service only: no vxland@ template');
  t.same(unit.get('RuntimeDirectory'), ['vxland'], 'RuntimeDirectory=vxland, given once');
  t.notOk(text.includes('%i') || text.includes('%I'), 'no instance specifiers');
});

t.test('the unit runs the host file, notifies, and is hardened', async (t) => {
  const expect: Record<string, string> = {
    ExecStart: `${BIN} run --config ${HOST_FILE}`, AssertPathExists: HOST_FILE,
    Type: 'notify', NotifyAccess: 'main', Restart: 'on-failure', RestartSec: '2', WatchdogSec: '30', User: 'vxland', Group: 'vxland',
    CapabilityBoundingSet: 'CAP_NET_ADMIN CAP_NET_RAW', AmbientCapabilities: 'CAP_NET_ADMIN CAP_NET_RAW', NoNewPrivileges: 'yes',
    ProtectSystem: 'strict', ProtectHome: 'yes', PrivateTmp: 'yes', RuntimeDirectoryPreserve: 'no',
    StateDirectory: 'vxland', ConfigurationDirectory: 'vxland', DeviceAllow: '/dev/net/tun rw',
    DevicePolicy: 'closed', ProtectKernelTunables: 'yes', ProtectKernelModules: 'yes',
    ProtectControlGroups: 'yes', RestrictAddressFamilies: 'AF_INET AF_INET6 AF_UNIX AF_NETLINK AF_PACKET',
    RestrictNamespaces: 'yes', LockPersonality: 'yes', MemoryDenyWriteExecute: 'no', SystemCallArchitectures: 'native',
  };
  for (const [key, value] of Object.entries(expect)) t.same(unit.get(key), [value], `${key}=${value}`);
});

t.test('the CLI takes the ExecStart command line', async (t) => {
  const [execStart] = unit.get('ExecStart') ?? [''];
  const [bin, command, ...flags] = execStart.split(' ');
  t.equal(bin, BIN, `ExecStart runs ${BIN}`);
  const help = spawnSync(process.execPath, [CLI_PATH, command, '--help'], { encoding: 'utf8', timeout: 30_000 });
  t.equal(help.status, 0, `vxland ${command} --help exits 0`);
  for (const flag of flags.filter((f) => f.startsWith('--'))) t.match(help.stdout, new RegExp(`^\\s+${flag} `, 'm'), `vxland ${command} knows ${flag}`);
});

t.test('systemctl reload runs `vxland reload`, which waits for the result, with ExecStart\'s binary', async (t) => {
  const [bin] = (unit.get('ExecStart') ?? [''])[0].split(' ');
  t.same(unit.get('ExecReload'), [`${bin} reload`], 'ExecReload=BIN reload, given once');
  const help = spawnSync(process.execPath, [CLI_PATH, 'reload', '--help'], { encoding: 'utf8', timeout: 30_000 });
  t.equal(help.status, 0, 'vxland reload --help exits 0');
  t.match(help.stdout, /exit 2: the file was rejected/, 'and says how a rejected file fails');
});

const analyze = which('systemd-analyze');
t.test('systemd-analyze verify', { skip: analyze === null ? 'systemd-analyze not installed (apt-get install systemd; .ci/run does)' : false }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vxland-unit-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const stub = path.join(dir, 'vxland');
  fs.writeFileSync(stub, '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  t.ok(text.includes(BIN), 'unit references the installed binary path');
  fs.writeFileSync(path.join(dir, UNIT_NAME), text.split(BIN).join(stub));

  const r = spawnSync(analyze!, ['verify', '--man=no', path.join(dir, UNIT_NAME)], {
    encoding: 'utf8', timeout: 60_000, env: { ...process.env, SYSTEMD_LOG_COLOR: '0' },
  });
  const out = `${r.stdout}${r.stderr}`;
  if (out.trim()) t.comment(out.trim());
  t.equal(r.error, undefined, 'ran');
  t.equal(r.status, 0, 'exit 0');
  t.same(out.split('\n').filter((l) => /vxland/.test(l)), [], 'no warnings about the unit');
});

/** The most `systemd-analyze security` may rate the unit (its scale: 0 safe .. 10 exposed). */
const MAX_EXPOSURE = 2.0;

/** `systemd-analyze security --offline` of a unit text: its overall exposure and whether --threshold passed. */
function securityOf(t: TapLike, unitText: string): { exposure: number; withinThreshold: boolean; out: string } {
  const dir = tempDir(t, 'h4-security');
  const file = path.join(dir, UNIT_NAME);
  fs.writeFileSync(file, unitText);
  // --threshold counts tenths: 20 = an exposure of 2.0.
  const r = spawnSync(analyze!, ['security', '--offline=yes', `--threshold=${Math.round(MAX_EXPOSURE * 10)}`, file], {
    encoding: 'utf8', timeout: 60_000, env: { ...process.env, SYSTEMD_LOG_COLOR: '0', SYSTEMD_COLORS: '0' },
  });
  const out = `${r.stdout}${r.stderr}`;
  const m = /Overall exposure level for \S+: (\d+(?:\.\d+)?)/.exec(out);
  return { exposure: m === null ? Number.NaN : Number(m[1]), withinThreshold: r.status === 0, out };
}

t.test(`systemd-analyze security rates the unit ${MAX_EXPOSURE} or better`, { skip: analyze === null ? 'systemd-analyze not installed' : false }, async (t) => {
  const rated = securityOf(t, text);
  t.ok(rated.exposure <= MAX_EXPOSURE, `exposure ${rated.exposure} <= ${MAX_EXPOSURE}`);
  t.ok(rated.withinThreshold, `--threshold passes${rated.withinThreshold ? '' : `: ${rated.out.split('\n').filter((l) => l.includes('✗')).join('\n')}`}`);
  // The check can fail: the same unit run as root is rated worse.
  const asRoot = securityOf(t, text.split('\n').filter((l) => !/^(User|Group)=/.test(l)).join('\n'));
  t.ok(asRoot.exposure > MAX_EXPOSURE && !asRoot.withinThreshold, `without User=/Group= it is rated ${asRoot.exposure} and fails`);
});

// --- The daemon as the unit runs it -----------------------------------------

/** The uid standing in for the unit's User=vxland (no such user here; nothing needs its name). */
const STAND_IN_UID = 61_000 + (process.pid % 1000);
/** Groups that may stand in for the unit's Group=vxland: an existing one, by name (--control-group takes a name). */
const STAND_IN_GROUPS = ['users', 'staff'];
const NOBODY = 65_534;
/** How long a daemon may take to answer, or to exit after a failed start. */
const DAEMON_WAIT_MS = 20_000;

function groupGid(name: string): number | null {
  const line = fs.readFileSync('/etc/group', 'utf8').split('\n').find((l) => l.split(':')[0] === name);
  return line === undefined ? null : Number(line.split(':')[2]);
}
const standInGroup = STAND_IN_GROUPS.map((name) => ({ name, gid: groupGid(name) })).find((g) => g.gid !== null && g.gid !== 0) as { name: string; gid: number } | undefined;

/** "+net_admin,+net_raw" from a unit value "CAP_NET_ADMIN CAP_NET_RAW". */
function setprivCaps(key: string): string {
  const [value] = unit.get(key) ?? [''];
  return value.split(/\s+/).filter(Boolean).map((c) => `+${c.replace(/^CAP_/, '').toLowerCase()}`).join(',');
}

/** `env -i`: a clean environment. tap's spawn hook adds NODE_OPTIONS to every
 *  child's, whose hooks write where the users switched to may not. */
function cleanEnv(vars: Record<string, string> = {}): string[] {
  return ['env', '-i', `PATH=${process.env.PATH ?? '/usr/bin:/bin'}`, ...Object.entries(vars).map(([k, v]) => `${k}=${v}`)];
}

/** setpriv dropping to uid:gid (no supplementary groups) with the unit's capabilities and NoNewPrivileges. */
function asUnitWould(uid: number, gid: number): string[] {
  const ambient = setprivCaps('AmbientCapabilities');
  return ['setpriv', `--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', `--inh-caps=-all,${ambient}`, `--ambient-caps=-all,${ambient}`,
    `--bounding-set=-all,${setprivCaps('CapabilityBoundingSet')}`, ...(unit.get('NoNewPrivileges')?.[0] === 'yes' ? ['--no-new-privs'] : [])];
}

interface UnitHost {
  ns: string;
  dev: string;
  runDir: string;
  socket: string;
  /** argv running `vxland run` in the namespace as uid:gid the way the unit does. */
  daemonArgv(gid: number, datapath: string, env?: Record<string, string>): string[];
}

/** A namespace, and the directories systemd would make: /run/vxland and
 *  /var/lib/vxland handed to the daemon's user, in a root-owned 0755 parent. */
async function unitHost(t: TapLike, group: { name: string; gid: number }): Promise<UnitHost> {
  const ns = await createNamespace(t, 'h4unit');
  const top = tempDir(t, 'h4-unit');
  fs.chmodSync(top, 0o755);
  const runDir = path.join(top, 'run');
  const stateDir = path.join(top, 'state');
  fs.mkdirSync(runDir, { mode: 0o755 });
  fs.mkdirSync(stateDir, { mode: 0o700 });
  for (const d of [runDir, stateDir]) fs.chownSync(d, STAND_IN_UID, group.gid);
  const tun = path.join(top, 'tun');
  const made = spawnSync('mknod', ['-m', '0666', tun, 'c', '10', '200'], { encoding: 'utf8' });
  if (made.status !== 0) throw new Error(`mknod ${tun}: ${made.stderr}`);
  const socket = path.join(runDir, 'vxland.sock');
  const dev = `h4u${process.pid % 10000}`;
  return {
    ns, dev, runDir, socket,
    daemonArgv: (gid, datapath, env = {}) => ['ip', 'netns', 'exec', ns, 'sh', '-c', 'mount --bind "$0" /dev/net/tun && exec "$@"', tun,
      ...cleanEnv(env), ...asUnitWould(STAND_IN_UID, gid),
      process.execPath, CLI_PATH, 'run', '--dev', dev, '--vni', String(TEST_VNI), '--local', '127.0.0.1', '--state-dir', stateDir,
      '--socket', socket, '--datapath', datapath, '--control-group', group.name],
  };
}

/** The CLI as uid:gid (no supplementary groups). */
function cliAs(uid: number, gid: number, ...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return exec(null, [...cleanEnv(), 'setpriv', `--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', process.execPath, CLI_PATH, ...args], {
    allowFail: true, timeoutMs: 10_000,
  });
}

async function linkExists(ns: string, dev: string): Promise<boolean> {
  return (await exec(ns, ['ip', 'link', 'show', 'dev', dev], { allowFail: true })).code === 0;
}

for (const datapath of datapathsUnderTest()) {
  t.test(`as the unit runs it, a member of the control group can use the CLI (${datapath})`, async (t) => {
    if (skipUnlessRoot(t) || skipIf(t, standInGroup === undefined ? `no group ${STAND_IN_GROUPS.join(' or ')} to stand in for vxland` : false)) return;
    const group = standInGroup!;
    const h = await unitHost(t, group);
    const daemon = spawnDaemon(t, null, h.daemonArgv(group.gid, datapath));
    await eventually(async () => {
      if (!daemon.running) throw new Error(`vxland exited (${daemon.exitCode}): ${[...daemon.lines, ...daemon.stderrLines].slice(-5).join(' | ')}`);
      return (await cliAs(0, 0, 'status', '--socket', h.socket, '--json')).code === 0;
    }, { timeoutMs: DAEMON_WAIT_MS, intervalMs: 200, what: 'vxland answering on its socket' });

    const st = fs.lstatSync(h.socket);
    t.same([st.uid, st.gid, st.mode & 0o777], [STAND_IN_UID, group.gid, 0o660], 'the socket is the daemon user\'s, its group\'s, mode 0660');
    const member = await cliAs(NOBODY, group.gid, 'status', '--socket', h.socket, '--json');
    t.equal(member.code, 0, `a member of ${group.name} may: ${member.stderr.trim()}`);
    t.equal(member.code === 0 ? JSON.parse(member.stdout).networks[0].dev : null, h.dev, 'and sees the network');
    const other = await cliAs(NOBODY, NOBODY, 'status', '--socket', h.socket);
    t.equal(other.code, 1, 'a user outside the group may not');
    t.match(other.stderr, /^vxland: permission denied opening /);
    t.equal((await cliAs(0, 0, 'status', '--socket', h.socket)).code, 0, 'root trusts the socket of the user /run/vxland was handed to');

    daemon.proc.kill('SIGTERM');
    await daemon.exited;
    t.equal(daemon.exitCode, 0, 'SIGTERM: exit 0');
    t.same(fs.readdirSync(h.runDir), [], 'the socket is gone');
    t.notOk(await linkExists(h.ns, h.dev), 'the TAP is gone');
  });

  t.test(`a control group the daemon cannot give its socket to: exit non-zero, nothing left, an error line in the journal (${datapath})`, async (t) => {
    if (skipUnlessRoot(t) || skipIf(t, standInGroup === undefined ? `no group ${STAND_IN_GROUPS.join(' or ')} to stand in for vxland` : false)) return;
    const group = standInGroup!;
    const h = await unitHost(t, group);
    // stdout and stderr are one stand-in journald stream, as systemd connects them.
    const journal = path.join(tempDir(t, 'h4-journal'), 'journal');
    const fd = fs.openSync(journal, 'w');
    t.teardown(() => fs.closeSync(fd));
    const st = fs.fstatSync(fd, { bigint: true });
    const [cmd, ...args] = h.daemonArgv(NOBODY, datapath, { JOURNAL_STREAM: `${st.dev}:${st.ino}` });
    const child = spawn(cmd, args, { stdio: ['ignore', fd, fd] });
    const timer = setTimeout(() => child.kill('SIGKILL'), DAEMON_WAIT_MS);
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    clearTimeout(timer);
    const lines = fs.readFileSync(journal, 'utf8').split('\n').filter(Boolean);
    t.not(code, 0, `exits non-zero (${code})`);
    t.not(code, null, 'by itself, in time');
    t.same(fs.readdirSync(h.runDir), [], 'no socket (nor its private bind directory) is left');
    t.notOk(await linkExists(h.ns, h.dev), 'the TAP it made is removed');
    const reason = lines.find((l) => l.includes('cannot give control socket'));
    t.match(reason, new RegExp(`^<3>vxland: cannot give control socket ${h.socket} to group ${group.name} \\(chown: EPERM\\)`), 'the reason, at priority err');
    t.ok(lines.some((l) => l.startsWith('<6>{')), 'the info lines before it carry <6>');
    t.same(lines.filter((l) => !/^<[0-7]>/.test(l)), [], 'every line carries a priority');
    t.notOk(lines.some((l) => /"time":|"pid":/.test(l)), 'and no second time or pid');
  });
}
