// The host's data plane (src/datapath/plane.ts) with several networks, on
// both data paths: without root over fakes (dgram: FakeNetwork and
// FakeDevices) and stand-in TAPs (native: one engine on loopback), then in
// namespaces against a kernel host with two vxlan devices on one port
// (test/fixtures/plane-host.ts opens the DataPlane as the daemon does).

import t, { type Test } from 'tap';
import path from 'node:path';
import pino from 'pino';
import { SourceFilter } from '../src/datapath/accept';
import { followFdbEvent } from '../src/datapath/follow-fdb';
import { DgramPlane, NativePlane, type DataPlane, type NetworkPlaneOptions } from '../src/datapath/plane';
import { Stats, VtepBudget } from '../src/datapath/stats';
import type { VxlandError } from '../src/errors';
import { Fdb } from '../src/fdb/fdb';
import { openPacketCore } from '../src/io/core';
import { NativeEngine } from '../src/io/engine';
import { macKeyOf } from '../src/wire/mac';
import {
  EBADFD, FakeDevice, FakeEngine, FakeNetwork, LOOPBACK_WAIT_MS, LOOP_A, LOOP_B, LOOP_C, LoopbackPeer, STAND_IN_MAC_A, STAND_IN_MAC_B, StandInTap, frame, mac, vxlanDatagram,
} from './fakes';
import { eventually } from './helpers/eventually';
import {
  FIXTURES_DIR, addKernelVxlan, createTopology, exec, ping, skipUnlessRoot, spawnDaemon, verifiedTcpTransfer, type Host, type LineProcess, type TapLike,
} from './helpers/netns';
import { datapathsUnderTest } from './helpers/vxland';

const MAC_X = '02:00:00:00:00:aa';
const BROADCAST = 'ff:ff:ff:ff:ff:ff';

interface Net {
  vni: number;
  fdb: Fdb;
  stats: Stats;
  sources: SourceFilter;
  options: NetworkPlaneOptions;
}

/** A plane under test with the peers B and C in front of it. */
interface Rig {
  plane: DataPlane;
  hostStats: Stats;
  send(from: string, datagram: Buffer): Promise<void>;
  inject(vni: number, f: Buffer): void;
  /** Frames written to network vni's TAP since the last call. */
  delivered(vni: number): Promise<Buffer[]>;
  /** Until network vni's TAP has n frames (counting since its last delivered()). */
  deliveredAtLeast(vni: number, n: number): Promise<Buffer[]>;
  /** Datagrams B and C received since the last call. */
  sent(): Promise<Array<{ to: string; datagram: Buffer }>>;
  /** Whether network vni's TAP is closed (the device is gone). */
  tapClosed(vni: number): boolean;
  /** Network vni's TAP fails as a deleted device does (reads end: EBADFD). */
  failTap(vni: number): void;
}


function network(vni: number, peers: string[], ownMac: string, budget?: VtepBudget): Net {
  const stats = new Stats(budget);
  const sources = new SourceFilter({ kind: 'peers' });
  const fdb = new Fdb({ ageingMs: 300_000, maxLearned: 1000 });
  fdb.subscribe((e) => followFdbEvent(e, stats, sources));
  for (const p of peers) fdb.addPeer(vni, p);
  return { vni, fdb, stats, sources, options: { vni, dev: `vxl${vni}`, mtu: 1450, addresses: [], mac: mac(ownMac), fdb, sources, stats, allowVlan: false } };
}

