import { isIPv6 } from 'node:net';
import t from 'tap';
import { ipv4Number, ipv6Bytes } from '../src/wire/ip';

t.test('an IPv4 literal becomes its 32-bit number, first octet most significant', async (t) => {
  t.equal(ipv4Number('0.0.0.0'), 0);
  t.equal(ipv4Number('10.42.0.1'), 0x0a2a0001);
  t.equal(ipv4Number('255.255.255.255'), 0xffffffff);
});

t.test('an IPv6 literal becomes its 16 bytes, :: anywhere', async (t) => {
  const cases: Array<[string, string]> = [
    ['::', '00000000000000000000000000000000'],
    ['::1', '00000000000000000000000000000001'],
    ['fd42::1', 'fd420000000000000000000000000001'],
    ['fe80::', 'fe800000000000000000000000000000'],
    ['2001:db8:0:1::ab:cd', '20010db8000000010000000000ab00cd'],
    ['2001:db8:1:2:3:4:5:6', '20010db8000100020003000400050006'],
  ];
  for (const [literal, hex] of cases) {
    t.ok(isIPv6(literal), `${literal} is a valid literal`);
    t.equal(ipv6Bytes(literal).toString('hex'), hex, literal);
  }
});
