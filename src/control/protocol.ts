// The control protocol between the CLI and the daemon: newline-delimited JSON
// over a unix stream socket, one request per line, answered in order.
//
//   request:  {"id": 1, "method": "peer.add", "params": {"ip": "192.0.2.2"}}
//   success:  {"id": 1, "ok": true, "result": {...}}
//   failure:  {"id": 1, "ok": false, "error": {"code": "VXLAND_NOT_FOUND", "message": "..."}}
//
// A failure to even read the request (bad JSON, line too long) is answered
// with "id": null. Params are validated here, so handlers get clean values.

import type { MembershipStatus } from '../ports/membership.js';
import { ERROR_CODES, VxlandError, type ErrorCode } from '../errors.js';
import { FLOOD_MAC, parseMac, type FdbEntry, type FdbEntryKind } from '../fdb/fdb.js';
import type { StatsSnapshot, VtepCounters } from '../ports/counters.js';
import type { DoctorReport } from '../doctor.js';
import type { FdbEvent } from '../fdb/fdb.js';
import { isVni, normalizeIp } from '../config/validate.js';

/** Longest request line accepted, newline excluded; longer → error, then close. */
export const MAX_REQUEST_LINE_BYTES = 64 * 1024;
/** A client that completes no request for this long is disconnected (bytes
 *  of an unfinished line and blank lines do not count). */
export const CLIENT_IDLE_TIMEOUT_MS = 30_000;
/** A request line must be complete this long after its first byte arrived. */
export const REQUEST_LINE_TIMEOUT_MS = 5_000;
/** How long the CLI waits for an answer by default. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 5_000;

export interface ControlRequest {
  id: number;
  method: string;
  params?: Record<string, unknown>;
}

export interface ControlError {
  code: ErrorCode;
  message: string;
}

export type ControlResponse =
  | { id: number; ok: true; result: unknown }
  | { id: number | null; ok: false; error: ControlError };

/** Which network a request is about: by VNI or by TAP name. Neither = the
 *  only network (VXLAND_NETWORK_AMBIGUOUS when there are several). */
export interface NetworkSelector {
  vni?: number;
  dev?: string;
}

export interface NetworkStatus {
  vni: number;
  dev: string;
  /** The TAP device's own MAC address. */
  mac: string;
  mtu: number;
  addresses: string[];
  bridge: string | null;
  /** 'config': from the config file; 'runtime': added with `vxland network add`. */
  origin: 'config' | 'runtime';
  stats: StatsSnapshot;
  fdb: { size: number; learned: number; peers: number };
  /** The source policy (--accept): "peers", "any" or the CIDR list. */
  accept: string;
  /** ARP/ND suppression on, and how many neighbours it answers for (absent from older daemons). */
  suppress?: { on: boolean; neighbours: number };
}

/** The host's part, then one block per network. With exactly one network
 *  (or one selected) its fields are also at the top level, as a
 *  single-network daemon showed them; when the daemon has just that one,
 *  those stats include the host's drops. */
export interface StatusResult extends Partial<NetworkStatus> {
  pid: number;
  uptimeS: number;
  datapath: string;
  /** Offloads in effect on the data path: "tso" (TAP TSO and checksum
   *  offload), "uso" (UDP segmentation offload on the TAPs), "udp-gso", "udp-gro", "tcp-coalesce"; none on dgram. */
  offloads: string[];
  /** The outer header: TTL, TOS, DF and what the path does about ECN (absent from older daemons). */
  envelope?: string;
  port: number;
  /** Outer UDP source ports: the range and the ports bound in it (a flow's
   *  hash picks one); absent from an older daemon. */
  srcport?: { min: number; max: number; ports: number[] };
  /** null = bound to any address. */
  local: string | null;
  /** Drops before a network is known: rx_truncated, rx_no_i_flag, rx_wrong_vni. */
  host: { drops: Record<string, number>; dropsTotal: number };
  /** Membership through etcd; null (or absent, from an older daemon) when not configured. */
  etcd?: MembershipStatus | null;
  networks: NetworkStatus[];
}

