// `npm pack` runs this (prepack): copies the local build of the addon,
// build/Release/vxland.node, to prebuilds/<platform>-<arch>/vxland.napi.<libc>.node,
// where node-gyp-build finds it in an installed package (file name tags:
// N-API, so any Node version with N-API 8; the C library it was linked
// against, glibc or musl: node-gyp-build skips it on the other). Only the
// daemon's addon ships: the test bindings (vxland_test.node) do not.
//   node scripts/package-prebuild.mjs
import { copyFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(path.join(root, 'package.json'));
const built = path.join(root, 'build', 'Release', 'vxland.node');
const dir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
const libc = process.report.getReport().header.glibcVersionRuntime ? 'glibc' : 'musl';
const target = path.join(dir, `vxland.napi.${libc}.node`);

if (!existsSync(built)) {
  console.error(`package-prebuild: ${built} is missing: run \`npm run build:native\` first`);
  process.exit(1);
}
// The daemon's own addon, loadable by this Node: not the test bindings, not a
// file of another platform.
const addon = require(built);
if (typeof addon.NativeEngine !== 'function' || typeof addon.PacketCore !== 'function') {
  console.error(`package-prebuild: ${built} is not vxland's addon (no NativeEngine/PacketCore export)`);
  process.exit(1);
}
rmSync(path.join(root, 'prebuilds'), { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
copyFileSync(built, target);
console.log(`package-prebuild: ${path.relative(root, built)} -> ${path.relative(root, target)}`);
