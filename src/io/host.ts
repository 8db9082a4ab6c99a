// What the host's network stack can tell about the underlay, for `vxland
// doctor`: the MTU of the interface a VTEP is reached through, and the inner
// stack's checksum error counter. Every function answers null when the host
// cannot tell, instead of throwing.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';

const ROUTE_LOOKUP_TIMEOUT_MS = 2_000;

/** The interface that holds `address`, or null. */
export function interfaceWithAddress(address: string): string | null {
  for (const [name, addrs] of Object.entries(networkInterfaces())) {
    if (addrs?.some((a) => a.address === address)) return name;
  }
  return null;
}

/** The interface the kernel routes `destination` through (ip route get), or null. */
export function interfaceTowards(destination: string): string | null {
  try {
    const out = execFileSync('ip', ['-j', 'route', 'get', destination], {
      timeout: ROUTE_LOOKUP_TIMEOUT_MS,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const routes = JSON.parse(out.toString()) as Array<{ dev?: string }>;
    return routes[0]?.dev ?? null;
  } catch {
    return null;
  }
}

export function interfaceMtu(name: string): number | null {
  try {
    const mtu = Number(readFileSync(`/sys/class/net/${name}/mtu`, 'utf8').trim());
    return Number.isInteger(mtu) ? mtu : null;
  } catch {
    return null;
  }
}

/** The namespace's ephemeral port range (/proc/sys/net/ipv4/ip_local_port_range,
 *  which IPv6 shares), the kernel vxlan's default `srcport`; null when unreadable. */
export function localPortRange(): { min: number; max: number } | null {
  try {
    const [min, max] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    return Number.isInteger(min) && Number.isInteger(max) && min >= 1 && min <= max && max <= 65_535 ? { min, max } : null;
  } catch {
    return null;
  }
}

/** Tcp InCsumErrors of this network namespace (/proc/net/snmp), or null. */
export function tcpInCsumErrors(): number | null {
  try {
    const lines = readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Tcp:'));
    if (lines.length < 2) return null;
    const names = lines[0].split(/\s+/);
    const values = lines[1].split(/\s+/);
    const i = names.indexOf('InCsumErrors');
    return i < 0 ? null : Number(values[i]);
  } catch {
    return null;
  }
}

/** The id of group `name` from /etc/group, or null if there is none. */
export function groupId(name: string): number | null {
  try {
    for (const line of readFileSync('/etc/group', 'utf8').split('\n')) {
      const [group, , gid] = line.split(':');
      if (group === name && gid !== undefined && /^[0-9]+$/.test(gid)) return Number(gid);
    }
  } catch {
    return null;
  }
  return null;
}