/** `vxland network list`: one row per network. */
export type NetworkListResult = Array<{
  vni: number; dev: string; mac: string; mtu: number; peers: number; bridge: string | null; origin: 'config' | 'runtime';
}>;

/** `vxland network show`: the network's status and its settings as a
 *  config file's networks[] entry would hold them (peers as now, not as configured). */
export type NetworkShowResult = NetworkStatus & { settings: Record<string, unknown> };

export interface NetworkChangeResult {
  vni: number;
  dev: string;
}

export interface PeerChangeResult {
  ip: string;
  /** false when peer.add found it present already (not an error). */
  changed: boolean;
}
/** One flood-list peer. kind 'peer': configured (config file, --peer, `peer
 *  add`), also when etcd names it too (configured entries win); 'etcd': only
 *  the membership names it. */
export interface PeerRow {
  ip: string;
  kind: 'peer' | 'etcd';
}
/** The flood list of the network's VNI, in insertion order. */
export type PeerListResult = PeerRow[];
/** The network's entries; peers appear with mac 00:00:00:00:00:00 and kind 'peer'. */
export type FdbShowResult = FdbEntry[];
/** `vxland fdb get MAC`: the network's entry for that MAC. */
export type FdbGetResult = FdbEntry;

/** The kinds `fdb show --type` selects. */
export const FDB_TYPES = ['static', 'learned', 'etcd', 'peer'] as const satisfies readonly FdbEntryKind[];

/** What `fdb show --mac/--vtep/--type` keeps: entries matching every field given. */
export interface FdbFilter {
  mac?: string;
  vtep?: string;
  kind?: FdbEntryKind;
}

export function matchesFdbFilter(entry: FdbEntry, filter: FdbFilter): boolean {
  return (filter.mac === undefined || entry.mac === filter.mac)
    && (filter.vtep === undefined || entry.vtep === filter.vtep)
    && (filter.kind === undefined || entry.kind === filter.kind);
}

/** `vxland config show`: the running configuration as a host file
 *  (config.ts reads it back): the file's settings with the changes made
 *  at run time, networks added with `network add` among the networks. */
export type ConfigShowResult = Record<string, unknown> & { networks: Array<Record<string, unknown>> };
export interface FdbChangeResult {
  mac: string;
  ip?: string;
}
export interface FdbFlushResult {
  removed: number;
}

/** `vxland neigh show`: the neighbour entries suppression answers with. */
export interface NeighEntryResult {
  vni: number;
  dev: string;
  ip: string;
  mac: string;
  /** 'static': config file or `neigh add`; 'etcd': a remote VTEP's binding. */
  owner: 'static' | 'etcd';
  /** etcd: whose binding. */
  vtep?: string;
}
export interface NeighShowResult {
  /** Per network shown: whether it suppresses. */
  networks: Array<{ vni: number; dev: string; suppress: boolean }>;
  entries: NeighEntryResult[];
}
export interface NeighChangeResult {
  vni: number;
  ip: string;
  mac?: string;
}

export interface StatsResult {
  /** The network's counters; with one network only, the host's drops too. */
  stats: StatsSnapshot;
  /** Per-VTEP counters; tx counts datagrams handed to the socket. */
  vteps: Array<VtepCounters & { vtep: string }>;
}

export interface LogLevelResult {
  level: string;
  previous: string;
}

/** `vxland reload`: what re-reading the config file changed (as SIGHUP
 *  does). A file that cannot be read or is invalid is an error reply
 *  instead (VXLAND_CONFIG_FILE, VXLAND_CONFIG_INVALID) and changes nothing. */
export interface ReloadResult {
  /** VNIs of the networks the file added (and that are now served). */
  addedNetworks: number[];
  /** VNIs of the networks the file no longer lists, now closed. */
  removedNetworks: number[];
  /** VNIs whose peers, static entries or source policy changed. */
  changedNetworks: number[];
  /** The new log level, or null when it stayed. */
  logLevel: string | null;
  /** Settings that changed but apply only after a restart ("port", "networks (vni 42).mtu"). */
  needRestart: string[];
  /** Networks that could not be opened or changed: they keep running as they were. */
  failed: Array<{ vni: number; error: string }>;
}

