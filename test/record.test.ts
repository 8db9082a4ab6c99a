// The etcd layout of membership: keys and values round-trip, and a record
// that does not match its key or the format is refused with a reason.
import t from 'tap';
import { decodeRecord, encodeRecord, memberKey, parseMemberKey } from '../src/membership/record';

const P = '/vxland';
const R = { vni: 42, vtep: '192.0.2.1', port: 4789, mac: '02:00:00:00:00:01', bindings: [{ ip: '10.42.0.1', mac: '02:00:00:00:00:01' }] };

t.test('a record round-trips through its key and value', async (t) => {
  const key = memberKey(P, 42, '192.0.2.1');
  t.equal(key, '/vxland/networks/42/vteps/192.0.2.1');
  t.same(JSON.parse(encodeRecord(R)), { version: 1, vtep: '192.0.2.1', port: 4789, mac: '02:00:00:00:00:01', bindings: [{ ip: '10.42.0.1', mac: '02:00:00:00:00:01' }] });
  t.same(decodeRecord(P, key, encodeRecord(R)), R);
  t.same(parseMemberKey(P, memberKey(P, 7, '2001:db8::1')), { vni: 7, vtep: '2001:db8::1' }, 'an IPv6 VTEP in the key');
  t.same(decodeRecord(P, key, encodeRecord({ ...R, mac: '02:00:00:00:00:0A' })).mac, '02:00:00:00:00:0a', 'MACs normalised');
});

t.test('keys outside the layout and bad values are refused with a reason', async (t) => {
  for (const key of ['/other/networks/42/vteps/192.0.2.1', '/vxland/networks/x/vteps/192.0.2.1', '/vxland/networks/42/peers/192.0.2.1',
    '/vxland/networks/42/vteps/192.0.2.1/extra', '/vxland/networks/99999999/vteps/192.0.2.1', '/vxland/networks/42/vteps/2001:DB8::1']) {
    t.equal(parseMemberKey(P, key), null, `not a member key: ${key}`);
  }
  const key = memberKey(P, 42, '192.0.2.1');
  const bad = (value: string, message: string): void => {
    t.throws(() => decodeRecord(P, key, value), { message: new RegExp(message) }, message);
  };
  bad('{', 'value is not JSON');
  bad(JSON.stringify({ ...JSON.parse(encodeRecord(R)), version: 2 }), 'version 2 is not 1');
  bad(encodeRecord({ ...R, vtep: '192.0.2.9' }), 'does not match the key');
  bad(encodeRecord({ ...R, port: 0 }), 'port 0 is not 1..65535');
  bad(encodeRecord({ ...R, mac: 'ff:ff:ff:ff:ff:ff' }), 'is not a unicast MAC');
  bad(JSON.stringify({ ...JSON.parse(encodeRecord(R)), bindings: [{ ip: 'x', mac: '02:00:00:00:00:01' }] }), 'binding .* is not');
  bad(JSON.stringify({ ...JSON.parse(encodeRecord(R)), bindings: {} }), 'bindings is not a list');
});
