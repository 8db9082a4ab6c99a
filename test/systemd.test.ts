// Static checks of systemd/vxland.service, the one unit per host: its
// settings parsed and asserted (always), and `systemd-analyze verify` (when
// installed). verify insists that ExecStart's binary exists and is
// executable, so the unit is copied to a temp dir with /usr/bin/vxland
// rewritten to a temp stub executable. No daemon runs here, so no data path
// is involved: the notify protocol and the shutdown the unit relies on run on
// both paths in test/daemon.test.ts.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CLI_PATH } from './helpers/netns';

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
    ExecReload: '/bin/kill -HUP $MAINPID',
    Type: 'notify', NotifyAccess: 'main', Restart: 'on-failure', RestartSec: '2', WatchdogSec: '30',
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
