import t from 'tap';
import { encodeUnsolicitedNa, icmpv6Checksum, UNSOLICITED_NA_FRAME_BYTES } from '../src/wire/ndisc';

// Captured with tcpdump -xx from the kernel's own ndisc_notify (MAC
// 02:42:ac:11:00:02, address fd42::1).
const KERNEL_NA =
  '333300000001' + '0242ac110002' + '86dd' +
  '6000000000203aff' + 'fd420000000000000000000000000001' + 'ff020000000000000000000000000001' +
  '8800adc2' + '20000000' + 'fd420000000000000000000000000001' + '0201' + '0242ac110002';

t.test('an unsolicited NA is byte for byte what the kernel sends, checksum included', async (t) => {
  const mac = Buffer.from('0242ac110002', 'hex');
  const addr = Buffer.from('fd420000000000000000000000000001', 'hex');
  const buf = Buffer.alloc(128, 0xee);
  const length = encodeUnsolicitedNa(buf, 3, mac, 0, addr, 0);
  t.equal(length, UNSOLICITED_NA_FRAME_BYTES);
  t.equal(buf.subarray(3, 3 + length).toString('hex'), KERNEL_NA);
  t.equal(buf[2], 0xee, 'nothing written before offset');
  t.equal(buf[3 + length], 0xee, 'nothing written past the frame');
});

t.test('the checksum verifies, and any flipped bit breaks it', async (t) => {
  const frame = Buffer.from(KERNEL_NA, 'hex');
  t.equal(icmpv6Checksum(frame, 14), 0, 'the kernel frame sums to zero');
  const mac = Buffer.from('02ffffffff01', 'hex');
  const addr = Buffer.from('20010db8ffffffffffffffffffffffff', 'hex');
  const buf = Buffer.alloc(UNSOLICITED_NA_FRAME_BYTES);
  encodeUnsolicitedNa(buf, 0, mac, 0, addr, 0);
  t.equal(icmpv6Checksum(buf, 14), 0, 'an encoded frame with carries in the sum verifies');
  for (const byte of [22, 40, 54, 60, 62, 80, 85]) {
    const copy = Buffer.from(buf);
    copy[byte] ^= 0x10;
    t.not(icmpv6Checksum(copy, 14), 0, `flipping a bit of byte ${byte} is detected`);
  }
});

t.test('an odd payload length is summed with a zero pad byte', async (t) => {
  const packet = Buffer.alloc(40 + 3);
  packet.writeUInt16BE(3, 4);
  packet[40] = 0x12;
  packet[41] = 0x34;
  packet[42] = 0x56;
  // pseudo-header: length 3 + next header 58; payload words 0x1234, 0x5600.
  const sum = 3 + 58 + 0x1234 + 0x5600;
  t.equal(icmpv6Checksum(packet, 0), ~sum & 0xffff);
});
