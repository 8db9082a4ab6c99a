// The portable data path: one DatagramBind and one packet core for the host,
// and per network a FrameDevice and its tx path, all on the event loop; rx
// classifies with the packet core (a PacketClassifier, fed by one CoreSync
// per network as the native engine's core is) and writes each frame to the
// device of the network the core picked. It owns the bind and every device
// once added and closes them on stop() (a device also on removeNetwork()).

import type { Logger } from 'pino';
import { VxlandError, toVxlandError } from '../errors';
import type { Fdb } from '../fdb/fdb';
import { RateLimitedLog } from '../util/rate-limit';
import type { SourceFilter } from './accept';
import type { PacketClassifier } from '../ports/core';
import { DropReason } from '../ports/drops';
import type { DatagramBind, FrameDevice } from '../ports/io';
import { CoreSync } from './core-sync';
import { NeighSync } from './neigh-sync';
import type { Neighbours } from '../fdb/neighbours';
import { RxPath, type RxNetwork } from './rx';
import type { Stats } from './stats';
import { TxPath } from './tx';

export interface DatapathOptions {
  dstPort: number;
  bind: DatagramBind;
  /** The rx and tx rules (src/io/core.ts openPacketCore); networks are added to it here. */
  core: PacketClassifier;
  /** Host-level drops (before a datagram's network is known) and foreign-VNI senders. */
  hostStats: Stats;
  log: Logger;
  now?: () => number;
  /** Datagrams that may be in flight at once per network (default SEND_POOL_SLOTS). */
  sendPoolSlots?: number;
}

/** One network on the dgram path. */
export interface DatapathNetworkOptions {
  vni: number;
  fdb: Fdb;
  /** Owned by the data path once added (closed on removeNetwork or stop). */
  device: FrameDevice;
  stats: Stats;
  sources: SourceFilter;
  allowVlan: boolean;
  /** ARP/ND suppression: the table (and per-network flag) the core answers from. */
  neighbours?: Neighbours;
  /** Its device failed (FrameDevice onFatal): VxlandError VXLAND_DEVICE
   *  with errno/syscall, the device named. The network stays added (its
   *  datagrams hit the dead device's write errors) until removeNetwork(vni).
   *  Without it, the failure is the data path's onFatal. */
  onFailed?: (err: VxlandError) => void;
}

interface Network extends RxNetwork {
  readonly tx: TxPath;
  readonly sync: CoreSync;
  readonly neighSync: NeighSync | null;
  readonly onFailed?: (err: VxlandError) => void;
}

type DatapathState = 'idle' | 'running' | 'stopped';

export class Datapath {
  private state: DatapathState = 'idle';
  private readonly rx: RxPath;
  private readonly networks = new Map<number, Network>();
  private readonly now: () => number;
  private readonly limited: RateLimitedLog;
  private onFatal: (err: Error) => void = () => undefined;
  private failed = false;

  constructor(private readonly o: DatapathOptions) {
    this.now = o.now ?? Date.now;
    this.limited = new RateLimitedLog(o.log);
    this.rx = new RxPath({
      core: o.core,
      hostStats: o.hostStats,
      network: (vni) => this.networks.get(vni),
      now: this.now,
      onWrongVni: (vni, from) =>
        this.limited.warn(`vni:${from}:${vni}`, { vni, from, served: [...this.networks.keys()] }, 'dropped datagram with a VNI no network has'),
    });
  }

  /** Carries the network from now on (its device starts delivering at once
   *  when running). Throws VxlandError VXLAND_NETWORK_EXISTS when the VNI is
   *  served already, VXLAND_BAD_ARGUMENT when the core refuses it (vni, MTU
   *  or MAC out of range); the device is not taken then. */
  addNetwork(n: DatapathNetworkOptions): void {
    if (this.state === 'stopped') throw new VxlandError('VXLAND_INTERNAL', 'internal error: data path is stopped');
    if (this.networks.has(n.vni)) throw new VxlandError('VXLAND_NETWORK_EXISTS', `network already exists: vni ${n.vni} is served already`);
    if (!this.o.core.addNetwork({ vni: n.vni, mtu: n.device.mtu, ownMac: n.device.mac })) throw new VxlandError('VXLAND_NETWORK_EXISTS', `network already exists: vni ${n.vni} is served already`);
    const tx = new TxPath({
      vni: n.vni,
      dstPort: this.o.dstPort,
      mtu: n.device.mtu,
      fdb: n.fdb,
      core: this.o.core,
      bind: this.o.bind,
      device: n.device,
      stats: n.stats,
      now: this.now,
      sendPoolSlots: this.o.sendPoolSlots,
      onSendError: (address, err) => {
        const { code } = err as NodeJS.ErrnoException;
        this.limited.warn(`send:${code}:${address}`, { err: code, vtep: address, vni: n.vni }, 'send to VTEP failed');
      },
    });
    const neighSync = n.neighbours === undefined ? null : new NeighSync(this.o.core, n.neighbours, n.vni);
    const network: Network = { vni: n.vni, fdb: n.fdb, device: n.device, stats: n.stats, tx, sync: new CoreSync(this.o.core, n.fdb, n.sources, n.vni), neighSync, onFailed: n.onFailed };
    this.networks.set(n.vni, network);
    network.sync.start(n.allowVlan);
    neighSync?.start();
    if (this.state === 'running') this.startDevice(network);
  }

  /** Stops carrying the network and closes its device; the others go on.
   *  Unknown vni: no-op. */
  async removeNetwork(vni: number): Promise<void> {
    const n = this.networks.get(vni);
    if (n === undefined) return;
    this.networks.delete(vni);
    n.sync.stop();
    n.neighSync?.stop();
    this.o.core.removeNetwork(vni);
    n.device.close();
  }

  /** Starts the socket and every network's device. onFatal runs at most
   *  once, if the socket fails for good, or the device of a network
   *  without onFailed. */
  start(onFatal: (err: Error) => void): void {
    if (this.state !== 'idle') throw new Error(`data path cannot start when ${this.state}`);
    this.state = 'running';
    this.onFatal = onFatal;
    for (const n of this.networks.values()) this.startDevice(n);
    this.o.bind.start(
      (msg, from) => this.rx.onDatagram(msg, from),
      (err) => this.fatal(err),
      (address, err) => this.onPeerError(address, err),
    );
  }

  /** Closes every device and the socket. Idempotent. */
  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    for (const n of this.networks.values()) {
      n.sync.stop();
      n.neighSync?.stop();
      n.device.close();
    }
    this.networks.clear();
    await this.o.bind.close();
  }

  private startDevice(n: Network): void {
    n.device.start(
      (batch) => n.tx.onFrames(batch),
      (err) => {
        if (this.state !== 'running' || this.networks.get(n.vni) !== n) return;
        const failure = toVxlandError(err, 'VXLAND_DEVICE');
        if (n.onFailed !== undefined) n.onFailed(failure);
        else this.fatal(failure);
      },
    );
  }

  /** An ICMP error about a datagram sent earlier names no network: host-level. */
  private onPeerError(address: string, err: Error): void {
    const { hostStats } = this.o;
    hostStats.drop(DropReason.TxSendError);
    hostStats.vtep(address).drops++;
    const { code } = err as NodeJS.ErrnoException;
    this.limited.warn(`send:${code}:${address}`, { err: code, vtep: address }, 'send to VTEP failed');
  }

  private fatal(err: Error): void {
    if (this.failed || this.state !== 'running') return;
    this.failed = true;
    this.onFatal(err);
  }
}
