// The native data path engine: two packet threads (rx: UDP -> TAP, tx:
// TAP -> UDP) off the JS event loop. JS keeps configuration, the forwarding
// table and its rules (src/fdb/fdb.ts), logging and control; the engine holds
// a mirror of the table (engine_fdb.h) and reports what it saw.
//
// JS surface added by InitEngine (src/io/engine.ts wraps it):
//   new NativeEngine(options, onEvent)
//     options: { tapFd, mtu, vni, local, port, dstPort, ownMac: Buffer(6),
//                offload?, gso?, gro?, coalesce? (default true),
//                socketBufferBytes? }
//     tapFd must come from tapOpen(name, { vnetHdr: true }); the engine owns
//     it once constructed and closes it in stop(). The UDP socket is opened
//     and bound to local:port here; throws an Error with code/errno/syscall
//     (errors.h) if that fails.
//   start()  starts both threads; the engine keeps the process alive until
//            stop(). Throws if not idle.
//   stop()   wakes and joins the threads, closes the TAP fd (the device
//            disappears) and the socket, releases the event callback.
//            Idempotent.
//   fdbSet(vni, macKey, vtepIp, pinned)  fdbDelete(vni, macKey) -> bool
//   fdbClear()  setFloodList(vni, vtepIps[])
//   setSourcePolicy(mode, named[], cidrs[])  setAllowVlan(allow)
//   counters(out: Float64Array)   fills counterNames.length values
//   info() -> { port, offload, gso, gro, coalesce, rcvbufBytes, sndbufBytes,
//               mirrorSize, state }
//   NativeEngine.counterNames: string[]  (index order; drops are drop0..16
//                                          = DropReason numbers)
// onEvent(event) runs on the JS thread with one of
//   { type: 'observations', learn: [{vni, mac, vtep}], foreign: [{vni, from}],
//     refused: [{from, count}], vteps: [{vtep, rxPackets, ..., drops}],
//     used: [{vni, mac}] }
//       every few ms while traffic needs learning (deduplicated: a source MAC
//       at most once a second), per-VTEP counts every 100 ms; ICMP errors
//       about sent datagrams (IP_RECVERR) count as tx_send_error and as
//       drops of the VTEP they were sent to; used = mirror entries the tx
//       thread sent to (mac 0 = the flood list), each at most once a second,
//       reported with the per-VTEP counts
//   { type: 'fallback', feature: 'tso'|'gso'|'gro', errno, message }  once each
//   { type: 'fatal', error }  once; error has code/errno/syscall
// Test-only pure functions (engine_offload.h):
//   engineSegmentForTest(vnetHdrAndFrame: Buffer, mtu) -> Buffer[] | number (kSplit* error)
//   engineCoalesceForTest(frames: Buffer[]) -> [{ hdr: {...}, frame: Buffer, count }]
#pragma once

#include <napi.h>

namespace vxland {

void InitEngine(Napi::Env env, Napi::Object exports);

}  // namespace vxland
