// The data plane of a host (design10.md "Data plane contract"): one UDP side
// shared by every network, networks (VNI + TAP + Fdb + policy + Stats) added
// and removed at run time, on either data path. The two implementations here
// work over injected io objects (src/open-plane.ts wires src/io/ into them;
// tests inject fakes or stand-in TAPs): DgramPlane over a DatagramBind, a
// PacketCore and a FrameDevice per network; NativePlane over one engine.
// Both run SharedPlane's one sequence; they differ only in how a network's
// port is opened and handed to their data path.

import type { Logger } from 'pino';
import type { DatapathKind, Envelope } from '../config/config';
import { VxlandError } from '../errors';
import type { Fdb } from '../fdb/fdb';
import type { Neighbours } from '../fdb/neighbours';
import type { PacketClassifier } from '../ports/core';
import type { PacketEngine } from '../ports/engine';
import type { DatagramBind, FrameDevice } from '../ports/io';
import type { SourceFilter } from './accept';
import { Datapath } from './datapath';
import { NativeDatapath } from './native-datapath';
import type { Stats } from './stats';

export interface HostPlaneOptions {
  /** 'native' | 'dgram' (config/config.ts resolveDatapath decides). */
  kind: DatapathKind;
  /** Bind address; null = any of family. */
  local: string | null;
  family: 'udp4' | 'udp6';
  /** Also the destination port of sent datagrams. */
  port: number;
  /** Outer UDP source ports per flow from this range (the daemon resolves the default). */
  srcPorts: { min: number; max: number };
  /** The outer header's settings (config/config.ts HostConfig); what each
   *  path does with them: describeEnvelope. Default: ttl 64, tos 0, df unset. */
  envelope?: Envelope;
  /** Host-level drops + foreign-VNI senders. */
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
  /** ARP/ND suppression: the table (and per-network flag) the data path answers from. */
  neighbours?: Neighbours;
  /** The network's TAP failed (a read error, EBADFD: the device deleted
   *  from outside with `ip link del`): the plane has stopped carrying this
   *  network alone, exactly as removeNetwork(vni) does (TAP closed, its
   *  VNI a host-level rx_wrong_vni from then on, its per-VTEP series given
   *  back), and calls this once, after that removal, with a VxlandError
   *  VXLAND_DEVICE carrying errno/syscall and naming the device. The other
   *  networks are undisturbed. Without it, a TAP failure is the plane's
   *  onFatal (as for a single-network daemon). */
  onFailed?: (err: VxlandError) => void;
}

export interface NetworkPlane {
  readonly vni: number;
  readonly dev: string;
  readonly mac: Buffer;
}

export interface DataPlane {
  readonly kind: DatapathKind;
  /** Starts the UDP side (and any networks already added). onFatal at most once (socket gone, or
   *  the TAP of a network added without onFailed). */
  start(onFatal: (err: Error) => void): void;
  /** Opens the network's TAP (name, MTU, MAC, addresses, up) and carries its traffic from now on,
   *  before or after start(). Rejects with a VxlandError and leaves nothing open on failure
   *  (VXLAND_NETWORK_EXISTS when the VNI or dev is already served). Other networks' traffic is undisturbed. */
  addNetwork(o: NetworkPlaneOptions): Promise<NetworkPlane>;
  /** Stops carrying the network and closes its TAP; other networks undisturbed. Unknown vni: no-op.
   *  Its Stats keep their totals but give their per-VTEP series back to the host's budget. */
  removeNetwork(vni: number): Promise<void>;
  /** The offloads in effect now (StatusResult.offloads), host-wide. */
  offloads(): string[];
  /** The source ports sends leave from (bound over HostPlaneOptions.srcPorts). */
  readonly srcPorts: readonly number[];
  /** Stops everything, closes every TAP and the socket. Idempotent. */
  stop(): Promise<void>;
}

/** The VNI/dev bookkeeping both planes share: uniqueness, and a network
 *  being removed holds its VNI and dev until its TAP is gone (re-adding the
 *  same dev at once waits for that). */
