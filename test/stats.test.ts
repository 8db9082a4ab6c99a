import t from 'tap';
import { DropReason } from '../src/ports/drops';
import { MAX_FOREIGN_VNI_SENDERS, MAX_TRACKED_VTEPS, OTHER_VTEP, Stats, VtepBudget } from '../src/datapath/stats';
import { LEARN_REPORT_INTERVAL_MS } from '../src/tables/limits.generated';
import { eventually } from './helpers/eventually';
import { createTopology, exec, skipUnlessRoot } from './helpers/netns';
import { datapathsUnderTest, startVxland, TEST_VNI } from './helpers/vxland';

t.test('drops are counted by reason name', async (t) => {
  const s = new Stats();
  s.drop(DropReason.RxWrongVni);
  s.drop(DropReason.RxWrongVni);
  s.drop(DropReason.TxQueueFull);
  t.match(s.snapshot(), { drops: { rx_wrong_vni: 2, tx_queue_full: 1 }, dropsTotal: 3 });
});

t.test('tracked VTEPs have counters of their own; others share one, bounded', async (t) => {
  const s = new Stats();
  s.track('192.0.2.2');
  s.track('192.0.2.2');
  s.vtep('192.0.2.2').rxPackets += 3;
  s.vtep('203.0.113.9').drops++;
  t.same(s.vtepSnapshot().map((v) => [v.vtep, v.rxPackets, v.drops]), [['192.0.2.2', 3, 0], [OTHER_VTEP, 0, 1]]);
  for (let i = 0; i < MAX_TRACKED_VTEPS + 10; i++) s.track(`10.${i >> 16 & 255}.${i >> 8 & 255}.${i & 255}`);
  t.equal(s.vtepSnapshot().length, MAX_TRACKED_VTEPS + 1, 'at most MAX_TRACKED_VTEPS plus other');
});

t.test('foreign VNI senders are remembered, bounded', async (t) => {
  const s = new Stats();
  s.foreignVni('192.0.2.7', 43, 1000);
  s.foreignVni('192.0.2.7', 43, 2000);
  t.same(s.foreignVniSenders(), [{ address: '192.0.2.7', vni: 43, count: 2, lastMs: 2000 }]);
  s.foreignVni('192.0.2.7', 43, 3000, 5);
  t.same(s.foreignVniSenders(), [{ address: '192.0.2.7', vni: 43, count: 7, lastMs: 3000 }], 'a batch counts all its datagrams');
  for (let i = 0; i < 200; i++) s.foreignVni('192.0.2.8', i, 1);
  t.equal(s.foreignVniSenders().length, MAX_FOREIGN_VNI_SENDERS);
});

t.test('a data path that counts elsewhere brings its counts in before every snapshot', async (t) => {
  const s = new Stats();
  s.track('192.0.2.2');
  let engineRx = 0;
  s.pullFrom(() => {
    s.rxPackets += engineRx;
    s.vtep('192.0.2.2').rxPackets += engineRx;
    engineRx = 0;
  });
  engineRx = 5;
  t.equal(s.snapshot().rxPackets, 5, 'status sees what the engine counted just now');
  engineRx = 2;
  t.equal(s.vtepSnapshot()[0].rxPackets, 7, 'and so does stats, per VTEP');
  s.pullFrom(null);
  engineRx = 9;
  t.equal(s.snapshot().rxPackets, 7, 'once the data path stops, nothing is pulled');
});

t.test('learn refused counts a refused MAC once per report interval, not per frame', async (t) => {
  const s = new Stats();
  for (let i = 0; i < 5; i++) s.learnRefused('vtepFull', 42, 0x020000000b02, 1000 + i);
  s.learnRefused('vtepFull', 42, 0x020000000b03, 1000);
  s.learnRefused('rate', 42, 0x020000000b02, 1000 + LEARN_REPORT_INTERVAL_MS);
  t.same(s.snapshot().learnRefused, { fdbFull: 0, vtepFull: 2, rate: 1 });
});

// Over the network, on each data path: a peer sends FRAMES_PER_MAC frames
// from each of MACS source MACs at once; with room for one learned MAC per
// VTEP, the other MACS - 1 are refused, and `vxland stats` counts them as
// that many MACs on both paths (not as frames on one of them).
const MACS = 3;
const FRAMES_PER_MAC = 5;
for (const datapath of datapathsUnderTest()) {
  t.test(`${datapath}: learn refused counts MACs, as on the other data path`, async (t) => {
    if (skipUnlessRoot(t)) return;
    const topo = await createTopology(t, { hosts: 2 });
    const [a, b] = topo.hosts;
    const v = await startVxland(t, a, { datapath, peers: [b.ip], extraArgs: ['--max-fdb-per-vtep', '1'] });
    const send = `
      const s = require('node:dgram').createSocket('udp4');
      const out = [];
      for (let m = 1; m <= ${MACS}; m++) for (let i = 0; i < ${FRAMES_PER_MAC}; i++) {
        const b = Buffer.alloc(8 + 60);
        b[0] = 0x08; b.writeUIntBE(${TEST_VNI}, 4, 3);
        Buffer.from('02dead000001' + '0200000b000' + m, 'hex').copy(b, 8);
        b.writeUInt16BE(0x88b5, 20);
        out.push(b);
      }
      let left = out.length;
      for (const d of out) s.send(d, 4789, '${a.ip}', () => { if (--left === 0) s.close(); });`;
    await exec(b.ns, [process.execPath, '-e', send], { timeoutMs: 10_000 });
    const total = MACS * FRAMES_PER_MAC;
    const stats = await eventually(() => v.json<any>('stats'), {
      until: (s) => {
        const fromB = s.vteps.find((x: any) => x.vtep === b.ip) ?? { rxPackets: 0, drops: 0 };
        return fromB.rxPackets + fromB.drops >= total && s.stats.learnRefused.vtepFull >= MACS - 1;
      },
      timeoutMs: 10_000, intervalMs: 50, what: `all ${total} frames from B counted and ${MACS - 1} MACs refused`,
      describe: (s) => JSON.stringify({ vteps: s.vteps, learnRefused: s.stats.learnRefused }),
    });
    t.equal(stats.vteps.find((x: any) => x.vtep === b.ip)?.rxPackets, total, 'every frame was delivered (refused learning drops nothing)');
    t.same(stats.stats.learnRefused, { fdbFull: 0, vtepFull: MACS - 1, rate: 0 }, `${MACS - 1} MACs refused`);
    const learned = (await v.json<any[]>('fdb', 'show')).filter((e) => e.kind === 'learned' && e.vtep === b.ip);
    t.equal(learned.length, 1, 'one MAC learned behind the peer');
  });
}

t.test('stats of the networks share one per-VTEP budget', async (t) => {
  const budget = new VtepBudget(3);
  const a = new Stats(budget);
  const b = new Stats(budget);
  a.track('192.0.2.1');
  a.track('192.0.2.2');
  b.track('192.0.2.1');
  b.track('192.0.2.3');
  t.same(a.vtepSnapshot().map((v) => v.vtep), ['192.0.2.1', '192.0.2.2']);
  t.same(b.vtepSnapshot().map((v) => v.vtep), ['192.0.2.1'], 'the third series took the last of the budget');
  b.vtep('192.0.2.3').rxPackets++;
  t.same(b.vtepSnapshot().map((v) => v.vtep), ['192.0.2.1', 'other'], 'past it, other');
  a.releaseVteps();
  b.track('192.0.2.3');
  t.same(b.vtepSnapshot().map((v) => v.vtep), ['192.0.2.1', '192.0.2.3', 'other'], 'a released Stats gives its series back');
});