function dgramRig(t: TapLike): Rig {
  const net = new FakeNetwork();
  const hostStats = new Stats();
  const devices = new Map<number, FakeDevice>();
  const taken = new Map<number, number>();
  const plane = new DgramPlane(
    {
      bind: net.bind(LOOP_A),
      core: openPacketCore({ family: 4, dstPort: 4789 }),
      srcPorts: [],
      openDevice: (o) => {
        const d = new FakeDevice(o.dev, o.mac, o.mtu);
        devices.set(o.vni, d);
        taken.set(o.vni, 0);
        return d;
      },
    },
    { port: 4789, hostStats, log: pino({ level: 'silent' }) },
  );
  const got: Array<{ to: string; datagram: Buffer }> = [];
  const peers = new Map([LOOP_B, LOOP_C].map((a) => [a, net.bind(a)]));
  for (const [a, b] of peers) b.start((msg) => got.push({ to: a, datagram: Buffer.from(msg) }));
  t.teardown(() => plane.stop());
  const take = (vni: number): Buffer[] => {
    const d = devices.get(vni)!;
    const out = d.written.slice(taken.get(vni));
    taken.set(vni, d.written.length);
    return out;
  };
  return {
    plane,
    hostStats,
    send: (from, d) => new Promise((resolve) => peers.get(from)!.send(d, d.length, LOOP_A, 4789, () => resolve())),
    inject: (vni, f) => devices.get(vni)!.inject(f),
    delivered: async (vni) => {
      await net.settle();
      return take(vni);
    },
    deliveredAtLeast: async (vni) => {
      await net.settle();
      return take(vni);
    },
    sent: async () => {
      await net.settle();
      return got.splice(0);
    },
    tapClosed: (vni) => devices.get(vni)!.closed,
    // What TapDevice's poller reports for a device deleted under it.
    failTap: (vni) => devices.get(vni)!.fail(Object.assign(new Error(`read failed: File descriptor in bad state (EBADFD) [vxl${vni}]`), { code: 'EBADFD', errno: EBADFD, syscall: 'read' })),
  };
}

async function nativeRig(t: TapLike): Promise<Rig> {
  const b = await LoopbackPeer.open(LOOP_B);
  const c = await LoopbackPeer.open(LOOP_C, b.port);
  t.teardown(() => b.close());
  t.teardown(() => c.close());
  const peers = new Map([[LOOP_B, b], [LOOP_C, c]]);
  const hostStats = new Stats();
  const engine = NativeEngine.open({ local: LOOP_A, port: 0, dstPort: b.port });
  const taps = new Map<number, StandInTap>();
  const closed = new Set<number>();
  const pending = new Map<number, Buffer[]>();
  const plane = new NativePlane(
    {
      engine,
      srcPorts: [],
      openTap: (o, token) => {
        const tap = new StandInTap();
        const slot = engine.addStandIn({ vni: o.vni, mtu: o.mtu, mac: o.mac, tapFd: tap.engineFd, name: o.dev, token });
        taps.get(o.vni)?.close();
        taps.set(o.vni, tap);
        closed.delete(o.vni);
        pending.delete(o.vni);
        return { slot, mac: o.mac, dev: o.dev };
      },
    },
    { hostStats, log: pino({ level: 'silent' }) },
  );
  t.teardown(async () => {
    await plane.stop();
    for (const tap of taps.values()) tap.close();
  });
  const pull = (vni: number): Buffer[] => {
    const list = pending.get(vni) ?? [];
    list.push(...taps.get(vni)!.take().map((m) => m.frame));
    pending.set(vni, list);
    return list;
  };
  return {
    plane,
    hostStats,
    send: (from, d) => peers.get(from)!.send(d, engine.port),
    inject: (vni, f) => taps.get(vni)!.inject(f),
    delivered: async (vni) => pull(vni).splice(0),
    deliveredAtLeast: async (vni, n) => {
      await eventually(() => pull(vni).length >= n, { timeoutMs: LOOPBACK_WAIT_MS });
      return pull(vni).splice(0);
    },
    sent: async () => {
      const out: Array<{ to: string; datagram: Buffer }> = [];
      for (const [address, peer] of peers) {
        if (!(await peer.drain())) throw new Error(`${address}: drain marker lost`);
        out.push(...peer.take().map((d) => ({ to: address, datagram: d.msg })));
      }
      return out;
    },
    tapClosed: (vni) => {
      if (closed.has(vni)) return true;
      // The engine's end is closed once writing to ours fails (EPIPE/ECONNREFUSED).
      try {
        taps.get(vni)!.inject(frame(BROADCAST, STAND_IN_MAC_B));
        return false;
      } catch {
        closed.add(vni);
        return true;
      }
    },
    // The engine reads EOF, which it takes as EBADFD (what a deleted TAP reads).
    failTap: (vni) => taps.get(vni)!.close(),
  };
}

const RIGS = { dgram: dgramRig, native: nativeRig } as const;

