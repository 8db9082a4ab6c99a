#include "tap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if_arp.h>
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <string>

#include "addon.h"
#include "errors.h"

namespace vxland {
namespace {

constexpr const char* kTunPath = "/dev/net/tun";

// <linux/ipv6.h> clashes with <netinet/in.h>; this is its struct in6_ifreq.
struct In6Ifreq {
  struct in6_addr ifr6_addr;
  uint32_t ifr6_prefixlen;
  int ifr6_ifindex;
};

// Closes the fd on scope exit.
class ScopedFd {
 public:
  explicit ScopedFd(int fd) : fd_(fd) {}
  ~ScopedFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;
  int get() const { return fd_; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsString()) {
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a string");
  }
  return info[i].As<Napi::String>().Utf8Value();
}

int64_t ArgInt(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsNumber()) {
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a number");
  }
  return info[i].As<Napi::Number>().Int64Value();
}

// An ifreq with ifr_name set; throws TypeError when name does not fit IFNAMSIZ.
struct ifreq MakeIfreq(Napi::Env env, const std::string& ifname) {
  if (ifname.empty() || ifname.size() >= IFNAMSIZ) {
    throw Napi::TypeError::New(env, "interface name must be 1.." + std::to_string(IFNAMSIZ - 1) + " bytes");
  }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof(ifr));
  memcpy(ifr.ifr_name, ifname.data(), ifname.size());
  return ifr;
}

int ControlSocket(Napi::Env env, int family, const std::string& ifname) {
  int fd = ::socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) ThrowSysError(env, errno, family == AF_INET6 ? "socket(AF_INET6)" : "socket(AF_INET)", ifname);
  return fd;
}

void Ioctl(Napi::Env env, int fd, unsigned long request, void* arg, const char* syscall, const std::string& context) {
  if (::ioctl(fd, request, arg) < 0) ThrowSysError(env, errno, syscall, context);
}

// tapOpen(name[, { vnetHdr }]): opens /dev/net/tun and attaches a
// non-persistent IFF_TAP|IFF_NO_PI device called `name` (created if absent).
// With vnetHdr: true the device also gets IFF_VNET_HDR: every read and write
// then starts with a struct virtio_net_hdr (the native engine's mode; plain
// tapWrite/TapPoller must not be used on such an fd). The fd is
// O_NONBLOCK|O_CLOEXEC; the device disappears when the fd is closed.
// Returns { fd, name } where name is the kernel's name for the device.
Napi::Value TapOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = ArgString(info, 0, "name");
  struct ifreq ifr = MakeIfreq(env, name);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  if (info.Length() > 1 && info[1].IsObject() && info[1].As<Napi::Object>().Get("vnetHdr").ToBoolean().Value()) {
    ifr.ifr_flags |= IFF_VNET_HDR;
  }

  ScopedFd fd(::open(kTunPath, O_RDWR | O_NONBLOCK | O_CLOEXEC));
  if (fd.get() < 0) ThrowSysError(env, errno, std::string("open(") + kTunPath + ")", name);
  Ioctl(env, fd.get(), TUNSETIFF, &ifr, "ioctl(TUNSETIFF)", name);

  Napi::Object result = Napi::Object::New(env);
  result.Set("name", Napi::String::New(env, ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ)));
  result.Set("fd", Napi::Number::New(env, fd.release()));
  return result;
}

// tapSetMtu(ifname, mtuBytes): SIOCSIFMTU. The kernel enforces its own bounds
// (EINVAL outside 68..65535 for a TAP).
Napi::Value TapSetMtu(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string ifname = ArgString(info, 0, "ifname");
  int64_t mtu = ArgInt(info, 1, "mtu");
  struct ifreq ifr = MakeIfreq(env, ifname);
  ifr.ifr_mtu = static_cast<int>(mtu);
  ScopedFd sock(ControlSocket(env, AF_INET, ifname));
  Ioctl(env, sock.get(), SIOCSIFMTU, &ifr, "ioctl(SIOCSIFMTU)", ifname);
  return env.Undefined();
}

