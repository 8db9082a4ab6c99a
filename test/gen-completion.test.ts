// scripts/gen-completion.ts: the committed completion/vxland.bash is what the
// CLI's definition gives, and bash completes commands, subcommands, options
// and file arguments with it (plain bash: no bash-completion package needed).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildProgram } from '../src/cli';
import { bashCompletion } from '../scripts/gen-completion';
import { REPO_ROOT } from './helpers/netns';
import { tempDir } from './helpers/vxland';

const COMMITTED = path.join(REPO_ROOT, 'completion', 'vxland.bash');

/** What bash offers for the words of a command line (the last one is the
 *  word being completed), run from cwd. */
function complete(cwd: string, ...words: string[]): string[] {
  const script = `source ${JSON.stringify(COMMITTED)}; COMP_WORDS=("$@"); COMP_CWORD=$((\${#COMP_WORDS[@]} - 1)); _vxland; printf '%s\\n' "\${COMPREPLY[@]}"`;
  const r = spawnSync('bash', ['-c', script, 'bash', ...words], { cwd, encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) throw new Error(`bash: ${r.stderr}`);
  return r.stdout.split('\n').filter((w) => w !== '').sort();
}

t.test('the committed completion is the generated one', async (t) => {
  t.equal(fs.readFileSync(COMMITTED, 'utf8'), bashCompletion(buildProgram()), 'completion/vxland.bash is up to date (npm run build:ts writes it)');
});

t.test('bash completes with it', async (t) => {
  const dir = tempDir(t, 'completion');
  fs.writeFileSync(path.join(dir, 'host.json'), '{}');
  fs.mkdirSync(path.join(dir, 'hostdir'));
  const top = buildProgram().commands.map((c) => c.name()).sort();
  t.same(complete(dir, 'vxland', ''), top, 'every command');
  t.same(complete(dir, 'vxland', 'fd'), ['fdb'], 'a command by its start');
  t.same(complete(dir, 'vxland', 'fdb', ''), ['add', 'del', 'flush', 'get', 'show'], 'subcommands');
  t.same(complete(dir, 'vxland', 'fdb', 'flush', '--l'), ['--learned'], 'a subcommand\'s own option');
  t.same(complete(dir, 'vxland', 'run', '--con'), ['--config', '--control-group'], 'options');
  t.same(complete(dir, 'vxland', 'run', '--config', 'ho'), ['host.json', 'hostdir'], 'a file argument');
  t.same(complete(dir, 'vxland', 'run', '--state-dir', 'ho'), ['hostdir'], 'a directory argument');
  t.same(complete(dir, 'vxland', 'fdb', 'show', '--socket', 'x', '--j'), ['--json'], 'past an option\'s value (a global option, given after the command)');
  t.same(complete(dir, 'vxland', 'run', '--dev', ''), [], 'nothing for a free-form value');
});
