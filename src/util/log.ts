// The daemon's logger: pino, writing one line per entry to stdout (fd 1) in
// the format log-format.ts chooses. Under journald pino leaves out its time
// and pid: journald records both itself.

import tty from 'node:tty';
import pino, { type Logger } from 'pino';
import { chooseLogOutput, formatLogLine, type LogFormat } from './log-format.js';

export interface LoggerOptions {
  /** A pino level name: fatal, error, warn, info, debug, trace or silent. */
  level: string;
  /** Default: pretty on a TTY, json otherwise. */
  format?: LogFormat;
  /** Default 1 (stdout). */
  fd?: number;
  env?: NodeJS.ProcessEnv;
  /** Where lines go; default a synchronous write to fd (a fatal line is out before exit). */
  write?: (line: string) => void;
}

export function createLogger(o: LoggerOptions): Logger {
  const fd = o.fd ?? 1;
  const output = chooseLogOutput(o.format, fd, o.env ?? process.env, (n) => tty.isatty(n));
  const write = o.write ?? destinationWrite(fd);
  const plain = output.format === 'json' && !output.journal;
  const stream = { write: plain ? write : (line: string) => write(formatLogLine(line, output)) };
  return pino(
    output.journal ? { level: o.level, base: null, timestamp: false } : { level: o.level, base: { pid: process.pid } },
    stream,
  );
}

function destinationWrite(fd: number): (line: string) => void {
  const destination = pino.destination({ dest: fd, sync: true });
  return (line) => void destination.write(line);
}