/** A started rig carrying network 42 (peer B). */
async function startedWith42(t: TapLike & { fail(m: string): void }, makeRig: (t: TapLike) => Rig | Promise<Rig>): Promise<{ rig: Rig; n42: Net }> {
  const rig = await makeRig(t);
  const n42 = network(42, [LOOP_B], STAND_IN_MAC_A);
  await rig.plane.addNetwork(n42.options);
  rig.plane.start((err) => t.fail(`fatal: ${err.message}`));
  return { rig, n42 };
}

for (const [name, makeRig] of Object.entries(RIGS)) {
  t.test(`${name}: two networks on one plane`, async (t) => {
    const rig = await makeRig(t);
    const n42 = network(42, [LOOP_B], STAND_IN_MAC_A);
    const n43 = network(43, [LOOP_B, LOOP_C], STAND_IN_MAC_B);
    const a = await rig.plane.addNetwork(n42.options);
    t.same([a.vni, a.dev, a.mac], [42, 'vxl42', mac(STAND_IN_MAC_A)], 'addNetwork answers with the network it opened');
    await rig.plane.addNetwork(n43.options);
    rig.plane.start((err) => t.fail(`fatal: ${err.message}`));

    await t.test('each network gets its own frames, the same MAC in both is two entries', async (t) => {
      const f42 = frame(STAND_IN_MAC_A, MAC_X, Buffer.from('for 42'));
      const f43 = frame(STAND_IN_MAC_B, MAC_X, Buffer.from('for 43'));
      await rig.send(LOOP_B, vxlanDatagram(42, f42));
      await rig.send(LOOP_B, vxlanDatagram(43, f43));
      t.same(await rig.deliveredAtLeast(43, 1), [f43], "network 43's TAP has only its frame");
      t.same(await rig.delivered(42), [f42], "network 42's TAP has only its frame");
      await eventually(() => n43.fdb.lookup(43, macKeyOf(MAC_X), Date.now()) !== undefined, { timeoutMs: LOOPBACK_WAIT_MS });
      t.equal(n42.fdb.lookup(42, macKeyOf(MAC_X), Date.now()), LOOP_B, 'learned in 42');
      t.equal(n43.fdb.lookup(43, macKeyOf(MAC_X), Date.now()), LOOP_B, 'and in 43, apart');
      t.match(n42.stats.snapshot(), { rxPackets: 1, rxBytes: f42.length, dropsTotal: 0 });
      t.match(n43.stats.snapshot(), { rxPackets: 1, rxBytes: f43.length, dropsTotal: 0 });
    });

    await t.test('the source policy is per network', async (t) => {
      const f = frame(STAND_IN_MAC_A, '02:00:00:00:00:cc');
      await rig.send(LOOP_C, vxlanDatagram(42, f));
      const barrier = frame(STAND_IN_MAC_B, '02:00:00:00:00:cd');
      await rig.send(LOOP_C, vxlanDatagram(43, barrier));
      t.same(await rig.deliveredAtLeast(43, 1), [barrier], 'C, a peer of 43, is heard in 43');
      t.same(await rig.delivered(42), [], 'but not in 42');
      await eventually(() => n42.stats.refusedSenders().length > 0, { timeoutMs: LOOPBACK_WAIT_MS });
      t.same(n42.stats.snapshot().drops, { rx_source_not_allowed: 1 }, 'refused in 42');
      t.same(n42.stats.refusedSenders(), [{ address: LOOP_C, count: 1 }]);
      t.same(n43.stats.snapshot().drops, {}, '43 dropped nothing');
      t.same(rig.hostStats.snapshot().drops, {}, 'nor the host');
    });

    await t.test('a VNI no network has is a host-level drop', async (t) => {
      await rig.send(LOOP_B, vxlanDatagram(44, frame(STAND_IN_MAC_A, MAC_X)));
      const barrier = frame(STAND_IN_MAC_A, '02:00:00:00:00:ce');
      await rig.send(LOOP_B, vxlanDatagram(42, barrier));
      t.same(await rig.deliveredAtLeast(42, 1), [barrier]);
      await eventually(() => rig.hostStats.foreignVniSenders().length > 0, { timeoutMs: LOOPBACK_WAIT_MS });
      t.same(rig.hostStats.snapshot().drops, { rx_wrong_vni: 1 }, 'counted in the host Stats');
      t.match(rig.hostStats.foreignVniSenders(), [{ address: LOOP_B, vni: 44, count: 1 }], 'sender and VNI named');
      t.same([n42.stats.snapshot().drops, n43.stats.snapshot().drops], [{ rx_source_not_allowed: 1 }, {}], 'in no network');
    });

    await t.test('tx: each TAP floods to its own peers with its own VNI', async (t) => {
      const b42 = frame(BROADCAST, STAND_IN_MAC_A, Buffer.from('flood 42'));
      const b43 = frame(BROADCAST, STAND_IN_MAC_B, Buffer.from('flood 43'));
      rig.inject(42, b42);
      rig.inject(43, b43);
      await eventually(() => n42.stats.snapshot().txPackets === 1 && n43.stats.snapshot().txPackets === 2, { timeoutMs: LOOPBACK_WAIT_MS });
      const sent = (await rig.sent()).sort((x, y) => x.to.localeCompare(y.to) || x.datagram.compare(y.datagram));
      t.same(sent, [
        { to: LOOP_B, datagram: vxlanDatagram(42, b42) },
        { to: LOOP_B, datagram: vxlanDatagram(43, b43) },
        { to: LOOP_C, datagram: vxlanDatagram(43, b43) },
      ].sort((x, y) => x.to.localeCompare(y.to) || x.datagram.compare(y.datagram)));
      t.match(n42.stats.vtepSnapshot(), [{ vtep: LOOP_B, txPackets: 1 }]);
      t.match(n43.stats.vtepSnapshot().map((v) => [v.vtep, v.txPackets]).sort(), [[LOOP_B, 1], [LOOP_C, 1]]);
    });

    await t.test('a VNI or dev served already is refused', async (t) => {
      const again = network(42, [], '02:00:00:00:42:09');
      await t.rejects(rig.plane.addNetwork({ ...again.options, dev: 'other' }), { code: 'VXLAND_NETWORK_EXISTS' });
      const byDev = network(45, [], '02:00:00:00:45:09');
      await t.rejects(rig.plane.addNetwork({ ...byDev.options, dev: 'vxl43' }), { code: 'VXLAND_NETWORK_EXISTS' });
    });
  });

  t.test(`${name}: a network added and removed while another carries traffic`, async (t) => {
    const { rig, n42 } = await startedWith42(t, makeRig);
    const ROUNDS = 6;
    const PER_ROUND = 50;
    let sent = 0;
    let received = 0;
    const n43 = network(43, [LOOP_B], STAND_IN_MAC_B);
    for (let round = 0; round < ROUNDS; round++) {
      for (let i = 0; i < PER_ROUND; i++) await rig.send(LOOP_B, vxlanDatagram(42, frame(STAND_IN_MAC_A, MAC_X, Buffer.from(`r${round} #${sent++}`))));
      if (round === 1) await rig.plane.addNetwork(n43.options);
      if (round === 2) {
        const f = frame(STAND_IN_MAC_B, MAC_X);
        await rig.send(LOOP_B, vxlanDatagram(43, f));
        t.same(await rig.deliveredAtLeast(43, 1), [f], 'the added network carries traffic at once');
      }
      if (round === 3) {
        await rig.plane.removeNetwork(43);
        t.ok(rig.tapClosed(43), "the removed network's TAP is closed once removeNetwork resolves");
      }
      received += (await rig.deliveredAtLeast(42, sent - received)).length;
    }
    t.equal(received, sent, `all ${sent} frames of network 42 arrived`);
    t.match(n42.stats.snapshot(), { rxPackets: sent, dropsTotal: 0 }, 'and none was dropped');
    await rig.send(LOOP_B, vxlanDatagram(43, frame(STAND_IN_MAC_B, MAC_X)));
    await rig.send(LOOP_B, vxlanDatagram(42, frame(STAND_IN_MAC_A, MAC_X)));
    await rig.deliveredAtLeast(42, 1);
    await eventually(() => rig.hostStats.snapshot().drops.rx_wrong_vni === 1, { timeoutMs: LOOPBACK_WAIT_MS });
    t.pass('after removal, VNI 43 is foreign');
    const back = await rig.plane.addNetwork(network(43, [LOOP_B], STAND_IN_MAC_B).options);
    t.equal(back.dev, 'vxl43', 'the same network can be added again');
    await rig.plane.removeNetwork(99);
    t.pass('removing an unknown VNI is a no-op');
  });

  t.test(`${name}: a network removed while its own datagrams arrive, ten times over`, async (t) => {
    const { rig, n42 } = await startedWith42(t, makeRig);
    const CYCLES = 10;
    const PER_CYCLE = 40;
    let accounted = 0;
    let delivered = 0;
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      const n43 = network(43, [LOOP_B], STAND_IN_MAC_B);
      await rig.plane.addNetwork(n43.options);
      const sends: Array<Promise<void>> = [];
      const send = (i: number) => sends.push(rig.send(LOOP_B, vxlanDatagram(43, frame(STAND_IN_MAC_B, MAC_X, Buffer.from(`cycle ${cycle} #${i}`)))));
      for (let i = 0; i < PER_CYCLE / 2; i++) send(i);
      // Removed once its traffic flows, while more of it is on the way.
      const got = await rig.deliveredAtLeast(43, 1);
      const removal = rig.plane.removeNetwork(43);
      for (let i = PER_CYCLE / 2; i < PER_CYCLE; i++) send(i);
      await Promise.all(sends);
      await removal;
      const probe = frame(STAND_IN_MAC_A, MAC_X, Buffer.from(`probe ${cycle}`));
      await rig.send(LOOP_B, vxlanDatagram(42, probe));
      t.same(await rig.deliveredAtLeast(42, 1), [probe], `cycle ${cycle}: network 42 carries on`);
      got.push(...(await rig.delivered(43)));
      t.ok(got.every((f) => f.subarray(14).toString().startsWith(`cycle ${cycle} #`)), `cycle ${cycle}: 43's TAP got only this cycle's frames (${got.length})`);
      const s = n43.stats.snapshot();
      t.equal(s.rxPackets, got.length, `cycle ${cycle}: its Stats count what its TAP got`);
      accounted += s.rxPackets + s.dropsTotal;
      delivered += s.rxPackets;
    }
    await eventually(() => accounted + (rig.hostStats.snapshot().drops.rx_wrong_vni ?? 0) === CYCLES * PER_CYCLE, { timeoutMs: LOOPBACK_WAIT_MS });
    t.pass(`every one of the ${CYCLES * PER_CYCLE} datagrams of 43 was delivered, dropped in 43, or a host-level wrong VNI`);
    t.same(rig.hostStats.snapshot().drops, { rx_wrong_vni: CYCLES * PER_CYCLE - accounted }, 'and nothing else was dropped');
    t.comment(`${delivered} delivered to 43 before its removal took effect, ${CYCLES * PER_CYCLE - accounted} after`);
  });

  t.test(`${name}: a network whose TAP fails is removed alone, while another carries traffic`, async (t) => {
    const { rig, n42 } = await startedWith42(t, makeRig);
    const budget = new VtepBudget();
    const n43 = network(43, [LOOP_B], STAND_IN_MAC_B, budget);
    const failures: VxlandError[] = [];
    await rig.plane.addNetwork({ ...n43.options, onFailed: (err) => failures.push(err) });
    const f43 = frame(STAND_IN_MAC_B, MAC_X);
    await rig.send(LOOP_B, vxlanDatagram(43, f43));
    t.same(await rig.deliveredAtLeast(43, 1), [f43], '43 carries traffic before its TAP fails');
    await eventually(() => n43.stats.vtepSnapshot().length === 1, { timeoutMs: LOOPBACK_WAIT_MS });
    t.equal(budget.inUse, 1, "43's series for B is taken from the budget");

    const ROUNDS = 6;
    const PER_ROUND = 50;
    let sent = 0;
    let received = 0;
    for (let round = 0; round < ROUNDS; round++) {
      for (let i = 0; i < PER_ROUND; i++) await rig.send(LOOP_B, vxlanDatagram(42, frame(STAND_IN_MAC_A, MAC_X, Buffer.from(`r${round} #${sent++}`))));
      if (round === 2) {
        rig.failTap(43);
        await eventually(() => failures.length > 0, { timeoutMs: LOOPBACK_WAIT_MS, what: 'onFailed for 43' });
      }
      received += (await rig.deliveredAtLeast(42, sent - received)).length;
    }
    t.equal(received, sent, `all ${sent} frames of network 42 arrived`);
    t.match(n42.stats.snapshot(), { rxPackets: sent, dropsTotal: 0 }, 'and none was dropped');
    t.equal(failures.length, 1, 'onFailed ran once');
    t.match(failures[0], { code: 'VXLAND_DEVICE', errno: EBADFD, syscall: 'read' }, 'with the errno and the failed call');
    t.match(failures[0].message, /^TAP device error: read failed: .*\(EBADFD\) \[vxl43\]$/, 'one line naming the device');
    if (name === 'dgram') t.ok(rig.tapClosed(43), "the failed network's device is closed");  // the native stand-in's end was closed to fail it

    const AFTER = 3;
    for (let i = 0; i < AFTER; i++) await rig.send(LOOP_B, vxlanDatagram(43, frame(STAND_IN_MAC_B, MAC_X, Buffer.from(`after #${i}`))));
    const barrier = frame(STAND_IN_MAC_A, MAC_X, Buffer.from('barrier'));
    await rig.send(LOOP_B, vxlanDatagram(42, barrier));
    t.same(await rig.deliveredAtLeast(42, 1), [barrier], '42 carries on');
    await eventually(() => rig.hostStats.snapshot().drops.rx_wrong_vni === AFTER, { timeoutMs: LOOPBACK_WAIT_MS, describe: () => JSON.stringify(rig.hostStats.snapshot().drops) });
    t.pass("43's datagrams are host-level rx_wrong_vni from then on");
    t.equal(budget.inUse, 0, "43's per-VTEP series are given back to the budget");
    t.equal(failures.length, 1, 'still one onFailed');
    const back = await rig.plane.addNetwork(network(43, [LOOP_B], STAND_IN_MAC_B).options);
    t.equal(back.dev, 'vxl43', 'the failed network can be added again');
  });

  t.test(`${name}: without onFailed, a TAP failure is the plane's onFatal`, async (t) => {
    const rig = await makeRig(t);
    await rig.plane.addNetwork(network(42, [LOOP_B], STAND_IN_MAC_A).options);
    await rig.plane.addNetwork(network(43, [LOOP_B], STAND_IN_MAC_B).options);
    const fatal: Error[] = [];
    rig.plane.start((err) => fatal.push(err));
    rig.failTap(43);
    await eventually(() => fatal.length > 0, { timeoutMs: LOOPBACK_WAIT_MS, what: 'onFatal' });
    t.match(fatal, [{ code: 'VXLAND_DEVICE', errno: EBADFD, syscall: 'read' }], 'VXLAND_DEVICE with the errno, as before');
  });
}

