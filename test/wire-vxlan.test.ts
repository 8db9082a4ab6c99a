import t from 'tap';
import {
  decodeVxlan,
  encodeVxlan,
  VNI_MAX,
  VXLAN_DECODE_NO_I_FLAG,
  VXLAN_DECODE_TRUNCATED,
  VXLAN_HEADER_BYTES,
} from '../src/wire/vxlan';

t.test('encode sets only the I flag and leaves reserved bits zero', async (t) => {
  const buf = Buffer.alloc(VXLAN_HEADER_BYTES + 4, 0xff);
  encodeVxlan(buf, 2, 0x123456);
  t.same([...buf.subarray(2, 10)], [0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0]);
  t.equal(buf[0], 0xff, 'bytes before the offset untouched');
  t.equal(buf[10], 0xff, 'bytes after the header untouched');
});

t.test('round trip at the VNI edges', async (t) => {
  for (const vni of [0, 1, 42, 0xfffffe, VNI_MAX]) {
    const buf = Buffer.alloc(8);
    encodeVxlan(buf, 0, vni);
    t.equal(decodeVxlan(buf, 0, 8), vni, `vni ${vni}`);
  }
});

t.test('decode refuses a truncated header', async (t) => {
  t.equal(decodeVxlan(Buffer.alloc(7, 0x08), 0, 7), VXLAN_DECODE_TRUNCATED);
  t.equal(decodeVxlan(Buffer.alloc(0), 0, 0), VXLAN_DECODE_TRUNCATED);
});

t.test('decode refuses a header with the I flag clear', async (t) => {
  const buf = Buffer.from([0xf7, 0xff, 0xff, 0xff, 0, 0, 42, 0]);
  t.equal(decodeVxlan(buf, 0, 8), VXLAN_DECODE_NO_I_FLAG);
});

t.test('decode ignores reserved bits (RFC 7348 §5), unlike the Linux driver', async (t) => {
  const buf = Buffer.from([0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x2a, 0xff]);
  t.equal(decodeVxlan(buf, 0, 8), 42);
});
