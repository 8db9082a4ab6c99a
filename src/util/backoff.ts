// Jittered exponential backoff for retrying a remote service (etcd): the
// delay doubles with each consecutive failure up to a cap, and is drawn
// uniformly from its upper half so that many hosts that lost the service at
// the same moment do not all come back at the same moment.

export interface BackoffOptions {
  baseMs: number;
  capMs: number;
  /** Uniform in [0, 1); default Math.random. */
  random?: () => number;
}

export class Backoff {
  private failures = 0;
  private readonly random: () => number;

  constructor(private readonly o: BackoffOptions) {
    this.random = o.random ?? Math.random;
  }

  /** The delay before the next attempt after one more failure, in ms (never 0). */
  next(): number {
    const ceiling = Math.min(this.o.capMs, this.o.baseMs * 2 ** Math.min(this.failures, 30));
    this.failures++;
    return Math.max(1, Math.round(ceiling * (0.5 + 0.5 * this.random())));
  }

  /** Back to the base delay (after a success that lasted). */
  reset(): void {
    this.failures = 0;
  }

  get consecutiveFailures(): number {
    return this.failures;
  }
}
