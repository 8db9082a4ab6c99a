// Property-based tests (fast-check) for the wire codecs and the FDB: the
// datagrams they see come from the network, so they must hold for every input,
// not just the examples in wire-vxlan/wire-mac/fdb.test.ts. A failure prints
// the seed and the shrunk counterexample; rerun it with
// FC_SEED=<seed> npx tap dist/test/wire-properties.test.js.
import fc from 'fast-check';
import t, { type Test } from 'tap';
import { Fdb, LearnOutcome } from '../src/fdb/fdb';
import { formatMacKey, isLearnableMacKey, macKeyAt, macKeyOf, parseMac } from '../src/wire/mac';
import { encodeVxlan, VNI_MAX, VXLAN_FLAG_I, VXLAN_HEADER_BYTES } from '../src/wire/vxlan';

const seedFromEnv = process.env.FC_SEED === undefined ? undefined : Number(process.env.FC_SEED);
const RUNS = { numRuns: 2000, ...(seedFromEnv === undefined ? {} : { seed: seedFromEnv }) };

/** Runs a property; a counterexample fails the tap test with fast-check's report. */
function check(t: Test, name: string, property: fc.IProperty<any> | fc.IAsyncProperty<any>, runs: Partial<fc.Parameters<unknown>> = RUNS): void {
  const details = fc.check(property as fc.IProperty<unknown>, runs as fc.Parameters<unknown>) as fc.RunDetails<unknown>;
  const report = fc.defaultReportMessage(details) ?? '';
  t.notOk(details.failed, `${name} (${details.numRuns} runs${details.failed ? '' : ', seed ' + details.seed})`, { diagnostic: details.failed, report });
}

const vniArb = fc.integer({ min: 0, max: VNI_MAX });
const bytesArb = (max: number) => fc.uint8Array({ minLength: 0, maxLength: max }).map((u) => Buffer.from(u));

t.test('VXLAN header', async (t) => {
  // Decoding is the packet core's: fuzzed in test/fuzz/fuzz_decode.cc.
  check(t, 'encode writes the VNI at any offset, touching only the 8 header bytes', fc.property(
    vniArb, fc.nat({ max: 64 }), fc.nat({ max: 64 }), fc.integer({ min: 0, max: 255 }),
    (vni, before, after, fill) => {
      const buf = Buffer.alloc(before + VXLAN_HEADER_BYTES + after, fill);
      encodeVxlan(buf, before, vni);
      if (buf.readUIntBE(before + 4, 3) !== vni) return false;
      if (buf[before] !== VXLAN_FLAG_I || buf.readUInt32BE(before) !== VXLAN_FLAG_I << 24 || buf[before + 7] !== 0) return false;
      for (let i = 0; i < before; i++) if (buf[i] !== fill) return false;
      for (let i = before + VXLAN_HEADER_BYTES; i < buf.length; i++) if (buf[i] !== fill) return false;
      return true;
    }));
});

const macKeyArb = fc.integer({ min: 0, max: 2 ** 48 - 1 });
const HEX = '0123456789abcdefABCDEF';

/** The text forms parseMac documents, built independently of its regex. */
function isMacText(text: string): boolean {
  const s = text.trim();
  if (s.length !== 17) return false;
  for (let i = 0; i < 17; i++) {
    if (i % 3 === 2) { if (s[i] !== ':' && s[i] !== '-') return false; }
    else if (!HEX.includes(s[i])) return false;
  }
  return true;
}