class Networks {
  private readonly served = new Map<number, NetworkPlane & { stats: Stats }>();
  private readonly removing = new Map<number, { dev: string; done: Promise<void> }>();
  stopped = false;

  /** Waits for a removal of the same VNI or dev, then refuses a duplicate. */
  async admit(o: NetworkPlaneOptions): Promise<void> {
    for (const [vni, r] of this.removing) if (vni === o.vni || r.dev === o.dev) await r.done;
    if (this.stopped) throw new VxlandError('VXLAND_INTERNAL', 'internal error: the data plane is stopped');
    for (const n of this.served.values()) {
      if (n.vni === o.vni) throw new VxlandError('VXLAND_NETWORK_EXISTS', `network already exists: vni ${o.vni} is served (dev ${n.dev})`);
      if (n.dev === o.dev) throw new VxlandError('VXLAND_NETWORK_EXISTS', `network already exists: dev ${o.dev} serves vni ${n.vni}`);
    }
  }

  add(n: NetworkPlane, stats: Stats): NetworkPlane {
    this.served.set(n.vni, { ...n, stats });
    return n;
  }

  /** Runs remove() for a served vni (no-op otherwise), holding its VNI and dev meanwhile. */
  async remove(vni: number, remove: () => Promise<void>): Promise<void> {
    const n = this.served.get(vni);
    if (n === undefined) return this.removing.get(vni)?.done;
    this.served.delete(vni);
    const done = remove().finally(() => {
      this.removing.delete(vni);
      n.stats.releaseVteps();
    });
    this.removing.set(vni, { dev: n.dev, done });
    return done;
  }

  /** The data path's onFailed for network o (undefined without o.onFailed):
   *  removes the network, then tells o.onFailed, once. */
  failure(o: NetworkPlaneOptions, remove: () => Promise<void>): ((err: VxlandError) => void) | undefined {
    const { onFailed } = o;
    if (onFailed === undefined) return undefined;
    let reported = false;
    return (err) => {
      if (reported || this.served.get(o.vni) === undefined) return;
      reported = true;
      const tell = () => onFailed(err);
      void this.remove(o.vni, remove).then(tell, tell);
    };
  }
}

/** What a plane opened for one network: its TAP (dgram) or its TAP handed
 *  to the engine (native), and how to undo that if the data path refuses it. */
interface OpenedPort {
  dev: string;
  mac: Buffer;
  close(): void;
}

/** The data path under a plane, as the plane drives it (Datapath, NativeDatapath). */
interface PlanePath {
  start(onFatal: (err: Error) => void): void;
  removeNetwork(vni: number): Promise<void>;
  stop(): Promise<void>;
}

/** The one sequence of both planes: admit, open the network's port, hand it
 *  to the data path (closing the port if that throws), record it; remove
 *  and stop through the Networks bookkeeping. The planes differ only in
 *  their io: how a port is opened and handed over. */
abstract class SharedPlane<Port extends OpenedPort> implements DataPlane {
  abstract readonly kind: DatapathKind;
  abstract readonly srcPorts: readonly number[];
  private readonly networks = new Networks();

  protected constructor(private readonly path: PlanePath) {}

  /** Opens and configures the network's TAP; throws VxlandError, leaving nothing open. */
  protected abstract openPort(o: NetworkPlaneOptions): Port;
  /** The data path's addNetwork for an opened port; may throw (the port is closed then). */
  protected abstract carry(o: NetworkPlaneOptions, port: Port, onFailed: ((err: VxlandError) => void) | undefined): void;
  abstract offloads(): string[];

  start(onFatal: (err: Error) => void): void {
    this.path.start(onFatal);
  }

  async addNetwork(o: NetworkPlaneOptions): Promise<NetworkPlane> {
    await this.networks.admit(o);
    const port = this.openPort(o);
    try {
      this.carry(o, port, this.networks.failure(o, () => this.path.removeNetwork(o.vni)));
    } catch (err) {
      port.close();
      throw err;
    }
    return this.networks.add({ vni: o.vni, dev: port.dev, mac: port.mac }, o.stats);
  }

