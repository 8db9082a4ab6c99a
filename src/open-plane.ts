// openDataPlane: the host's data plane (src/datapath/plane.ts) wired to
// src/io/ (UdpBind, openPacketCore and TapDevice for the dgram path, one
// NativeEngine for the native one). It lives at the daemon layer because
// datapath/ must not import io/ and io/ must not import datapath/.

import { DgramPlane, NativePlane, type DataPlane, type HostPlaneOptions } from './datapath/plane.js';
import { openPacketCore } from './io/core.js';
import { NativeEngine } from './io/engine.js';
import { TapDevice } from './io/tap.js';
import { UdpBind } from './io/udp.js';
import type { PacketClassifier } from './ports/core.js';

/** The ECN field of an IP TOS byte (RFC 3168). */
const ECN_MASK = 0x03;

export type { DataPlane, HostPlaneOptions, NetworkPlane, NetworkPlaneOptions } from './datapath/plane.js';

/** Binds the UDP socket (EADDRINUSE etc. -> VxlandError VXLAND_SOCKET with
 *  errno/syscall); networks come with addNetwork(). Nothing is left open
 *  when it rejects. */
export async function openDataPlane(o: HostPlaneOptions): Promise<DataPlane> {
  if (o.kind === 'native') {
    const engine = NativeEngine.open({
      local: o.local ?? (o.family === 'udp6' ? '::' : '0.0.0.0'), port: o.port, srcPorts: o.srcPorts,
      ...(o.envelope === undefined ? {} : { ttl: o.envelope.ttl, tos: o.envelope.tos === 'inherit' ? -1 : o.envelope.tos, df: o.envelope.df === 'set' }),
    });
    return new NativePlane(
      {
        engine,
        openTap: (n, token) => {
          const tap = engine.openNetwork({ vni: n.vni, name: n.dev, mtu: n.mtu, addresses: n.addresses, mac: n.mac, token });
          return { slot: tap.slot, mac: tap.mac, dev: tap.name };
        },
        srcPorts: engine.info().srcPorts,
      },
      o,
    );
  }
  // config checkEnvelopeFor refused tos inherit on this path. The socket's
  // TOS goes on every datagram: its DSCP only, ECN not-ECT (a fixed ECN
  // codepoint would claim, or mark, congestion for every inner packet).
  const envelope = o.envelope === undefined || o.envelope.tos === 'inherit' ? undefined
    : { ttl: o.envelope.ttl, tos: o.envelope.tos & ~ECN_MASK, df: o.envelope.df === 'set' };
  const bind = await UdpBind.open({ port: o.port, address: o.local ?? undefined, family: o.family, srcPorts: o.srcPorts, envelope });
  if (bind.srcPortProblem !== null) o.log.warn({ srcport: `${o.srcPorts.min}-${o.srcPorts.max}` }, bind.srcPortProblem);
  let core: PacketClassifier;
  try {
    core = openPacketCore({ family: o.family === 'udp6' ? 6 : 4, dstPort: o.port });
  } catch (err) {
    await bind.close();
    throw err;
  }
  return new DgramPlane(
    { bind, core, srcPorts: bind.srcPorts, openDevice: (n) => TapDevice.open({ name: n.dev, mtu: n.mtu, addresses: [...n.addresses], mac: n.mac }) },
    o,
  );
}
