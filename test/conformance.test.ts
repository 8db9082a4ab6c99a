// Runs every case of test/conformance/cases.ts through both data paths and
// holds each to the case's expected outcome: the dgram path (Datapath on
// test/fakes.ts) and the native engine (NativeEngine.openWith on a stand-in
// TAP, loopback UDP). Neither needs root.
//
// Both runs take the same steps: set up, feed the inputs, wait until the
// path counted them, read counters, TAP frames and sent datagrams, then a
// barrier. The native engine reports learning, refusals, foreign VNIs and
// used entries in batches after a pause in traffic, so a barrier input that
// must show up (a frame whose source is learned; a frame to an entry that is
// then used) proves every report about the inputs before it has arrived:
// the engine reports in order (and merges its per-VTEP counts first). The
// barrier's own effects are not part of the outcome: counters and frames
// are read before it, what it learned or used is left out, and it drops
// nothing.

import t, { type Test } from 'tap';
import pino from 'pino';
import { SourceFilter } from '../src/datapath/accept';
import { Datapath } from '../src/datapath/datapath';
import { followFdbEvent } from '../src/datapath/follow-fdb';
import { Stats } from '../src/datapath/stats';
import { Fdb, type FdbEvent } from '../src/fdb/fdb';
import { Neighbours } from '../src/fdb/neighbours';
import { openPacketCore } from '../src/io/core';
import { macKeyOf } from '../src/wire/mac';
import { CASES, LOCAL, MTU, OWN_MAC, OWN_MAC_2, PEER_B, REMOTES, VNI, type CaseConfig, type ConformanceCase, type Outcome, type SecondOutcome } from './conformance/cases';
import { FakeDevice, FakeNetwork, LoopbackPeer, frame, mac, vxlanDatagram } from './fakes';
import { eventually } from './helpers/eventually';
import { openNativeHost } from './helpers/native-host';
import type { TapLike } from './helpers/netns';

const PATHS = ['dgram', 'native'] as const;
type PathName = (typeof PATHS)[number];

/** Clock of the Fdb and the data path while the table is seeded, then while
 *  the inputs run: an entry is used by a case iff its USED time is the second. */
const SEED_MS = 1_000;
const RUN_MS = 10_000;
const WAIT_MS = 3000;
const FAKE_PORT = 4789;
/** A frame from this MAC at the first peer ends a case's rx reports... */
const RX_BARRIER_MAC = '02:00:00:00:ba:01';
/** ...a frame to this MAC, seeded at PEER_B, its tx ones. */
const TX_BARRIER_MAC = '02:00:00:00:ba:02';

/** The second network of a case (CaseConfig.second). */
interface CaseNetwork {
  stats: Stats;
  events: FdbEvent[];
  /** Frames written to its TAP since the last call. */
  takeDelivered(): Promise<Buffer[]>;
}

interface CaseHost {
  fdb: Fdb;
  stats: Stats;
  /** Host-level drops and foreign-VNI senders. */
  hostStats: Stats;
  /** Fdb events since the seeding. */
  events: FdbEvent[];
  second: CaseNetwork | null;
  send(from: string, datagram: Buffer): Promise<void>;
  inject(tapFrame: Buffer): void;
  /** Waits until the path has handled this many datagrams and TAP frames. */
  handled(datagrams: number, frames: number): Promise<boolean>;
  /** Frames written to the TAP since the last call. */
  takeDelivered(): Promise<Buffer[]>;
  /** Datagrams that reached REMOTES since the last call. */
  takeSent(): Promise<Array<{ to: string; datagram: Buffer }>>;
}

function seed(fdb: Fdb, cfg: CaseConfig, withTxBarrier: boolean): void {
  const vni = cfg.vni ?? VNI;
  for (const s of cfg.statics ?? []) fdb.addStatic(vni, s.mac, s.vtep);
  for (const l of cfg.learned ?? []) fdb.learn(vni, macKeyOf(l.mac), l.vtep, SEED_MS);
  if (withTxBarrier) fdb.learn(vni, macKeyOf(TX_BARRIER_MAC), PEER_B, SEED_MS);
}

/** The host's Stats counts per VTEP the VTEPs its networks know (as a
 *  network's Stats does its own), so a host-level drop names its sender. */
