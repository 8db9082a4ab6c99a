// Keeps each network's TAP device as configured while an admin changes it.
// One watcher per host, one timer for every TAP: every
// TAP_WATCH_INTERVAL_MS it reads each link's flags and MTU (/sys/class/net)
// and its addresses, puts back a changed MTU (frames beyond the configured
// one are dropped, so a raised MTU silently loses the larger frames) and
// missing addresses (the kernel drops IPv6 addresses when a link goes down),
// and logs each restoration. A link an admin set down is left down; its
// addresses come back once it is up again. What cannot be restored is kept
// for `vxland doctor` (condition()) and retried on every check. The
// addresses of all links are read once per round (os.networkInterfaces()
// lists every interface of the host: once per TAP, 64 networks cost a
// tenth of a CPU at idle).

import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { networkInterfaces } from 'node:os';
import type { TapCondition } from '../ports/tap-condition.js';
import { parseCidr, type Cidr } from '../config/validate.js';
import { callNative, loadAddon } from './addon.js';
import { addTapAddress, labelAddresses, type LabelledAddress } from './tap.js';

export const TAP_WATCH_INTERVAL_MS = 500;

const IFF_UP = 0x1;

export interface TapWatchOptions {
  dev: string;
  /** The configured MTU. */
  mtu: number;
  /** The configured addresses (parsed). */
  addresses: readonly Cidr[];
  log: Logger;
}

type Interfaces = ReturnType<typeof networkInterfaces>;

/** The host's watcher: watch() each network's TAP once it is up. */
export class TapWatch {
  private readonly watched = new Set<WatchedTap>();
  private timer: NodeJS.Timeout | null = null;

  /** Watches one TAP until the handle's stop(). */
  watch(o: TapWatchOptions): WatchedTap {
    const tap = new WatchedTap(o, () => {
      this.watched.delete(tap);
      if (this.watched.size === 0 && this.timer !== null) {
        clearInterval(this.timer);
        this.timer = null;
      }
    });
    this.watched.add(tap);
    if (this.timer === null) {
      this.timer = setInterval(() => this.check(), TAP_WATCH_INTERVAL_MS);
      this.timer.unref();
    }
    return tap;
  }

  /** One round over every watched TAP (the timer calls it). */
  check(): void {
    let interfaces: Interfaces | null = null;
    const read = (): Interfaces => (interfaces ??= networkInterfaces());
    for (const tap of this.watched) tap.check(read);
  }
}

/** One watched TAP. */
export class WatchedTap {
  private readonly wanted: LabelledAddress[];
  private down = false;
  private failure: string | null = null;
  private readonly unrestored = new Map<string, { what: 'mtu' | 'address'; value: string; reason: string }>();

  constructor(
    private readonly o: TapWatchOptions,
    private readonly onStop: () => void,
  ) {
    this.wanted = labelAddresses(o.dev, o.addresses);
  }

  /** Stops watching. Idempotent. */
  stop(): void {
    this.onStop();
  }

  /** The data path stopped carrying the network because its TAP failed:
   *  nothing left to keep; condition() says why from now on. */
  failed(reason: string): void {
    this.failure = reason;
    this.stop();
  }

  /** What `vxland doctor` reports: the TAP failed, the link down, what could not be put back. */
  condition(): TapCondition {
    return { dev: this.o.dev, down: this.down, unrestored: [...this.unrestored.values()], failed: this.failure };
  }

  check(interfaces: () => Interfaces): void {
    const { dev, log } = this.o;
    const flags = readSysNumber(dev, 'flags', 16);
    // Gone: the data path notices (the network fails alone); nothing to reconcile.
    if (flags === null) return;
    if ((flags & IFF_UP) === 0) {
      if (!this.down) log.warn({ linkDown: true }, `${dev} was set down (by an admin?); left down, its addresses come back when it is up again`);
      this.down = true;
      return;
    }
    if (this.down) log.info({ linkDown: false }, `${dev} is up again`);
    this.down = false;

    const mtu = readSysNumber(dev, 'mtu', 10);
    if (mtu !== null && mtu !== this.o.mtu) {
      this.attempt('mtu', String(this.o.mtu), () => loadAddon().tapSetMtu(dev, this.o.mtu), {
        fields: { restored: 'mtu', mtu: this.o.mtu, found: mtu },
        message: `restored ${dev} MTU ${this.o.mtu} (it was changed to ${mtu}; vxland drops frames beyond its configured MTU)`,
      });
    }
    // os.networkInterfaces() lists addresses only of links up and running
    // (carrier: the TAP's fd attached); /sys flags do not show IFF_RUNNING.
    if (readSysNumber(dev, 'carrier', 10) !== 1) return;
    const present = presentAddresses(interfaces(), dev);
    for (const a of this.wanted) {
      const text = `${a.cidr.address}/${a.cidr.prefixLength}`;
      if (present.has(text)) {
        this.unrestored.delete(`address ${text}`);
        continue;
      }
      const why = a.cidr.family === 6 ? 'the kernel drops IPv6 addresses when a link goes down, or an admin removed it' : 'an admin removed it';
      this.attempt('address', text, () => addTapAddress(loadAddon(), a), {
        fields: { restored: 'address', address: text },
        message: `restored address ${text} on ${dev} (it was missing: ${why})`,
      });
    }
  }

  private attempt(what: 'mtu' | 'address', value: string, fix: () => void, done: { fields: object; message: string }): void {
    const key = `${what} ${value}`;
    try {
      callNative('VXLAND_DEVICE', fix);
      this.unrestored.delete(key);
      this.o.log.warn(done.fields, done.message);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      if (this.unrestored.get(key)?.reason !== reason) {
        this.o.log.warn({ what, value, err: reason }, `cannot restore ${what} ${value} on ${this.o.dev}; will retry`);
      }
      this.unrestored.set(key, { what, value, reason });
    }
  }
}

function readSysNumber(dev: string, file: string, radix: 10 | 16): number | null {
  try {
    const value = parseInt(readFileSync(`/sys/class/net/${dev}/${file}`, 'utf8').trim(), radix);
    return Number.isNaN(value) ? null : value;
  } catch {
    return null;
  }
}

/** "address/prefix" (canonical) of every address on dev. */
function presentAddresses(interfaces: Interfaces, dev: string): Set<string> {
  const out = new Set<string>();
  for (const a of interfaces[dev] ?? []) {
    const cidr = a.cidr === null ? null : parseCidr(a.cidr);
    if (cidr !== null) out.add(`${cidr.address}/${cidr.prefixLength}`);
  }
  return out;
}
