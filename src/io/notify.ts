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
