// journald's stream, as sd-daemon recognises it (the fd's dev:inode equal to
// $JOURNAL_STREAM), and the priority of each pino level.
import t from 'tap';
import type { TapLike } from './helpers/netns';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isJournalStream, priorityPrefix, syslogPriority } from '../src/util/journal';

function tempFd(t: TapLike): { fd: number; stream: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vxland-h4-journal-'));
  const fd = fs.openSync(path.join(dir, 'out'), 'w');
  t.teardown(() => {
    fs.closeSync(fd);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const st = fs.fstatSync(fd, { bigint: true });
  return { fd, stream: `${st.dev}:${st.ino}` };
}

t.test('an fd is journald\'s only when its dev:inode is $JOURNAL_STREAM', async (t) => {
  const a = tempFd(t);
  const b = tempFd(t);
  t.ok(isJournalStream(a.fd, { JOURNAL_STREAM: a.stream }), 'matching dev:inode');
  t.notOk(isJournalStream(b.fd, { JOURNAL_STREAM: a.stream }), 'another file (stdout redirected by a parent)');
  t.notOk(isJournalStream(a.fd, {}), 'unset');
  t.notOk(isJournalStream(a.fd, { JOURNAL_STREAM: '' }), 'empty');
  t.notOk(isJournalStream(a.fd, { JOURNAL_STREAM: 'nonsense' }), 'malformed');
  t.notOk(isJournalStream(987_654, { JOURNAL_STREAM: a.stream }), 'a closed fd');
});

t.test('pino levels map to syslog priorities', async (t) => {
  t.same([60, 50, 40, 30, 20, 10].map(syslogPriority), [2, 3, 4, 6, 7, 7], 'fatal crit, error err, warn warning, info, debug and trace debug');
  t.equal(priorityPrefix(50), '<3>');
});