/** One line of `vxland monitor`: an FDB change (peers are kind 'peer'). */
export type MonitorEvent = FdbEvent & { time: string };

/** Log levels the daemon accepts at run time. */
export const RUNTIME_LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** What the daemon supplies to the server. Throw VxlandError for a refusal
 *  (e.g. VXLAND_NOT_FOUND, VXLAND_NETWORK_UNKNOWN); any other throw is
 *  reported as VXLAND_INTERNAL. Per-network methods take the selector. */
export interface ControlHandler {
  status(n: NetworkSelector): StatusResult | Promise<StatusResult>;
  networkList(): NetworkListResult;
  networkShow(n: NetworkSelector): NetworkShowResult;
  /** flags as `vxland network add` sends them (NetworkFlags of config.ts);
   *  the handler validates them as a config file's network. */
  networkAdd(flags: Record<string, unknown>): Promise<NetworkChangeResult>;
  networkDel(n: NetworkSelector): Promise<NetworkChangeResult>;
  peerAdd(n: NetworkSelector, ip: string): PeerChangeResult | Promise<PeerChangeResult>;
  /** Throws VXLAND_NOT_FOUND for an unknown peer. */
  peerDel(n: NetworkSelector, ip: string): PeerChangeResult | Promise<PeerChangeResult>;
  peerList(n: NetworkSelector): PeerListResult | Promise<PeerListResult>;
  fdbShow(n: NetworkSelector, filter: FdbFilter): FdbShowResult | Promise<FdbShowResult>;
  /** Throws VXLAND_NOT_FOUND when the network has no entry for that MAC. */
  fdbGet(n: NetworkSelector, mac: string): FdbGetResult | Promise<FdbGetResult>;
  fdbAdd(n: NetworkSelector, mac: string, ip: string): FdbChangeResult | Promise<FdbChangeResult>;
  /** Throws VXLAND_NOT_FOUND when no static or learned entry has that MAC. */
  fdbDel(n: NetworkSelector, mac: string): FdbChangeResult | Promise<FdbChangeResult>;
  fdbFlush(n: NetworkSelector, learnedOnly: boolean): FdbFlushResult | Promise<FdbFlushResult>;
  /** No selector: every network's. */
  neighShow(n: NetworkSelector): NeighShowResult;
  neighAdd(n: NetworkSelector, ip: string, mac: string): NeighChangeResult;
  /** Throws VXLAND_NOT_FOUND when the network has no static neighbour ip. */
  neighDel(n: NetworkSelector, ip: string): NeighChangeResult;
  stats(n: NetworkSelector): StatsResult;
  /** Sets the level when given; answers the level in force (host-wide). */
  logLevel(level: string | undefined): LogLevelResult;
  /** The host's checks, and those of the selected network (all of them when none is named). */
  doctor(n: NetworkSelector): DoctorReport | Promise<DoctorReport>;
  /** Re-reads the config file and applies the difference; resolves once applied. */
  reload(): Promise<ReloadResult>;
  configShow(): ConfigShowResult;
  /** Calls emit for every event of the network until the returned function is called. */
  monitor(n: NetworkSelector, emit: (event: MonitorEvent) => void): () => void;
}

/** The flags `network.add` accepts (NetworkFlags of config.ts). */
const NETWORK_ADD_FLAGS = [
  'vni', 'dev', 'mtu', 'address', 'peer', 'ageing', 'maxFdb', 'maxFdbPerVtep', 'learnRate', 'accept', 'allowVlan', 'mac', 'bridge',
] as const;