  removeNetwork(vni: number): Promise<void> {
    return this.networks.remove(vni, () => this.path.removeNetwork(vni));
  }

  async stop(): Promise<void> {
    this.networks.stopped = true;
    await this.path.stop();
  }
}

/** What the dgram plane needs of src/io/. */
export interface DgramPlaneIo {
  bind: DatagramBind;
  /** One for the host (src/io/core.ts openPacketCore). */
  core: PacketClassifier;
  /** Opens and configures a network's TAP (src/io/tap.ts TapDevice.open). */
  openDevice(o: NetworkPlaneOptions): FrameDevice;
  /** The source ports bind sends from. */
  srcPorts: readonly number[];
}

type DevicePort = OpenedPort & { device: FrameDevice };

export class DgramPlane extends SharedPlane<DevicePort> {
  readonly kind = 'dgram';
  private readonly dp: Datapath;

  constructor(private readonly io: DgramPlaneIo, o: Pick<HostPlaneOptions, 'port' | 'hostStats' | 'log'> & { now?: () => number }) {
    const dp = new Datapath({ dstPort: o.port, bind: io.bind, core: io.core, hostStats: o.hostStats, log: o.log, now: o.now });
    super(dp);
    this.dp = dp;
  }

  protected openPort(o: NetworkPlaneOptions): DevicePort {
    const device = this.io.openDevice(o);
    return { device, dev: device.name, mac: device.mac, close: () => device.close() };
  }

  protected carry(o: NetworkPlaneOptions, port: DevicePort, onFailed: ((err: VxlandError) => void) | undefined): void {
    this.dp.addNetwork({ vni: o.vni, fdb: o.fdb, device: port.device, stats: o.stats, sources: o.sources, allowVlan: o.allowVlan, neighbours: o.neighbours, onFailed });
  }

  offloads(): string[] {
    return [];
  }

  get srcPorts(): readonly number[] {
    return this.io.srcPorts;
  }
}

/** What the native plane needs of src/io/. */
export interface NativePlaneIo {
  /** One for the host (src/io/engine.ts NativeEngine.open). */
  engine: PacketEngine;
  /** Opens and configures a network's TAP and hands it to the engine
   *  (NativeEngine.openNetwork) with this token (echoed in the engine's
   *  'tapFailed'): its slot and the TAP's MAC. Throws VxlandError, leaving
   *  nothing open. */
  openTap(o: NetworkPlaneOptions, token: number): { slot: number; mac: Buffer; dev: string };
  /** The source ports the engine sends from. */
  srcPorts: readonly number[];
}

type SlotPort = OpenedPort & { slot: number; token: number };

export class NativePlane extends SharedPlane<SlotPort> {
  readonly kind = 'native';
  private readonly dp: NativeDatapath;
  /** The last token given to an opened TAP: one per add, so a failure the
   *  engine reports for a removed TAP never reaches a network re-added with its VNI. */
  private lastToken = 0;

  constructor(private readonly io: NativePlaneIo, o: Pick<HostPlaneOptions, 'hostStats' | 'log'> & { now?: () => number }) {
    const dp = new NativeDatapath({ engine: io.engine, hostStats: o.hostStats, log: o.log, now: o.now });
    super(dp);
    this.dp = dp;
  }

  protected openPort(o: NetworkPlaneOptions): SlotPort {
    const token = ++this.lastToken;
    const tap = this.io.openTap(o, token);
    return { slot: tap.slot, token, dev: tap.dev, mac: tap.mac, close: () => this.io.engine.removeNetwork(o.vni) };
  }

  protected carry(o: NetworkPlaneOptions, port: SlotPort, onFailed: ((err: VxlandError) => void) | undefined): void {
    this.dp.addNetwork({ vni: o.vni, slot: port.slot, token: port.token, fdb: o.fdb, stats: o.stats, sources: o.sources, allowVlan: o.allowVlan, neighbours: o.neighbours, onFailed });
  }

  offloads(): string[] {
    return this.dp.offloads();
  }

  get srcPorts(): readonly number[] {
    return this.io.srcPorts;
  }
}
