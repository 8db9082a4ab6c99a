// Replays the fuzz corpus (test/fuzz/corpus/<target>/) through the libFuzzer
// harnesses (AddressSanitizer + UBSan) of the native offload code:
// `scripts/fuzz.sh --replay` builds test/fuzz/*.cc with clang and runs every
// input once through its target, which takes seconds. Fuzzing for time is
// `npm run fuzz` (FUZZ_SECONDS, default 60; longer:
// `FUZZ_SECONDS=1800 bash scripts/fuzz.sh --merge`). Skipped when clang or
// its libFuzzer runtime is missing (.ci/run installs them).
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');
const SCRIPT = path.join(ROOT, 'scripts', 'fuzz.sh');
const FUZZ_DIR = path.join(ROOT, 'test', 'fuzz');
const TARGETS = fs
  .readdirSync(FUZZ_DIR)
  .filter((f) => /^fuzz_\w+\.cc$/.test(f))
  .map((f) => f.replace(/\.cc$/, ''))
  .sort();
/** Building the three harnesses with sanitizers takes about 10 s here. */
const REPLAY_TIMEOUT_MS = 240_000;

const check = spawnSync('bash', [SCRIPT, '--check'], { cwd: ROOT, encoding: 'utf8' });
if (check.status !== 0) {
  const reason = (check.stdout + check.stderr).trim().split('\n')[0] || `fuzz.sh --check exited ${check.status}`;
  t.comment(`skipping: ${reason}`);
  t.plan(0, `skip: ${reason}`);
} else {
  t.test('every corpus input runs clean through its libFuzzer target', { timeout: REPLAY_TIMEOUT_MS }, async (t) => {
    t.ok(TARGETS.length >= 3, `harnesses found: ${TARGETS.join(', ')}`);
    const { code, text } = await new Promise<{ code: number | null; text: string }>((resolve) => {
      const child = spawn('bash', [SCRIPT, '--replay'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      let text = '';
      child.stdout.on('data', (d: Buffer) => { text += d.toString(); });
      child.stderr.on('data', (d: Buffer) => { text += d.toString(); });
      child.on('close', (c) => resolve({ code: c, text }));
    });
    t.comment(text.trim());
    t.equal(code, 0, 'fuzz.sh --replay exits 0: no crash, leak, timeout, failed check or sanitizer report');
    for (const target of TARGETS) {
      const inputs = fs.readdirSync(path.join(FUZZ_DIR, 'corpus', target)).length;
      const m = new RegExp(`\\[fuzz\\] ${target}: replayed (\\d+) inputs clean`).exec(text);
      t.equal(m ? Number(m[1]) : 0, inputs, `${target}: all ${inputs} corpus inputs replayed`);
    }
  });
}