// With a FakeEngine the test chooses when the failure of a removed TAP
// arrives; that the real engine echoes each TAP's token in 'tapFailed' is
// shown above ("a network whose TAP fails…" on the native rig: the plane
// hands tokens to the engine and only a matching one reaches onFailed).
t.test('native: a TAP failure the engine reports for a removed network never reaches the network re-added with its VNI', async (t) => {
  const engine = new FakeEngine();
  const tokens: number[] = [];
  const plane = new NativePlane({
    engine,
    srcPorts: [],
    openTap: (o, token) => {
      tokens.push(token);
      const slot = engine.addNetwork({ vni: o.vni, mtu: o.mtu, ownMac: o.mac, tapFd: 100 + tokens.length, name: o.dev, token });
      return { slot, mac: o.mac, dev: o.dev };
    },
  }, { hostStats: new Stats(), log: pino({ level: 'silent' }) });
  t.teardown(() => plane.stop());
  const fatal: Error[] = [];
  plane.start((err) => fatal.push(err));
  const failures: string[] = [];
  const add = (label: string) => plane.addNetwork({ ...network(43, [LOOP_B], STAND_IN_MAC_B).options, onFailed: () => failures.push(label) });
  await add('first');
  await plane.removeNetwork(43);
  await add('second');
  t.equal(new Set(tokens).size, 2, `each add gave its TAP a token of its own (${tokens.join(', ')})`);
  t.equal(engine.networks.get(43)?.token, tokens[1], 'the engine carries the second TAP with the second token');

  const readFailed = Object.assign(new Error('read failed [vxl43]'), { errno: EBADFD, code: 'EBADFD', syscall: 'read' });
  await engine.emit({ type: 'tapFailed', vni: 43, token: tokens[0], error: readFailed });
  t.same(failures, [], "the first TAP's late failure is ignored");
  t.ok(engine.networks.has(43), 'and the second network is still carried');
  await t.rejects(add('third'), { code: 'VXLAND_NETWORK_EXISTS' }, 'vni 43 is still served');

  await engine.emit({ type: 'tapFailed', vni: 43, token: tokens[1], error: readFailed });
  await eventually(() => failures.length > 0, { timeoutMs: LOOPBACK_WAIT_MS, what: "the second TAP's failure" });
  t.same(failures, ['second'], "the second TAP's failure goes to the second network's onFailed");
  await eventually(() => !engine.networks.has(43), { timeoutMs: LOOPBACK_WAIT_MS, what: 'the failed network removed' });
  t.same(fatal, [], 'nothing fatal');
});


