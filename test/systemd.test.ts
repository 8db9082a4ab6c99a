// Static check of systemd/vxland@.service with `systemd-analyze verify`.
// verify insists that ExecStart's binary exists and is executable, so the
// unit is copied to a temp dir with /usr/local/bin/vxland rewritten to a
// temp stub executable; both the template and an instance are verified.
// No daemon runs here, so no data path is involved: the notify protocol and
// the shutdown the unit relies on run on both paths in test/daemon.test.ts.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const UNIT = path.resolve(__dirname, '..', '..', 'systemd', 'vxland@.service');
const BIN = '/usr/local/bin/vxland';

function which(cmd: string): string | null {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

const analyze = which('systemd-analyze');
if (!analyze) {
  const reason = 'systemd-analyze not installed (apt-get install systemd; .ci/run does)';
  t.comment(`skipping: ${reason}`);
  t.plan(0, `skip: ${reason}`);
} else {
  const text = fs.readFileSync(UNIT, 'utf8');

  t.test('unit has the required settings', async (t) => {
    const has = (line: string) => t.match(text, new RegExp(`^${line.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}$`, 'm'), line);
    has(`ExecStart=${BIN} run --config /etc/vxland/%i.json --dev %i`);
    for (const l of [
      'Type=notify', 'NotifyAccess=main', 'Restart=on-failure', 'RestartSec=2', 'WatchdogSec=30',
      'CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW', 'AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW', 'NoNewPrivileges=yes',
      'ProtectSystem=strict', 'ProtectHome=yes', 'PrivateTmp=yes', 'RuntimeDirectory=vxland',
      'StateDirectory=vxland', 'ConfigurationDirectory=vxland', 'DeviceAllow=/dev/net/tun rw',
      'DevicePolicy=closed', 'ProtectKernelTunables=yes', 'ProtectKernelModules=yes',
      'ProtectControlGroups=yes', 'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK AF_PACKET',
      'RestrictNamespaces=yes', 'LockPersonality=yes', 'MemoryDenyWriteExecute=no',
      'SystemCallArchitectures=native',
    ]) has(l);
  });

  t.test('systemd-analyze verify', async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vxland-unit-'));
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
    const stub = path.join(dir, 'vxland');
    fs.writeFileSync(stub, '#!/bin/sh\nexit 0\n', { mode: 0o755 });
    t.ok(text.includes(BIN), 'unit references the installed binary path');
    fs.writeFileSync(path.join(dir, 'vxland@.service'), text.split(BIN).join(stub));

    for (const unit of ['vxland@.service', 'vxland@vxl0.service']) {
      const r = spawnSync(analyze, ['verify', '--man=no', path.join(dir, unit)], {
        encoding: 'utf8', timeout: 60_000, env: { ...process.env, SYSTEMD_LOG_COLOR: '0' },
      });
      const out = `${r.stdout}${r.stderr}`;
      if (out.trim()) t.comment(out.trim());
      t.equal(r.error, undefined, `${unit}: ran`);
      t.equal(r.status, 0, `${unit}: exit 0`);
      const about = out.split('\n').filter((l) => /vxland/.test(l));
      t.same(about, [], `${unit}: no warnings about the unit`);
    }
  });
}