// tapSetUp(ifname): sets IFF_UP (read-modify-write of the link flags).
Napi::Value TapSetUp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string ifname = ArgString(info, 0, "ifname");
  struct ifreq ifr = MakeIfreq(env, ifname);
  ScopedFd sock(ControlSocket(env, AF_INET, ifname));
  Ioctl(env, sock.get(), SIOCGIFFLAGS, &ifr, "ioctl(SIOCGIFFLAGS)", ifname);
  ifr.ifr_flags |= IFF_UP;
  Ioctl(env, sock.get(), SIOCSIFFLAGS, &ifr, "ioctl(SIOCSIFFLAGS)", ifname);
  return env.Undefined();
}

// tapGetMac(ifname): SIOCGIFHWADDR; returns a new 6-byte Buffer.
Napi::Value TapGetMac(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string ifname = ArgString(info, 0, "ifname");
  struct ifreq ifr = MakeIfreq(env, ifname);
  ScopedFd sock(ControlSocket(env, AF_INET, ifname));
  Ioctl(env, sock.get(), SIOCGIFHWADDR, &ifr, "ioctl(SIOCGIFHWADDR)", ifname);
  return Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<const uint8_t*>(ifr.ifr_hwaddr.sa_data), 6);
}

// tapSetMac(ifname, mac: Buffer(6)): SIOCSIFHWADDR. Call it before the link
// goes up; the kernel refuses multicast and all-zero addresses (EADDRNOTAVAIL).
Napi::Value TapSetMac(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string ifname = ArgString(info, 0, "ifname");
  if (info.Length() < 2 || !info[1].IsBuffer() || info[1].As<Napi::Buffer<uint8_t>>().Length() != 6) {
    throw Napi::TypeError::New(env, "mac must be a 6-byte Buffer");
  }
  Napi::Buffer<uint8_t> mac = info[1].As<Napi::Buffer<uint8_t>>();
  struct ifreq ifr = MakeIfreq(env, ifname);
  ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
  memcpy(ifr.ifr_hwaddr.sa_data, mac.Data(), 6);
  ScopedFd sock(ControlSocket(env, AF_INET, ifname));
  Ioctl(env, sock.get(), SIOCSIFHWADDR, &ifr, "ioctl(SIOCSIFHWADDR)", ifname);
  return env.Undefined();
}

int GetIndex(Napi::Env env, int sock, const std::string& ifname) {
  struct ifreq ifr = MakeIfreq(env, ifname);
  Ioctl(env, sock, SIOCGIFINDEX, &ifr, "ioctl(SIOCGIFINDEX)", ifname);
  return ifr.ifr_ifindex;
}

// tapAddIPv4(ifname, address, prefixLen): SIOCSIFADDR then SIOCSIFNETMASK.
// SIOCSIFADDR replaces the address carrying label `ifname`; to add a second
// address pass an alias label "dev:N" (the caller chooses labels).
// address must be a dotted-quad literal (TypeError otherwise).
Napi::Value TapAddIPv4(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string ifname = ArgString(info, 0, "ifname");
  std::string address = ArgString(info, 1, "address");
  int64_t prefix = ArgInt(info, 2, "prefixLength");
  if (prefix < 0 || prefix > 32) throw Napi::RangeError::New(env, "IPv4 prefix length must be 0..32");

  struct sockaddr_in sin;
  memset(&sin, 0, sizeof(sin));
  sin.sin_family = AF_INET;
  if (inet_pton(AF_INET, address.c_str(), &sin.sin_addr) != 1) {
    throw Napi::TypeError::New(env, "not an IPv4 address: " + address);
  }
  const std::string context = ifname + " " + address + "/" + std::to_string(prefix);
  ScopedFd sock(ControlSocket(env, AF_INET, ifname));

  struct ifreq ifr = MakeIfreq(env, ifname);
  memcpy(&ifr.ifr_addr, &sin, sizeof(sin));
  Ioctl(env, sock.get(), SIOCSIFADDR, &ifr, "ioctl(SIOCSIFADDR)", context);

  struct sockaddr_in mask;
  memset(&mask, 0, sizeof(mask));
  mask.sin_family = AF_INET;
  mask.sin_addr.s_addr = prefix == 0 ? 0 : htonl(~uint32_t{0} << (32 - prefix));
  ifr = MakeIfreq(env, ifname);
  memcpy(&ifr.ifr_netmask, &mask, sizeof(mask));
  Ioctl(env, sock.get(), SIOCSIFNETMASK, &ifr, "ioctl(SIOCSIFNETMASK)", context);
  return env.Undefined();
}

