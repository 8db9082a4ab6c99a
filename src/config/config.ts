// The daemon's configuration: a JSON file (--config FILE) overlaid with CLI
// flags, validated once here and then deeply frozen. Nothing downstream
// re-checks a Config; every message a user sees about a bad setting comes
// from this file.
//
// Example file (every key optional except vni):
//   {
//     "dev": "vxl0", "vni": 42, "local": "192.0.2.1", "port": 4789,
//     "mtu": 1450, "addresses": ["10.42.0.1/24", "fd42::1/64"],
//     "peers": ["192.0.2.2"], "fdb": [{ "mac": "02:00:00:00:00:02", "vtep": "192.0.2.2" }],
//     "ageingS": 300, "maxFdb": 16384, "datapath": "auto",
//     "stateDir": "/var/lib/vxland", "socket": "/run/vxland/vxl0.sock", "logLevel": "info"
//   }
// Relative paths in the file are taken relative to the file's directory.

import path from 'node:path';
import { VxlandError } from '../errors.js';
import { MTU_MAX_BYTES as MTU_MAX, MTU_MIN_BYTES as MTU_MIN } from '../tables/limits.generated.js';
import {
  FDB_AGEING_DEFAULT_MS,
  FDB_LEARN_RATE_PER_VTEP_DEFAULT_PER_S,
  FDB_MAX_LEARNED_DEFAULT,
  FDB_MAX_LEARNED_PER_VTEP_DEFAULT,
  FLOOD_MAC,
  parseMac,
} from '../fdb/fdb.js';
import { VXLAN_DEFAULT_PORT } from '../wire/vxlan.js';
import { isLearnableMacKey, macKeyOf } from '../wire/mac.js';
import { readConfigText } from './file.js';
import { JsonError, parseStrictJson } from './json.js';
import { ifnameProblem, ipFamily, normalizeIp, parseCidr, parseDecimal, VNI_MAX, type Cidr, type IpFamily } from './validate.js';

/** IANA VXLAN port. Linux (`ip link add ... type vxlan` without dstport)
 *  and some old switches default to 8472; use --port 8472 to talk to those. */
export const VXLAN_IANA_PORT = VXLAN_DEFAULT_PORT;
export const DEFAULT_DEV = 'vxl0';
/** 1500-byte underlay minus 50 bytes of outer Ethernet, IPv4, UDP and VXLAN
 *  headers. Use 1430 over an IPv6 underlay. */
export const DEFAULT_MTU = 1450;
/** The TAP MTU range of both data paths (native/limits.h says why). */
export { MTU_MAX, MTU_MIN };
export const DEFAULT_AGEING_S = FDB_AGEING_DEFAULT_MS / 1000;
export const DEFAULT_STATE_DIR = '/var/lib/vxland';
export const DEFAULT_SOCKET_DIR = '/run/vxland';

export const DATAPATH_CHOICES = ['auto', 'native', 'dgram'] as const;
export type DatapathChoice = (typeof DATAPATH_CHOICES)[number];
/** What actually runs; see resolveDatapath(). */
export type DatapathKind = 'native' | 'dgram';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Who may send us VXLAN (--accept); src/datapath/accept.ts applies it. */
export type AcceptPolicy =
  | { readonly kind: 'peers' }
  | { readonly kind: 'any' }
  | { readonly kind: 'cidrs'; readonly cidrs: readonly Cidr[] };

export interface StaticFdbConfig {
  /** Normalised lower-case aa:bb:cc:dd:ee:ff. */
  readonly mac: string;
  /** Canonical IP literal (see normalizeIp). */
  readonly vtep: string;
}

