// systemd notifications: STATUS= lines, sent after a change at most once per
// interval and only when the text differs; the datagrams reach a stand-in
// NOTIFY_SOCKET (test/fixtures/notify-listener.py) as systemd would get them.
import t from 'tap';
import path from 'node:path';
import { notifySystemd, StatusNotifier, watchdogIntervalMs } from '../src/io/notify';
import { REPO_ROOT, spawnDaemon } from './helpers/netns';
import { tempDir } from './helpers/vxland';

/** A StatusNotifier on a hand-driven clock: `advance` runs what came due. */
function harness(minIntervalMs = 1000): { notifier: StatusNotifier; sent: string[]; text: { value: string }; advance(ms: number): void; pending(): number } {
  let nowMs = 0;
  let timers: Array<{ at: number; fn: () => void }> = [];
  const sent: string[] = [];
  const text = { value: '1 network' };
  const notifier = new StatusNotifier({
    describe: () => text.value,
    send: (state) => sent.push(state),
    minIntervalMs,
    now: () => nowMs,
    later: (fn, ms) => {
      const timer = { at: nowMs + ms, fn };
      timers.push(timer);
      return () => {
        timers = timers.filter((x) => x !== timer);
      };
    },
  });
  return {
    notifier, sent, text,
    advance(ms) {
      nowMs += ms;
      const due = timers.filter((x) => x.at <= nowMs);
      timers = timers.filter((x) => x.at > nowMs);
      for (const x of due) x.fn();
    },
    pending: () => timers.length,
  };
}

t.test('the first line goes at once; a burst of changes after it is one line, an interval later', async (t) => {
  const h = harness();
  h.notifier.flush();
  t.same(h.sent, ['STATUS=1 network']);
  for (let i = 1; i <= 100; i++) {
    h.text.value = `1 network, ${i} learned MACs`;
    h.notifier.changed();
  }
  t.same(h.sent, ['STATUS=1 network'], 'nothing within the interval');
  t.equal(h.pending(), 1, 'one line is due');
  h.advance(1000);
  t.same(h.sent, ['STATUS=1 network', 'STATUS=1 network, 100 learned MACs'], 'then the latest text, once');
});

t.test('a change that leaves the text as it was sends nothing', async (t) => {
  const h = harness();
  h.notifier.flush();
  h.advance(5000);
  h.notifier.changed();
  t.same(h.sent, ['STATUS=1 network'], 'same text: no line');
  h.text.value = '2 networks';
  h.notifier.changed();
  t.same(h.sent, ['STATUS=1 network', 'STATUS=2 networks'], 'long after the last line: sent at once');
});

t.test('stop drops a pending line and sends no more', async (t) => {
  const h = harness();
  h.notifier.flush();
  h.text.value = '0 networks';
  h.notifier.changed();
  h.notifier.stop();
  t.equal(h.pending(), 0, 'the pending line is cancelled');
  h.advance(2000);
  h.notifier.changed();
  h.notifier.flush();
  t.same(h.sent, ['STATUS=1 network']);
});

t.test('notifySystemd: nothing without NOTIFY_SOCKET; a relative path is refused; datagrams reach the socket', async (t) => {
  t.equal(notifySystemd('STATUS=x', {}), false, 'unset: not sent');
  t.equal(notifySystemd('STATUS=x', { NOTIFY_SOCKET: '' }), false, 'empty: not sent');
  t.throws(() => notifySystemd('STATUS=x', { NOTIFY_SOCKET: 'relative.sock' }), { code: 'VXLAND_SOCKET' });
  const socketPath = path.join(tempDir(t, 'h4-notify'), 'notify.sock');
  const listener = spawnDaemon(t, null, ['python3', path.join(REPO_ROOT, 'test', 'fixtures', 'notify-listener.py'), socketPath, '20']);
  await listener.waitForLine('listening', 5000);
  t.equal(notifySystemd('READY=1\nSTATUS=1 network, 2 peers, 0 learned MACs, dgram data path', { NOTIFY_SOCKET: socketPath }), true);
  await listener.waitForLine('STATUS=1 network, 2 peers, 0 learned MACs, dgram data path', 5000);
  t.ok(listener.lines.includes('READY=1'), 'both assignments of one datagram arrive');
});

t.test('watchdog interval: half of WATCHDOG_USEC, for this process only', async (t) => {
  t.equal(watchdogIntervalMs({ WATCHDOG_USEC: '30000000' }), 15_000);
  t.equal(watchdogIntervalMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: String(process.pid) }), 15_000);
  t.equal(watchdogIntervalMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '1' }), null, 'another process\'s');
  t.equal(watchdogIntervalMs({}), null, 'off');
  t.equal(watchdogIntervalMs({ WATCHDOG_USEC: 'soon' }), null, 'malformed');
});
