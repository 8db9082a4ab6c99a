// StateLock against real flock(2): held by this process and by a child that
// is then killed with SIGKILL (the kernel must release its lock).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import t from 'tap';
import { StateLock } from '../src/io/state-lock';

const CHILD_READY_TIMEOUT_MS = 10_000;

function stateDir(t: tap.Test): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'vxland-lock-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  return path.join(root, 'lib', 'vxland');
}

function lockError(dir: string, dev: string): { code?: string; message: string } {
  try {
    StateLock.acquire(dir, dev).release();
  } catch (err) {
    return err as { code?: string; message: string };
  }
  return { message: 'acquire() did not throw' };
}

t.test('the lock is exclusive, names its holder, and is free again once released', async (t) => {
  const dir = stateDir(t);
  const lock = StateLock.acquire(dir, 'vxl0');
  t.teardown(() => lock.release());
  t.equal(lock.path, path.join(dir, 'vxl0.lock'), 'it creates the directory and <dev>.lock');
  t.equal(fs.readFileSync(lock.path, 'utf8'), `${process.pid}\n`, 'which holds the holder\'s pid');
  t.equal(fs.statSync(lock.path).mode & 0o777, 0o600, 'mode 0600');

  const err = lockError(dir, 'vxl0');
  t.equal(err.code, 'VXLAND_STATE_LOCKED', 'a second open of the same lock is refused, even in the same process');
  t.match(err.message, `(pid ${process.pid}, lock ${lock.path})`, `the message names the holder and the file: ${err.message}`);
  const other = StateLock.acquire(dir, 'vxl1');
  other.release();
  t.pass('another device in the same directory has its own lock');

  lock.release();
  lock.release();
  const again = StateLock.acquire(dir, 'vxl0');
  again.release();
  t.pass('released (twice, harmlessly): it can be taken again');
});

t.test('a holder killed with SIGKILL leaves its lock file, but not its lock', async (t) => {
  const dir = stateDir(t);
  const modulePath = path.join(__dirname, '..', 'src', 'io', 'state-lock.js');
  const script = `require(${JSON.stringify(modulePath)}).StateLock.acquire(${JSON.stringify(dir)}, 'vxl0'); console.log('locked'); setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  t.teardown(() => {
    child.kill('SIGKILL');
    return exited;
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the child did not take the lock in time')), CHILD_READY_TIMEOUT_MS);
    createInterface({ input: child.stdout! }).once('line', () => {
      clearTimeout(timer);
      resolve();
    });
    child.once('exit', (code) => reject(new Error(`the child exited (${code}) before taking the lock`)));
  });

  const err = lockError(dir, 'vxl0');
  t.equal(err.code, 'VXLAND_STATE_LOCKED', 'refused while the child holds it');
  t.match(err.message, `pid ${child.pid}`, 'naming the child\'s pid');

  child.kill('SIGKILL');
  await exited;
  t.ok(fs.existsSync(path.join(dir, 'vxl0.lock')), 'the lock file is still there');
  const lock = StateLock.acquire(dir, 'vxl0');
  t.equal(fs.readFileSync(lock.path, 'utf8'), `${process.pid}\n`, 'and the lock is ours at once, with our pid in it');
  lock.release();
});