t.test('MAC addresses', async (t) => {
  check(t, 'key → text → key round trip, and the text is the normalised form', fc.property(macKeyArb, (key) => {
    const text = formatMacKey(key);
    return /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(text) && parseMac(text) === text && macKeyOf(text) === key;
  }));

  check(t, 'any spelling (case, - or :, surrounding blanks) parses to the one normalised form', fc.property(
    macKeyArb, fc.array(fc.boolean(), { minLength: 12, maxLength: 12 }), fc.array(fc.constantFrom(':', '-'), { minLength: 5, maxLength: 5 }),
    fc.constantFrom('', ' ', '\t', '  \n'),
    (key, upper, seps, blank) => {
      const hex = key.toString(16).padStart(12, '0').split('').map((c, i) => (upper[i] ? c.toUpperCase() : c));
      let text = '';
      for (let i = 0; i < 6; i++) text += hex[2 * i] + hex[2 * i + 1] + (i < 5 ? seps[i] : '');
      return parseMac(blank + text + blank) === formatMacKey(key);
    }));

  check(t, 'the 6 bytes in a frame give the same key as the text form', fc.property(
    fc.uint8Array({ minLength: 6, maxLength: 6 }), fc.nat({ max: 20 }),
    (mac, offset) => {
      const buf = Buffer.alloc(offset + 6, 0xee);
      Buffer.from(mac).copy(buf, offset);
      const text = [...mac].map((b) => b.toString(16).padStart(2, '0')).join(':');
      return macKeyAt(buf, offset) === macKeyOf(text) && formatMacKey(macKeyAt(buf, offset)) === text;
    }));

  check(t, 'parseMac never throws and accepts exactly the documented forms', fc.property(
    fc.oneof(
      fc.string({ maxLength: 30 }),
      fc.string({ unit: fc.constantFrom(...'0123456789abcdefABCDEFgG:-. \t'.split('')), minLength: 15, maxLength: 19 }),
      fc.string({ unit: 'binary', maxLength: 20 }),
    ),
    (text) => {
      const parsed = parseMac(text);
      if (!isMacText(text)) return parsed === null;
      return parsed !== null && parsed === parsed.toLowerCase() && parseMac(parsed) === parsed;
    }));

  check(t, 'learnable means unicast and not all zeros', fc.property(macKeyArb, (key) => {
    const firstByte = Math.floor(key / 2 ** 40);
    return isLearnableMacKey(key) === (key !== 0 && (firstByte & 1) === 0);
  }));
});

// ---- FDB invariants under random operation sequences ----

const VNIS = [42, 43];
const VTEPS = ['198.18.0.2', '198.18.0.3', '198.18.0.4', '198.18.0.5'];
// A small pool, half unicast, so sequences keep hitting the same entries.
const MACS = Array.from({ length: 24 }, (_, i) => formatMacKey((i % 6 === 5 ? 0x01 : 0x02) * 2 ** 40 + i + 1));

type Op =
  | { op: 'learn'; vni: number; mac: string; vtep: string }
  | { op: 'addStatic'; vni: number; mac: string; vtep: string }
  | { op: 'remove'; vni: number; mac: string }
  | { op: 'addPeer'; vni: number; vtep: string }
  | { op: 'removePeer'; vni: number; vtep: string }
  | { op: 'flush'; learnedOnly: boolean }
  | { op: 'sweep' }
  | { op: 'tick'; ms: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 10, arbitrary: fc.record({ op: fc.constant('learn' as const), vni: fc.constantFrom(...VNIS), mac: fc.constantFrom(...MACS), vtep: fc.constantFrom(...VTEPS) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('addStatic' as const), vni: fc.constantFrom(...VNIS), mac: fc.constantFrom(...MACS.filter((m) => isLearnableMacKey(macKeyOf(m)))), vtep: fc.constantFrom(...VTEPS) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('remove' as const), vni: fc.constantFrom(...VNIS), mac: fc.constantFrom(...MACS) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('addPeer' as const), vni: fc.constantFrom(...VNIS), vtep: fc.constantFrom(...VTEPS) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('removePeer' as const), vni: fc.constantFrom(...VNIS), vtep: fc.constantFrom(...VTEPS) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('flush' as const), learnedOnly: fc.boolean() }) },
  { weight: 1, arbitrary: fc.constant({ op: 'sweep' as const }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 3000 }) }) },
);

const fdbLimitsArb = fc.record({
  maxLearned: fc.integer({ min: 0, max: 20 }),
  maxLearnedPerVtep: fc.integer({ min: 0, max: 10 }),
  learnRatePerS: fc.integer({ min: 0, max: 5 }),
  ageingMs: fc.constantFrom(0, 1000, 5000),
});

