// Teardown functions collected the way a tap test collects them, for
// scripts (soak, bench) that use the test helpers outside tap.
import type { TapLike } from './netns';

/** A TapLike whose run() calls the collected teardowns in reverse order,
 *  each once, reporting (not throwing) their failures. */
export class Teardowns implements TapLike {
  private readonly fns: Array<() => unknown> = [];
  teardown(fn: () => unknown): void { this.fns.push(fn); }
  comment(...args: unknown[]): void { console.log('#', ...args); }
  async run(): Promise<void> {
    for (const fn of this.fns.splice(0).reverse()) {
      try { await fn(); } catch (err) { console.error(`cleanup: ${(err as Error).message}`); }
    }
  }
}
