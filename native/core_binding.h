// The packet core's face to JS: the setters that feed a core::Context from
// the Fdb and the source policy (one implementation, used by the native
// engine's binding and by the dgram path's PacketCore), and PacketCore itself.
#pragma once

#include <napi.h>

#include <vector>

#include "core_rx.h"

namespace vxland {
namespace core {

void NapiFdbSet(Context& ctx, const Napi::CallbackInfo& info, int family, uint16_t port);
Napi::Value NapiFdbDelete(Context& ctx, const Napi::CallbackInfo& info);
void NapiSetFloodList(Context& ctx, const Napi::CallbackInfo& info, int family, uint16_t port);
void NapiSetSourcePolicy(Context& ctx, const Napi::CallbackInfo& info, int family);
void NapiNeighSet(Context& ctx, const Napi::CallbackInfo& info);
Napi::Value NapiNeighDelete(Context& ctx, const Napi::CallbackInfo& info);
/** The {vni, mtu, ownMac: Buffer(6)} of a network to add; throws a TypeError/RangeError. */
Network NapiNetworkOf(Napi::Env env, const Napi::Value& v, const char* what);

/** The JS methods that feed a core Context from the Fdb and the source
 *  policy (src/datapath/core-sync.ts calls them), for every JS object that
 *  owns one: the native engine and the dgram path's PacketCore. T derives from
 *  Napi::ObjectWrap<T> and CoreSetters<T>, and has CoreContext(),
 *  CoreFamily() (AF_INET/AF_INET6: its socket's) and CorePort() (the VTEPs'
 *  UDP port). */
template <typename T>
class CoreSetters {
 public:
  /** Appends fdbSet, fdbDelete, setFloodList, setSourcePolicy, setAllowVlan,
   *  setSuppress, neighSet and neighDelete. */
  static void AddMethods(std::vector<Napi::ClassPropertyDescriptor<T>>* props) {
    using Method = Napi::Value (T::*)(const Napi::CallbackInfo&);
    props->push_back(Napi::ObjectWrap<T>::InstanceMethod("fdbSet", static_cast<Method>(&CoreSetters::FdbSet)));
    props->push_back(Napi::ObjectWrap<T>::InstanceMethod("fdbDelete", static_cast<Method>(&CoreSetters::FdbDelete)));
    props->push_back(Napi::ObjectWrap<T>::InstanceMethod("setFloodList", static_cast<Method>(&CoreSetters::SetFloodList)));
    props->push_back(Napi::ObjectWrap<T>::InstanceMethod("setSourcePolicy", static_cast<Method>(&CoreSetters::SetSourcePolicy)));
    props->push_back(Napi::ObjectWrap<T>::InstanceMethod("setAllowVlan", static_cast<Method>(&CoreSetters::SetAllowVlan)));
    props->push_back(Napi::ObjectWrap<T>::InstanceMethod("setSuppress", static_cast<Method>(&CoreSetters::SetSuppress)));
    props->push_back(Napi::ObjectWrap<T>::InstanceMethod("neighSet", static_cast<Method>(&CoreSetters::NeighSet)));
    props->push_back(Napi::ObjectWrap<T>::InstanceMethod("neighDelete", static_cast<Method>(&CoreSetters::NeighDelete)));
  }

  /** fdbSet(vni, macKey, vtepIp, pinned). */
  Napi::Value FdbSet(const Napi::CallbackInfo& info) {
    NapiFdbSet(Self()->CoreContext(), info, Self()->CoreFamily(), Self()->CorePort());
    return info.Env().Undefined();
  }
  /** fdbDelete(vni, macKey): whether it was there. */
  Napi::Value FdbDelete(const Napi::CallbackInfo& info) { return NapiFdbDelete(Self()->CoreContext(), info); }
  /** setFloodList(vni, vtepIps[]). */
  Napi::Value SetFloodList(const Napi::CallbackInfo& info) {
    NapiSetFloodList(Self()->CoreContext(), info, Self()->CoreFamily(), Self()->CorePort());
    return info.Env().Undefined();
  }
  /** setSourcePolicy(vni, mode, named[], cidrs[]): replaces the network's
   *  policy at once (readers pick it up at their next batch; traffic does
   *  not stop). Unknown vni: ignored. */
  Napi::Value SetSourcePolicy(const Napi::CallbackInfo& info) {
    NapiSetSourcePolicy(Self()->CoreContext(), info, Self()->CoreFamily());
    return info.Env().Undefined();
  }
  /** setAllowVlan(vni, allow): the network delivers and sends VLAN-tagged
   *  inner frames (RFC 7348 §6.1: dropped by default). Unknown vni: ignored. */
  Napi::Value SetAllowVlan(const Napi::CallbackInfo& info) {
    if (info.Length() < 2 || !info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), "setAllowVlan(vni, allow)");
    Self()->CoreContext().SetAllowVlan(info[0].As<Napi::Number>().Uint32Value(), info[1].ToBoolean().Value());
    return info.Env().Undefined();
  }
  /** setSuppress(vni, on): the network answers ARP requests and neighbour
   *  solicitations for addresses in its neighbour mirror on the TAP
   *  (core_suppress.h). Unknown vni: ignored. */
  Napi::Value SetSuppress(const Napi::CallbackInfo& info) {
    if (info.Length() < 2 || !info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), "setSuppress(vni, on)");
    Self()->CoreContext().SetSuppress(info[0].As<Napi::Number>().Uint32Value(), info[1].ToBoolean().Value());
    return info.Env().Undefined();
  }
  /** neighSet(vni, ip, macKey): network vni's neighbour ip has MAC macKey. */
  Napi::Value NeighSet(const Napi::CallbackInfo& info) {
    NapiNeighSet(Self()->CoreContext(), info);
    return info.Env().Undefined();
  }
  /** neighDelete(vni, ip): whether it was there. */
  Napi::Value NeighDelete(const Napi::CallbackInfo& info) { return NapiNeighDelete(Self()->CoreContext(), info); }

 private:
  T* Self() { return static_cast<T*>(this); }
};

void InitCore(Napi::Env env, Napi::Object exports);

}  // namespace core
}  // namespace vxland
