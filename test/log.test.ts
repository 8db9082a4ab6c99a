// The daemon's logger on a real fd: under a stand-in journald stream (the
// file the test hands it as its output, named in JOURNAL_STREAM) each line
// carries its priority and neither time nor pid, which is what makes
// `journalctl -p err` show errors and fatal lines; elsewhere pino's JSON.
import t from 'tap';
import type { TapLike } from './helpers/netns';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../src/util/log';

function tempFile(t: TapLike): { file: string; fd: number; stream: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vxland-h4-log-'));
  const file = path.join(dir, 'out');
  const fd = fs.openSync(file, 'w');
  t.teardown(() => {
    fs.closeSync(fd);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const st = fs.fstatSync(fd, { bigint: true });
  return { file, fd, stream: `${st.dev}:${st.ino}` };
}

function logEveryLevel(fd: number, env: NodeJS.ProcessEnv): void {
  const log = createLogger({ level: 'trace', format: 'json', fd, env });
  log.fatal({ err: new Error('TAP gone') }, 'data path failed; exiting');
  log.error('config reload failed');
  log.warn('slow');
  log.info({ vni: 42 }, 'network up');
  log.debug('fdb change');
  log.trace('detail');
}

t.test('under a stand-in journald stream: a priority on each line, no time or pid', async (t) => {
  const out = tempFile(t);
  logEveryLevel(out.fd, { JOURNAL_STREAM: out.stream });
  const lines = fs.readFileSync(out.file, 'utf8').split('\n').filter(Boolean);
  t.same(lines.map((l) => l.slice(0, 3)), ['<2>', '<3>', '<4>', '<6>', '<7>', '<7>'], 'fatal <2>, error <3>, warn <4>, info <6>, debug and trace <7>');
  const fatal = JSON.parse(lines[0].slice(3)) as Record<string, unknown>;
  t.ok(Number(lines[0][1]) <= 3, 'the fatal line is within journalctl -p err');
  t.equal(fatal.msg, 'data path failed; exiting');
  t.match(fatal.err, { message: 'TAP gone' });
  for (const l of lines) {
    const entry = JSON.parse(l.slice(3)) as Record<string, unknown>;
    t.notOk('time' in entry || 'pid' in entry || 'hostname' in entry, `no second time or pid: ${l.slice(0, 60)}`);
  }
  t.equal(JSON.parse(lines[3].slice(3)).vni, 42, 'fields are kept');
});

t.test('JOURNAL_STREAM naming another stream: plain pino JSON with time and pid', async (t) => {
  const out = tempFile(t);
  const other = tempFile(t);
  logEveryLevel(out.fd, { JOURNAL_STREAM: other.stream });
  const lines = fs.readFileSync(out.file, 'utf8').split('\n').filter(Boolean);
  t.equal(lines.length, 6);
  const first = JSON.parse(lines[0]) as Record<string, unknown>;
  t.match(first, { level: 60, pid: process.pid, msg: 'data path failed; exiting' });
  t.type(first.time, 'number', 'pino\'s time');
});

t.test('a child whose stdout is the stand-in journald stream, as systemd starts it', async (t) => {
  const out = tempFile(t);
  const script = `const { createLogger } = require(${JSON.stringify(path.resolve(__dirname, '../src/util/log.js'))});
    const log = createLogger({ level: 'info' });
    log.fatal('fatal line'); log.error('error line'); log.info('info line'); process.exit(1);`;
  const r = spawnSync(process.execPath, ['-e', script], {
    stdio: ['ignore', out.fd, 'pipe'], env: { ...process.env, JOURNAL_STREAM: out.stream }, timeout: 20_000,
  });
  t.equal(r.status, 1, `exited as told${r.stderr.length > 0 ? `: ${r.stderr.toString()}` : ''}`);
  const lines = fs.readFileSync(out.file, 'utf8').split('\n').filter(Boolean);
  t.same(lines.map((l) => l.slice(0, 3)), ['<2>', '<3>', '<6>'], 'the lines written right before exit are all there, prioritised');
  t.notMatch(lines.join('\n'), /"time"|"pid"/);
});
