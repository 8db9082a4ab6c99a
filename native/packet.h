// Sending a whole Ethernet frame out of an interface (AF_PACKET), as if the
// local stack had transmitted it there. On vxland's TAP this puts the frame
// in the TAP's queue, where either data path reads it like any other frame
// and sends it to its destinations (src/io/announce.ts uses it for
// gratuitous ARP and unsolicited neighbour advertisements).
//
// JS surface added by InitPacket:
//   packetSend(ifname, frame: Buffer) -> undefined
//     One frame (destination MAC first, no FCS) on a fresh
//     AF_PACKET/SOCK_RAW socket. Needs CAP_NET_RAW; throws an Error with
//     code/errno/syscall (errors.h) on failure (ENETDOWN when the link is
//     down, ENODEV when it is gone, EPERM without CAP_NET_RAW).
#pragma once

#include <napi.h>

namespace vxland {

void InitPacket(Napi::Env env, Napi::Object exports);

}  // namespace vxland
