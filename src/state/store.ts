// Persisted control-plane state of one network: its peers, static FDB
// entries, static neighbours (ARP/ND suppression) and TAP MAC, in <stateDir>/<dev>.json (mode 0600), saved
// all-or-nothing with a .bak copy (atomic-store.ts says how).

import { FLOOD_MAC, parseMac } from '../fdb/fdb.js';
import { checkNeighbour } from '../config/config.js';
import { isVni, normalizeIp } from '../config/validate.js';
import { isLearnableMacKey, macKeyOf } from '../wire/mac.js';
import { AtomicStore, parseVersionedJson, type StoreLog } from './atomic-store.js';

export type { StoreLog } from './atomic-store.js';

/** Bump when the file layout changes; older daemons refuse newer files. */
export const STATE_FORMAT_VERSION = 1;

export interface PersistedState {
  readonly vni: number;
  /** Canonical IP literals. */
  readonly peers: readonly string[];
  readonly fdb: readonly { readonly mac: string; readonly vtep: string }[];
  /** The TAP's MAC (normalised), kept so that it survives restarts. */
  readonly mac?: string;
  /** Static neighbours (`vxland neigh add`); absent in files of older daemons. */
  readonly neigh?: readonly { readonly ip: string; readonly mac: string }[];
}

export interface StateStoreOptions {
  stateDir: string;
  dev: string;
  log?: StoreLog;
}

export class StateStore extends AtomicStore<PersistedState> {
  constructor(options: StateStoreOptions) {
    super({ stateDir: options.stateDir, fileName: `${options.dev}.json`, what: 'state file', parse: parseState, log: options.log });
  }

  override save(state: PersistedState): void {
    super.save({ version: STATE_FORMAT_VERSION, vni: state.vni, peers: state.peers, fdb: state.fdb, mac: state.mac, neigh: state.neigh });
  }
}

/** Throws a plain Error describing the first problem found. */
function parseState(text: string): PersistedState {
  const { vni, peers, fdb, mac: tapMac, neigh } = parseVersionedJson(text, STATE_FORMAT_VERSION);
  if (!isVni(vni)) throw new Error(`vni ${JSON.stringify(vni)} is not an integer 0..16777215`);
  if (!Array.isArray(peers)) throw new Error('peers is not a list');
  const cleanPeers = peers.map((peer: unknown) => {
    const address = typeof peer === 'string' ? normalizeIp(peer) : null;
    if (address === null) throw new Error(`peer ${JSON.stringify(peer)} is not an IP address`);
    return address;
  });
  if (!Array.isArray(fdb)) throw new Error('fdb is not a list');
  const cleanFdb = fdb.map((entry: unknown) => {
    const { mac: macText, vtep: vtepText } = (entry ?? {}) as { mac?: unknown; vtep?: unknown };
    const mac = typeof macText === 'string' ? parseMac(macText) : null;
    const vtep = typeof vtepText === 'string' ? normalizeIp(vtepText) : null;
    if (mac === null || mac === FLOOD_MAC || vtep === null) throw new Error(`fdb entry ${JSON.stringify(entry)} is malformed`);
    return { mac, vtep };
  });
  if (neigh !== undefined && !Array.isArray(neigh)) throw new Error('neigh is not a list');
  const cleanNeigh = (neigh as unknown[] | undefined)?.map((entry: unknown) => {
    const { ip, mac } = (entry ?? {}) as { ip?: unknown; mac?: unknown };
    const checked = checkNeighbour(ip, mac);
    if ('problem' in checked) throw new Error(`neigh entry ${JSON.stringify(entry)}: ${checked.problem}`);
    return checked;
  });
  const state = { vni, peers: cleanPeers, fdb: cleanFdb, ...(cleanNeigh === undefined ? {} : { neigh: cleanNeigh }) };
  if (tapMac === undefined) return state;
  const mac = typeof tapMac === 'string' ? parseMac(tapMac) : null;
  if (mac === null || !isLearnableMacKey(macKeyOf(mac))) throw new Error(`mac ${JSON.stringify(tapMac)} is not a unicast MAC address`);
  return { ...state, mac };
}
