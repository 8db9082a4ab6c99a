// The layers of src/ and which may import which, checked by
// test/layering.test.ts and printed by `npm run graph` (after a build):
//
//   node dist/scripts/import-graph.js [ROOT]
//
// prints the directory-level import graph of ROOT/src (default: this
// checkout), every import that breaks the layer rules, and the modules the
// CLI loads at start (from ROOT/dist/src, when built). Exits 1 on a violation.
//
// Every import counts for the layer rules, `import type` included: a type a
// layer imports is a dependency on that layer all the same. What the CLI loads
// at start is read from the compiled JavaScript, where the type-only imports
// are gone and what remains is what Node really loads.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

/** The layers, bottom first. A top-level file of src/ (cli.ts, daemon.ts,
 *  doctor.ts, errors.ts) is a layer of its own; a directory is one layer. */
export const LAYERS = [
  'tables', 'errors', 'wire', 'util', 'fdb', 'config', 'state', 'ports',
  'datapath', 'membership', 'io', 'doctor', 'control', 'daemon', 'cli',
] as const;
export type Layer = (typeof LAYERS)[number];

/** Top-level files of src/ that belong to a layer of another name:
 *  open-plane.ts wires io/ into datapath/, which only the daemon layer may. */
const FILE_LAYERS: Readonly<Record<string, Layer>> = { 'open-plane': 'daemon' };

/** What each layer may import besides itself. ports/ holds the contracts
 *  between layers (interfaces, the types that cross them, the drop-reason
 *  numbering): datapath/ and io/ meet there and never import each other;
 *  config/ and control/ import neither. */
export const MAY_IMPORT: Readonly<Record<Layer, readonly Layer[]>> = {
  // The drop-reason and limit tables generated from native/ (one list, both
  // languages): constants only, importable from every layer.
  tables: [],
  errors: ['tables'],
  wire: ['tables', 'errors'],
  util: ['tables', 'errors'],
  fdb: ['tables', 'errors', 'wire', 'util'],
  config: ['tables', 'errors', 'wire', 'util', 'fdb'],
  state: ['tables', 'errors', 'wire', 'util', 'fdb', 'config'],
  ports: ['tables', 'errors', 'wire'],
  datapath: ['tables', 'errors', 'wire', 'util', 'fdb', 'config', 'ports'],
  // The etcd membership: works on the FDB and talks to the store through the
  // KvStore port (src/io/etcd.ts implements it); the daemon wires the two.
  membership: ['tables', 'errors', 'wire', 'util', 'fdb', 'config', 'ports'],
  io: ['tables', 'errors', 'wire', 'util', 'config', 'ports'],
  doctor: ['tables', 'errors', 'wire', 'ports'],
  control: ['tables', 'errors', 'wire', 'util', 'fdb', 'config', 'state', 'ports', 'doctor'],
  daemon: ['tables', 'errors', 'wire', 'util', 'fdb', 'config', 'state', 'ports', 'datapath', 'membership', 'io', 'doctor', 'control'],
  // daemon only through the lazy import() of `vxland run`, so that the client
  // commands load neither io/ nor datapath/ (see cliStartupModules).
  cli: ['tables', 'errors', 'wire', 'util', 'fdb', 'config', 'ports', 'doctor', 'control', 'daemon'],
};

/** Only these layers may import node:dgram or call require() (the addon). */
const IO_ONLY_MODULES = new Set(['node:dgram', 'dgram']);

export interface SourceImport {
  /** Importing file, relative to the root, e.g. src/config/config.ts. */
  file: string;
  line: number;
  /** As written, e.g. '../io/host.js' or 'node:fs'. */
  specifier: string;
  /** The imported file relative to the root (src/io/host.ts), or null for a package. */
  target: string | null;
  typeOnly: boolean;
  /** import() or require(): loaded when the code runs, not with the file. */
  lazy: boolean;
}

/** The layer of a file under src/ (relative to the root), or null. */
export function layerOf(file: string): Layer | null {
  const parts = file.split('/');
  if (parts[0] !== 'src' || parts.length < 2) return null;
  const name = parts.length === 2 ? parts[1].replace(/\.(ts|js)$/, '') : parts[1];
  if (parts.length === 2 && Object.hasOwn(FILE_LAYERS, name)) return FILE_LAYERS[name];
  return (LAYERS as readonly string[]).includes(name) ? (name as Layer) : null;
}

