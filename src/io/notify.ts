// systemd readiness and watchdog notifications (Type=notify units).

import { ERROR_CODES, VxlandError, toVxlandError } from '../errors';
import { loadAddon } from './addon';

/** Sends `state` (e.g. 'READY=1', 'STOPPING=1', 'WATCHDOG=1',
 *  'STATUS=...'; several may be joined with '\n') to $NOTIFY_SOCKET.
 *  Returns false without doing anything when NOTIFY_SOCKET is unset or
 *  empty, true once sent. Throws VxlandError('VXLAND_SOCKET') with
 *  errno/syscall when sending fails. */
export function notifySystemd(state: string, env: NodeJS.ProcessEnv = process.env): boolean {
  const socketPath = env.NOTIFY_SOCKET;
  if (socketPath === undefined || socketPath === '') return false;
  if (!socketPath.startsWith('/') && !socketPath.startsWith('@')) {
    throw new VxlandError(
      'VXLAND_SOCKET',
      `${ERROR_CODES.VXLAND_SOCKET}: NOTIFY_SOCKET must be an absolute path or start with '@': ${JSON.stringify(socketPath)}`,
    );
  }
  const addon = loadAddon();
  try {
    addon.sdNotify(socketPath, state);
  } catch (err) {
    throw toVxlandError(err, 'VXLAND_SOCKET');
  }
  return true;
}

/** How often to send 'WATCHDOG=1', in milliseconds: half of $WATCHDOG_USEC,
 *  or null when the watchdog is off (unset/invalid WATCHDOG_USEC, or
 *  WATCHDOG_PID naming another process). */
export function watchdogIntervalMs(env: NodeJS.ProcessEnv = process.env): number | null {
  const usecText = env.WATCHDOG_USEC;
  if (usecText === undefined || !/^\d+$/.test(usecText)) return null;
  const usec = Number(usecText);
  if (usec <= 0 || !Number.isSafeInteger(usec)) return null;
  const pidText = env.WATCHDOG_PID;
  if (pidText !== undefined && pidText !== '' && Number(pidText) !== process.pid) return null;
  return Math.max(1, Math.floor(usec / 2000));
}

/** The shortest time between two STATUS= lines: a burst of FDB changes
 *  (learning a thousand MACs) sends one line, not a thousand. */
export const STATUS_MIN_INTERVAL_MS = 1_000;

export interface StatusNotifierOptions {
  /** The text after "STATUS=", as it is now. */
  describe: () => string;
  /** Sends one notification, e.g. notifySystemd. */
  send: (state: string) => void;
  minIntervalMs?: number;
  now?: () => number;
  /** Runs fn after ms; returns a cancel. Default: an unref'd setTimeout. */
  later?: (fn: () => void, ms: number) => () => void;
}

/** Keeps systemd's STATUS= (the line `systemctl status` shows) up to date.
 *  changed() says the text may have changed; it is then sent at most once
 *  per minIntervalMs (the first change at once), and only when it differs
 *  from the last one sent. */
export class StatusNotifier {
  private lastText: string | null = null;
  private lastSentMs = Number.NEGATIVE_INFINITY;
  private cancel: (() => void) | null = null;
  private stopped = false;
  private readonly minIntervalMs: number;
  private readonly now: () => number;
  private readonly later: (fn: () => void, ms: number) => () => void;

  constructor(private readonly o: StatusNotifierOptions) {
    this.minIntervalMs = o.minIntervalMs ?? STATUS_MIN_INTERVAL_MS;
    this.now = o.now ?? Date.now;
    this.later = o.later ?? ((fn, ms) => {
      const timer = setTimeout(fn, ms);
      timer.unref();
      return () => clearTimeout(timer);
    });
  }

  changed(): void {
    if (this.stopped || this.cancel !== null) return;
    const waitMs = this.lastSentMs + this.minIntervalMs - this.now();
    if (waitMs <= 0) return this.flush();
    this.cancel = this.later(() => {
      this.cancel = null;
      this.flush();
    }, waitMs);
  }

  /** Sends the text now if it differs from the last one sent. */
  flush(): void {
    if (this.stopped) return;
    const text = this.o.describe();
    if (text === this.lastText) return;
    this.lastText = text;
    this.lastSentMs = this.now();
    this.o.send(`STATUS=${text}`);
  }

  /** No more lines; a pending one is dropped. */
  stop(): void {
    this.stopped = true;
    this.cancel?.();
    this.cancel = null;
  }
}