// tapAddIPv6(ifname, address, prefixLen): SIOCSIFADDR with struct in6_ifreq
// on an AF_INET6 socket. Adds (does not replace); the address is subject to
// DAD like any other. Fails with EACCES/EPERM-like errors when IPv6 is
// disabled on the device (e.g. MTU < 1280).
Napi::Value TapAddIPv6(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string ifname = ArgString(info, 0, "ifname");
  std::string address = ArgString(info, 1, "address");
  int64_t prefix = ArgInt(info, 2, "prefixLength");
  if (prefix < 0 || prefix > 128) throw Napi::RangeError::New(env, "IPv6 prefix length must be 0..128");

  In6Ifreq req;
  memset(&req, 0, sizeof(req));
  if (inet_pton(AF_INET6, address.c_str(), &req.ifr6_addr) != 1) {
    throw Napi::TypeError::New(env, "not an IPv6 address: " + address);
  }
  const std::string context = ifname + " " + address + "/" + std::to_string(prefix);
  ScopedFd sock(ControlSocket(env, AF_INET6, ifname));
  req.ifr6_prefixlen = static_cast<uint32_t>(prefix);
  req.ifr6_ifindex = GetIndex(env, sock.get(), ifname);
  Ioctl(env, sock.get(), SIOCSIFADDR, &req, "ioctl(SIOCSIFADDR)", context);
  return env.Undefined();
}

// tapWrite(fd, buffer, offset, length): one non-blocking write() of
// buffer[offset, offset+length). Returns 0 on success, otherwise the positive
// errno (EAGAIN when the queue is full, EBADF after close, EINVAL for a bad
// range or argument, EIO for a short write). Never throws.
Napi::Value TapWrite(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsNumber() || !info[1].IsBuffer() || !info[2].IsNumber() || !info[3].IsNumber()) {
    return Napi::Number::New(env, EINVAL);
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  Napi::Buffer<uint8_t> buf = info[1].As<Napi::Buffer<uint8_t>>();
  int64_t offset = info[2].As<Napi::Number>().Int64Value();
  int64_t length = info[3].As<Napi::Number>().Int64Value();
  if (offset < 0 || length <= 0 || static_cast<uint64_t>(offset + length) > buf.Length()) {
    return Napi::Number::New(env, EINVAL);
  }
  ssize_t n;
  do {
    n = ::write(fd, buf.Data() + offset, static_cast<size_t>(length));
  } while (n < 0 && errno == EINTR);
  if (n < 0) return Napi::Number::New(env, errno);
  if (n != length) return Napi::Number::New(env, EIO);
  return Napi::Number::New(env, 0);
}

// tapClose(fd): close(). A negative fd is ignored. Throws on failure (EBADF
// means the caller closed it twice).
Napi::Value TapClose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(ArgInt(info, 0, "fd"));
  if (fd >= 0 && ::close(fd) < 0 && errno != EINTR) ThrowSysError(env, errno, "close", "fd " + std::to_string(fd));
  return env.Undefined();
}

}  // namespace

void InitTap(Napi::Env env, Napi::Object exports) {
  exports.Set("tapOpen", Napi::Function::New(env, TapOpen, "tapOpen"));
  exports.Set("tapSetMtu", Napi::Function::New(env, TapSetMtu, "tapSetMtu"));
  exports.Set("tapSetUp", Napi::Function::New(env, TapSetUp, "tapSetUp"));
  exports.Set("tapGetMac", Napi::Function::New(env, TapGetMac, "tapGetMac"));
  exports.Set("tapSetMac", Napi::Function::New(env, TapSetMac, "tapSetMac"));
  exports.Set("tapAddIPv4", Napi::Function::New(env, TapAddIPv4, "tapAddIPv4"));
  exports.Set("tapAddIPv6", Napi::Function::New(env, TapAddIPv6, "tapAddIPv6"));
  exports.Set("tapWrite", Napi::Function::New(env, TapWrite, "tapWrite"));
  exports.Set("tapClose", Napi::Function::New(env, TapClose, "tapClose"));
}

}  // namespace vxland
