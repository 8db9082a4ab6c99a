// What the daemon's log lines look like: pino's JSON, or one readable line;
// under journald each with its "<N>" priority in front.
import t from 'tap';
import { chooseLogOutput, formatLogLine } from '../src/util/log-format';

const TIME_MS = Date.UTC(2026, 11, 2, 13, 0, 0, 123);
const line = (fields: Record<string, unknown>): string => `${JSON.stringify(fields)}\n`;

t.test('json: pino\'s line, with the priority in front under journald', async (t) => {
  const entry = line({ level: 50, time: TIME_MS, pid: 7, msg: 'cannot open vxl0' });
  t.equal(formatLogLine(entry, { format: 'json', journal: false }), entry, 'unchanged off journald');
  t.equal(formatLogLine(entry, { format: 'json', journal: true }), `<3>${entry}`, 'error → <3>');
  t.equal(formatLogLine(line({ level: 60, msg: 'x' }), { format: 'json', journal: true }).slice(0, 3), '<2>', 'fatal → <2>');
});

t.test('pretty: time, level, message, then the fields, on one line', async (t) => {
  const entry = line({
    level: 30, time: TIME_MS, pid: 7, msg: 'network up\nnow', vni: 42, dev: 'vxl0', note: 'two words', err: { type: 'Error', message: 'EPERM', stack: 'Error: EPERM\n    at x' },
    peers: ['192.0.2.2'],
  });
  t.equal(
    formatLogLine(entry, { format: 'pretty', journal: false }),
    '2026-12-02T13:00:00.123Z INFO  network up\\nnow vni=42 dev=vxl0 note="two words" err="EPERM" peers=["192.0.2.2"]\n',
  );
  t.equal(
    formatLogLine(line({ level: 40, msg: 'slow' }), { format: 'pretty', journal: true }),
    '<4>WARN  slow\n',
    'under journald: the priority, no time (pino leaves it out there)',
  );
});

t.test('a line that is not pino\'s JSON passes through', async (t) => {
  t.equal(formatLogLine('not json\n', { format: 'pretty', journal: true }), 'not json\n');
});

t.test('pretty by default on a TTY, json otherwise, and --log-format wins', async (t) => {
  const tty = (): boolean => true;
  const pipe = (): boolean => false;
  t.same(chooseLogOutput(undefined, 1, {}, tty), { format: 'pretty', journal: false });
  t.same(chooseLogOutput(undefined, 1, {}, pipe), { format: 'json', journal: false });
  t.same(chooseLogOutput('json', 1, {}, tty), { format: 'json', journal: false });
  t.same(chooseLogOutput('pretty', 1, {}, pipe), { format: 'pretty', journal: false });
});
