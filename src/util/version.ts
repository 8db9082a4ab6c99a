// vxland's version, as package.json says: what --version prints and what
// vxland_build_info carries.

import { readFileSync } from 'node:fs';
import path from 'node:path';

/** package.json sits at the package root, three levels above dist/src/util/. */
const PACKAGE_JSON = path.join(__dirname, '..', '..', '..', 'package.json');

/** The version, or "unknown" when package.json cannot be read. */
export function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(PACKAGE_JSON, 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}