/** Every method, with its params check and the handler call it maps to. */
export const METHODS: Readonly<Record<string, (handler: ControlHandler, params: Record<string, unknown>) => unknown>> = {
  'status': (h, p) => h.status(selectorParam(p)),
  'network.list': (h) => h.networkList(),
  'network.show': (h, p) => h.networkShow(selectorParam(p)),
  'network.add': (h, p) => h.networkAdd(networkFlagsParam(p)),
  'network.del': (h, p) => h.networkDel(requiredSelectorParam(p)),
  'peer.add': (h, p) => h.peerAdd(selectorParam(p), ipParam(p, 'ip')),
  'peer.del': (h, p) => h.peerDel(selectorParam(p), ipParam(p, 'ip')),
  'peer.list': (h, p) => h.peerList(selectorParam(p)),
  'fdb.show': (h, p) => h.fdbShow(selectorParam(p), fdbFilterParam(p)),
  'fdb.get': (h, p) => h.fdbGet(selectorParam(p), unicastMacParam(p, 'mac')),
  'fdb.add': (h, p) => h.fdbAdd(selectorParam(p), unicastMacParam(p, 'mac'), ipParam(p, 'ip')),
  'fdb.del': (h, p) => h.fdbDel(selectorParam(p), macParam(p, 'mac')),
  'fdb.flush': (h, p) => h.fdbFlush(selectorParam(p), booleanParam(p, 'learned')),
  'neigh.show': (h, p) => h.neighShow(selectorParam(p)),
  'neigh.add': (h, p) => h.neighAdd(selectorParam(p), ipParam(p, 'ip'), unicastMacParam(p, 'mac')),
  'neigh.del': (h, p) => h.neighDel(selectorParam(p), ipParam(p, 'ip')),
  'stats': (h, p) => h.stats(selectorParam(p)),
  'log.level': (h, p) => h.logLevel(optionalChoiceParam(p, 'level', RUNTIME_LOG_LEVELS)),
  'doctor': (h, p) => h.doctor(selectorParam(p)),
  'reload': (h) => h.reload(),
  'config.show': (h) => h.configShow(),
};

/** Methods that answer once, then stream {"event": ...} lines until the
 *  client disconnects. The answer's result is {"streaming": true}. The
 *  params are checked (and the network selected) before the answer. */
export const STREAMS: Readonly<Record<string, (handler: ControlHandler, emit: (event: unknown) => void, params: Record<string, unknown>) => () => void>> = {
  'monitor': (h, emit, p) => h.monitor(selectorParam(p), emit),
};

/** A line of a stream after its answer. */
export interface StreamMessage {
  event: unknown;
}

export function encodeMessage(message: ControlRequest | ControlResponse | StreamMessage): string {
  return `${JSON.stringify(message)}\n`;
}

/** Parses one request line; throws VXLAND_CONTROL_PROTOCOL. The id found (if
 *  any) is attached to the error so the answer can still carry it. */
export function parseRequest(line: string): ControlRequest {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    throw protocolError('request is not valid JSON');
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw protocolError('request must be a JSON object');
  const { id, method, params } = raw as Record<string, unknown>;
  if (typeof id !== 'number' || !Number.isSafeInteger(id)) throw protocolError('request id must be an integer');
  if (typeof method !== 'string') throw protocolError('request method must be a string', id);
  if (params !== undefined && (typeof params !== 'object' || params === null || Array.isArray(params))) {
    throw protocolError('request params must be a JSON object', id);
  }
  return params === undefined ? { id, method } : { id, method, params: params as Record<string, unknown> };
}

/** Parses one response line; throws VXLAND_CONTROL_PROTOCOL if it is not one. */
export function parseResponse(line: string): ControlResponse {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    throw protocolError('daemon sent a reply that is not valid JSON');
  }
  const response = raw as ControlResponse;
  if (typeof raw !== 'object' || raw === null || typeof response.ok !== 'boolean') {
    throw protocolError('daemon sent a reply that is not a control response');
  }
  if (!response.ok && (typeof response.error?.message !== 'string' || typeof response.error?.code !== 'string')) {
    throw protocolError('daemon sent an error reply without code and message');
  }
  return response;
}

/** The error to send for anything a handler or parser threw. */
export function toControlError(err: unknown): ControlError {
  if (err instanceof VxlandError) return { code: err.code, message: err.message };
  return { code: 'VXLAND_INTERNAL', message: `internal error: ${err instanceof Error ? err.message : String(err)}` };
}

/** Turns an error reply back into a VxlandError; unknown codes (a newer
 *  daemon) keep their message under VXLAND_INTERNAL. */