export interface Config {
  readonly dev: string;
  readonly vni: number;
  /** Address to bind and the source of encapsulated packets; null = any. */
  readonly local: string | null;
  /** udp6 when local is IPv6, otherwise udp4. All peers share this family. */
  readonly family: 'udp4' | 'udp6';
  readonly port: number;
  readonly mtu: number;
  /** CIDRs put on the TAP device, as written by the user. */
  readonly addresses: readonly string[];
  /** Flood-list VTEPs (canonical IP literals, no duplicates). */
  readonly peers: readonly string[];
  readonly fdb: readonly StaticFdbConfig[];
  /** Seconds without a frame from a learned MAC before it is forgotten; 0 = never. */
  readonly ageingS: number;
  /** Most learned MACs kept; further ones are refused and counted. */
  readonly maxFdb: number;
  /** Most learned MACs behind one VTEP. */
  readonly maxFdbPerVtep: number;
  /** New or moved MACs learned per second per VTEP; 0 = no limit. */
  readonly learnRatePerS: number;
  /** Who may send us VXLAN; see src/datapath/accept.ts. */
  readonly accept: AcceptPolicy;
  /** Carry VLAN-tagged inner frames (off by default, RFC 7348 §6.1). */
  readonly allowVlan: boolean;
  /** Group allowed to use the control socket besides root; null = root only. */
  readonly controlGroup: string | null;
  /** The TAP's MAC (normalised, unicast, not zero); null = the one saved in
   *  the state file, else a random locally administered one saved there. */
  readonly mac: string | null;
  /** An existing Linux bridge to put the TAP into (src/io/bridge.ts); null = none. */
  readonly bridge: string | null;
  /** As requested; resolveDatapath() decides what runs. */
  readonly datapath: DatapathChoice;
  readonly stateDir: string;
  readonly socket: string;
  readonly logLevel: LogLevel;
  /** Where to serve Prometheus metrics; null = not at all (the default). */
  readonly metrics: { readonly host: string; readonly port: number } | null;
}

/** CLI flags as commander hands them over: values are unparsed strings. */
export interface ConfigFlags {
  config?: string;
  dev?: string;
  vni?: string | number;
  local?: string;
  port?: string | number;
  mtu?: string | number;
  /** Repeated --address; replaces the file's list when given. */
  address?: string[];
  /** Repeated --peer; replaces the file's list when given. */
  peer?: string[];
  ageing?: string | number;
  maxFdb?: string | number;
  datapath?: string;
  stateDir?: string;
  socket?: string;
  logLevel?: string;
  metrics?: string;
  maxFdbPerVtep?: string | number;
  learnRate?: string | number;
  accept?: string;
  allowVlan?: boolean;
  controlGroup?: string;
  mac?: string;
  bridge?: string;
}

/** VXLAND_CONFIG names a config file used when --config is not given. */
export type ConfigEnv = Readonly<Record<string, string | undefined>>;

const FILE_KEYS = [
  'dev', 'vni', 'local', 'port', 'mtu', 'addresses', 'peers', 'fdb',
  'ageingS', 'maxFdb', 'datapath', 'stateDir', 'socket', 'logLevel', 'metrics',
  'maxFdbPerVtep', 'learnRatePerS', 'accept', 'allowVlan', 'controlGroup', 'mac', 'bridge',
] as const;
type FileKey = (typeof FILE_KEYS)[number];

export function defaultSocketPath(dev: string): string {
  return path.join(DEFAULT_SOCKET_DIR, `${dev}.sock`);
}

/** The one place that decides which data path runs. nativeSupport answers
 *  true or why the native engine cannot run here (the daemon passes
 *  src/io/engine-support.ts; config/ never loads the addon itself). Throws
 *  VXLAND_DATAPATH_UNAVAILABLE for a choice that cannot run here. */
export function resolveDatapath(choice: DatapathChoice, nativeSupport: () => true | string): DatapathKind {
  switch (choice) {
    case 'native': {
      const support = nativeSupport();
      if (support !== true) {
        throw new VxlandError('VXLAND_DATAPATH_UNAVAILABLE', `native data path unavailable: ${support}; use --datapath dgram or auto`);
      }
      return 'native';
    }
    case 'auto':
      return nativeSupport() === true ? 'native' : 'dgram';
    case 'dgram':
      return 'dgram';
  }
}

/** Merges the config file (flags.config, else env.VXLAND_CONFIG) with the
 *  flags (flags win), validates and deep-freezes the result. Throws
 *  VxlandError VXLAND_CONFIG_FILE (unreadable, not a regular file, over
 *  CONFIG_FILE_MAX_BYTES) or
 *  VXLAND_CONFIG_INVALID with a message naming the offending setting. */
