// The one table of drop reasons, network events and limits (native/drop_reasons.h,
// native/net_events.h, native/limits.h): the generated TS files are current, and the addon this
// build loads exports the same names, in the same order, and the same limits.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import t from 'tap';
import { DROP_REASON_COUNT, DROP_REASON_NAMES, DropReason } from '../src/ports/drops';
import { addonTableMismatch, loadAddon } from '../src/io/addon';
import { LIMITS, MAX_TRACKED_VTEPS, MTU_MAX_BYTES } from '../src/tables/limits.generated';
import { NET_EVENT_COUNT, NET_EVENT_NAMES, NetEvent } from '../src/tables/net-events.generated';
import { REPO_ROOT } from './helpers/netns';

t.test('the generated TS tables match the native headers', async (t) => {
  const r = (() => {
    try {
      execFileSync(process.execPath, [path.join(REPO_ROOT, 'scripts', 'gen-tables.mjs'), '--check'], { stdio: 'pipe' });
      return 'current';
    } catch (err) {
      return String((err as { stderr?: Buffer }).stderr ?? err);
    }
  })();
  t.equal(r, 'current', 'src/tables/*.generated.ts are what scripts/gen-tables.mjs writes');
  t.equal(DROP_REASON_NAMES.length, DROP_REASON_COUNT);
  t.equal(DROP_REASON_NAMES[DropReason.TxBadOffload], 'tx_bad_offload');
  t.equal(NET_EVENT_NAMES.length, NET_EVENT_COUNT);
  t.same([NET_EVENT_NAMES[NetEvent.ArpSuppressed], NET_EVENT_NAMES[NetEvent.NdSuppressed]], ['arp_suppressed', 'nd_suppressed']);
});

t.test('the addon exports the same drop reasons in order, and the same limits', async (t) => {
  const addon = loadAddon();
  t.same(addon.engineDropReasonNames, DROP_REASON_NAMES, 'names in DropReason order');
  t.same(addon.engineNetEventNames, NET_EVENT_NAMES, 'network events in NetEvent order');
  t.equal(addon.NativeEngine.netCounterCount, 4 + DROP_REASON_NAMES.length + NET_EVENT_COUNT, 'a network counts totals, drops, then events');
  t.same(addon.engineLimits, LIMITS, 'limits');
  t.equal(addonTableMismatch(addon), null, 'no mismatch');
  const dropCounters = addon.NativeEngine.counterNames.filter((n) => n.startsWith('drop:'));
  t.same(dropCounters, DROP_REASON_NAMES.map((n) => `drop:${n}`), 'the engine counts drops under the same names, in order');
  t.equal(LIMITS.MaxTrackedVteps, MAX_TRACKED_VTEPS, 'one per-VTEP counter bound');
  t.ok(MTU_MAX_BYTES + 18 + 8 <= 65507, 'a full-size tagged frame fits one UDP datagram over IPv4');
});

t.test('a stale addon is named by its first difference, not by a count', async (t) => {
  const swapped = [...DROP_REASON_NAMES];
  [swapped[DropReason.TxRunt], swapped[DropReason.TxOversize]] = [swapped[DropReason.TxOversize], swapped[DropReason.TxRunt]];
  t.equal(
    addonTableMismatch({ engineDropReasonNames: swapped, engineNetEventNames: NET_EVENT_NAMES, engineLimits: LIMITS }),
    `native addon is stale (rebuild with npm run build:native): drop reason ${DropReason.TxRunt} is "tx_oversize" in the addon but "tx_runt" in this build`,
  );
  t.match(addonTableMismatch({ engineDropReasonNames: DROP_REASON_NAMES.slice(0, -1), engineNetEventNames: NET_EVENT_NAMES, engineLimits: LIMITS }),
    `drop reason ${DROP_REASON_COUNT - 1} is null in the addon but "${DROP_REASON_NAMES[DROP_REASON_COUNT - 1]}" in this build`);
  t.match(addonTableMismatch({ engineDropReasonNames: DROP_REASON_NAMES, engineNetEventNames: NET_EVENT_NAMES, engineLimits: { ...LIMITS, MtuMaxBytes: 65535 } }),
    `limit MtuMaxBytes is 65535 in the addon but ${MTU_MAX_BYTES} in this build`);
  t.match(addonTableMismatch({ engineDropReasonNames: undefined as unknown as string[], engineNetEventNames: NET_EVENT_NAMES, engineLimits: LIMITS }), 'exports no engineDropReasonNames');
  t.match(addonTableMismatch({ engineDropReasonNames: DROP_REASON_NAMES, engineNetEventNames: ['nd_suppressed', 'arp_suppressed'], engineLimits: LIMITS }),
    'network event 0 is "nd_suppressed" in the addon but "arp_suppressed" in this build');
});
