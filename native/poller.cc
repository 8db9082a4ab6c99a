#include "poller.h"

#include <errno.h>
#include <unistd.h>
#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>

#include "addon.h"
#include "errors.h"

namespace vxland {
namespace {

constexpr int kMaxEintrRetries = 16;

class TapPoller : public Napi::ObjectWrap<TapPoller> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "TapPoller",
                       {
                           InstanceMethod<&TapPoller::Start>("start"),
                           InstanceMethod<&TapPoller::Stop>("stop"),
                       });
  }

  explicit TapPoller(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TapPoller>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 8 || !info[0].IsNumber() || !info[1].IsBuffer() || !info[2].IsTypedArray() ||
        !info[3].IsTypedArray() || !info[4].IsNumber() || !info[5].IsNumber() || !info[6].IsFunction() ||
        !info[7].IsFunction()) {
      throw Napi::TypeError::New(
          env, "TapPoller(fd, buffer, offsets, lengths, slotBytes, headroomBytes, onFrames, onError[, context])");
    }
    fd_ = info[0].As<Napi::Number>().Int32Value();
    auto buffer = info[1].As<Napi::Buffer<uint8_t>>();
    auto offsets = info[2].As<Napi::TypedArray>();
    auto lengths = info[3].As<Napi::TypedArray>();
    if (offsets.TypedArrayType() != napi_uint32_array || lengths.TypedArrayType() != napi_uint32_array) {
      throw Napi::TypeError::New(env, "offsets and lengths must be Uint32Array");
    }
    int64_t slotBytes = info[4].As<Napi::Number>().Int64Value();
    int64_t headroomBytes = info[5].As<Napi::Number>().Int64Value();
    batchMaxFrames_ = offsets.ElementLength();
    if (fd_ < 0) throw Napi::RangeError::New(env, "fd must be >= 0");
    if (batchMaxFrames_ == 0 || lengths.ElementLength() != batchMaxFrames_) {
      throw Napi::RangeError::New(env, "offsets and lengths must have the same non-zero length");
    }
    if (headroomBytes < 0 || slotBytes <= headroomBytes || slotBytes > UINT32_MAX) {
      throw Napi::RangeError::New(env, "slotBytes must exceed headroomBytes");
    }
    if (buffer.Length() < batchMaxFrames_ * static_cast<uint64_t>(slotBytes) ||
        batchMaxFrames_ * static_cast<uint64_t>(slotBytes) > UINT32_MAX) {
      throw Napi::RangeError::New(env, "buffer must hold offsets.length * slotBytes bytes (< 4 GiB)");
    }
    slotBytes_ = static_cast<size_t>(slotBytes);
    headroomBytes_ = static_cast<size_t>(headroomBytes);
    data_ = buffer.Data();
    offsets_ = offsets.As<Napi::Uint32Array>().Data();
    lengths_ = lengths.As<Napi::Uint32Array>().Data();
    bufferRef_ = Napi::Persistent(Napi::Object(buffer));
    offsetsRef_ = Napi::Persistent(Napi::Object(offsets));
    lengthsRef_ = Napi::Persistent(Napi::Object(lengths));
    onFrames_ = Napi::Persistent(info[6].As<Napi::Function>());
    onError_ = Napi::Persistent(info[7].As<Napi::Function>());
    context_ = std::make_unique<Napi::AsyncContext>(env, "vxland:TapPoller");
    errorContext_ = "fd " + std::to_string(fd_);
    if (info.Length() > 8 && info[8].IsString()) errorContext_ = info[8].As<Napi::String>().Utf8Value();
  }

  ~TapPoller() override { CloseHandle(); }

 private:
  Napi::Value Start(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (started_) throw Napi::Error::New(env, "TapPoller already started");
    started_ = true;
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
      throw Napi::Error::New(env, "napi_get_uv_event_loop failed");
    }
    auto* handle = new uv_poll_t;
    int rc = uv_poll_init(loop, handle, fd_);
    if (rc < 0) {
      delete handle;
      ThrowSysError(env, -rc, "uv_poll_init", errorContext_);
    }
    handle->data = this;
    rc = uv_poll_start(handle, UV_READABLE, OnPoll);
    if (rc < 0) {
      handle->data = nullptr;
      uv_close(reinterpret_cast<uv_handle_t*>(handle), OnClosed);
      ThrowSysError(env, -rc, "uv_poll_start", errorContext_);
    }
    handle_ = handle;
    Ref();
    return env.Undefined();
  }

  Napi::Value Stop(const Napi::CallbackInfo& info) {
    StopPolling();
    return info.Env().Undefined();
  }

  // Removes the fd from the loop now (so the caller may close it) and frees
  // the handle once libuv is done with it.
  void CloseHandle() {
    if (handle_ == nullptr) return;
    uv_poll_stop(handle_);
    handle_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(handle_), OnClosed);
    handle_ = nullptr;
  }

  void StopPolling() {
    if (handle_ == nullptr) return;
    CloseHandle();
    Unref();
  }

  static void OnClosed(uv_handle_t* handle) { delete reinterpret_cast<uv_poll_t*>(handle); }

  static void OnPoll(uv_poll_t* handle, int status, int /*events*/) {
    auto* self = static_cast<TapPoller*>(handle->data);
    if (self != nullptr) self->HandleReadable(status);
  }

  void HandleReadable(int status) {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);

    uint32_t count = 0;
    int fatalErrno = 0;
    const char* fatalSyscall = "read";
    const size_t capacity = slotBytes_ - headroomBytes_;
    int eintrRetries = 0;
    while (count < batchMaxFrames_) {
      uint8_t* dst = data_ + count * slotBytes_ + headroomBytes_;
      ssize_t n = ::read(fd_, dst, capacity);
      if (n < 0) {
        if (errno == EINTR && ++eintrRetries <= kMaxEintrRetries) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) fatalErrno = errno;
        break;
      }
      if (n == 0) break;
      if (static_cast<size_t>(n) > capacity) n = static_cast<ssize_t>(capacity);
      offsets_[count] = static_cast<uint32_t>(count * slotBytes_ + headroomBytes_);
      lengths_[count] = static_cast<uint32_t>(n);
      ++count;
    }
    if (status < 0 && fatalErrno == 0) {
      fatalErrno = -status;
      fatalSyscall = "uv_poll";
    }

    if (count > 0) {
      Call(onFrames_, {Napi::Number::New(env, count)});
      if (handle_ == nullptr) return;
    }
    if (fatalErrno != 0) {
      Napi::Error err = SysError(env, fatalErrno, fatalSyscall, errorContext_);
      Napi::FunctionReference onError = std::move(onError_);
      StopPolling();
      Call(onError, {err.Value()});
    }
  }

  void Call(Napi::FunctionReference& fn, std::initializer_list<napi_value> args) {
    try {
      fn.MakeCallback(Value(), args, *context_);
    } catch (const Napi::Error& e) {
      napi_fatal_exception(Env(), e.Value());
    }
  }

  int fd_ = -1;
  size_t batchMaxFrames_ = 0;
  size_t slotBytes_ = 0;
  size_t headroomBytes_ = 0;
  uint8_t* data_ = nullptr;
  uint32_t* offsets_ = nullptr;
  uint32_t* lengths_ = nullptr;
  bool started_ = false;
  uv_poll_t* handle_ = nullptr;
  Napi::ObjectReference bufferRef_;
  Napi::ObjectReference offsetsRef_;
  Napi::ObjectReference lengthsRef_;
  Napi::FunctionReference onFrames_;
  Napi::FunctionReference onError_;
  std::unique_ptr<Napi::AsyncContext> context_;
  std::string errorContext_;
};

}  // namespace

void InitPoller(Napi::Env env, Napi::Object exports) {
  exports.Set("TapPoller", TapPoller::Define(env));
}

}  // namespace vxland