function trackInHost(fdb: Fdb, hostStats: Stats): void {
  for (const e of fdb.entries()) hostStats.track(e.vtep);
  fdb.subscribe((e) => {
    if (e.type !== 'aged' && e.type !== 'deleted') hostStats.track(e.vtep);
  });
}

function neighboursOf(cfg: CaseConfig): Neighbours {
  const vni = cfg.vni ?? VNI;
  const n = new Neighbours();
  for (const e of cfg.neigh ?? []) n.addStatic(vni, e.ip, e.mac);
  n.setSuppress(vni, cfg.suppress ?? false);
  return n;
}

function secondFdb(second: NonNullable<CaseConfig['second']>, now: () => number) {
  const stats = new Stats();
  const sources = new SourceFilter(second.accept ?? { kind: 'peers' });
  const fdb = new Fdb({ ageingMs: 300_000, maxLearned: 1000, now });
  fdb.subscribe((e) => followFdbEvent(e, stats, sources));
  for (const p of second.peers ?? []) fdb.addPeer(second.vni, p);
  const events: FdbEvent[] = [];
  fdb.subscribe((e) => events.push(e));
  return { stats, sources, fdb, events };
}

function dgramHost(t: TapLike, cfg: CaseConfig, now: () => number, withTxBarrier: boolean): CaseHost {
  const vni = cfg.vni ?? VNI;
  const net = new FakeNetwork();
  const stats = new Stats();
  const hostStats = new Stats();
  const sources = new SourceFilter(cfg.accept ?? { kind: 'peers' });
  const fdb = new Fdb({ ageingMs: 300_000, maxLearned: 1000, maxLearnedPerVtep: cfg.maxLearnedPerVtep, now });
  fdb.subscribe((e) => followFdbEvent(e, stats, sources));
  for (const p of cfg.peers ?? []) fdb.addPeer(vni, p);
  seed(fdb, cfg, withTxBarrier);
  trackInHost(fdb, hostStats);
  const events: FdbEvent[] = [];
  fdb.subscribe((e) => events.push(e));
  const device = new FakeDevice('vxl0', mac(OWN_MAC), cfg.mtu ?? MTU);
  const bind = net.bind(LOCAL, FAKE_PORT);
  const sent: Array<{ to: string; datagram: Buffer }> = [];
  const remotes = new Map(REMOTES.map((a) => [a, net.bind(a, FAKE_PORT)]));
  for (const [address, r] of remotes) r.start((msg) => sent.push({ to: address, datagram: Buffer.from(msg) }));
  const core = openPacketCore({ family: 4, dstPort: FAKE_PORT });
  const dp = new Datapath({ dstPort: FAKE_PORT, bind, core, hostStats, log: pino({ level: 'silent' }), now });
  dp.addNetwork({ vni, fdb, device, stats, sources, allowVlan: cfg.allowVlan ?? false, neighbours: neighboursOf(cfg) });
  let second: CaseNetwork | null = null;
  if (cfg.second !== undefined) {
    const n = secondFdb(cfg.second, now);
    trackInHost(n.fdb, hostStats);
    const device2 = new FakeDevice('vxl1', mac(OWN_MAC_2), MTU);
    dp.addNetwork({ vni: cfg.second.vni, fdb: n.fdb, device: device2, stats: n.stats, sources: n.sources, allowVlan: false });
    let taken = 0;
    second = {
      stats: n.stats,
      events: n.events,
      takeDelivered: async () => {
        await net.settle();
        const out = device2.written.slice(taken);
        taken = device2.written.length;
        return out;
      },
    };
  }
  dp.start((err) => {
    throw err;
  });
  t.teardown(() => dp.stop());
  let deliveredTaken = 0;
  return {
    fdb, stats, hostStats, events, second,
    send: (from, datagram) =>
      new Promise((resolve) => remotes.get(from)!.send(datagram, datagram.length, LOCAL, FAKE_PORT, () => resolve())),
    inject: (f) => device.inject(f),
    handled: async () => {
      await net.settle();
      return true;
    },
    takeDelivered: async () => {
      await net.settle();
      const out = device.written.slice(deliveredTaken);
      deliveredTaken = device.written.length;
      return out;
    },
    takeSent: async () => {
      await net.settle();
      return sent.splice(0, sent.length);
    },
  };
}

