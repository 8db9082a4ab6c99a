// How the daemon's log lines look. json: pino's JSON line. pretty: "TIME
// LEVEL message key=value ...", one line per entry, for a person at a
// terminal. The default is pretty when the output is a TTY, json otherwise.
// When the output is journald's (journal.ts) every line starts with its
// "<N>" priority. Pure: no pino here (the CLI's client commands load this).

import { isJournalStream, priorityPrefix } from './journal.js';

export const LOG_FORMATS = ['json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export interface LogOutput {
  format: LogFormat;
  /** The fd is journald's: priority prefixes, no time or pid. */
  journal: boolean;
}

/** The format and journald-ness of the output on fd. */
export function chooseLogOutput(format: LogFormat | undefined, fd: number, env: NodeJS.ProcessEnv, isTty: (fd: number) => boolean): LogOutput {
  return { format: format ?? (isTty(fd) ? 'pretty' : 'json'), journal: isJournalStream(fd, env) };
}

const LEVEL_NAMES: Readonly<Record<number, string>> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
/** Fields the pretty line shows in its own place, or not at all. */
const PRETTY_OMITTED = new Set(['level', 'time', 'pid', 'hostname', 'msg']);

/** One pino JSON line (with its newline) as the output wants it; a line
 *  that is not pino's JSON is passed through. */
export function formatLogLine(line: string, output: LogOutput): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const level = typeof entry.level === 'number' ? entry.level : 30;
  const prefix = output.journal ? priorityPrefix(level) : '';
  if (output.format === 'json') return `${prefix}${line}`;
  const parts: string[] = [];
  if (typeof entry.time === 'number') parts.push(new Date(entry.time).toISOString());
  parts.push((LEVEL_NAMES[level] ?? String(level)).padEnd(5), oneLine(String(entry.msg ?? '')));
  for (const [key, value] of Object.entries(entry)) {
    if (!PRETTY_OMITTED.has(key)) parts.push(`${key}=${prettyValue(key, value)}`);
  }
  return `${prefix}${parts.join(' ')}\n`;
}

/** Strings bare unless they need quotes; an error as its message; anything else as JSON. */
function prettyValue(key: string, value: unknown): string {
  if (key === 'err' && typeof value === 'object' && value !== null && typeof (value as { message?: unknown }).message === 'string') {
    return JSON.stringify((value as { message: string }).message);
  }
  if (typeof value === 'string') return /^[^\s"=\\]+$/.test(value) ? value : JSON.stringify(value);
  return JSON.stringify(value) ?? String(value);
}

function oneLine(text: string): string {
  return text.replace(/\r?\n/g, '\\n');
}

