// The etcd layout of membership (README "Joining through etcd"): per network
// and host one key `<prefix>/networks/<vni>/vteps/<vtep address>` whose value
// is JSON { version: 1, vtep, port, mac, bindings: [{ ip, mac }] }. This file
// is the one reader and writer of that layout.

import { isVni, normalizeIp } from '../config/validate.js';
import { isLearnableMacKey, macKeyOf, parseMac } from '../wire/mac.js';

export const MEMBER_RECORD_VERSION = 1;

export interface Binding {
  /** Canonical IP literal. */
  readonly ip: string;
  /** Normalised MAC. */
  readonly mac: string;
}

export interface MemberRecord {
  readonly vni: number;
  /** Canonical IP literal, the same as in the key. */
  readonly vtep: string;
  readonly port: number;
  /** The VTEP's TAP MAC, normalised. */
  readonly mac: string;
  readonly bindings: readonly Binding[];
}

/** The prefix under which every network's VTEPs are listed and watched. */
export function networksPrefix(prefix: string): string {
  return `${prefix}/networks/`;
}

export function memberKey(prefix: string, vni: number, vtep: string): string {
  return `${networksPrefix(prefix)}${vni}/vteps/${vtep}`;
}

export function encodeRecord(r: MemberRecord): string {
  return JSON.stringify({ version: MEMBER_RECORD_VERSION, vtep: r.vtep, port: r.port, mac: r.mac, bindings: r.bindings.map(({ ip, mac }) => ({ ip, mac })) });
}

/** The key's network and VTEP, or null if the key is not a member key under prefix. */
export function parseMemberKey(prefix: string, key: string): { vni: number; vtep: string } | null {
  const head = networksPrefix(prefix);
  if (!key.startsWith(head)) return null;
  const parts = key.slice(head.length).split('/');
  if (parts.length !== 3 || parts[1] !== 'vteps' || !/^[0-9]{1,8}$/.test(parts[0])) return null;
  const vni = Number(parts[0]);
  const vtep = normalizeIp(parts[2]);
  if (!isVni(vni) || vtep === null || vtep !== parts[2]) return null;
  return { vni, vtep };
}

/** Decodes the record under key; throws a plain Error naming the first problem. */
export function decodeRecord(prefix: string, key: string, value: string): MemberRecord {
  const where = parseMemberKey(prefix, key);
  if (where === null) throw new Error(`key ${key} is not <prefix>/networks/<vni>/vteps/<address>`);
  let doc: unknown;
  try {
    doc = JSON.parse(value);
  } catch {
    throw new Error('value is not JSON');
  }
  const { version, vtep, port, mac, bindings } = (doc ?? {}) as Record<string, unknown>;
  if (version !== MEMBER_RECORD_VERSION) throw new Error(`version ${JSON.stringify(version)} is not ${MEMBER_RECORD_VERSION}`);
  if (typeof vtep !== 'string' || normalizeIp(vtep) !== where.vtep) throw new Error(`vtep ${JSON.stringify(vtep)} does not match the key`);
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`port ${JSON.stringify(port)} is not 1..65535`);
  const tapMac = unicastMac(mac);
  if (tapMac === null) throw new Error(`mac ${JSON.stringify(mac)} is not a unicast MAC address`);
  if (!Array.isArray(bindings)) throw new Error('bindings is not a list');
  const clean = bindings.map((b: unknown) => {
    const { ip, mac: bmac } = (b ?? {}) as Record<string, unknown>;
    const address = typeof ip === 'string' ? normalizeIp(ip) : null;
    const m = unicastMac(bmac);
    if (address === null || m === null) throw new Error(`binding ${JSON.stringify(b)} is not { ip, mac }`);
    return { ip: address, mac: m };
  });
  return { vni: where.vni, vtep: where.vtep, port, mac: tapMac, bindings: clean };
}

function unicastMac(value: unknown): string | null {
  const mac = typeof value === 'string' ? parseMac(value) : null;
  return mac !== null && isLearnableMacKey(macKeyOf(mac)) ? mac : null;
}
