// The one way tests wait for a condition that nothing announces (a counter
// reaching a value, a file appearing, a kernel table changing): poll a probe
// until its value is accepted or a deadline passes. Waiting for a log line
// or a child's output is LineProcess.waitForJson/waitForLine, which wake on
// the line itself.
import { inspect } from 'node:util';

export const EVENTUALLY_TIMEOUT_MS = 5_000;
export const EVENTUALLY_INTERVAL_MS = 20;
const DESCRIBE_MAX_CHARS = 2_000;

export interface EventuallyOptions<T> {
  /** Accepts a probed value; default: any truthy value. */
  until?: (value: T) => boolean;
  /** Default EVENTUALLY_TIMEOUT_MS. */
  timeoutMs?: number;
  /** Pause between the end of one probe and the start of the next; default
   *  EVENTUALLY_INTERVAL_MS. Probes that start a process or load the daemon
   *  deserve a longer one. */
  intervalMs?: number;
  /** What is awaited, for the error ("B's counters reach A's"). */
  what?: string;
  /** Renders the last value for the error; default util.inspect. */
  describe?: (value: T) => string;
}

export class EventuallyTimeout extends Error {
  constructor(message: string, readonly last: unknown) {
    super(message);
    this.name = 'EventuallyTimeout';
  }
}

/** Calls probe() until `until` accepts its value, and resolves with that
 *  value. Rejects with EventuallyTimeout, naming the last observed value,
 *  once timeoutMs has passed (the probe runs at least once, and once more
 *  at the deadline). A probe that throws rejects at once: a probe that may
 *  fail while the condition does not hold yet catches that itself. */
export async function eventually<T>(probe: () => T | Promise<T>, o: EventuallyOptions<T> = {}): Promise<T> {
  const until = o.until ?? ((v: T) => Boolean(v));
  const timeoutMs = o.timeoutMs ?? EVENTUALLY_TIMEOUT_MS;
  const intervalMs = o.intervalMs ?? EVENTUALLY_INTERVAL_MS;
  const start = Date.now();
  const deadline = start + timeoutMs;
  for (let probes = 1; ; probes++) {
    const value = await probe();
    if (until(value)) return value;
    const left = deadline - Date.now();
    if (left <= 0) {
      const shown = (o.describe ?? ((v: T) => inspect(v, { depth: 4, breakLength: Infinity })))(value);
      const last = shown.length > DESCRIBE_MAX_CHARS ? `${shown.slice(0, DESCRIBE_MAX_CHARS)}…` : shown;
      throw new EventuallyTimeout(
        `${o.what ?? 'the condition'} did not hold within ${timeoutMs} ms (${probes} probes, ${Date.now() - start} ms); last observed: ${last}`, value);
    }
    await new Promise((r) => setTimeout(r, Math.min(intervalMs, left)));
  }
}
