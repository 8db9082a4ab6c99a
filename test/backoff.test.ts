// Jittered exponential backoff: doubling from the base to the cap, drawn from
// the upper half of each step, reset on demand.
import t from 'tap';
import { Backoff } from '../src/util/backoff';

t.test('delays double up to the cap, within the upper half of each step', async (t) => {
  const low = new Backoff({ baseMs: 100, capMs: 1000, random: () => 0 });
  t.same([1, 2, 3, 4, 5, 6].map(() => low.next()), [50, 100, 200, 400, 500, 500], 'lowest draw: half of each step');
  const high = new Backoff({ baseMs: 100, capMs: 1000, random: () => 0.999999 });
  t.same([1, 2, 3, 4, 5].map(() => high.next()), [100, 200, 400, 800, 1000], 'highest draw: the step itself');
  t.equal(high.consecutiveFailures, 5);
  high.reset();
  t.equal(high.next(), 100, 'reset: back to the base');
  const many = new Backoff({ baseMs: 1, capMs: 10_000 });
  for (let i = 0; i < 100; i++) many.next();
  const d = many.next();
  t.ok(d >= 5000 && d <= 10_000, `after 100 failures still capped (${d} ms), no overflow`);
});
