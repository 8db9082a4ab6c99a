// test/helpers/eventually.ts: the tests' one way to wait for a condition.
import t from 'tap';
import { eventually, EventuallyTimeout } from './helpers/eventually';

t.test('resolves with the first accepted value, probing until then', async (t) => {
  let n = 0;
  const value = await eventually(() => ++n, { until: (v) => v >= 3, intervalMs: 1 });
  t.equal(value, 3, 'the accepted value');
  t.equal(n, 3, 'no probe after it');
  t.equal(await eventually(async () => 'ready'), 'ready', 'an async probe; any truthy value by default');
});

t.test('past the deadline it rejects naming what was awaited and the last value', async (t) => {
  let n = 0;
  const start = Date.now();
  const err = await eventually(() => ({ count: ++n }), { until: () => false, timeoutMs: 100, intervalMs: 10, what: 'the count reaching 1000' })
    .then(() => null, (e: unknown) => e);
  const tookMs = Date.now() - start;
  t.type(err, EventuallyTimeout);
  t.match((err as Error).message, /^the count reaching 1000 did not hold within 100 ms \(\d+ probes, \d+ ms\); last observed: \{ count: \d+ \}$/);
  t.same((err as EventuallyTimeout).last, { count: n }, 'the last probed value is kept');
  t.ok(tookMs >= 100, `it waited the whole timeout (${tookMs} ms)`);
  t.ok(n >= 3, `and probed meanwhile (${n} times), once more at the deadline`);
  const described = await eventually(() => 7, { until: () => false, timeoutMs: 0, describe: (v) => `seven is ${v}` }).catch((e: Error) => e.message);
  t.match(described, /\(1 probes, \d+ ms\); last observed: seven is 7$/, 'a zero timeout probes once; describe renders the value');
});

t.test('a probe that throws rejects at once', async (t) => {
  let n = 0;
  const start = Date.now();
  await t.rejects(eventually(() => { n++; throw new Error('daemon exited'); }, { timeoutMs: 5_000 }), /^daemon exited$/);
  t.equal(n, 1, 'probed once');
  t.ok(Date.now() - start < 1_000, 'without waiting for the deadline');
});
