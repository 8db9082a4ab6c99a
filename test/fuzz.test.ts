// A short bounded libFuzzer run (AddressSanitizer + UBSan) of the native
// offload code: scripts/fuzz.sh builds test/fuzz/*.cc with clang and runs
// every target on a copy of its corpus (test/fuzz/corpus/<target>/) for
// FUZZ_SECONDS in total (default 60). Skipped when clang or its libFuzzer
// runtime is missing (.ci/run installs them); longer local runs:
// `FUZZ_SECONDS=1800 bash scripts/fuzz.sh --merge`.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');
const SCRIPT = path.join(ROOT, 'scripts', 'fuzz.sh');
const TARGETS = fs
  .readdirSync(path.join(ROOT, 'test', 'fuzz'))
  .filter((f) => /^fuzz_\w+\.cc$/.test(f))
  .map((f) => f.replace(/\.cc$/, ''))
  .sort();
const SECONDS = process.env.FUZZ_SECONDS ?? '60';

const check = spawnSync('bash', [SCRIPT, '--check'], { cwd: ROOT, encoding: 'utf8' });
if (check.status !== 0) {
  const reason = (check.stdout + check.stderr).trim().split('\n')[0] || `fuzz.sh --check exited ${check.status}`;
  t.comment(`skipping: ${reason}`);
  t.plan(0, `skip: ${reason}`);
} else {
  t.test('libFuzzer targets run clean for a bounded time', { timeout: (Number(SECONDS) + 240) * 1000 }, async (t) => {
    t.ok(TARGETS.length >= 3, `harnesses found: ${TARGETS.join(', ')}`);
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'vxland-fuzz-'));
    const { code, text } = await new Promise<{ code: number | null; text: string }>((resolve) => {
      const child = spawn('bash', [SCRIPT], {
        cwd: ROOT,
        env: { ...process.env, FUZZ_SECONDS: SECONDS, FUZZ_OUT: out },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let text = '';
      child.stdout.on('data', (d: Buffer) => { text += d.toString(); });
      child.stderr.on('data', (d: Buffer) => { text += d.toString(); });
      child.on('close', (c) => resolve({ code: c, text }));
    });
    t.comment(text.trim());
    t.equal(code, 0, 'fuzz.sh exits 0: no crash, leak, timeout or sanitizer report');
    for (const target of TARGETS) {
      const m = new RegExp(`\\[fuzz\\] ${target}: Done (\\d+) runs`).exec(text);
      t.ok(m && Number(m[1]) > 0, `${target} executed inputs (${m ? m[1] : 0} runs)`);
    }
    // Logs and any reproducers stay for inspection on failure.
    if (code === 0) fs.rmSync(out, { recursive: true, force: true });
    else t.comment(`fuzz output kept in ${out}`);
  });
}