export function fromControlError(error: ControlError): VxlandError {
  const code = Object.hasOwn(ERROR_CODES, error.code) ? error.code : 'VXLAND_INTERNAL';
  return new VxlandError(code, error.message);
}

export class ProtocolError extends VxlandError {
  readonly requestId: number | null;
  constructor(message: string, requestId: number | null) {
    super('VXLAND_CONTROL_PROTOCOL', message);
    this.requestId = requestId;
  }
}

function protocolError(message: string, id: number | null = null): ProtocolError {
  return new ProtocolError(message, id);
}

function badParam(message: string): VxlandError {
  return new VxlandError('VXLAND_BAD_ARGUMENT', message);
}

function ipParam(params: Record<string, unknown>, name: string): string {
  const value = params[name];
  const ip = typeof value === 'string' ? normalizeIp(value) : null;
  if (ip === null) throw badParam(`${name} must be an IPv4 or IPv6 address (got ${JSON.stringify(value) ?? 'nothing'})`);
  return ip;
}

function macParam(params: Record<string, unknown>, name: string): string {
  const value = params[name];
  const mac = typeof value === 'string' ? parseMac(value) : null;
  if (mac === null) throw badParam(`${name} must be a MAC address like 02:00:00:00:00:01 (got ${JSON.stringify(value) ?? 'nothing'})`);
  return mac;
}

function unicastMacParam(params: Record<string, unknown>, name: string): string {
  const mac = macParam(params, name);
  if (mac === FLOOD_MAC) throw badParam(`${FLOOD_MAC} is the flood address; use "vxland peer add" for flood VTEPs`);
  return mac;
}

function optionalChoiceParam<T extends string>(params: Record<string, unknown>, name: string, choices: readonly T[]): T | undefined {
  const value = params[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !(choices as readonly string[]).includes(value)) {
    throw badParam(`${name} must be one of ${choices.join(', ')} (got ${JSON.stringify(value)})`);
  }
  return value as T;
}

function booleanParam(params: Record<string, unknown>, name: string): boolean {
  const value = params[name] ?? false;
  if (typeof value !== 'boolean') throw badParam(`${name} must be true or false (got ${JSON.stringify(value)})`);
  return value;
}

/** params.mac, params.vtep and params.type, each optional. */
function fdbFilterParam(params: Record<string, unknown>): FdbFilter {
  const filter: FdbFilter = {};
  if (params.mac !== undefined) filter.mac = macParam(params, 'mac');
  if (params.vtep !== undefined) filter.vtep = ipParam(params, 'vtep');
  const kind = optionalChoiceParam(params, 'type', FDB_TYPES);
  if (kind !== undefined) filter.kind = kind;
  return filter;
}

/** params.vni (an integer) and/or params.dev (a string); checked against the
 *  daemon's networks by the handler. */
export function selectorParam(params: Record<string, unknown>): NetworkSelector {
  const { vni, dev } = params;
  if (vni !== undefined && !isVni(vni)) throw badParam(`vni must be an integer 0..16777215 (got ${JSON.stringify(vni)})`);
  if (dev !== undefined && typeof dev !== 'string') throw badParam(`dev must be an interface name (got ${JSON.stringify(dev)})`);
  return { ...(vni !== undefined ? { vni } : {}), ...(dev !== undefined ? { dev } : {}) };
}

/** A selector that names a network: deleting "the only one" by default would be too easy a mistake. */
function requiredSelectorParam(params: Record<string, unknown>): NetworkSelector {
  const selector = selectorParam(params);
  if (selector.vni === undefined && selector.dev === undefined) throw badParam('say which network: --vni N or --dev NAME');
  return selector;
}

function networkFlagsParam(params: Record<string, unknown>): Record<string, unknown> {
  const flags = params.network;
  if (typeof flags !== 'object' || flags === null || Array.isArray(flags)) throw badParam('network must be an object of network settings');
  for (const key of Object.keys(flags)) {
    if (!(NETWORK_ADD_FLAGS as readonly string[]).includes(key)) throw badParam(`unknown network setting "${key}" (known: ${NETWORK_ADD_FLAGS.join(', ')})`);
  }
  return flags as Record<string, unknown>;
}