// ---- in namespaces: one plane with networks 42 and 43 facing a kernel host ----

/** vxland's TAPs and the kernel's vxlan devices all have this MAC: the same
 *  MAC lives in both networks, on both sides. */
const SHARED_MAC = '02:00:00:00:5a:01';
const KERNEL_MAC = '02:00:00:00:5b:01';
const TRANSFER_BYTES = 20 * 1024 * 1024;
const BIG_TRANSFER_BYTES = 100 * 1024 * 1024;

/** tcpdump on dev counting frames of filter until stopped. */
async function capture(t: TapLike, ns: string, dev: string, filter: string): Promise<{ stop(): Promise<number> }> {
  const p = spawnDaemon(t, ns, ['tcpdump', '-i', dev, '-n', '-p', '-w', '/dev/null', filter]);
  await eventually(() => p.stderrLines.some((l) => l.includes('listening on')), { timeoutMs: 10_000 });
  return {
    async stop() {
      p.proc.kill('SIGINT');
      await p.exited;
      const m = p.stderrLines.map((l) => /^(\d+) packets? captured/.exec(l)).find((x) => x !== null);
      if (!m) throw new Error(`tcpdump on ${dev} printed no count: ${p.stderrLines.join(' | ')}`);
      return Number(m[1]);
    },
  };
}