function resolveTarget(file: string, specifier: string): string | null {
  if (!specifier.startsWith('.')) return null;
  const joined = path.posix.normalize(path.posix.join(path.posix.dirname(file), specifier));
  return joined.replace(/\.js$/, '') + '.ts';
}

function allTypeOnly(node: ts.ImportDeclaration | ts.ExportDeclaration): boolean {
  if (ts.isExportDeclaration(node)) {
    if (node.isTypeOnly) return true;
    const c = node.exportClause;
    return c !== undefined && ts.isNamedExports(c) && c.elements.length > 0 && c.elements.every((e) => e.isTypeOnly);
  }
  const clause = node.importClause;
  if (clause === undefined) return false;
  if (clause.isTypeOnly) return true;
  if (clause.name !== undefined) return false;
  const b = clause.namedBindings;
  return b !== undefined && ts.isNamedImports(b) && b.elements.length > 0 && b.elements.every((e) => e.isTypeOnly);
}

/** Every import, export-from, import() and require() of one TypeScript file.
 *  A require() or import() whose argument is not a string literal is
 *  reported with the specifier '<computed>'. */
export function parseImports(file: string, text: string): SourceImport[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const out: SourceImport[] = [];
  const add = (node: ts.Node, specifier: string, typeOnly: boolean, lazy: boolean): void => {
    const line = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1;
    out.push({ file, line, specifier, target: resolveTarget(file, specifier), typeOnly, lazy });
  };
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      add(node, node.moduleSpecifier.text, allTypeOnly(node), false);
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      const e = node.moduleReference.expression;
      add(node, ts.isStringLiteral(e) ? e.text : '<computed>', node.isTypeOnly, false);
    } else if (ts.isCallExpression(node)) {
      const isImport = node.expression.kind === ts.SyntaxKind.ImportKeyword;
      const isRequire = ts.isIdentifier(node.expression) && node.expression.text === 'require';
      if (isImport || isRequire) {
        const arg = node.arguments[0];
        add(node, arg !== undefined && ts.isStringLiteralLike(arg) ? arg.text : '<computed>', false, true);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

function filesUnder(root: string, dir: string, ext: string): string[] {
  const abs = path.join(root, dir);
  if (!existsSync(abs)) return [];
  const out: string[] = [];
  for (const entry of readdirSync(abs, { withFileTypes: true })) {
    const rel = `${dir}/${entry.name}`;
    if (entry.isDirectory()) out.push(...filesUnder(root, rel, ext));
    else if (entry.name.endsWith(ext) && !entry.name.endsWith('.d.ts')) out.push(rel);
  }
  return out.sort();
}

/** The TypeScript files of root/src, relative to root. */
export function sourceFiles(root: string): string[] {
  return filesUnder(root, 'src', '.ts');
}

export function readImports(root: string): SourceImport[] {
  return sourceFiles(root).flatMap((f) => parseImports(f, readFileSync(path.join(root, f), 'utf8')));
}

/** One line per broken rule: the importing file and line, the import as
 *  written, and the rule. `files` are all files the imports were read from. */
export function layerViolations(files: readonly string[], imports: readonly SourceImport[]): string[] {
  const out: string[] = [];
  for (const f of files) {
    if (layerOf(f) === null) out.push(`${f}: not in any layer (add its directory to LAYERS in scripts/import-graph.ts)`);
  }
  for (const i of imports) {
    const from = layerOf(i.file);
    if (from === null) continue;
    const at = `${i.file}:${i.line} imports '${i.specifier}'`;
    if (i.target === null) {
      const ioOnly = IO_ONLY_MODULES.has(i.specifier) || (i.specifier === '<computed>' && i.lazy);
      if (ioOnly && from !== 'io') out.push(`${at}: only src/io/ may use ${i.specifier === '<computed>' ? 'a computed require()' : i.specifier}`);
      continue;
    }
    const to = layerOf(i.target);
    if (to === null) {
      out.push(`${at}: ${i.target} is outside src/'s layers`);
    } else if (to !== from && !MAY_IMPORT[from].includes(to)) {
      out.push(`${at}: ${from} may not import ${to} (${from} may import ${MAY_IMPORT[from].join(', ') || 'nothing'})`);
    } else if (from === 'cli' && to === 'daemon' && !i.lazy) {
      out.push(`${at}: cli may load daemon only lazily (await import()), or every client command loads the addon`);
    }
  }
  return out;
}

/** The layers bottom first such that each imports only layers before it, or
 *  null when MAY_IMPORT has a cycle. */
export function layerOrder(rules: Readonly<Record<Layer, readonly Layer[]>> = MAY_IMPORT): Layer[] | null {
  const order: Layer[] = [];
  const placed = new Set<Layer>();
  while (order.length < LAYERS.length) {
    const next = LAYERS.find((l) => !placed.has(l) && rules[l].every((d) => placed.has(d)));
    if (next === undefined) return null;
    order.push(next);
    placed.add(next);
  }
  return order;
}

export interface LayerEdge { from: Layer; to: Layer; imports: number; typeOnly: number }

/** Imports between different layers, counted per (from, to). */
export function layerGraph(imports: readonly SourceImport[]): LayerEdge[] {
  const edges = new Map<string, LayerEdge>();
  for (const i of imports) {
    const from = layerOf(i.file);
    const to = i.target === null ? null : layerOf(i.target);
    if (from === null || to === null || from === to) continue;
    const key = `${from}>${to}`;
    const e = edges.get(key) ?? { from, to, imports: 0, typeOnly: 0 };
    e.imports++;
    if (i.typeOnly) e.typeOnly++;
    edges.set(key, e);
  }
  return [...edges.values()].sort((a, b) => LAYERS.indexOf(a.from) - LAYERS.indexOf(b.from) || LAYERS.indexOf(a.to) - LAYERS.indexOf(b.to));
}

/** The compiled files (root/dist/src/...js, relative to root) that loading
 *  `entry` loads at once: the require() calls outside any function, followed
 *  transitively. A require() inside a function (tsc's form of import()) runs
 *  later, if ever. Null when entry is not built. */
export function startupModules(root: string, entry: string): string[] | null {
  if (!existsSync(path.join(root, entry))) return null;
  const seen = new Set<string>();
  const pending = [entry];
  while (pending.length > 0) {
    const file = pending.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const text = readFileSync(path.join(root, file), 'utf8');
    const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.JS);
    const visit = (node: ts.Node): void => {
      if (ts.isFunctionLike(node)) return;
      if (ts.isCallExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === 'require') {
        const arg = node.arguments[0];
        if (arg !== undefined && ts.isStringLiteralLike(arg) && arg.text.startsWith('.')) {
          let target = path.posix.normalize(path.posix.join(path.posix.dirname(file), arg.text));
          if (!target.endsWith('.js')) target += '.js';
          pending.push(target);
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(sf);
  }
  return [...seen].sort();
}

/** What `vxland <client command>` loads before it runs. */
export function cliStartupModules(root: string): string[] | null {
  return startupModules(root, 'dist/src/cli.js');
}

export function formatReport(root: string): { text: string; violations: string[] } {
  const files = sourceFiles(root);
  const imports = readImports(root);
  const violations = layerViolations(files, imports);
  const lines: string[] = [];
  const order = layerOrder();
  lines.push(`layers, bottom first: ${order === null ? '(MAY_IMPORT has a cycle)' : order.join(' < ')}`);
  lines.push('');
  lines.push('directory-level imports (n import statements, t of them written as import type):');
  const edges = layerGraph(imports);
  const width = Math.max(...LAYERS.map((l) => l.length));
  for (const from of LAYERS) {
    const out = edges.filter((e) => e.from === from);
    const targets = out.map((e) => `${e.to} (${e.imports}${e.typeOnly > 0 ? `, ${e.typeOnly}t` : ''})`);
    lines.push(`  ${from.padEnd(width)} -> ${targets.length > 0 ? targets.join(', ') : '-'}`);
  }
  lines.push('');
  const startup = cliStartupModules(root);
  if (startup === null) {
    lines.push('CLI start-up modules: not built (npm run build:ts)');
  } else {
    const dirs = [...new Set(startup.map((f) => layerOf(f.replace(/^dist\//, '')) ?? f))];
    lines.push(`CLI start-up modules (compiled, before a command runs): ${startup.length} files in ${dirs.join(', ')}`);
  }
  lines.push('');
  lines.push(violations.length === 0 ? 'layer violations: none' : `layer violations (${violations.length}):`);
  for (const v of violations) lines.push(`  ${v}`);
  return { text: lines.join('\n'), violations };
}

if (require.main === module) {
  const root = path.resolve(process.argv[2] ?? path.join(__dirname, '..', '..'));
  const { text, violations } = formatReport(root);
  process.stdout.write(`import graph of ${root}/src\n\n${text}\n`);
  process.exitCode = violations.length === 0 ? 0 : 1;
}
