// MAC addresses: text form for the control plane, 48-bit integer keys for the
// data path (a JS number holds 48 bits exactly, so no allocation per lookup).

export const MAC_BYTES = 6;
export const FLOOD_MAC = '00:00:00:00:00:00';

const MAC_TEXT = /^([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})$/i;

/** Normalises "AA-bb-CC-dd-EE-ff" to "aa:bb:cc:dd:ee:ff"; null when malformed. */
export function parseMac(text: string): string | null {
  const m = MAC_TEXT.exec(text.trim());
  if (m === null) return null;
  return m.slice(1, 7).join(':').toLowerCase();
}

/** The 48-bit key of the MAC at buf[offset, offset + 6). */
export function macKeyAt(buf: Buffer, offset: number): number {
  return buf.readUIntBE(offset, MAC_BYTES);
}

/** The 48-bit key of a normalised MAC string (see parseMac). */
export function macKeyOf(mac: string): number {
  return parseInt(mac.replace(/:/g, ''), 16);
}

export function formatMacKey(key: number): string {
  const hex = key.toString(16).padStart(12, '0');
  return hex.replace(/(..)(?!$)/g, '$1:');
}

export function isMulticastMacKey(key: number): boolean {
  return Math.floor(key / 2 ** 40) % 2 === 1;
}

/** A MAC that may be learned as a source: not multicast/broadcast, not all zeros. */
export function isLearnableMacKey(key: number): boolean {
  return key !== 0 && !isMulticastMacKey(key);
}
