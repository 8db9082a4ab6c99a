import t from 'tap';
// Decoding is the packet core's (native/core_rx.cc): its rules (truncated,
// I flag, reserved bits ignored) are cases of test/conformance/cases.ts.
import { encodeVxlan, VNI_MAX, VXLAN_HEADER_BYTES } from '../src/wire/vxlan';

t.test('encode sets only the I flag and leaves reserved bits zero', async (t) => {
  const buf = Buffer.alloc(VXLAN_HEADER_BYTES + 4, 0xff);
  encodeVxlan(buf, 2, 0x123456);
  t.same([...buf.subarray(2, 10)], [0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0]);
  t.equal(buf[0], 0xff, 'bytes before the offset untouched');
  t.equal(buf[10], 0xff, 'bytes after the header untouched');
});

t.test('the VNI is written big-endian in bytes 4..6, at the edges of its range', async (t) => {
  for (const vni of [0, 1, 42, 0xfffffe, VNI_MAX]) {
    const buf = Buffer.alloc(8);
    encodeVxlan(buf, 0, vni);
    t.equal(buf.readUIntBE(4, 3), vni, `vni ${vni}`);
  }
});