/** Host A: the plane (plane-host.ts) with networks 42 and 43; host B: the
 *  kernel with a vxlan device for each. */
async function planeFacingKernel(t: Test, datapath: string): Promise<{ a: Host; b: Host; host: LineProcess }> {
  const topo = await createTopology(t, { hosts: 2 });
  const [a, b] = topo.hosts;
  for (const vni of [42, 43]) {
    await addKernelVxlan(b, { name: `vxk${vni}`, vni, remotes: [a.ip], address: `10.${vni}.0.2/24`, mac: KERNEL_MAC });
  }
  const host: LineProcess = spawnDaemon(t, a.ns, [process.execPath, path.join(FIXTURES_DIR, 'plane-host.js'), '--datapath', datapath, '--local', a.ip,
    ...[42, 43].flatMap((vni) => ['--net', `vni=${vni},dev=vxl${vni},address=10.${vni}.0.1/24,peer=${b.ip},mac=${SHARED_MAC}`])]);
  const ready = await host.waitForJson((j) => j.event === 'ready' || j.event === 'fatal', 15_000);
  t.equal(ready.event, 'ready', `the plane is up (${JSON.stringify(ready)})`);
  t.same((ready.networks as Array<{ vni: number }>).map((n) => n.vni), [42, 43]);
  return { a, b, host };
}

