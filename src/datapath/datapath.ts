// The portable data path: a FrameDevice and a DatagramBind joined by the tx
// and rx paths, all on the event loop; rx classifies with the packet core
// (an PacketClassifier, fed by CoreSync as the native engine's core is). It owns
// both sides once started and closes them on stop().

import type { Logger } from 'pino';
import type { Fdb } from '../fdb/fdb';
import { RateLimitedLog } from '../util/rate-limit';
import type { SourceFilter } from './accept';
import type { PacketClassifier } from '../ports/core';
import type { DatagramBind, FrameDevice } from '../ports/io';
import { CoreSync } from './core-sync';
import { RxPath } from './rx';
import type { Stats } from './stats';
import { TxPath } from './tx';

export interface DatapathOptions {
  vni: number;
  dstPort: number;
  fdb: Fdb;
  device: FrameDevice;
  bind: DatagramBind;
  /** The rx and tx rules (src/io/core.ts openPacketCore, for this device's MTU and MAC). */
  core: PacketClassifier;
  stats: Stats;
  log: Logger;
  sources: SourceFilter;
  allowVlan: boolean;
  now?: () => number;
  /** Datagrams that may be in flight at once (default SEND_POOL_SLOTS). */
  sendPoolSlots?: number;
}

type DatapathState = 'idle' | 'running' | 'stopped';

export class Datapath {
  private state: DatapathState = 'idle';
  private readonly tx: TxPath;
  private readonly rx: RxPath;
  private readonly sync: CoreSync;

  constructor(private readonly o: DatapathOptions) {
    const now = o.now ?? Date.now;
    const limited = new RateLimitedLog(o.log);
    this.tx = new TxPath({
      vni: o.vni,
      dstPort: o.dstPort,
      mtu: o.device.mtu,
      fdb: o.fdb,
      core: o.core,
      bind: o.bind,
      stats: o.stats,
      now,
      sendPoolSlots: o.sendPoolSlots,
      onSendError: (address, err) => {
        const { code } = err as NodeJS.ErrnoException;
        limited.warn(`send:${code}:${address}`, { err: code, vtep: address }, 'send to VTEP failed');
      },
    });
    this.sync = new CoreSync(o.core, o.fdb, o.sources, o.vni);
    this.rx = new RxPath({
      fdb: o.fdb,
      device: o.device,
      core: o.core,
      stats: o.stats,
      now,
      onWrongVni: (vni, from) =>
        limited.warn(`vni:${from}:${vni}`, { vni, expectedVni: o.vni, from }, 'dropped datagram with a foreign VNI'),
    });
  }

  /** Starts both directions. onFatal runs at most once, if either side fails for good. */
  start(onFatal: (err: Error) => void): void {
    if (this.state !== 'idle') throw new Error(`data path cannot start when ${this.state}`);
    this.state = 'running';
    this.sync.start(this.o.allowVlan);
    let failed = false;
    const fatal = (err: Error): void => {
      if (failed || this.state !== 'running') return;
      failed = true;
      onFatal(err);
    };
    this.o.device.start((batch) => this.tx.onFrames(batch), fatal);
    this.o.bind.start((msg, from) => this.rx.onDatagram(msg, from), fatal, (address, err) => this.tx.onPeerError(address, err));
  }

  /** Closes the device and the socket. Idempotent. */
  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    this.sync.stop();
    this.o.device.close();
    await this.o.bind.close();
  }
}
