import t from 'tap';
import { DropReason } from '../src/ports/drops';
import { MAX_FOREIGN_VNI_SENDERS, MAX_TRACKED_VTEPS, OTHER_VTEP, Stats } from '../src/datapath/stats';

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