async function nativeHost(t: TapLike, cfg: CaseConfig, now: () => number, withTxBarrier: boolean): Promise<CaseHost> {
  const remotes = new Map<string, LoopbackPeer>();
  for (const address of REMOTES) {
    const peer = await LoopbackPeer.open(address, remotes.size === 0 ? 0 : [...remotes.values()][0].port);
    remotes.set(address, peer);
    t.teardown(() => peer.close());
  }
  const h = openNativeHost(t, {
    vni: cfg.vni ?? VNI,
    mac: mac(OWN_MAC),
    local: LOCAL,
    dstPort: remotes.get(PEER_B)!.port,
    mtu: cfg.mtu ?? MTU,
    peers: cfg.peers,
    accept: cfg.accept,
    allowVlan: cfg.allowVlan,
    neighbours: neighboursOf(cfg),
    fdb: { maxLearnedPerVtep: cfg.maxLearnedPerVtep },
    now,
    seed: (fdb) => seed(fdb, cfg, withTxBarrier),
    separateHostStats: true,
  });
  trackInHost(h.fdb, h.hostStats);
  let second: CaseNetwork | null = null;
  if (cfg.second !== undefined) {
    const n = h.addNetwork({ vni: cfg.second.vni, mac: mac(OWN_MAC_2), peers: cfg.second.peers, accept: cfg.second.accept });
    trackInHost(n.fdb, h.hostStats);
    const events: FdbEvent[] = [];
    n.fdb.subscribe((e) => events.push(e));
    second = { stats: n.stats, events, takeDelivered: async () => n.tap.take().map((m) => m.frame) };
  }
  return {
    fdb: h.fdb,
    stats: h.stats,
    hostStats: h.hostStats,
    events: h.fdbEvents,
    second,
    send: (from, datagram) => remotes.get(from)!.send(datagram, h.engine.port),
    inject: (f) => h.tap.inject(f),
    handled: (datagrams, frames) =>
      eventually(() => {
        const d = h.engine.counters().detail;
        return d.rxDatagrams >= datagrams && d.txTapReads >= frames;
      }, { timeoutMs: WAIT_MS }),
    // The engine counts a batch after writing and sending it: once handled()
    // holds, its frames are on the stand-in and its datagrams queued at the peers.
    takeDelivered: async () => h.tap.take().map((m) => m.frame),
    takeSent: async () => {
      const out: Array<{ to: string; datagram: Buffer }> = [];
      for (const [address, peer] of remotes) {
        if (!(await peer.drain())) throw new Error(`${address}: drain marker lost`);
        out.push(...peer.take().map((d) => ({ to: address, datagram: d.msg })));
      }
      return out;
    },
  };
}

function usedSince(fdb: Fdb, before: Map<string, number>): string[] {
  const used = new Set<string>();
  for (const e of fdb.entries()) {
    const key = e.kind === 'peer' ? 'flood' : e.mac;
    if (e.usedAgoMs === 0 && (before.get(key) ?? 0) > 0 && e.mac !== TX_BARRIER_MAC) used.add(key);
  }
  return [...used].sort();
}

function byDestination(sent: Array<{ to: string; datagram: Buffer }>): Array<{ to: string; datagram: Buffer }> {
  return sent.map((s, i) => ({ s, i })).sort((a, b) => a.s.to.localeCompare(b.s.to) || a.i - b.i).map(({ s }) => s);
}