export function loadConfig(flags: ConfigFlags, env: ConfigEnv = {}): Config {
  const file = flags.config ?? env.VXLAND_CONFIG;
  const fromFile = file !== undefined && file !== '' ? readConfigFile(file) : { values: {}, dir: process.cwd() };
  const raw = fromFile.values;
  const source = (key: FileKey, flag: string, flagValue: unknown): Source =>
    flagValue !== undefined ? { name: flag, value: flagValue, fromFlag: true } : { name: key, value: raw[key], fromFlag: false };

  const devSource = source('dev', '--dev', flags.dev);
  const dev = devSource.value === undefined ? DEFAULT_DEV : requireString(devSource);
  const devProblem = ifnameProblem(dev);
  if (devProblem !== null) invalid(`dev must be a Linux interface name: "${dev}" ${devProblem}`);

  const vniSource = source('vni', '--vni', flags.vni);
  if (vniSource.value === undefined) invalid('vni is required (--vni N or "vni" in the config file)');
  const vni = integerIn(vniSource, 'vni', 0, VNI_MAX);

  const localSource = source('local', '--local', flags.local);
  let local: string | null = null;
  if (localSource.value !== undefined && localSource.value !== null) {
    const text = requireString(localSource);
    local = normalizeIp(text);
    if (local === null) invalid(`local must be an IPv4 or IPv6 address (got ${show(text)})`);
  }
  const localFamily: IpFamily = local === null ? 4 : ipFamily(local)!;
  const family = localFamily === 6 ? 'udp6' : 'udp4';

  const port = optionalIntegerIn(source('port', '--port', flags.port), 'port', 1, 65_535, VXLAN_IANA_PORT);
  const mtu = optionalIntegerIn(source('mtu', '--mtu', flags.mtu), 'mtu', MTU_MIN, MTU_MAX, DEFAULT_MTU);

  const addresses = stringList(source('addresses', '--address', flags.address), 'addresses').map((text) => {
    if (parseCidr(text) === null) invalid(`address must be a CIDR like 10.0.0.1/24 or fd00::1/64 (got ${show(text)})`);
    return text;
  });

  const peers: string[] = [];
  const listedPeers = new Set<string>();
  for (const text of stringList(source('peers', '--peer', flags.peer), 'peers')) {
    const peer = vtepAddress(text, 'peer', localFamily);
    if (listedPeers.has(peer)) invalid(`peer ${peer} is listed twice`);
    listedPeers.add(peer);
    peers.push(peer);
  }

  const fdb = staticEntries(raw.fdb, localFamily);

  const ageingS = optionalIntegerIn(source('ageingS', '--ageing', flags.ageing), 'ageing', 0, Number.MAX_SAFE_INTEGER, DEFAULT_AGEING_S, 'seconds (0 = never)');
  const maxFdb = optionalIntegerIn(source('maxFdb', '--max-fdb', flags.maxFdb), 'max-fdb', 1, Number.MAX_SAFE_INTEGER, FDB_MAX_LEARNED_DEFAULT);

  const datapathSource = source('datapath', '--datapath', flags.datapath);
  const datapath = oneOf(datapathSource, 'datapath', DATAPATH_CHOICES, 'auto');
  const logLevel = oneOf(source('logLevel', '--log-level', flags.logLevel), 'log-level', LOG_LEVELS, 'info');

  const stateDir = optionalPath(source('stateDir', '--state-dir', flags.stateDir), 'state-dir', fromFile.dir) ?? DEFAULT_STATE_DIR;
  const socket = optionalPath(source('socket', '--socket', flags.socket), 'socket', fromFile.dir) ?? defaultSocketPath(dev);

  const metrics = metricsEndpoint(source('metrics', '--metrics', flags.metrics));
  const maxFdbPerVtep = optionalIntegerIn(source('maxFdbPerVtep', '--max-fdb-per-vtep', flags.maxFdbPerVtep), 'max-fdb-per-vtep', 1, Number.MAX_SAFE_INTEGER, FDB_MAX_LEARNED_PER_VTEP_DEFAULT);
  const learnRatePerS = optionalIntegerIn(source('learnRatePerS', '--learn-rate', flags.learnRate), 'learn-rate', 0, Number.MAX_SAFE_INTEGER, FDB_LEARN_RATE_PER_VTEP_DEFAULT_PER_S, 'MACs per second per VTEP (0 = no limit)');
  const accept = acceptPolicy(source('accept', '--accept', flags.accept), localFamily);
  const allowVlanSource = source('allowVlan', '--allow-vlan', flags.allowVlan);
  if (allowVlanSource.value !== undefined && typeof allowVlanSource.value !== 'boolean') invalid(`allowVlan must be true or false (got ${show(allowVlanSource.value)})`);
  const allowVlan = allowVlanSource.value === true;
  const groupSource = source('controlGroup', '--control-group', flags.controlGroup);
  const controlGroup = groupSource.value === undefined ? null : requireString(groupSource);
  if (controlGroup !== null && !/^[a-z_][a-z0-9_-]*\$?$/i.test(controlGroup)) invalid(`control-group must be a group name (got ${show(controlGroup)})`);

  const mac = tapMac(source('mac', '--mac', flags.mac));
  const bridge = bridgeName(source('bridge', '--bridge', flags.bridge));

  return deepFreeze({
    dev, vni, local, family, port, mtu, addresses, peers, fdb, ageingS, maxFdb, datapath, stateDir, socket, logLevel, metrics,
    maxFdbPerVtep, learnRatePerS, accept, allowVlan, controlGroup, mac, bridge,
  } satisfies Config);
}

