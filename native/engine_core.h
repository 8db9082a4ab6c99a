// The native data path engine: packet work off the JS event loop, in two
// workers (rx: UDP -> TAP, tx: TAP -> UDP) run by one thread while traffic
// is light and by two under load (engine_core.cc says when). JS keeps configuration, the forwarding
// table and its rules (src/fdb/fdb.ts), logging and control; the engine holds
// a packet core context (core_rx.h: a mirror of the table, the source
// policy), runs the core's per-packet rules (core_rx.h, core_tx.h) and
// reports what it saw.
//
// JS surface added by InitEngine (src/io/engine.ts wraps it):
//   new NativeEngine(options, onEvent)
//     options: { tapFd, mtu, vni, local, port, dstPort, ownMac: Buffer(6),
//                offload?, gso?, gro?, coalesce? (default true),
//                socketBufferBytes?, standIn? (default false) }
//     tapFd must come from tapOpen(name, { vnetHdr: true }), or with
//     standIn: true be a non-blocking SOCK_SEQPACKET socket carrying what a
//     TAP with IFF_VNET_HDR carries (a virtio_net_hdr, then one frame, per
//     message; no TUN ioctls; offload as asked). The engine owns it once
//     constructed and closes it in stop(). The UDP socket is opened and
//     bound to local:port here; dstPort 0 = the port bound. Throws an Error
//     with code/errno/syscall (errors.h) if that fails.
//   start()  starts both threads; the engine keeps the process alive until
//            stop(). Throws if not idle.
//   stop()   wakes and joins the threads, closes the TAP fd (the device
//            disappears) and the socket, releases the event callback.
//            Idempotent.
//   fdbSet, fdbDelete, setFloodList, setSourcePolicy, setAllowVlan: the
//       core context's setters (core_binding.h CoreSetters)
//   counters(out: Float64Array)   fills counterNames.length values
//   takeVtepCounts() -> [{vtep (null = past the table's bound), rxPackets,
//                         rxBytes, txPackets, txBytes, drops, lastRxAgoMs}]
//       per-VTEP counts since the last call (ICMP errors about sent
//       datagrams, IP_RECVERR, count as drops of the VTEP they were sent to)
//   info() -> { port, offload, gso, gro, coalesce, rcvbufBytes, sndbufBytes,
//               state }
//   NativeEngine.counterNames: string[]  (index order; drops are
//                                          "drop:<reason name>", in DropReason order)
//   engineDropReasonNames: string[]  (native/drop_reasons.h, in order)
//   engineLimits: { MtuMaxBytes, ... }  (native/limits.h)
// onEvent(event) runs on the JS thread with one of
//   { type: 'observations', learn: [{vni, mac, vtep}], foreign: [{vni, from, count}],
//     refused: [{from, count}], used: [{vni, mac}] }
//       in the next 5 ms pause of traffic, learning at most 20 ms late
//       (deduplicated: a source MAC at most once a second); used = mirror
//       entries the tx side sent to (mac 0 = the flood list), each at most
//       once a second, at most 100 ms late. Nothing is posted per packet:
//       each post wakes the JS thread, which on a small host delays packets.
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