async function run(t: Test, path: PathName, c: ConformanceCase): Promise<Outcome> {
  const cfg = c.config;
  const vni = cfg.vni ?? VNI;
  let clock = SEED_MS;
  const now = (): number => clock;
  const rxInputs = c.inputs.filter((i) => 'datagram' in i).length;
  const txInputs = c.inputs.length - rxInputs;
  const host = path === 'dgram' ? dgramHost(t, cfg, now, txInputs > 0) : await nativeHost(t, cfg, now, txInputs > 0);
  clock = RUN_MS;
  const usedBefore = new Map(host.fdb.entries().map((e) => [e.kind === 'peer' ? 'flood' : e.mac, e.usedAgoMs] as const));

  for (const input of c.inputs) {
    if ('datagram' in input) await host.send(input.from, input.datagram);
    else host.inject(input.tapFrame);
  }
  t.ok(await host.handled(rxInputs, txInputs), 'the path handled every input');
  const counted = host.stats.snapshot();
  const hostCounted = host.hostStats.snapshot();
  const secondCounted = host.second?.stats.snapshot();
  const delivered = await host.takeDelivered();
  const secondDelivered = await host.second?.takeDelivered();
  const sent = await host.takeSent();

  if (rxInputs > 0) {
    const from = cfg.peers?.[0];
    if (from === undefined) throw new Error(`${c.name}: an rx case needs a peer for the barrier`);
    const barrier = frame(OWN_MAC, RX_BARRIER_MAC);
    await host.send(from, vxlanDatagram(vni, barrier));
    t.ok(await eventually(() => host.events.some((e) => e.mac === RX_BARRIER_MAC), { timeoutMs: WAIT_MS }), 'rx barrier: its source was learned');
    t.same(await host.takeDelivered(), [barrier], 'rx barrier: delivered after the inputs');
  }
  if (txInputs > 0) {
    const barrier = frame(TX_BARRIER_MAC, OWN_MAC);
    host.inject(barrier);
    const barrierUsed = (): boolean => host.fdb.entries().some((e) => e.mac === TX_BARRIER_MAC && e.usedAgoMs === 0);
    t.ok(await eventually(barrierUsed, { timeoutMs: WAIT_MS }), 'tx barrier: its entry was used');
    t.same(await host.takeSent(), [{ to: PEER_B, datagram: vxlanDatagram(vni, barrier) }], 'tx barrier: sent after the inputs');
  }

  const after = host.stats.snapshot();
  const learnedIn = (events: FdbEvent[]) =>
    events
      .filter((e) => (e.type === 'learned' || e.type === 'moved') && e.mac !== RX_BARRIER_MAC)
      .map((e) => ({ type: e.type as 'learned' | 'moved', mac: e.mac, vtep: e.vtep }));
  const vtepDrops = (stats: Stats) => Object.fromEntries(stats.vtepSnapshot().filter((v) => v.drops > 0).map((v) => [v.vtep, v.drops]));
  const secondOutcome: SecondOutcome | undefined =
    host.second === null
      ? undefined
      : { delivered: secondDelivered!, drops: secondCounted!.drops, learned: learnedIn(host.second.events), refused: host.second.stats.refusedSenders() };
  return {
    delivered,
    sent: byDestination(sent),
    drops: counted.drops,
    vtepDrops: vtepDrops(host.stats),
    hostDrops: hostCounted.drops,
    hostVtepDrops: vtepDrops(host.hostStats),
    rxPackets: counted.rxPackets,
    txPackets: counted.txPackets,
    learned: learnedIn(host.events),
    used: usedSince(host.fdb, usedBefore),
    foreign: host.hostStats.foreignVniSenders().map((f) => ({ address: f.address, vni: f.vni })),
    refused: host.stats.refusedSenders(),
    learnRefused: after.learnRefused,
    suppressed: { arp: counted.events?.arp_suppressed ?? 0, nd: counted.events?.nd_suppressed ?? 0 },
    icmpTooBig: counted.events?.icmp_too_big_sent ?? 0,
    ...(secondOutcome !== undefined ? { second: secondOutcome } : {}),
  };
}

function expected(c: ConformanceCase): Outcome {
  const { second, ...rest } = c.expect;
  return {
    delivered: [],
    sent: [],
    drops: {},
    vtepDrops: {},
    hostDrops: {},
    hostVtepDrops: {},
    rxPackets: 0,
    txPackets: 0,
    learned: [],
    used: [],
    foreign: [],
    refused: [],
    learnRefused: { fdbFull: 0, vtepFull: 0, rate: 0 },
    suppressed: { arp: 0, nd: 0 },
    icmpTooBig: 0,
    ...rest,
    ...(c.expect.sent ? { sent: byDestination(c.expect.sent) } : {}),
    ...(c.expect.used ? { used: [...c.expect.used].sort() } : {}),
    ...(c.config.second !== undefined ? { second: { delivered: [], drops: {}, learned: [], refused: [], ...second } } : {}),
  };
}

t.test('the corpus names each case once', async (t) => {
  t.equal(new Set(CASES.map((c) => c.name)).size, CASES.length);
});

for (const c of CASES) {
  t.test(c.name, async (t) => {
    for (const path of PATHS) {
      await t.test(path, async (t) => {
        const got = await run(t, path, c);
        const want = expected(c);
        for (const key of Object.keys(want) as Array<keyof Outcome>) t.same(got[key], want[key], key);
      });
    }
  });
}
