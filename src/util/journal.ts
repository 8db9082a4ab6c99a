// Whether an output is journald's, and the syslog priority of a pino level.
// systemd connects a unit's stdout/stderr to journald by a stream socket and
// names it in $JOURNAL_STREAM ("DEV:INODE", decimal): an fd is journald's
// only when fstat() of it matches (sd-daemon's rule, systemd.exec(5)), so a
// child whose stdout was redirected elsewhere does not mistake it. There a
// line may start with "<N>", its priority (SyslogLevelPrefix=, on by default);
// a line without one is logged at the unit's SyslogLevel=, info.

import fs from 'node:fs';

/** journald's priorities, syslog(3) numbers. */
export const SYSLOG_PRIORITY = { crit: 2, err: 3, warning: 4, info: 6, debug: 7 } as const;

/** The pino levels (numbers) at the bottom of each band. */
const PINO_FATAL = 60;
const PINO_ERROR = 50;
const PINO_WARN = 40;
const PINO_INFO = 30;

/** True when fd is the stream $JOURNAL_STREAM names. Never throws. */
export function isJournalStream(fd: number, env: NodeJS.ProcessEnv = process.env): boolean {
  const m = /^(\d+):(\d+)$/.exec(env.JOURNAL_STREAM ?? '');
  if (m === null) return false;
  try {
    const st = fs.fstatSync(fd, { bigint: true });
    return st.dev === BigInt(m[1]) && st.ino === BigInt(m[2]);
  } catch {
    return false;
  }
}

/** fatal → 2 (crit), error → 3, warn → 4, info → 6, debug and trace → 7. */
export function syslogPriority(pinoLevel: number): number {
  if (pinoLevel >= PINO_FATAL) return SYSLOG_PRIORITY.crit;
  if (pinoLevel >= PINO_ERROR) return SYSLOG_PRIORITY.err;
  if (pinoLevel >= PINO_WARN) return SYSLOG_PRIORITY.warning;
  if (pinoLevel >= PINO_INFO) return SYSLOG_PRIORITY.info;
  return SYSLOG_PRIORITY.debug;
}

/** "<N>", the prefix journald reads a line's priority from. */
export function priorityPrefix(pinoLevel: number): string {
  return `<${syslogPriority(pinoLevel)}>`;
}
