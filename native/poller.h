// TapPoller: reads frames from a non-blocking TAP fd on the Node.js event loop
// thread, driven by a uv_poll_t (no libuv threadpool thread, no blocking).
//
// JS surface added by InitPoller:
//   new TapPoller(fd, buffer, offsets, lengths, slotBytes, headroomBytes,
//                 onFrames(count), onError(err)[, context])
//     buffer: Buffer of at least offsets.length * slotBytes bytes.
//     offsets, lengths: Uint32Array of equal length = the batch limit in frames.
//     Frame i of a batch is read into slot i at
//       buffer[i*slotBytes + headroomBytes, ... + lengths[i]),
//     so headroomBytes in front of it are free for the caller.
//     All four are captured once and reused for every batch.
//     context: text for error messages (e.g. the device name); default "fd N".
//   start(): begins polling; the handle is referenced (keeps the process
//     alive) until stop() or a fatal error. Throws if already started or
//     stopped.
//   stop(): stops polling and closes the uv handle. Idempotent; safe inside
//     the callbacks. The fd is NOT closed (the caller owns it) and may be
//     closed right after stop() returns.
// onFrames(count) runs once per wake-up with 1..batch-limit frames; the
// buffer contents are valid only until it returns. A frame larger than a
// slot (the device MTU raised behind the caller's back) is delivered cut at
// the slot's length, which exceeds any frame the MTU allows, so the caller
// counts it as oversize (newer kernels return the part read, older ones the
// whole length: both end up the same). onError(err) runs at most
// once, for a fatal read/poll error (anything but EAGAIN/EINTR, e.g. EBADFD
// when the TAP was deleted); polling has already stopped then. err has
// code/errno/syscall (errors.h). An exception thrown by either callback is
// reported as an uncaught exception and does not stop polling.
#pragma once

#include <napi.h>

namespace vxland {

void InitPoller(Napi::Env env, Napi::Object exports);

}  // namespace vxland
