// The dgram path's packet core (native/core_binding.cc PacketCore): the same rx
// rules the native engine's worker runs (native/core_rx.h), called once per
// datagram that node:dgram delivers. Per datagram rather than in batches:
// node:dgram already hands each datagram over in a callback of its own, with
// a Buffer of its own, so a batch would add a copy into a batch buffer (or an
// array the addon walks) and a setImmediate of delay, to save one addon call
// per datagram, which costs little next to the 'message' event itself.

import type { CoreNetwork, PacketClassifier } from '../ports/core';
import { assertAddonTables, callNative, loadAddon, type NativePacketCoreOptions } from './addon';

export type PacketCoreOptions = NativePacketCoreOptions;

/** One per host (the networks are added to it). Throws VxlandError:
 *  VXLAND_DATAPATH_UNAVAILABLE (addon missing or built from other tables);
 *  its addNetwork throws VXLAND_BAD_ARGUMENT (vni, mtu or MAC out of range). */
export function openPacketCore(o: PacketCoreOptions): PacketClassifier {
  const addon = loadAddon();
  assertAddonTables(addon);
  const core = callNative('VXLAND_BAD_ARGUMENT', () => new addon.PacketCore(o, new Float64Array(2)));
  // A network out of range (vni, mtu, MAC) is the caller's argument error.
  const add = core.addNetwork.bind(core);
  Object.defineProperty(core, 'addNetwork', { value: (n: CoreNetwork) => callNative('VXLAND_BAD_ARGUMENT', () => add(n)) });
  return core;
}
