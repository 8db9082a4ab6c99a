// Layers point one way (scripts/import-graph.ts holds the rules): every import
// under src/ follows them, a violation is named by file, line and import, and
// the CLI's client commands load neither the native addon nor src/io/ (read
// from the compiled start-up graph, and seen in real client processes against
// a live daemon on both data paths), while `vxland run` does load them; and
// the production addon exports no test-only binding.
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import {
  cliStartupModules,
  layerOrder,
  layerViolations,
  MAY_IMPORT,
  parseImports,
  readImports,
  sourceFiles,
  type Layer,
} from '../scripts/import-graph';
import { loadAddon } from '../src/io/addon';
import { loadTestAddon } from './fakes';
import { createTopology, exec, REPO_ROOT, skipUnlessRoot, vxlandArgv } from './helpers/netns';
import { datapathsUnderTest, startVxland, tempDir } from './helpers/vxland';

const LOAD_TRACE = path.join(REPO_ROOT, 'dist', 'test', 'fixtures', 'load-trace.js');
const ADDON_FILE = path.join(REPO_ROOT, 'build', 'Release', 'vxland.node');
const IO_DIR = path.join(REPO_ROOT, 'dist', 'src', 'io') + path.sep;
const DATAPATH_DIR = path.join(REPO_ROOT, 'dist', 'src', 'datapath') + path.sep;

t.test('every import under src/ follows the layer rules', async (t) => {
  const files = sourceFiles(REPO_ROOT);
  const imports = readImports(REPO_ROOT);
  t.ok(files.includes('src/io/addon.ts') && files.includes('src/cli.ts') && imports.some((i) => i.file === 'src/open-plane.ts' && i.target === 'src/io/engine.ts'), `read ${files.length} files, ${imports.length} imports`);
  t.same(layerViolations(files, imports), [], 'no import breaks a layer rule');
});

t.test('the rules are one order, and the directions the design names hold', async (t) => {
  const order = layerOrder();
  t.not(order, null, 'MAY_IMPORT has no cycle');
  t.comment(`layers, bottom first: ${order?.join(' < ')}`);
  for (const [from, allowed] of Object.entries(MAY_IMPORT) as Array<[Layer, readonly Layer[]]>) {
    t.notOk(allowed.includes(from), `${from} does not list itself`);
  }
  const never: Array<[Layer, Layer]> = [
    ['config', 'datapath'], ['config', 'io'], ['control', 'datapath'], ['control', 'io'],
    ['io', 'datapath'], ['datapath', 'io'], ['io', 'doctor'], ['doctor', 'datapath'], ['ports', 'datapath'], ['ports', 'io'],
  ];
  for (const [from, to] of never) t.notOk(MAY_IMPORT[from].includes(to), `${from} may not import ${to}`);
  const cyclic = { ...MAY_IMPORT, wire: ['errors', 'fdb'] as Layer[] };
  t.equal(layerOrder(cyclic), null, 'a cycle in the rules is detected');
});

t.test('a violation names the importing file, its line and the import', async (t) => {
  const config = 'src/config/bad.ts';
  const text = [
    "import path from 'node:path';",
    'import {',
    '  interfaceMtu,',
    "} from '../io/host.js';",
    "import type { Stats } from '../datapath/stats';",
    "export { FLOOD_MAC } from '../fdb/fdb.js';",
    "export async function later() { return import('../control/client.js'); }",
  ].join('\n');
  const imports = parseImports(config, text);
  t.same(imports.map((i) => [i.line, i.specifier, i.typeOnly, i.lazy]), [
    [1, 'node:path', false, false],
    [2, '../io/host.js', false, false],
    [5, '../datapath/stats', true, false],
    [6, '../fdb/fdb.js', false, false],
    [7, '../control/client.js', false, true],
  ], 'imports, type imports, export-from and import() are all read, multi-line ones at their first line');
  t.same(layerViolations([config], imports), [
    "src/config/bad.ts:2 imports '../io/host.js': config may not import io (config may import tables, errors, wire, util, fdb)",
    "src/config/bad.ts:5 imports '../datapath/stats': config may not import datapath (config may import tables, errors, wire, util, fdb)",
    "src/config/bad.ts:7 imports '../control/client.js': config may not import control (config may import tables, errors, wire, util, fdb)",
  ]);

  const cli = parseImports('src/cli.ts', "import { runDaemon } from './daemon.js';\nasync function run() { await import('./daemon.js'); }");
  t.same(layerViolations(['src/cli.ts'], cli), [
    "src/cli.ts:1 imports './daemon.js': cli may load daemon only lazily (await import()), or every client command loads the addon",
  ], 'the CLI may load the daemon only lazily');

  const misc = [
    ...parseImports('src/datapath/x.ts', "import * as dgram from 'node:dgram';\nconst a = require(ADDON);"),
    ...parseImports('src/io/y.ts', "import * as dgram from 'node:dgram';\nconst a = require(ADDON);"),
  ];
  t.same(layerViolations(['src/datapath/x.ts', 'src/io/y.ts', 'src/plugins/z.ts'], misc), [
    'src/plugins/z.ts: not in any layer (add its directory to LAYERS in scripts/import-graph.ts)',
    "src/datapath/x.ts:1 imports 'node:dgram': only src/io/ may use node:dgram",
    "src/datapath/x.ts:2 imports '<computed>': only src/io/ may use a computed require()",
  ], 'node:dgram and require() are io/ only; a file outside every layer is named');
});

