// The underlay as the MTU rules see it: the interface that holds the local
// address, and the largest TAP MTU an underlay MTU carries. The kernel's
// vxlan refuses an MTU above its lower device's minus the headers
// (vxlan_change_mtu); vxland does the same when local names an address of
// this host, and otherwise assumes a 1500-byte underlay over IPv6 (local is
// always set there) and sets no limit beyond MTU_MAX over IPv4 (a wildcard
// socket may leave by any interface: `vxland doctor` checks the route
// towards each peer).

import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';

import { VXLAN_OVERHEAD_IPV4_BYTES, VXLAN_OVERHEAD_IPV6_BYTES } from '../wire/vxlan.js';
import type { IpFamily } from './validate.js';

/** The underlay MTU assumed when the device is not known (Ethernet's). */
export const ASSUMED_UNDERLAY_MTU_BYTES = 1500;

export interface UnderlayDevice {
  name: string;
  mtu: number;
}

/** The interface of this host that holds local and its MTU; null when local
 *  is null or no interface has it (the config is checked on another host). */
export function underlayDevice(local: string | null): UnderlayDevice | null {
  if (local === null) return null;
  for (const [name, addresses] of Object.entries(networkInterfaces())) {
    if (!(addresses ?? []).some((a) => a.address === local)) continue;
    try {
      const mtu = Number.parseInt(readFileSync(`/sys/class/net/${name}/mtu`, 'utf8'), 10);
      return Number.isInteger(mtu) && mtu > 0 ? { name, mtu } : null;
    } catch {
      return null;
    }
  }
  return null;
}

/** The largest TAP MTU over this underlay, and why: device MTU minus the
 *  headers; without a device, an assumed 1500-byte underlay over IPv6 and
 *  no limit (null) over IPv4. */
export function underlayMtuLimit(family: IpFamily, device: UnderlayDevice | null): { maxMtu: number; why: string } | null {
  const overhead = family === 6 ? VXLAN_OVERHEAD_IPV6_BYTES : VXLAN_OVERHEAD_IPV4_BYTES;
  if (device !== null) return { maxMtu: device.mtu - overhead, why: `${device.name} (which holds local) has MTU ${device.mtu}, less ${overhead} bytes of IPv${family} VXLAN headers` };
  if (family === 6) return { maxMtu: ASSUMED_UNDERLAY_MTU_BYTES - overhead, why: `a ${ASSUMED_UNDERLAY_MTU_BYTES}-byte underlay (local is on no interface of this host) less ${overhead} bytes of IPv6 VXLAN headers` };
  return null;
}
