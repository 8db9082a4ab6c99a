// The membership's BindingsSink for ARP/ND suppression: each remote VTEP's
// (ip, mac) bindings become the etcd-owned entries of the neighbour table,
// replaced whole per (network, VTEP) on every change of its record (an empty
// list when the VTEP is gone). A binding that is no unicast (ip, mac) pair is
// left out: another host's record must not make us answer for a broadcast
// or multicast address.

import { checkNeighbour } from '../config/config.js';
import type { Neighbours } from '../fdb/neighbours.js';
import type { BindingsSink } from './membership.js';

export function neighbourBindings(neighbours: Neighbours): BindingsSink {
  return {
    onBindings(vni, vtep, bindings) {
      const usable = bindings.map((b) => checkNeighbour(b.ip, b.mac)).filter((b): b is { ip: string; mac: string } => !('problem' in b));
      neighbours.replaceEtcd(vni, vtep, usable);
    },
  };
}
