// Whether `--datapath native` can run here (config's resolveDatapath asks it
// through the daemon, so that config/ never loads the addon).

import { existsSync } from 'node:fs';

import { DROP_REASON_COUNT } from '../ports/drops';
import { loadAddon } from './addon';

const TUN_DEVICE = '/dev/net/tun';

/** true when `--datapath native` can run here, else the reason. The engine
 *  itself degrades at run time (no TSO / GSO / GRO), so only the hard
 *  requirements are checked: Linux, /dev/net/tun, the addon with the engine. */
export function nativeEngineSupported(): true | string {
  if (process.platform !== 'linux') return `native data path needs Linux (this is ${process.platform})`;
  if (!existsSync(TUN_DEVICE)) return `${TUN_DEVICE} is missing`;
  try {
    const addon = loadAddon();
    if (typeof addon.NativeEngine !== 'function') return 'native addon has no engine (rebuild with npm run build:native)';
    if (addon.engineDropReasonCount !== DROP_REASON_COUNT) return 'native addon was built for other drop reasons (rebuild)';
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
  return true;
}
