// Why the data path dropped a frame or datagram. Drops are counted, never
// thrown; the native engine reports the same reasons by the same numbers.
// The list itself is native/drop_reasons.h (src/tables/drop-reasons.generated.ts is
// written from it): add a reason there.

export { DROP_REASON_COUNT, DROP_REASON_NAMES, DropReason } from '../tables/drop-reasons.generated';
