// TEMPORARY adapter (replaced by i10-plane at merge): openDataPlane over
// today's single-network Datapath / NativeDatapath. It serves one network at
// a time; each network opens its own TAP and UDP socket, so the socket is
// bound by addNetwork, not by openDataPlane.

import { VxlandError } from './errors';
import type { DataPlane, HostPlaneOptions, NetworkPlane, NetworkPlaneOptions } from './datapath/plane';
import { Datapath } from './datapath/datapath';
import { NativeDatapath } from './datapath/native-datapath';
import { openPacketCore } from './io/core';
import { NativeEngine } from './io/engine';
import { TapDevice } from './io/tap';
import { UdpBind } from './io/udp';

interface Served {
  plane: NetworkPlane;
  start(onFatal: (err: Error) => void): void;
  stop(): Promise<void>;
  offloads(): string[];
}

export async function openDataPlane(h: HostPlaneOptions): Promise<DataPlane> {
  let served: Served | null = null;
  let onFatal: ((err: Error) => void) | null = null;
  let stopped = false;

  const open = async (o: NetworkPlaneOptions): Promise<Served> => {
    if (h.kind === 'native') {
      const engine = NativeEngine.open({
        name: o.dev, mtu: o.mtu, addresses: [...o.addresses], mac: o.mac, vni: o.vni,
        local: h.local ?? (h.family === 'udp6' ? '::' : '0.0.0.0'), port: h.port,
      });
      const native = new NativeDatapath({ vni: o.vni, fdb: o.fdb, engine, stats: o.stats, log: h.log, sources: o.sources, allowVlan: o.allowVlan });
      return { plane: { vni: o.vni, dev: o.dev, mac: engine.mac }, start: (f) => native.start(f), stop: () => native.stop(), offloads: () => native.offloads() };
    }
    const device = TapDevice.open({ name: o.dev, mtu: o.mtu, addresses: [...o.addresses], mac: o.mac });
    let bind: UdpBind;
    try {
      bind = await UdpBind.open({ port: h.port, address: h.local ?? undefined, family: h.family });
    } catch (err) {
      device.close();
      throw err;
    }
    try {
      const core = openPacketCore({ vni: o.vni, mtu: o.mtu, ownMac: device.mac, family: h.family === 'udp6' ? 6 : 4, dstPort: h.port });
      const dgram = new Datapath({ vni: o.vni, dstPort: h.port, fdb: o.fdb, device, bind, core, stats: o.stats, log: h.log, sources: o.sources, allowVlan: o.allowVlan });
      return { plane: { vni: o.vni, dev: o.dev, mac: device.mac }, start: (f) => dgram.start(f), stop: () => dgram.stop(), offloads: () => [] };
    } catch (err) {
      device.close();
      await bind.close();
      throw err;
    }
  };

  return {
    kind: h.kind,
    start(fatal) {
      onFatal = fatal;
      served?.start(fatal);
    },
    async addNetwork(o) {
      if (served !== null) {
        const same = served.plane.vni === o.vni || served.plane.dev === o.dev;
        throw new VxlandError(same ? 'VXLAND_NETWORK_EXISTS' : 'VXLAND_INTERNAL', same
          ? `network vni ${o.vni} (${o.dev}) clashes with vni ${served.plane.vni} (${served.plane.dev}), already served`
          : `internal error: this build serves one network at a time (vni ${served.plane.vni} is served); several networks need the i10-plane data plane`);
      }
      if (stopped) throw new VxlandError('VXLAND_INTERNAL', 'internal error: data plane is stopped');
      served = await open(o);
      if (onFatal !== null) served.start(onFatal);
      return served.plane;
    },
    async removeNetwork(vni) {
      if (served === null || served.plane.vni !== vni) return;
      const s = served;
      served = null;
      await s.stop();
    },
    offloads: () => served?.offloads() ?? [],
    async stop() {
      stopped = true;
      const s = served;
      served = null;
      await s?.stop();
    },
  };
}
