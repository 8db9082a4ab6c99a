// Whether `--datapath native` can run here (config's resolveDatapath asks it
// through the daemon, so that config/ never loads the addon).

import { existsSync } from 'node:fs';

import { VxlandError } from '../errors';
import { addonTableMismatch, loadAddon } from './addon';

const TUN_DEVICE = '/dev/net/tun';

/** true when `--datapath native` can run here, else the reason. The engine
 *  itself degrades at run time (no TSO / GSO / GRO), so only the hard
 *  requirements are checked: Linux, /dev/net/tun, the addon with the engine.
 *  An addon built from other drop-reason or limit tables is no reason to
 *  fall back but a broken build: it throws VxlandError
 *  VXLAND_DATAPATH_UNAVAILABLE naming the first difference. */
export function nativeEngineSupported(): true | string {
  if (process.platform !== 'linux') return `native data path needs Linux (this is ${process.platform})`;
  if (!existsSync(TUN_DEVICE)) return `${TUN_DEVICE} is missing`;
  let stale: string | null;
  try {
    const addon = loadAddon();
    if (typeof addon.NativeEngine !== 'function') return 'native addon has no engine (rebuild with npm run build:native)';
    stale = addonTableMismatch(addon);
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
  if (stale !== null) throw new VxlandError('VXLAND_DATAPATH_UNAVAILABLE', `data path unavailable: ${stale}`);
  return true;
}
