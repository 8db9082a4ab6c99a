import t from 'tap';
import { encodeGratuitousArp, GRATUITOUS_ARP_FRAME_BYTES } from '../src/wire/arp';

// Captured with tcpdump -xx from the kernel's own arp_notify (MAC
// 02:42:ac:11:00:02, address 10.42.0.1).
const KERNEL_GARP = 'ffffffffffff0242ac1100020806000108000604000102' + '42ac1100020a2a0001000000000000' + '0a2a0001';

t.test('a gratuitous ARP is byte for byte what the kernel sends', async (t) => {
  const mac = Buffer.from('0242ac110002', 'hex');
  const buf = Buffer.alloc(64, 0xee);
  const length = encodeGratuitousArp(buf, 5, mac, 0, 0x0a2a0001);
  t.equal(length, GRATUITOUS_ARP_FRAME_BYTES);
  t.equal(buf.subarray(5, 5 + length).toString('hex'), KERNEL_GARP);
  t.equal(buf[4], 0xee, 'nothing written before offset');
  t.equal(buf[5 + length], 0xee, 'nothing written past the frame');
});

t.test('the MAC is read at its offset and high addresses keep their top bit', async (t) => {
  const holder = Buffer.from('aaaa02000000000b', 'hex');
  const buf = Buffer.alloc(GRATUITOUS_ARP_FRAME_BYTES, 0x55);
  encodeGratuitousArp(buf, 0, holder, 2, 0xc0a80101);
  t.equal(buf.subarray(6, 12).toString('hex'), '02000000000b', 'source MAC');
  t.equal(buf.subarray(22, 28).toString('hex'), '02000000000b', 'sender hardware address');
  t.equal(buf.subarray(28, 32).toString('hex'), 'c0a80101', 'sender IP 192.168.1.1');
  t.equal(buf.subarray(32, 38).toString('hex'), '000000000000', 'target hardware address zero');
  t.equal(buf.subarray(38, 42).toString('hex'), 'c0a80101', 'target IP = sender IP');
});
