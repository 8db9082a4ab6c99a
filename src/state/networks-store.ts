// The networks added at run time (`vxland network add`), so that a restart,
// `kill -9` included, brings them back: <stateDir>/runtime-networks.json,
// saved all-or-nothing with a .bak copy like every state file
// (atomic-store.ts). Each entry is a network as a config file's "networks"
// entry holds it, validated again when read. Each network's own runtime
// changes (peers, static entries, TAP MAC) stay in its <dev>.json.

import { networkFromFile, networkToFile, type NetworkConfig } from '../config/config.js';
import { AtomicStore, parseVersionedJson, type StoreLog } from './atomic-store.js';

/** Bump when the file layout changes; older daemons refuse newer files. */
export const NETWORKS_FORMAT_VERSION = 1;
/** Longer than any interface name (15), so no <dev>.json can be this file. */
export const NETWORKS_FILE_NAME = 'runtime-networks.json';

export class NetworksStore extends AtomicStore<readonly NetworkConfig[]> {
  constructor(o: { stateDir: string; family: 'udp4' | 'udp6'; log?: StoreLog }) {
    super({ stateDir: o.stateDir, fileName: NETWORKS_FILE_NAME, what: 'networks file', parse: (text) => parseNetworks(text, o.family), log: o.log });
  }

  override save(networks: readonly NetworkConfig[]): void {
    super.save({ version: NETWORKS_FORMAT_VERSION, networks: networks.map(networkToFile) });
  }
}

function parseNetworks(text: string, family: 'udp4' | 'udp6'): readonly NetworkConfig[] {
  const { networks } = parseVersionedJson(text, NETWORKS_FORMAT_VERSION);
  if (!Array.isArray(networks)) throw new Error('networks is not a list');
  return networks.map((entry: unknown, index) => {
    try {
      return networkFromFile(entry, family, `networks[${index}]`);
    } catch (err) {
      throw new Error((err as Error).message);
    }
  });
}