/** Runs a 100 MB verified transfer kernel -> vxland in network 42 and calls
 *  during() once 4 MB of it arrived; resolves when the transfer completed,
 *  with whether it was still running when during() finished. */
async function transferIn42During(t: Test, a: Host, b: Host, label: string, during: () => Promise<void>): Promise<boolean> {
  let finished = false;
  const running = transferIn(t, b.ns, { ns: a.ns, ip: '10.42.0.1' }, BIG_TRANSFER_BYTES, label).finally(() => {
    finished = true;
  });
  const rxBytes = async () => Number((await exec(a.ns, ['cat', '/sys/class/net/vxl42/statistics/rx_bytes'])).stdout.trim());
  const before = await rxBytes();
  await eventually(async () => (await rxBytes()) - before > 4 * 1024 * 1024, { timeoutMs: 30_000 });
  await during();
  const overlapped = !finished;
  await running;
  return overlapped;
}

async function transferIn(t: Test, from: string, to: { ns: string; ip: string }, bytes: number, label: string): Promise<void> {
  const r = await verifiedTcpTransfer({ serverNs: to.ns, serverIp: to.ip, clientNs: from, bytes, timeoutMs: 90_000 });
  t.equal(r.received.bytes, bytes, `${label}: all bytes arrived`);
  t.equal(r.received.sha256, r.expectedSha256, `${label}: sha256 verified`);
}

