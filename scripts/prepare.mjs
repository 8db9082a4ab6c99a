// npm runs `prepare` after `npm ci` / `npm install` in a checkout and at
// `npm pack`. It compiles the TypeScript (npm run build:ts) when TypeScript, a
// dev dependency, is installed. Without it (`npm ci --omit=dev`) it leaves
// dist/ as it is and says whether bin/vxland can run: that install only gives
// the runtime dependencies to a tree whose dist/ was built before.
// The native addon is the `install` script's (node-gyp-build), not this one's.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(path.join(root, 'package.json'));

function hasTypeScript() {
  try {
    require.resolve('typescript/package.json');
    return true;
  } catch {
    return false;
  }
}

// `npx vxland` in a checkout links the checkout into npm's cache and runs
// this script on the way: a 20 s compile there, if interrupted, leaves that
// cache folder broken for every later npx. The dist/ the checkout has is what
// npx runs.
if (process.env.npm_command === 'exec') process.exit(0);

if (hasTypeScript()) {
  const r = spawnSync('npm', ['run', 'build:ts'], { cwd: root, stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
if (existsSync(path.join(root, 'dist', 'src', 'cli.js'))) {
  console.log('vxland: TypeScript is not installed (--omit=dev): bin/vxland runs the dist/ built before');
} else {
  console.warn('vxland: dist/ is not built and TypeScript (a dev dependency) is not installed: bin/vxland cannot run. ' +
    'Run the full `npm ci` in a checkout, or install the npm package or the .deb (README, "Install").');
}
