// The install routes as a user takes them (README, "Install"): the npm
// tarball (`npm pack`, then `npm install -g` with no compiler reachable), the
// .deb (`npm run package:deb`, `dpkg -i`, `dpkg --purge`), each giving a
// vxland whose daemon, started from the installed files in a test namespace,
// pings a kernel vxlan peer and is removed without a trace; and
// `npm ci --omit=dev` in a copy of the checkout. npm runs with
// --prefer-offline: the dependencies come from npm's cache when it has them.
import t, { type Test } from 'tap';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { addKernelVxlan, createTopology, exec, ping, REPO_ROOT, skipIf, skipUnlessRoot, type ExecResult, type TapLike } from './helpers/netns';
import { startVxland, tempDir, TEST_VNI } from './helpers/vxland';
import { buildProgram } from '../src/cli';

const PKG = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
const NPM_TIMEOUT_MS = 120_000;
const NPM_QUIET = ['--prefer-offline', '--no-audit', '--no-fund'];
/** The compilers and build tools a fallback build of the addon would run. */
const BUILD_TOOLS = ['cc', 'gcc', 'g++', 'c++', 'cpp', 'make', 'ld'];
/** Where the .deb puts what a user reaches by name. */
const DEB_FILES = {
  bin: '/usr/bin/vxland',
  unit: '/lib/systemd/system/vxland.service',
  man: '/usr/share/man/man8/vxland.8.gz',
  completion: '/usr/share/bash-completion/completions/vxland',
  lib: '/usr/lib/vxland',
  sysusers: '/usr/lib/sysusers.d/vxland.conf',
};

/** This process's environment without what the `npm test` around it set for
 *  its own scripts (npm_command, npm_package_*, npm_config_local_prefix…),
 *  which would steer the npm run here; the machine's npm settings stay. */
function npmEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const keep = new Set(['npm_config_nodedir', 'npm_config_cache', 'npm_config_registry', 'npm_config_userconfig', 'npm_config_globalconfig']);
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('npm_') || keep.has(k)) env[k] = v;
  return { ...env, ...extra };
}

/** A PATH on which every build tool fails (and logs that it was called to
 *  `calls`), in front of the usual one: no compiler is reachable. */
function pathWithoutCompiler(t: TapLike, dir: string): { PATH: string; calls: string } {
  const shims = path.join(dir, 'no-compiler');
  const calls = path.join(dir, 'compiler-calls.log');
  fs.mkdirSync(shims);
  for (const tool of BUILD_TOOLS) {
    fs.writeFileSync(path.join(shims, tool), `#!/bin/sh\necho "$0 $*" >> '${calls}'\nexit 127\n`, { mode: 0o755 });
  }
  t.teardown(() => fs.rmSync(shims, { recursive: true, force: true }));
  return { PATH: `${shims}:${process.env.PATH ?? '/usr/bin:/bin'}`, calls };
}

function compilerCalls(calls: string): string[] {
  return fs.existsSync(calls) ? fs.readFileSync(calls, 'utf8').trim().split('\n') : [];
}

async function run(argv: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<ExecResult> {
  const command = opts.cwd === undefined ? argv : ['sh', '-c', 'cd "$0" && exec "$@"', opts.cwd, ...argv];
  return exec(null, command, { env: npmEnv(opts.env), timeoutMs: opts.timeoutMs ?? NPM_TIMEOUT_MS, allowFail: true });
}

/** Asserts r exited 0; on failure the diagnostic has the end of its output. */
function ok(t: Test, r: ExecResult, what: string): void {
  const tail = `${r.stdout}\n${r.stderr}`.trim().split('\n').slice(-15).join('\n');
  t.equal(r.code, 0, what, r.code === 0 ? {} : { diagnostic: true, output: tail });
}

/** Every file under dir, relative to it, with / separators. */
function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true, withFileTypes: true }) as fs.Dirent[])
    .filter((e) => !e.isDirectory())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)));
}

/** What `npm pack` must ship, from the sources: the compiled src/ (no tests,
 *  no maps), the addon's sources and its prebuilt build, the files a user
 *  installs. */
function expectedTarball(): string[] {
  const js = filesUnder(path.join(REPO_ROOT, 'src')).filter((f) => f.endsWith('.ts')).map((f) => `dist/src/${f.replace(/\.ts$/, '.js')}`);
  const native = filesUnder(path.join(REPO_ROOT, 'native')).filter((f) => /\.(cc|h)$/.test(f)).map((f) => `native/${f}`);
  return [
    ...js, ...native,
    'package.json', 'README.md', 'LICENSE', 'bin/vxland', 'binding.gyp',
    `prebuilds/${process.platform}-${process.arch}/vxland.napi.glibc.node`,
    'systemd/vxland.service', 'systemd/vxland.sysusers.conf', 'schema/vxland.schema.json', 'man/vxland.8', 'completion/vxland.bash',
  ].sort();
}

/** A kernel vxlan peer in one namespace, a daemon run by `command` in the
 *  other: ping both ways. */