interface Source {
  /** The flag ("--vni") or file key ("vni") the value came from. */
  name: string;
  value: unknown;
  fromFlag: boolean;
}

function readConfigFile(file: string): { values: Partial<Record<FileKey, unknown>>; dir: string } {
  const text = readConfigText(file);
  let parsed: unknown;
  try {
    parsed = parseStrictJson(text);
  } catch (err) {
    if (!(err instanceof JsonError)) throw err;
    invalid(err.reason === 'duplicate-key' ? `config file ${file}: ${err.message}` : `config file ${file} is not valid JSON: ${err.message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    invalid(`config file ${file} must contain a JSON object`);
  }
  for (const key of Object.keys(parsed)) {
    if (!(FILE_KEYS as readonly string[]).includes(key)) {
      invalid(`config file ${file}: unknown key "${key}" (known keys: ${FILE_KEYS.join(', ')})`);
    }
  }
  return { values: parsed as Partial<Record<FileKey, unknown>>, dir: path.dirname(path.resolve(file)) };
}

function invalid(message: string): never {
  throw new VxlandError('VXLAND_CONFIG_INVALID', message);
}

function show(value: unknown): string {
  return JSON.stringify(value) ?? String(value);
}

function requireString(source: Source): string {
  if (typeof source.value !== 'string') invalid(`${source.name} must be a string (got ${show(source.value)})`);
  return source.value;
}

/** Flags arrive as text and must be strict decimals; file values must be
 *  JSON integers. Both produce the same message. */
function integerIn(source: Source, label: string, min: number, max: number, unit = ''): number {
  const value = typeof source.value === 'string' && source.fromFlag ? parseDecimal(source.value) : source.value;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `${min}..${max}`;
    invalid(`${label} must be an integer ${range}${unit ? ' ' + unit : ''} (got ${show(source.value)})`);
  }
  return value;
}

function optionalIntegerIn(source: Source, label: string, min: number, max: number, fallback: number, unit = ''): number {
  return source.value === undefined ? fallback : integerIn(source, label, min, max, unit);
}

function oneOf<T extends string>(source: Source, label: string, choices: readonly T[], fallback: T): T {
  if (source.value === undefined) return fallback;
  if (typeof source.value !== 'string' || !(choices as readonly string[]).includes(source.value)) {
    invalid(`${label} must be one of ${choices.join(', ')} (got ${show(source.value)})`);
  }
  return source.value as T;
}

function optionalPath(source: Source, label: string, fileDir: string): string | null {
  if (source.value === undefined) return null;
  if (typeof source.value !== 'string' || source.value === '') invalid(`${label} must be a non-empty path (got ${show(source.value)})`);
  return source.fromFlag ? path.resolve(source.value) : path.resolve(fileDir, source.value);
}

function stringList(source: Source, label: string): string[] {
  if (source.value === undefined) return [];
  if (!Array.isArray(source.value) || !source.value.every((item) => typeof item === 'string')) {
    invalid(`${label} must be a list of strings (got ${show(source.value)})`);
  }
  return source.value as string[];
}

/** A VTEP must be reachable over the one UDP socket, whose family local picks. */
function vtepAddress(text: string, label: string, localFamily: IpFamily): string {
  const address = normalizeIp(text);
  if (address === null) invalid(`${label} must be an IPv4 or IPv6 address (got ${show(text)})`);
  if (ipFamily(address) !== localFamily) {
    invalid(
      localFamily === 4
        ? `${label} ${address} is IPv6 but the VXLAN socket is IPv4; set local to an IPv6 address of this host`
        : `${label} ${address} is IPv4 but the VXLAN socket is IPv6 (local is IPv6)`,
    );
  }
  return address;
}

function staticEntries(value: unknown, localFamily: IpFamily): StaticFdbConfig[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) invalid(`fdb must be a list of {"mac": ..., "vtep": ...} (got ${show(value)})`);
  const entries: StaticFdbConfig[] = [];
  const macs = new Set<string>();
  value.forEach((item: unknown, index) => {
    const where = `fdb[${index}]`;
    if (typeof item !== 'object' || item === null || Array.isArray(item)) invalid(`${where} must be {"mac": ..., "vtep": ...}`);
    for (const key of Object.keys(item)) {
      if (key !== 'mac' && key !== 'vtep') invalid(`${where}: unknown key "${key}" (known keys: mac, vtep)`);
    }
    const { mac: macText, vtep: vtepText } = item as { mac?: unknown; vtep?: unknown };
    const mac = typeof macText === 'string' ? parseMac(macText) : null;
    if (mac === null) invalid(`${where}.mac must be a MAC address like 02:00:00:00:00:01 (got ${show(macText)})`);
    if (mac === FLOOD_MAC) invalid(`${where}.mac ${FLOOD_MAC} is the flood address; list that VTEP under peers`);
    if (typeof vtepText !== 'string') invalid(`${where}.vtep must be an IPv4 or IPv6 address (got ${show(vtepText)})`);
    const vtep = vtepAddress(vtepText, `${where}.vtep`, localFamily);
    if (macs.has(mac)) invalid(`${where}: MAC ${mac} is listed twice`);
    macs.add(mac);
    entries.push({ mac, vtep });
  });
  return entries;
}

/** "peers" (default), "any", or a comma-separated list of CIDRs of the
 *  underlay's family. */
function acceptPolicy(source: Source, localFamily: IpFamily): AcceptPolicy {
  if (source.value === undefined) return { kind: 'peers' };
  const text = requireString(source);
  if (text === 'peers' || text === 'any') return { kind: text };
  const cidrs = text.split(',').map((part) => {
    const cidr = parseCidr(part.trim());
    if (cidr === null) invalid(`accept must be "peers", "any" or CIDRs like 192.0.2.0/24,198.51.100.7/32 (got ${show(part)})`);
    if (cidr.family !== localFamily) invalid(`accept ${part} is IPv${cidr.family} but the VXLAN socket is IPv${localFamily}`);
    return cidr;
  });
  return { kind: 'cidrs', cidrs };
}

/** A MAC the TAP can carry: unicast (group bit clear) and not all zeros. */
function tapMac(source: Source): string | null {
  if (source.value === undefined || source.value === null) return null;
  const text = requireString(source);
  const mac = parseMac(text);
  if (mac === null) invalid(`mac must be a MAC address like 02:00:00:00:00:01 (got ${show(text)})`);
  if (!isLearnableMacKey(macKeyOf(mac))) invalid(`mac must be a unicast address, not zero (got ${mac})`);
  return mac;
}

function bridgeName(source: Source): string | null {
  if (source.value === undefined || source.value === null) return null;
  const name = requireString(source);
  const problem = ifnameProblem(name);
  if (problem !== null) invalid(`bridge must be a Linux interface name: "${name}" ${problem}`);
  return name;
}

/** "127.0.0.1:9798" or "[::1]:9798"; a host is required so that exposing
 *  metrics beyond loopback is a visible choice. */
function metricsEndpoint(source: Source): Config['metrics'] {
  if (source.value === undefined || source.value === null) return null;
  const text = requireString(source);
  const m = /^(?:\[([^\]]+)\]|([^:]+)):([0-9]+)$/.exec(text);
  const host = m === null ? null : normalizeIp(m[1] ?? m[2]);
  const port = m === null ? null : parseDecimal(m[3]);
  if (host === null || port === null || port < 1 || port > 65_535) {
    invalid(`metrics must be HOST:PORT with an IP address, e.g. 127.0.0.1:9798 (got ${show(text)})`);
  }
  return { host, port };
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
