// Bridge attachment: puts a network device (the TAP) into an existing Linux
// bridge, as `ip link set DEV master BR` does.
//
// JS surface added by InitBridge:
//   bridgeAddPort(bridge, dev) -> undefined
//     ioctl(SIOCBRADDIF) on an AF_INET control socket, with dev's ifindex.
//     Throws an Error with code/errno/syscall (errors.h):
//       syscall 'if_nametoindex', ENODEV: dev does not exist;
//       syscall 'ioctl(SIOCBRADDIF)': ENODEV (no device called bridge),
//       EOPNOTSUPP (bridge is not a bridge), EBUSY (dev already has a
//       master), ELOOP (dev is a bridge itself), EINVAL (dev is not an
//       Ethernet device with a unicast MAC), EPERM (no CAP_NET_ADMIN).
//     The port leaves the bridge by itself when the device goes away (the
//     TAP's fd closed), so there is no "remove" counterpart.
#pragma once

#include <napi.h>

namespace vxland {

void InitBridge(Napi::Env env, Napi::Object exports);

}  // namespace vxland