async function pingsKernelPeer(t: Test, command: string[]): Promise<void> {
  const topo = await createTopology(t, { hosts: 2 });
  const [a, b] = topo.hosts;
  await addKernelVxlan(b, { vni: TEST_VNI, remotes: [a.ip], address: '10.42.0.2/24' });
  // auto: the data path a user gets.
  const v = await startVxland(t, a, { peers: [b.ip], address: '10.42.0.1/24', datapath: 'auto', command });
  t.equal((await ping(a.ns, '10.42.0.2', { count: 3, intervalS: 0.2, timeoutS: 2 })).received, 3, 'installed vxland → kernel peer');
  t.equal((await ping(b.ns, '10.42.0.1', { count: 3, intervalS: 0.2, timeoutS: 2 })).received, 3, 'kernel peer → installed vxland');
  await v.proc.stop(3000);
}

t.test('the man page names every command', async (t) => {
  // Written by hand: this keeps it from falling behind the CLI.
  const text = fs.readFileSync(path.join(REPO_ROOT, 'man', 'vxland.8'), 'utf8').replace(/\\-/g, '-').replace(/\\f[BIRP]|"/g, '');
  for (const cmd of buildProgram().commands) {
    const names = cmd.commands.length === 0 ? [cmd.name()] : cmd.commands.map((sub) => `${cmd.name()} ${sub.name()}`);
    for (const name of names) t.ok(text.includes(name), `vxland ${name}`);
  }
  t.match(text, /^\.TH VXLAND 8 /m, 'section 8');
});

let tarball: string | undefined;
const work = tempDir(t, 'package');

t.test('npm pack ships only what runs', async (t) => {
  const r = await run(['npm', 'pack', '--pack-destination', work, '--json'], { cwd: REPO_ROOT });
  ok(t, r, 'npm pack (prepare compiles, prepack copies the addon to prebuilds/)');
  tarball = path.join(work, `vxland-${PKG.version}.tgz`);
  t.ok(fs.existsSync(tarball), `it wrote vxland-${PKG.version}.tgz`);
  const listed = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).trim().split('\n').map((f) => f.replace(/^package\//, '')).sort();
  t.same(listed, expectedTarball(), 'exactly the whitelist');
  t.same(listed.filter((f) => /^test\/|\.map$|\.ts$|vxland_test/.test(f)), [], 'no tests, maps, TypeScript or test bindings');
  const manifest = JSON.parse(execFileSync('tar', ['-xOzf', tarball, 'package/package.json'], { encoding: 'utf8' }));
  t.equal(manifest.private, undefined, 'not private');
  t.same(manifest.os, ['linux'], 'os: linux');
  t.equal(manifest.scripts.install, 'node-gyp-build', 'a local build only when no prebuilt addon loads');
});

t.test('npm install -g of the tarball on a machine without a compiler', async (t) => {
  if (skipUnlessRoot(t)) return;
  if (skipIf(t, tarball === undefined ? 'npm pack failed' : false)) return;
  const prefix = path.join(work, 'prefix');
  const noCompiler = pathWithoutCompiler(t, work);
  const install = await run(['npm', 'install', '-g', '--prefix', prefix, ...NPM_QUIET, tarball!], {
    env: { PATH: noCompiler.PATH, npm_config_build_from_source: 'false' },
  });
  ok(t, install, 'npm install -g --prefix PREFIX ./vxland-*.tgz');
  t.same(compilerCalls(noCompiler.calls), [], 'no compiler was called');
  const bin = path.join(prefix, 'bin', 'vxland');
  const version = await run([bin, '--version'], { env: { PATH: noCompiler.PATH } });
  t.equal(version.stdout.trim(), PKG.version, 'PREFIX/bin/vxland --version');
  t.ok(fs.existsSync(path.join(prefix, 'share', 'man', 'man8', 'vxland.8')), 'the man page is linked into PREFIX/share/man/man8');

  await t.test('its daemon reaches a kernel peer', (t) => pingsKernelPeer(t, [bin]));

  ok(t, await run(['npm', 'uninstall', '-g', '--prefix', prefix, 'vxland']), 'npm uninstall -g');
  t.same(filesUnder(prefix), [], 'nothing is left under PREFIX');
});

t.test('the .deb: install, run, purge', async (t) => {
  if (skipUnlessRoot(t)) return;
  if (skipIf(t, tarball === undefined ? 'npm pack failed' : false)) return;
  const installed = await run(['dpkg-query', '-W', '-f', '${Status}', 'vxland']);
  if (skipIf(t, installed.stdout.includes('installed') || fs.existsSync(DEB_FILES.bin)
    ? `vxland is installed on this machine already (${DEB_FILES.bin}): not touching it` : false)) return;

  const build = await run(['npm', 'run', 'package:deb', '--', '--tarball', tarball!, '--out', work], { cwd: REPO_ROOT });
  ok(t, build, 'npm run package:deb');
  const deb = build.stdout.trim().split('\n').pop() ?? '';
  t.match(path.basename(deb), new RegExp(`^vxland_${PKG.version.replace(/\./g, '\\.')}_[a-z0-9]+\\.deb$`), 'vxland_VERSION_ARCH.deb');
  const info = await run(['dpkg-deb', '-f', deb, 'Depends']);
  t.match(info.stdout, /^nodejs \(>= 20\)/, 'depends on nodejs (>= 20)');

  t.teardown(() => run(['dpkg', '--purge', 'vxland']));
  ok(t, await run(['dpkg', '-i', deb]), 'dpkg -i');
  const owned = (await run(['dpkg', '-L', 'vxland'])).stdout.trim().split('\n');
  const version = await run([DEB_FILES.bin, '--version']);
  t.equal(version.stdout.trim(), PKG.version, `${DEB_FILES.bin} --version`);
  for (const [what, file] of Object.entries(DEB_FILES)) t.ok(fs.existsSync(file), `${what}: ${file}`);
  t.equal((await run(['id', '-gn', 'vxland'])).stdout.trim(), 'vxland', 'the unit\'s user vxland exists, in group vxland');
  if (fs.existsSync('/usr/bin/man')) t.equal((await run(['man', '-w', 'vxland'])).stdout.trim(), DEB_FILES.man, 'man -w vxland');
  t.match(fs.readFileSync(DEB_FILES.unit, 'utf8'), new RegExp(`^ExecStart=${DEB_FILES.bin} `, 'm'), `the unit runs ${DEB_FILES.bin}`);

  await t.test('its daemon reaches a kernel peer', (t) => pingsKernelPeer(t, [DEB_FILES.bin]));

  ok(t, await run(['dpkg', '--purge', 'vxland']), 'dpkg --purge');
  t.same(owned.filter((f) => f !== '' && fs.existsSync(f) && !fs.statSync(f).isDirectory()), [], 'every file it installed is gone');
  t.notOk(fs.existsSync(DEB_FILES.lib), `${DEB_FILES.lib} is gone`);
  t.notOk(fs.existsSync('/var/lib/vxland'), '/var/lib/vxland is gone');
});

t.test('npm ci --omit=dev in a copy of the checkout', async (t) => {
  // The tracked files, and the prebuilt addon `npm pack` left in prebuilds/
  // (without it, npm ci would compile it: minutes, and a compiler).
  const checkout = path.join(work, 'checkout');
  const tracked = execFileSync('git', ['ls-files', '-z'], { cwd: REPO_ROOT, encoding: 'utf8' }).split('\0').filter((f) => f !== '');
  for (const f of [...tracked, ...filesUnder(path.join(REPO_ROOT, 'prebuilds')).map((p) => `prebuilds/${p}`)]) {
    if (!fs.existsSync(path.join(REPO_ROOT, f))) continue;
    fs.mkdirSync(path.dirname(path.join(checkout, f)), { recursive: true });
    fs.copyFileSync(path.join(REPO_ROOT, f), path.join(checkout, f));
  }
  const noCompiler = pathWithoutCompiler(t, work);
  const npmCi = () => run(['npm', 'ci', '--omit=dev', '--foreground-scripts', ...NPM_QUIET], { cwd: checkout, env: { PATH: noCompiler.PATH } });
  const bin = path.join(checkout, 'bin', 'vxland');

  const fresh = await npmCi();
  ok(t, fresh, 'npm ci --omit=dev, no dist/ built');
  t.match(fresh.stdout + fresh.stderr, /dist\/ is not built and TypeScript \(a dev dependency\) is not installed/, 'prepare says why bin/vxland cannot run');
  t.notOk(fs.existsSync(path.join(checkout, 'node_modules', 'typescript')), 'no dev dependency installed');
  const unbuilt = await run([bin, '--version']);
  t.equal(unbuilt.code, 1, 'bin/vxland exits 1');
  t.match(unbuilt.stderr, /this checkout is not built/, 'and says the checkout is not built');

  fs.cpSync(path.join(REPO_ROOT, 'dist', 'src'), path.join(checkout, 'dist', 'src'), { recursive: true });
  const built = await npmCi();
  ok(t, built, 'npm ci --omit=dev, dist/ built before');
  t.same(compilerCalls(noCompiler.calls), [], 'no compiler was called');
  t.equal((await run([bin, '--version'])).stdout.trim(), PKG.version, 'bin/vxland --version');

  // npx links the checkout into its cache and runs `prepare` there: with
  // TypeScript installed that compiled dist/ (long enough to be interrupted,
  // which left the cache folder broken). It must compile nothing.
  fs.symlinkSync(path.join(REPO_ROOT, 'node_modules', 'typescript'), path.join(checkout, 'node_modules', 'typescript'));
  const cliJs = path.join(checkout, 'dist', 'src', 'cli.js');
  const before = fs.statSync(cliJs).mtimeMs;
  const npx = await run(['npx', '--yes', 'vxland', '--version'], { cwd: checkout, env: { npm_config_cache: path.join(work, 'npx-cache') } });
  ok(t, npx, 'npx vxland --version in the checkout');
  t.equal(npx.stdout.trim().split('\n').pop(), PKG.version, 'prints the version');
  t.equal(fs.statSync(cliJs).mtimeMs, before, 'and compiled nothing');
});