t.test('FDB invariants hold under any sequence of operations', async (t) => {
  check(t, 'limits, static entries and size', fc.property(fdbLimitsArb, fc.array(opArb, { maxLength: 200 }), (limits, ops) => {
    let nowMs = 1_000_000;
    const fdb = new Fdb({ ...limits, now: () => nowMs });
    /** What the static entries must be: only addStatic/remove/flush change them. */
    const statics = new Map<string, string>();
    const key = (vni: number, mac: string) => `${vni}/${mac}`;
    for (const [step, o] of ops.entries()) {
      const where = `step ${step} ${JSON.stringify(o)}`;
      switch (o.op) {
        case 'learn': {
          const outcome = fdb.learn(o.vni, macKeyOf(o.mac), o.vtep, nowMs);
          const pinned = statics.get(key(o.vni, o.mac));
          if (pinned !== undefined && outcome !== (pinned === o.vtep ? LearnOutcome.Static : LearnOutcome.StaticConflict)) {
            throw new Error(`${where}: learn on a static entry gave ${outcome}`);
          }
          if (!isLearnableMacKey(macKeyOf(o.mac)) && outcome !== LearnOutcome.NotLearnable) throw new Error(`${where}: learned a group MAC`);
          break;
        }
        case 'addStatic': fdb.addStatic(o.vni, o.mac, o.vtep); statics.set(key(o.vni, o.mac), o.vtep); break;
        case 'remove': fdb.remove(o.vni, o.mac); statics.delete(key(o.vni, o.mac)); break;
        case 'addPeer': fdb.addPeer(o.vni, o.vtep); break;
        case 'removePeer': fdb.removePeer(o.vni, o.vtep); break;
        case 'flush': fdb.flush({ learnedOnly: o.learnedOnly }); if (!o.learnedOnly) statics.clear(); break;
        case 'sweep': fdb.sweep(); break;
        case 'tick': nowMs += o.ms; break;
      }
      const entries = fdb.entries();
      if (entries.length !== fdb.size) throw new Error(`${where}: entries() has ${entries.length}, size says ${fdb.size}`);
      const learned = entries.filter((e) => e.kind === 'learned');
      if (learned.length !== fdb.learnedCount) throw new Error(`${where}: ${learned.length} learned entries, learnedCount ${fdb.learnedCount}`);
      if (fdb.learnedCount > limits.maxLearned) throw new Error(`${where}: learnedCount ${fdb.learnedCount} > maxLearned ${limits.maxLearned}`);
      const perVtep = new Map<string, number>();
      for (const e of learned) perVtep.set(e.vtep, (perVtep.get(e.vtep) ?? 0) + 1);
      for (const [vtep, n] of perVtep) {
        if (n > limits.maxLearnedPerVtep) throw new Error(`${where}: ${n} learned behind ${vtep} > ${limits.maxLearnedPerVtep}`);
      }
      const actualStatics = new Map(entries.filter((e) => e.kind === 'static').map((e) => [key(e.vni, e.mac), e.vtep]));
      if (actualStatics.size !== statics.size || [...statics].some(([k, v]) => actualStatics.get(k) !== v)) {
        throw new Error(`${where}: static entries ${JSON.stringify([...actualStatics])}, expected ${JSON.stringify([...statics])}`);
      }
      for (const e of entries) {
        if (e.kind !== 'peer' && !isLearnableMacKey(macKeyOf(e.mac))) throw new Error(`${where}: group MAC ${e.mac} in the table`);
      }
      if (limits.ageingMs > 0 && o.op === 'sweep' && learned.some((e) => e.updatedAgoMs >= limits.ageingMs)) {
        throw new Error(`${where}: sweep left an entry older than ageingMs`);
      }
    }
    return true;
  }), { ...RUNS, numRuns: 1000 });

  check(t, 'learning is refused, never wrong, at the limits: a refused MAC is not in the table and lookups still work', fc.property(
    fdbLimitsArb, fc.array(fc.record({ mac: fc.constantFrom(...MACS), vtep: fc.constantFrom(...VTEPS), ms: fc.integer({ min: 0, max: 500 }) }), { maxLength: 150 }),
    (limits, frames) => {
      let nowMs = 5_000;
      const fdb = new Fdb({ ...limits, now: () => nowMs });
      for (const f of frames) {
        nowMs += f.ms;
        fdb.sweep();
        const k = macKeyOf(f.mac);
        const before = fdb.lookup(42, k, nowMs);
        const outcome = fdb.learn(42, k, f.vtep, nowMs);
        const after = fdb.lookup(42, k, nowMs);
        switch (outcome) {
          case LearnOutcome.Learned: case LearnOutcome.Moved: case LearnOutcome.Refreshed:
            if (after !== f.vtep) return false;
            break;
          case LearnOutcome.RefusedFull: case LearnOutcome.RefusedVtepFull: case LearnOutcome.RefusedRate:
            if (after !== before) return false; // a refused move keeps the old entry working
            break;
          case LearnOutcome.NotLearnable:
            if (after !== undefined) return false;
            break;
          default:
            return false; // no statics in this property
        }
      }
      return true;
    }), { ...RUNS, numRuns: 1000 });
});