t.test('the compiled CLI loads neither src/io/ nor src/datapath/ before a command runs', async (t) => {
  const startup = cliStartupModules(REPO_ROOT);
  if (startup === null) throw new Error('dist/src/cli.js is not built');
  t.ok(startup.includes('dist/src/control/client.js') && startup.includes('dist/src/config/config.js'), `the start-up graph is read (${startup.length} files)`);
  t.same(startup.filter((f) => /^dist\/src\/(io|datapath)\//.test(f)), [], 'no io/ or datapath/ module');
});

t.test('test-only bindings are in the test addon, never in the production one', async (t) => {
  const production = Object.keys(loadAddon());
  t.ok(production.includes('NativeEngine') && production.includes('PacketCore'), `read the production addon's ${production.length} exports`);
  t.same(production.filter((name) => name.includes('ForTest')), [], 'no *ForTest export in build/Release/vxland.node');
  const testOnly = Object.keys(loadTestAddon()).filter((name) => name.includes('ForTest')).sort();
  t.same(testOnly, ['coreDecapEcnForTest', 'coreOuterTosForTest', 'engineCoalesceForTest', 'engineSegmentForTest', 'engineTxDropForTest'], 'they are in build/Release/vxland_test.node');
});

interface LoadTrace { modules: string[]; dlopened: string[] }

function traceEnv(file: string): NodeJS.ProcessEnv {
  return { ...process.env, NODE_OPTIONS: `--require ${LOAD_TRACE}`, VXLAND_LOAD_TRACE: file };
}

function readTrace(file: string): LoadTrace {
  if (!existsSync(file)) throw new Error(`${file} was not written: the process did not exit normally`);
  return JSON.parse(readFileSync(file, 'utf8')) as LoadTrace;
}

/** The addon and the io/ and datapath/ modules a traced process loaded. */
function forbiddenLoads(trace: LoadTrace): string[] {
  return [
    ...trace.dlopened,
    ...trace.modules.filter((m) => m.endsWith('.node') || m.startsWith(IO_DIR) || m.startsWith(DATAPATH_DIR)),
  ];
}

t.test('a client command with no daemon to talk to loads neither the addon nor src/io/', async (t) => {
  const dir = tempDir(t, 'layering');
  const traceFile = path.join(dir, 'status.json');
  const r = await exec(null, vxlandArgv('status', '--socket', path.join(dir, 'none.sock')), { allowFail: true, env: traceEnv(traceFile) });
  t.equal(r.code, 3, 'status exits 3 (no daemon)');
  t.match(r.stderr, /^vxland: no vxland daemon is listening on /, 'and says there is no daemon');
  const trace = readTrace(traceFile);
  t.ok(trace.modules.some((m) => m.endsWith(path.join('dist', 'src', 'control', 'client.js'))), 'the trace saw the CLI load its modules');
  t.same(forbiddenLoads(trace), [], 'nothing of the addon, io/ or datapath/ was loaded');
});

t.test('client commands against a live daemon never load the addon; the daemon does', async (t) => {
  if (skipUnlessRoot(t)) return;
  for (const datapath of datapathsUnderTest()) {
    await t.test(datapath, async (t) => {
      const topo = await createTopology(t, { hosts: 2 });
      const [a, b] = topo.hosts;
      const dir = tempDir(t, 'layering');
      const daemonTrace = path.join(dir, 'daemon.json');
      const v = await startVxland(t, a, { peers: [b.ip], datapath, env: traceEnv(daemonTrace) });
      const extra = '198.18.1.77';
      const commands: Array<{ args: string[]; code: number; check: (stdout: string) => boolean; shows: string }> = [
        { args: ['status', '--json'], code: 0, check: (o) => JSON.parse(o).datapath === datapath, shows: `datapath ${datapath}` },
        { args: ['stats', '--json'], code: 0, check: (o) => Array.isArray(JSON.parse(o).vteps), shows: 'per-VTEP counters' },
        { args: ['peer', 'add', extra], code: 0, check: (o) => o === `added peer ${extra}\n`, shows: 'the added peer' },
        { args: ['peer', 'list'], code: 0, check: (o) => o.includes(b.ip) && o.includes(extra), shows: 'both peers' },
        { args: ['peer', 'del', extra], code: 0, check: (o) => o === `removed peer ${extra}\n`, shows: 'the removed peer' },
        { args: ['fdb', 'show', '--json'], code: 0, check: (o) => JSON.parse(o).some((e: { vtep: string }) => e.vtep === b.ip), shows: 'the peer entry' },
        { args: ['doctor', '--json'], code: 0, check: (o) => Array.isArray(JSON.parse(o).checks), shows: 'its checks' },
        { args: ['log-level'], code: 0, check: (o) => o.startsWith('log level: debug'), shows: 'the level' },
      ];
      for (const c of commands) {
        const name = c.args.join(' ');
        const traceFile = path.join(dir, `${c.args.slice(0, 2).join('-')}.json`);
        const r = await exec(a.ns, vxlandArgv(...c.args, '--socket', v.socket), { allowFail: true, timeoutMs: 10_000, env: traceEnv(traceFile) });
        // doctor exits 1 when it finds a problem (a silent peer, say); either way it answered.
        t.ok(r.code === c.code || (c.args[0] === 'doctor' && r.code === 1), `${name} exits ${r.code}: ${r.stderr.trim()}`);
        t.ok(c.check(r.stdout), `${name} shows ${c.shows}`);
        t.same(forbiddenLoads(readTrace(traceFile)), [], `${name} loaded neither the addon nor io/ or datapath/`);
      }
      await v.proc.stop();
      const daemon = readTrace(daemonTrace);
      t.ok(daemon.dlopened.includes(ADDON_FILE), `vxland run (${datapath}) loaded the addon`);
      t.ok(daemon.modules.some((m) => m.startsWith(IO_DIR)), `vxland run (${datapath}) loaded src/io/`);
    });
  }
});
