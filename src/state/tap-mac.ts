// Which MAC the TAP device gets. Peers cache it (ARP, neighbour discovery),
// so it must survive restarts: --mac / "mac" when configured, else the one in
// the state file, else a new random one that the daemon then saves.

import { randomBytes } from 'node:crypto';
import { formatMacKey, macKeyAt } from '../wire/mac.js';
import type { PersistedState } from './store.js';

export interface TapMacChoice {
  /** Normalised aa:bb:cc:dd:ee:ff. */
  mac: string;
  source: 'config' | 'state' | 'generated';
}

export function chooseTapMac(configured: string | null, saved: PersistedState | null): TapMacChoice {
  if (configured !== null) return { mac: configured, source: 'config' };
  if (saved?.mac !== undefined) return { mac: saved.mac, source: 'state' };
  return { mac: randomLocalMac(), source: 'generated' };
}

/** A random unicast MAC with the locally administered bit set (IEEE 802
 *  U/L bit), as the kernel picks for a TAP: it cannot clash with a vendor's. */
export function randomLocalMac(): string {
  const bytes = randomBytes(6);
  bytes[0] = (bytes[0] & 0xfc) | 0x02;
  return formatMacKey(macKeyAt(bytes, 0));
}

/** The state to save so that `mac` is kept, or null when it already is.
 *  Everything else saved stays as it was (config peers are not written). */
export function stateWithMac(saved: PersistedState | null, vni: number, mac: string): PersistedState | null {
  if (saved?.mac === mac) return null;
  return saved === null ? { vni, peers: [], fdb: [], mac } : { ...saved, mac };
}
