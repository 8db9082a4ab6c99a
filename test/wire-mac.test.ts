import t from 'tap';
import { formatMacKey, isLearnableMacKey, macKeyAt, macKeyOf, parseMac } from '../src/wire/mac';

t.test('parseMac normalises and rejects malformed text', async (t) => {
  t.equal(parseMac('AA-BB-cc-dd-EE-0f'), 'aa:bb:cc:dd:ee:0f');
  t.equal(parseMac(' 02:00:00:00:00:01 '), '02:00:00:00:00:01');
  for (const bad of ['', '02:00:00:00:00', '02:00:00:00:00:01:02', 'zz:00:00:00:00:01', '0200.0000.0001', '2:0:0:0:0:1']) {
    t.equal(parseMac(bad), null, `rejects ${JSON.stringify(bad)}`);
  }
});

t.test('keys round trip between bytes, text and numbers', async (t) => {
  const text = 'fe:dc:ba:98:76:54';
  const key = macKeyOf(text);
  t.equal(formatMacKey(key), text);
  t.equal(macKeyAt(Buffer.from('00fedcba98765400', 'hex'), 1), key);
  t.equal(formatMacKey(0), '00:00:00:00:00:00');
});

t.test('multicast, broadcast and zero MACs are not learnable', async (t) => {
  t.notOk(isLearnableMacKey(macKeyOf('ff:ff:ff:ff:ff:ff')));
  t.notOk(isLearnableMacKey(macKeyOf('01:00:5e:00:00:01')));
  t.notOk(isLearnableMacKey(macKeyOf('33:33:00:00:00:01')));
  t.notOk(isLearnableMacKey(0));
  t.ok(isLearnableMacKey(macKeyOf('02:00:00:00:00:01')));
  t.ok(isLearnableMacKey(macKeyOf('fe:ff:ff:ff:ff:ff')));
});