for (const datapath of datapathsUnderTest()) {
  t.test(`${datapath}: networks 42 and 43 on one port, facing a kernel host with two vxlan devices`, async (t) => {
    if (skipUnlessRoot(t)) return;
    const { a, b, host } = await planeFacingKernel(t, datapath);

    await t.test('ping in each network at the same time', async (t) => {
      const [p42, p43] = await Promise.all([ping(a.ns, '10.42.0.2', { count: 5, intervalS: 0.2 }), ping(a.ns, '10.43.0.2', { count: 5, intervalS: 0.2 })]);
      t.equal(p42.received, 5, 'network 42');
      t.equal(p43.received, 5, 'network 43');
    });

    await t.test("a verified transfer in each at the same time; 42's frames never reach 43's TAP", async (t) => {
      const on43 = await capture(t, a.ns, 'vxl43', 'net 10.42.0.0/24');
      const on42 = await capture(t, a.ns, 'vxl42', 'net 10.42.0.0/24');
      await Promise.all([
        transferIn(t, b.ns, { ns: a.ns, ip: '10.42.0.1' }, TRANSFER_BYTES, '42: kernel -> vxland'),
        transferIn(t, a.ns, { ns: b.ns, ip: '10.43.0.2' }, TRANSFER_BYTES, '43: vxland -> kernel'),
      ]);
      const [seen42, seen43] = [await on42.stop(), await on43.stop()];
      t.ok(seen42 > 1000, `the capture works: ${seen42} frames of 10.42/24 on vxl42`);
      t.equal(seen43, 0, 'and none of them on vxl43');
    });

    await t.test('removing network 43 while a transfer runs in 42: the transfer completes intact', async (t) => {
      const overlapped = await transferIn42During(t, a, b, '42 during the removal', async () => {
        host.proc.kill('SIGUSR1');
        await host.waitForJson((j) => j.event === 'removed' && j.vni === 43, 10_000);
        t.equal((await exec(a.ns, ['ip', 'link', 'show', 'vxl43'], { allowFail: true })).code === 0, false, 'vxl43 is gone');
      });
      t.ok(overlapped, 'network 43 was removed while the transfer ran');
      t.equal((await ping(a.ns, '10.42.0.2', { count: 3, intervalS: 0.2 })).received, 3, 'network 42 still carries traffic');
    });
    t.same(host.logs.filter((j) => j.event === 'fatal'), [], 'no fatal error');
  });

  t.test(`${datapath}: network 43's TAP deleted from outside while a transfer runs in 42`, async (t) => {
    if (skipUnlessRoot(t)) return;
    const { a, b, host } = await planeFacingKernel(t, datapath);
    let failed: Record<string, unknown> = {};
    const overlapped = await transferIn42During(t, a, b, '42 while vxl43 is deleted', async () => {
      await exec(a.ns, ['ip', 'link', 'del', 'vxl43']);
      failed = await host.waitForJson((j) => j.event === 'failed', 10_000);
    });
    t.ok(overlapped, 'vxl43 was deleted while the transfer ran');
    t.match(failed, { vni: 43, code: 'VXLAND_DEVICE', syscall: 'read', errno: Number }, 'the rig reports the failure of network 43');
    t.match(failed.message, /\[vxl43\]$/, 'naming the device');
    t.equal((await ping(a.ns, '10.42.0.2', { count: 3, intervalS: 0.2 })).received, 3, 'network 42 still carries traffic');
    t.equal((await ping(b.ns, '10.43.0.1', { count: 2, intervalS: 0.2 })).received, 0, 'network 43 carries nothing');
    host.proc.kill('SIGUSR2');
    const stats = await host.waitForJson((j) => j.event === 'stats', 10_000);
    t.ok(((stats.host as { drops: Record<string, number> }).drops.rx_wrong_vni ?? 0) > 0, "the kernel's datagrams for 43 are host-level rx_wrong_vni");
    t.same(host.logs.filter((j) => j.event === 'fatal' || j.event === 'failed').length, 1, 'one failure, no fatal error');
  });
}
