// Announces the TAP's addresses at start: a gratuitous ARP for each IPv4
// address and an unsolicited neighbour advertisement (Override, to ff02::1)
// for each IPv6 one, so that hosts behind the peers replace a MAC they cached
// for these addresses at once instead of after their neighbour entry times
// out (20-50 s). The frames are sent on the TAP with AF_PACKET, as if the
// local stack had sent them, so either data path reads them from the TAP and
// floods them to the peers like any broadcast or multicast frame.
//
// Each address is announced ANNOUNCE_COUNT times, ANNOUNCE_REPEAT_MS apart
// (from the first moment there are peers, within ANNOUNCE_DEADLINE_MS):
// one datagram on the underlay can be lost, and a peer restarting at the same
// moment misses the first. An IPv6 address is announced only once duplicate
// address detection has finished with it (RFC 4862 §5.4: no advertisement
// for a tentative address), which takes about a second after it was added.

import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Cidr } from '../config/validate.js';
import { normalizeIp } from '../config/validate.js';
import { encodeGratuitousArp, GRATUITOUS_ARP_FRAME_BYTES } from '../wire/arp.js';
import { ipv4Number, ipv6Bytes } from '../wire/ip.js';
import { encodeUnsolicitedNa, UNSOLICITED_NA_FRAME_BYTES } from '../wire/ndisc.js';
import { callNative, loadAddon } from './addon.js';

export const ANNOUNCE_COUNT = 2;
export const ANNOUNCE_REPEAT_MS = 1_000;
/** How often pending announcements (tentative IPv6 addresses) are looked at. */
export const ANNOUNCE_TICK_MS = 250;
/** Addresses not announced by then (DAD never finished) are given up on, with a warning. */
export const ANNOUNCE_DEADLINE_MS = 10_000;

/** Logged once every announcement has been sent (or given up on). */
export const ANNOUNCEMENTS_DONE_MESSAGE = 'announcements of the TAP addresses done';

/** IFA_F_TENTATIVE and IFA_F_DADFAILED in /proc/net/if_inet6's flags column. */
const IFA_F_TENTATIVE = 0x40;
const IFA_F_DADFAILED = 0x08;

export interface AnnouncerOptions {
  dev: string;
  /** The TAP's MAC (6 bytes). */
  mac: Buffer;
  addresses: readonly Cidr[];
  log: Logger;
  /** Whether a broadcast would reach anyone (the flood list is not empty).
   *  Until it does nothing is sent: frames with nowhere to go would count
   *  as tx_no_destination drops. */
  canFlood: () => boolean;
  now?: () => number;
}

interface Pending {
  cidr: Cidr;
  frame: Buffer;
  sent: number;
  lastMs: number;
  failure: string | null;
}

export class NeighbourAnnouncer {
  private readonly pending: Pending[];
  private readonly now: () => number;
  private timer: NodeJS.Timeout | null = null;
  private startedMs = 0;
  private readonly done: string[] = [];

  constructor(private readonly o: AnnouncerOptions) {
    this.now = o.now ?? Date.now;
    // IPv4-mapped IPv6 literals (::ffff:a.b.c.d) are not neighbours of anyone; skipped.
    this.pending = o.addresses.filter((c) => !c.address.includes('.') || c.family === 4).map((cidr) => ({ cidr, frame: encodeFrame(o.mac, cidr), sent: 0, lastMs: 0, failure: null }));
  }

  /** Sends the first round now and the rest from a timer (unref'd). */
  start(): void {
    if (this.pending.length === 0) return;
    this.startedMs = this.now();
    this.tick();
    if (this.pending.length > 0 && this.timer === null) {
      this.timer = setInterval(() => this.tick(), ANNOUNCE_TICK_MS);
      this.timer.unref();
    }
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  private tick(): void {
    const nowMs = this.now();
    if (!this.o.canFlood()) {
      if (nowMs - this.startedMs >= ANNOUNCE_DEADLINE_MS) {
        this.o.log.debug({}, 'no peers to announce the TAP addresses to');
        this.pending.length = 0;
        this.stop();
      }
      return;
    }
    const ready = this.pending.some((p) => p.cidr.family === 6) ? settledIpv6(this.o.dev) : new Set<string>();
    for (const p of this.pending) {
      if (p.sent > 0 && nowMs - p.lastMs < ANNOUNCE_REPEAT_MS) continue;
      if (p.cidr.family === 6 && !ready.has(p.cidr.address)) continue;
      try {
        callNative('VXLAND_DEVICE', () => loadAddon().packetSend(this.o.dev, p.frame));
        p.sent++;
        p.lastMs = nowMs;
        if (p.sent === 1) this.o.log.info({ address: p.cidr.address, announce: p.cidr.family === 4 ? 'gratuitous ARP' : 'unsolicited NA' }, `announced ${p.cidr.address} at the TAP's MAC to the peers`);
      } catch (err) {
        const reason = err instanceof Error ? err.message : String(err);
        if (reason !== p.failure) this.o.log.warn({ address: p.cidr.address, err: reason }, `cannot announce ${p.cidr.address} (needs CAP_NET_RAW and the TAP up); hosts behind the peers update their neighbour entry only when it expires`);
        p.failure = reason;
      }
    }
    const expired = nowMs - this.startedMs >= ANNOUNCE_DEADLINE_MS;
    for (let i = this.pending.length - 1; i >= 0; i--) {
      const p = this.pending[i];
      if (p.sent >= ANNOUNCE_COUNT) {
        this.pending.splice(i, 1);
        this.done.push(p.cidr.address);
      } else if (expired) {
        if (p.sent === 0 && p.failure === null) this.o.log.warn({ address: p.cidr.address }, `${p.cidr.address} never left duplicate address detection; not announced`);
        this.pending.splice(i, 1);
      }
    }
    if (this.pending.length === 0) {
      this.stop();
      this.o.log.info({ addresses: this.done }, ANNOUNCEMENTS_DONE_MESSAGE);
    }
  }
}

function encodeFrame(mac: Buffer, cidr: Cidr): Buffer {
  if (cidr.family === 4) {
    const frame = Buffer.alloc(GRATUITOUS_ARP_FRAME_BYTES);
    encodeGratuitousArp(frame, 0, mac, 0, ipv4Number(cidr.address));
    return frame;
  }
  const frame = Buffer.alloc(UNSOLICITED_NA_FRAME_BYTES);
  encodeUnsolicitedNa(frame, 0, mac, 0, ipv6Bytes(cidr.address), 0);
  return frame;
}

/** The IPv6 addresses of dev that finished duplicate address detection
 *  (canonical literals), from /proc/net/if_inet6; empty when unreadable. */
function settledIpv6(dev: string): Set<string> {
  const out = new Set<string>();
  let text: string;
  try {
    text = readFileSync('/proc/net/if_inet6', 'utf8');
  } catch {
    return out;
  }
  for (const line of text.split('\n')) {
    const [hex, , , , flags, name] = line.trim().split(/\s+/);
    if (name !== dev || hex === undefined || hex.length !== 32) continue;
    if ((parseInt(flags, 16) & (IFA_F_TENTATIVE | IFA_F_DADFAILED)) !== 0) continue;
    const address = normalizeIp(hex.match(/.{4}/g)!.join(':'));
    if (address !== null) out.add(address);
  }
  return out;
}
