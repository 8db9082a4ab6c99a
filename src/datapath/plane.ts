// The data plane's contract (design10.md): one host, one UDP socket per
// (local address, port), any number of networks, each a VNI with its TAP,
// Fdb, SourceFilter and Stats. The daemon opens it once (src/open-plane.ts)
// and adds and removes networks at run time.

import type { Logger } from 'pino';
import type { DatapathKind } from '../config/config';
import type { Fdb } from '../fdb/fdb';
import type { SourceFilter } from './accept';
import type { Stats } from './stats';

export interface HostPlaneOptions {
  /** 'native' | 'dgram' (config/config.ts resolveDatapath decides). */
  kind: DatapathKind;
  /** Bind address; null = any of family. */
  local: string | null;
  family: 'udp4' | 'udp6';
  /** Also the destination port of sent datagrams. */
  port: number;
  /** Host-level drops (before a network is known) and foreign-VNI senders. */
  hostStats: Stats;
  log: Logger;
}

export interface NetworkPlaneOptions {
  vni: number;
  dev: string;
  mtu: number;
  addresses: readonly string[];
  /** The TAP MAC to set before the link goes up. */
  mac: Buffer;
  fdb: Fdb;
  sources: SourceFilter;
  stats: Stats;
  allowVlan: boolean;
}

export interface NetworkPlane {
  readonly vni: number;
  readonly dev: string;
  readonly mac: Buffer;
}

export interface DataPlane {
  readonly kind: DatapathKind;
  /** Starts the UDP side (and any networks already added). onFatal at most once (socket gone). */
  start(onFatal: (err: Error) => void): void;
  /** Opens the network's TAP (name, MTU, MAC, addresses, up) and carries its traffic from now on,
   *  before or after start(). Rejects with a VxlandError and leaves nothing open on failure
   *  (VXLAND_NETWORK_EXISTS when the VNI or dev is already served). Other networks' traffic is undisturbed. */
  addNetwork(o: NetworkPlaneOptions): Promise<NetworkPlane>;
  /** Stops carrying the network and closes its TAP; other networks undisturbed. Unknown vni: no-op. */
  removeNetwork(vni: number): Promise<void>;
  /** The offloads in effect now (StatusResult.offloads), host-wide. */
  offloads(): string[];
  /** Stops everything, closes every TAP and the socket. Idempotent. */
  stop(): Promise<void>;
}
