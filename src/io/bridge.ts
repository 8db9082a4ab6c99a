// Bridge attachment: puts a network's TAP into an existing Linux bridge, as
// Docker puts vxlan0 into br0, so that the containers' veths in that bridge
// reach the overlay. The bridge is the admin's: vxland never creates,
// configures or deletes it. The TAP leaves the bridge by itself when it goes
// away (its fd closed), so there is nothing to undo on shutdown.
//
// The kernel does not refuse a port whose MTU is larger than the bridge's; it
// lowers the bridge's MTU to its smallest port's (unless an admin set it),
// and frames larger than a port's MTU are dropped at that port. Give the
// containers' veths the network's MTU.

import { ERROR_CODES, VxlandError, isNativeSysError } from '../errors';
import { loadAddon } from './addon';

/** Enslaves dev (the TAP, already open) to bridge. Throws VxlandError
 *  VXLAND_BRIDGE (with errno/syscall) naming the bridge and what the
 *  kernel's refusal means, e.g. "bridge br0 does not exist (ENODEV)";
 *  VXLAND_DATAPATH_UNAVAILABLE when the addon is not built. */
export function enslaveToBridge(dev: string, bridge: string): void {
  const addon = loadAddon();
  try {
    addon.bridgeAddPort(bridge, dev);
  } catch (err) {
    if (!isNativeSysError(err)) {
      const detail = err instanceof Error ? err.message : String(err);
      throw new VxlandError('VXLAND_BRIDGE', `${ERROR_CODES.VXLAND_BRIDGE} ${bridge}: ${detail}`, { cause: err });
    }
    throw new VxlandError('VXLAND_BRIDGE', `cannot put ${dev} into bridge ${bridge}: ${refusal(dev, bridge, err.code, err.syscall, err.message)}`, {
      cause: err,
      errno: err.errno,
      syscall: err.syscall,
    });
  }
}

/** What the kernel's errno means here, for one line a user can act on. */
function refusal(dev: string, bridge: string, code: string, syscall: string, nativeMessage: string): string {
  if (syscall === 'if_nametoindex') return `device ${dev} does not exist (${code})`;
  switch (code) {
    case 'ENODEV':
      return `bridge ${bridge} does not exist (ENODEV); create it first (ip link add ${bridge} type bridge)`;
    case 'EOPNOTSUPP':
      return `${bridge} is not a bridge (EOPNOTSUPP)`;
    case 'EBUSY':
      return `${dev} is already a port of a bridge or has another master (EBUSY)`;
    case 'ELOOP':
      return `${dev} is a bridge itself; putting it into ${bridge} would make a loop (ELOOP)`;
    case 'EINVAL':
      return `the kernel takes only Ethernet devices with a unicast MAC as bridge ports (EINVAL)`;
    case 'EPERM':
    case 'EACCES':
      return `not permitted (${code}): vxland needs CAP_NET_ADMIN`;
    default:
      return nativeMessage;
  }
}
