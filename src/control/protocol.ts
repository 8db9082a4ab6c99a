// The control protocol between the CLI and the daemon: newline-delimited JSON
// over a unix stream socket, one request per line, answered in order.
//
//   request:  {"id": 1, "method": "peer.add", "params": {"ip": "192.0.2.2"}}
//   success:  {"id": 1, "ok": true, "result": {...}}
//   failure:  {"id": 1, "ok": false, "error": {"code": "VXLAND_NOT_FOUND", "message": "..."}}
//
// A failure to even read the request (bad JSON, line too long) is answered
// with "id": null. Params are validated here, so handlers get clean values.

import { ERROR_CODES, VxlandError, type ErrorCode } from '../errors.js';
import { FLOOD_MAC, parseMac, type FdbEntry } from '../fdb/fdb.js';
import type { StatsSnapshot, VtepCounters } from '../ports/counters.js';
import type { DoctorReport } from '../doctor.js';
import type { FdbEvent } from '../fdb/fdb.js';
import { normalizeIp } from '../config/validate.js';

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

export interface StatusResult {
  dev: string;
  /** The TAP device's own MAC address. */
  mac: string;
  vni: number;
  port: number;
  /** null = bound to any address. */
  local: string | null;
  mtu: number;
  datapath: string;
  /** Offloads in effect on the data path: "tso" (TAP TSO and checksum
   *  offload), "udp-gso", "udp-gro", "tcp-coalesce"; none on dgram. */
  offloads: string[];
  uptimeS: number;
  pid: number;
  stats: StatsSnapshot;
  fdb: { size: number; learned: number; peers: number };
  /** The source policy (--accept): "peers", "any" or the CIDR list. */
  accept: string;
}

export interface PeerChangeResult {
  ip: string;
  /** false when peer.add found it present already (not an error). */
  changed: boolean;
}
/** The flood list of the daemon's VNI, in insertion order. */
export type PeerListResult = string[];
/** Peers appear with mac 00:00:00:00:00:00 and kind 'peer'. */
export type FdbShowResult = FdbEntry[];
export interface FdbChangeResult {
  mac: string;
  ip?: string;
}
export interface FdbFlushResult {
  removed: number;
}

export interface StatsResult {
  stats: StatsSnapshot;
  /** Per-VTEP counters; tx counts datagrams handed to the socket. */
  vteps: Array<VtepCounters & { vtep: string }>;
}

export interface LogLevelResult {
  level: string;
  previous: string;
}

/** One line of `vxland monitor`: an FDB change (peers are kind 'peer'). */
export type MonitorEvent = FdbEvent & { time: string };

/** Log levels the daemon accepts at run time. */
export const RUNTIME_LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** What the daemon supplies to the server. Throw VxlandError for a refusal
 *  (e.g. VXLAND_NOT_FOUND); any other throw is reported as VXLAND_INTERNAL. */
export interface ControlHandler {
  status(): StatusResult | Promise<StatusResult>;
  peerAdd(ip: string): PeerChangeResult | Promise<PeerChangeResult>;
  /** Throws VXLAND_NOT_FOUND for an unknown peer. */
  peerDel(ip: string): PeerChangeResult | Promise<PeerChangeResult>;
  peerList(): PeerListResult | Promise<PeerListResult>;
  fdbShow(): FdbShowResult | Promise<FdbShowResult>;
  fdbAdd(mac: string, ip: string): FdbChangeResult | Promise<FdbChangeResult>;
  /** Throws VXLAND_NOT_FOUND when no static or learned entry has that MAC. */
  fdbDel(mac: string): FdbChangeResult | Promise<FdbChangeResult>;
  fdbFlush(learnedOnly: boolean): FdbFlushResult | Promise<FdbFlushResult>;
  stats(): StatsResult;
  /** Sets the level when given; answers the level in force. */
  logLevel(level: string | undefined): LogLevelResult;
  doctor(): DoctorReport | Promise<DoctorReport>;
  /** Calls emit for every event until the returned function is called. */
  monitor(emit: (event: MonitorEvent) => void): () => void;
}

/** Every method, with its params check and the handler call it maps to. */
export const METHODS: Readonly<Record<string, (handler: ControlHandler, params: Record<string, unknown>) => unknown>> = {
  'status': (h) => h.status(),
  'peer.add': (h, p) => h.peerAdd(ipParam(p, 'ip')),
  'peer.del': (h, p) => h.peerDel(ipParam(p, 'ip')),
  'peer.list': (h) => h.peerList(),
  'fdb.show': (h) => h.fdbShow(),
  'fdb.add': (h, p) => h.fdbAdd(unicastMacParam(p, 'mac'), ipParam(p, 'ip')),
  'fdb.del': (h, p) => h.fdbDel(macParam(p, 'mac')),
  'fdb.flush': (h, p) => h.fdbFlush(booleanParam(p, 'learned')),
  'stats': (h) => h.stats(),
  'log.level': (h, p) => h.logLevel(optionalChoiceParam(p, 'level', RUNTIME_LOG_LEVELS)),
  'doctor': (h) => h.doctor(),
};

/** Methods that answer once, then stream {"event": ...} lines until the
 *  client disconnects. The answer's result is {"streaming": true}. */
export const STREAMS: Readonly<Record<string, (handler: ControlHandler, emit: (event: unknown) => void) => () => void>> = {
  'monitor': (h, emit) => h.monitor(emit),
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
