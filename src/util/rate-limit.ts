// Rate-limited logging for the data path and FDB events: at most one line per
// key per interval, and the next line says how many were suppressed.

import type { Logger } from 'pino';

export const LOG_RATE_INTERVAL_MS = 5_000;
/** Keys remembered at once. Keys may come from the network (a sender's
 *  address), so the table is bounded: past this it starts afresh. */
export const LOG_RATE_MAX_KEYS = 1024;

export class RateLimitedLog {
  private readonly last = new Map<string, { atMs: number; suppressed: number }>();

  constructor(
    private readonly log: Logger,
    private readonly intervalMs: number = LOG_RATE_INTERVAL_MS,
    private readonly now: () => number = Date.now,
  ) {}

  warn(key: string, fields: Record<string, unknown>, message: string): void {
    this.emit('warn', key, fields, message);
  }

  info(key: string, fields: Record<string, unknown>, message: string): void {
    this.emit('info', key, fields, message);
  }

  private emit(level: 'warn' | 'info', key: string, fields: Record<string, unknown>, message: string): void {
    const nowMs = this.now();
    const seen = this.last.get(key);
    if (seen !== undefined && nowMs - seen.atMs < this.intervalMs) {
      seen.suppressed++;
      return;
    }
    const suppressed = seen?.suppressed ?? 0;
    if (seen === undefined && this.last.size >= LOG_RATE_MAX_KEYS) this.last.clear();
    this.last.set(key, { atMs: nowMs, suppressed: 0 });
    this.log[level](suppressed > 0 ? { ...fields, suppressed } : fields, message);
  }
}
