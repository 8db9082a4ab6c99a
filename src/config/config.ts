// The daemon's configuration: one host (local address, port, data path,
// control socket, state dir, log level, metrics) serving any number of
// networks (a VNI with its TAP, flood list, FDB limits and source policy).
// Read from a JSON file (--config FILE, else VXLAND_CONFIG, else
// /etc/vxland/vxland.json when it exists) overlaid with CLI flags, validated
// once here and then deeply frozen. Nothing downstream re-checks a config;
// every message a user sees about a bad setting comes from this file.
//
// Host file (every key optional; each network needs a vni):
//   { "local": "192.0.2.1", "port": 4789, "srcport": "32768-60999", "datapath": "auto", "socket": "/run/vxland/vxland.sock",
//     "stateDir": "/var/lib/vxland", "logLevel": "info", "metrics": "127.0.0.1:9470", "controlGroup": null,
//     "ttl": 64, "tos": 0, "df": "unset",
//     "etcd": { "endpoints": ["http://127.0.0.1:2379"], "prefix": "/vxland", "leaseTtlS": 15,
//       "tls": { "ca": "ca.pem", "cert": "host.pem", "key": "host-key.pem" } },
//     "networks": [ { "vni": 42, "dev": "vxl42", "mtu": 1450, "addresses": ["10.42.0.1/24"],
//       "peers": ["192.0.2.2"], "fdb": [], "ageingS": 300, "maxFdb": 16384, "maxFdbPerVtep": 4096,
//       "learnRatePerS": 500, "accept": "peers", "allowVlan": false, "mac": null, "bridge": null,
//       "suppress": null, "neigh": [{ "ip": "10.42.0.2", "mac": "02:00:00:00:00:02" }] } ] }
// ("suppress": null or absent = on when the host has "etcd", else off.
// "srcport": "MIN-MAX" or {"min": MIN, "max": MAX}; null or absent = the
// host's ephemeral range, /proc/sys/net/ipv4/ip_local_port_range, at start.)
// A file without "networks" (the single-network format: vni and the other
// network keys at the top level) is one network; so are the flags of
// `vxland run` without a file. Per-network flags are refused with a file
// that lists networks: there they would have no one network to apply to.
// Relative paths in the file are taken relative to the file's directory.

import { existsSync } from 'node:fs';
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
import { JsonError, lineAndColumn, parseStrictJson } from './json.js';
import { underlayDevice, underlayMtuLimit } from './underlay.js';
import { ifnameProblem, ipFamily, normalizeIp, parseCidr, parseDecimal, VNI_MAX, type Cidr, type IpFamily } from './validate.js';

/** One thing wrong with a configuration. */
export interface ConfigProblem {
  /** Its key path in the file ("networks[1].mtu", "etcd.tls.ca"), or the
   *  flag ("--mtu"); "" for the file as a whole (it does not parse). */
  readonly path: string;
  /** One line naming the setting (and in a host file its network) and what is wrong. */
  readonly message: string;
  /** Where a syntax error or a key given twice is, 1-based. */
  readonly line?: number;
  readonly column?: number;
}

/** VXLAND_CONFIG_INVALID with every problem found; the message is theirs, joined by "; ". */
export class ConfigInvalidError extends VxlandError {
  constructor(readonly problems: readonly ConfigProblem[]) {
    super('VXLAND_CONFIG_INVALID', problems.map((p) => p.message).join('; '));
  }

  override toJSON(): { code: 'VXLAND_CONFIG_INVALID'; message: string; problems: readonly ConfigProblem[] } {
    return { code: 'VXLAND_CONFIG_INVALID', message: this.message, problems: this.problems };
  }
}

/** IANA VXLAN port. Linux (`ip link add ... type vxlan` without dstport)
 *  and some old switches default to 8472; use --port 8472 to talk to those. */
export const VXLAN_IANA_PORT = VXLAN_DEFAULT_PORT;
export const DEFAULT_DEV = 'vxl0';
/** 1500-byte underlay minus 50 bytes of outer Ethernet, IPv4, UDP and VXLAN
 *  headers: the default over IPv4. */
export const DEFAULT_MTU = 1450;
/** The same with 70 bytes of headers: the default over an IPv6 underlay (local IPv6). */
export const DEFAULT_MTU_IPV6 = 1430;
/** The TAP MTU range of both data paths (native/limits.h says why). */
export { MTU_MAX, MTU_MIN };
export const DEFAULT_AGEING_S = FDB_AGEING_DEFAULT_MS / 1000;
export const DEFAULT_STATE_DIR = '/var/lib/vxland';
export const DEFAULT_SOCKET_DIR = '/run/vxland';
/** One control socket per daemon (per host). */
export const DEFAULT_SOCKET = path.join(DEFAULT_SOCKET_DIR, 'vxland.sock');
/** Read when neither --config nor VXLAND_CONFIG names a file, if it exists. */
export const DEFAULT_CONFIG_FILE = '/etc/vxland/vxland.json';

export const DATAPATH_CHOICES = ['auto', 'native', 'dgram'] as const;
export type DatapathChoice = (typeof DATAPATH_CHOICES)[number];
/** What actually runs; see resolveDatapath(). */
export type DatapathKind = 'native' | 'dgram';

/** The kernel vxlan's defaults (`ip link add ... type vxlan`: tos 0, df
 *  unset; ttl 0 there means the route's hop limit, 64 on Linux). */
export const DEFAULT_TTL = 64;
export const DEFAULT_TOS = 0;
export const DF_CHOICES = ['unset', 'set'] as const;
export type DfChoice = (typeof DF_CHOICES)[number];

/** The outer header's settings, as the data paths take them. */
export type Envelope = Pick<HostConfig, 'ttl' | 'tos' | 'df'>;

/** The outer header as the running data path writes it, for status: what
 *  the configuration asks, and what the path can do of it. The dgram path
 *  sets the TOS once per socket (node:dgram has no per-datagram ancillary
 *  data and hands over no received TOS): no ECN either way. */
export function describeEnvelope(c: Envelope, kind: DatapathKind): string {
  const tos = c.tos === 'inherit' ? 'tos inherit' : `tos 0x${c.tos.toString(16).padStart(2, '0')}`;
  const ecn = kind === 'native' ? 'ECN per RFC 6040 (encap and decap)' : 'no ECN (outer not-ECT, inner never marked CE)';
  return `ttl ${c.ttl}, ${tos}, df ${c.df}; ${ecn}`;
}

/** Refuses settings the resolved data path cannot honour (VXLAND_CONFIG_INVALID). */
export function checkEnvelopeFor(c: Pick<HostConfig, 'tos'>, kind: DatapathKind): void {
  if (kind === 'dgram' && c.tos === 'inherit') {
    invalid('tos inherit needs the native data path: node:dgram cannot set a TOS per datagram; use --datapath native or a fixed --tos');
  }
}

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

/** One network: a VNI with its TAP device, flood list, FDB and source policy. */
export interface NetworkConfig {
  readonly vni: number;
  /** The TAP device's name. */
  readonly dev: string;
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
  /** Who may send us VXLAN for this network; see src/datapath/accept.ts. */
  readonly accept: AcceptPolicy;
  /** Carry VLAN-tagged inner frames (off by default, RFC 7348 §6.1). */
  readonly allowVlan: boolean;
  /** The TAP's MAC (normalised, unicast, not zero); null = the one saved in
   *  the state file, else a random locally administered one saved there. */
  readonly mac: string | null;
  /** An existing Linux bridge the TAP is put into; null = none. */
  readonly bridge: string | null;
  /** ARP/ND suppression (native/core_suppress.h); null = the default: on
   *  when the host has etcd, else off (effectiveSuppress). */
  readonly suppress: boolean | null;
  /** Static neighbour entries suppression answers with (canonical IP, MAC). */
  readonly neigh: readonly NeighbourConfig[];
}

export interface NeighbourConfig {
  readonly ip: string;
  readonly mac: string;
}

/** Whether network n suppresses ARP/ND on a host with (or without) etcd. */
export function effectiveSuppress(n: Pick<NetworkConfig, 'suppress'>, hostHasEtcd: boolean): boolean {
  return n.suppress ?? hostHasEtcd;
}

/** A neighbour entry checked and normalised (the config file's and `vxland
 *  neigh add`'s one rule), or the problem with it in one line. */
export function checkNeighbour(ipText: unknown, macText: unknown): NeighbourConfig | { problem: string } {
  const ip = typeof ipText === 'string' ? normalizeIp(ipText) : null;
  if (ip === null) return { problem: `neighbour ip must be an IPv4 or IPv6 address (got ${show(ipText)})` };
  if (/^(22[4-9]|2[3-5]\d|0|127)\./.test(ip) || /^ff/i.test(ip) || ip === '::' || ip === '::1') {
    return { problem: `neighbour ip ${ip} is not a unicast address a host can own` };
  }
  const mac = typeof macText === 'string' ? parseMac(macText) : null;
  if (mac === null) return { problem: `neighbour mac must be a MAC address like 02:00:00:00:00:01 (got ${show(macText)})` };
  if (!isLearnableMacKey(macKeyOf(mac))) return { problem: `neighbour mac ${mac} is not a unicast MAC` };
  return { ip, mac };
}

/** The daemon: one UDP socket, one control socket, one state dir, its networks. */
export interface HostConfig {
  /** Address to bind and the source of encapsulated packets; null = any. */
  readonly local: string | null;
  /** udp6 when local is IPv6, otherwise udp4. All peers of all networks share it. */
  readonly family: 'udp4' | 'udp6';
  readonly port: number;
  /** Outer UDP source ports, per flow from this range (RFC 7348 §5);
   *  null = the host's ephemeral port range, read when the daemon starts. */
  readonly srcport: SrcPortRange | null;
  /** As requested; resolveDatapath() decides what runs. */
  readonly datapath: DatapathChoice;
  readonly stateDir: string;
  readonly socket: string;
  readonly logLevel: LogLevel;
  /** Where to serve Prometheus metrics; null = not at all (the default). */
  readonly metrics: { readonly host: string; readonly port: number } | null;
  /** Group allowed to use the control socket besides root; null = root only. */
  readonly controlGroup: string | null;
  /** Membership through etcd (README "Joining through etcd"); null = none. */
  readonly etcd: EtcdConfig | null;
  /** Outer IP TTL / IPv6 hop limit of every datagram sent, 1..255. */
  readonly ttl: number;
  /** Outer TOS / traffic class: a fixed byte (its DSCP; the ECN bits come
   *  from the inner packet, RFC 6040) or 'inherit' (the inner packet's). */
  readonly tos: number | 'inherit';
  /** Outer IPv4 DF: 'unset' (the kernel's default) or 'set'. */
  readonly df: DfChoice;
  /** VNIs and devs are unique among them. May be empty (networks added at run time). */
  readonly networks: readonly NetworkConfig[];
}

/** An inclusive UDP port range. */
export interface SrcPortRange {
  readonly min: number;
  readonly max: number;
}

export const ETCD_PREFIX_DEFAULT = '/vxland';
export const ETCD_LEASE_TTL_DEFAULT_S = 15;
/** etcd refuses leases shorter than 1 s; beyond an hour a dead host lingers too long to be useful. */
export const ETCD_LEASE_TTL_MAX_S = 3600;

export interface EtcdConfig {
  /** http:// or https:// URLs, at least one. */
  readonly endpoints: readonly string[];
  /** Key prefix, starting with "/", without a trailing "/". */
  readonly prefix: string;
  readonly leaseTtlS: number;
  /** Absolute paths; null = plain connection unless an endpoint is https. */
  readonly tls: { readonly ca: string; readonly cert: string | null; readonly key: string | null } | null;
}

/** The flags that describe one network (`vxland run`, `vxland network add`):
 *  values are unparsed strings as commander hands them over. */
export interface NetworkFlags {
  dev?: string;
  vni?: string | number;
  mtu?: string | number;
  /** Repeated --address; replaces the file's list when given. */
  address?: string[];
  /** Repeated --peer; replaces the file's list when given. */
  peer?: string[];
  ageing?: string | number;
  maxFdb?: string | number;
  maxFdbPerVtep?: string | number;
  learnRate?: string | number;
  accept?: string;
  allowVlan?: boolean;
  mac?: string;
  bridge?: string;
}

/** `vxland run`'s flags: the host's and one network's. */
export interface ConfigFlags extends NetworkFlags {
  config?: string;
  local?: string;
  port?: string | number;
  /** --srcport MIN-MAX. */
  srcport?: string;
  datapath?: string;
  stateDir?: string;
  socket?: string;
  logLevel?: string;
  metrics?: string;
  controlGroup?: string;
  ttl?: string | number;
  tos?: string | number;
  df?: string;
  /** --etcd URL[,URL…]: replaces the file's etcd.endpoints. */
  etcd?: string;
}

/** VXLAND_CONFIG names a config file used when --config is not given. */
export type ConfigEnv = Readonly<Record<string, string | undefined>>;

/** The key that names a file's JSON Schema ("$schema"): accepted at the top level and ignored. */
export const SCHEMA_KEY = '$schema';
const HOST_KEYS = ['local', 'port', 'srcport', 'datapath', 'socket', 'stateDir', 'logLevel', 'metrics', 'controlGroup', 'etcd', 'ttl', 'tos', 'df'] as const;
const ETCD_KEYS = ['endpoints', 'prefix', 'leaseTtlS', 'tls'] as const;
const ETCD_TLS_KEYS = ['ca', 'cert', 'key'] as const;
const STATIC_FDB_KEYS = ['mac', 'vtep'] as const;
const NETWORK_KEYS = [
  'vni', 'dev', 'mtu', 'addresses', 'peers', 'fdb', 'ageingS', 'maxFdb', 'maxFdbPerVtep', 'learnRatePerS',
  'accept', 'allowVlan', 'mac', 'bridge', 'suppress', 'neigh',
] as const;
type NetworkKey = (typeof NETWORK_KEYS)[number];
/** Each network key with the flag that sets it (fdb: only the file). */
const NETWORK_FLAG: Readonly<Record<NetworkKey, { flag: string; name: keyof NetworkFlags } | null>> = {
  vni: { flag: '--vni', name: 'vni' }, dev: { flag: '--dev', name: 'dev' }, mtu: { flag: '--mtu', name: 'mtu' },
  addresses: { flag: '--address', name: 'address' }, peers: { flag: '--peer', name: 'peer' }, fdb: null,
  ageingS: { flag: '--ageing', name: 'ageing' }, maxFdb: { flag: '--max-fdb', name: 'maxFdb' },
  maxFdbPerVtep: { flag: '--max-fdb-per-vtep', name: 'maxFdbPerVtep' }, learnRatePerS: { flag: '--learn-rate', name: 'learnRate' },
  accept: { flag: '--accept', name: 'accept' }, allowVlan: { flag: '--allow-vlan', name: 'allowVlan' },
  mac: { flag: '--mac', name: 'mac' }, bridge: { flag: '--bridge', name: 'bridge' },
  suppress: null, neigh: null,
};

/** Every key a config file may hold, by the object it is in: what
 *  schema/vxland.schema.json describes (test/config.test.ts holds them together).
 *  A single-network file holds host and network keys side by side. */
export const CONFIG_FILE_KEYS = {
  host: [SCHEMA_KEY, ...HOST_KEYS, 'networks'],
  network: NETWORK_KEYS,
  etcd: ETCD_KEYS,
  etcdTls: ETCD_TLS_KEYS,
  staticFdb: STATIC_FDB_KEYS,
} as const;

/** The dev a network gets when none is named: vxl<VNI> in a host file and
 *  for `network add`; today's vxl0 for a single network from flags. */
export function defaultDevFor(vni: number): string {
  return `vxl${vni}`;
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

/** Merges the config file (flags.config, else env.VXLAND_CONFIG, else
 *  defaultFile when it exists; an empty name means none) with the flags
 *  (flags win), validates and deep-freezes the result. Throws VxlandError
 *  VXLAND_CONFIG_FILE (unreadable, not a regular file, over
 *  CONFIG_FILE_MAX_BYTES) or a ConfigInvalidError (VXLAND_CONFIG_INVALID)
 *  with every problem found, each naming its setting (and, in a host file,
 *  the network: "networks[1] (vni 43): ...") and carrying its key path. */
export function loadConfig(flags: ConfigFlags, env: ConfigEnv = {}, defaultFile: string = DEFAULT_CONFIG_FILE): HostConfig {
  const named = flags.config ?? env.VXLAND_CONFIG ?? (existsSync(defaultFile) ? defaultFile : undefined);
  const problems = new Problems();
  const file = named !== undefined && named !== '' ? readConfigFile(named, problems) : null;
  const raw: Record<string, unknown> = file?.values ?? {};
  const dir = file?.dir ?? process.cwd();
  const source = (key: string, flag: string, flagValue: unknown): Source =>
    flagValue !== undefined ? { name: flag, value: flagValue, fromFlag: true } : { name: key, value: raw[key], fromFlag: false };
  // Each setting is judged on its own, so that one bad value does not hide the next.
  const setting = <T>(s: Source, parse: (s: Source) => T, fallback: T): T => problems.at(s.name, () => parse(s), fallback);

  const localSource = source('local', '--local', flags.local);
  const localGiven = localSource.value !== undefined && localSource.value !== null;
  const local = setting(localSource, (s) => {
    if (!localGiven) return null;
    const text = requireString(s);
    const ip = normalizeIp(text);
    if (ip === null) invalid(`local must be an IPv4 or IPv6 address (got ${show(text)})`);
    return ip;
  }, undefined);
  // undefined: local is itself invalid, so no address is judged by its family.
  const localFamily: IpFamily | null = local === undefined ? null : local === null ? 4 : ipFamily(local)!;
  const family = localFamily === 6 ? 'udp6' : 'udp4';

  const port = setting(source('port', '--port', flags.port), (s) => optionalIntegerIn(s, 'port', 1, 65_535, VXLAN_IANA_PORT), VXLAN_IANA_PORT);
  const srcport = setting(source('srcport', '--srcport', flags.srcport), srcPortRange, null);
  const datapath = setting(source('datapath', '--datapath', flags.datapath), (s) => oneOf(s, 'datapath', DATAPATH_CHOICES, 'auto'), 'auto');
  const logLevel = setting(source('logLevel', '--log-level', flags.logLevel), (s) => oneOf(s, 'log-level', LOG_LEVELS, 'info'), 'info');
  const stateDir = setting(source('stateDir', '--state-dir', flags.stateDir), (s) => optionalPath(s, 'state-dir', dir), null) ?? DEFAULT_STATE_DIR;
  const socket = setting(source('socket', '--socket', flags.socket), (s) => optionalPath(s, 'socket', dir), null) ?? DEFAULT_SOCKET;
  const metrics = setting(source('metrics', '--metrics', flags.metrics), metricsEndpoint, null);
  const controlGroup = setting(source('controlGroup', '--control-group', flags.controlGroup), (s) => {
    if (s.value === undefined || s.value === null) return null;
    const group = requireString(s);
    if (!/^[a-z_][a-z0-9_-]*\$?$/i.test(group)) invalid(`control-group must be a group name (got ${show(group)})`);
    return group;
  }, null);

  const etcd = problems.at('', () => etcdConfig(raw.etcd, flags.etcd, dir, localGiven), null);
  const mtuLimit = localFamily === null ? null : underlayMtuLimit(localFamily, underlayDevice(local ?? null));
  const ttl = setting(source('ttl', '--ttl', flags.ttl), (s) => optionalIntegerIn(s, 'ttl', 1, 255, DEFAULT_TTL), DEFAULT_TTL);
  const tos = setting(source('tos', '--tos', flags.tos), tosSetting, DEFAULT_TOS);
  const df = setting(source('df', '--df', flags.df), (s) => {
    if (s.value === 'inherit') invalid('df inherit is not supported: a Linux UDP socket cannot set DF per datagram; use set or unset');
    return oneOf(s, 'df', DF_CHOICES, 'unset');
  }, 'unset');

  let networks: NetworkConfig[] = [];
  if (file !== null && Object.hasOwn(raw, 'networks')) {
    for (const f of NETWORK_KEYS.map((key) => NETWORK_FLAG[key])) {
      if (f === null || flags[f.name] === undefined) continue;
      problems.at(f.flag, () => invalid(`${f.flag} describes one network, but config file ${named} lists "networks"; set it in the file's networks[] entry, or use "vxland network add"`), null);
    }
    networks = networksOf(raw.networks, localFamily, problems, mtuLimit);
  } else {
    const networkSource = (key: NetworkKey): Source => {
      const f = NETWORK_FLAG[key];
      return f === null ? { name: key, value: raw[key], fromFlag: false } : source(key, f.flag, flags[f.name]);
    };
    const vni = networkSource('vni');
    if (vni.value === undefined) problems.at(file === null ? '--vni' : 'vni', () => invalid('vni is required (--vni N or "vni" in the config file)'), null);
    else problems.at('', () => networks.push(parseNetwork(networkSource, localFamily, DEFAULT_DEV, mtuLimit)), null);
  }

  problems.throwIfAny('', '', file?.locate);
  return deepFreeze({ local: local ?? null, family, port, srcport, datapath, stateDir, socket, logLevel, metrics, controlGroup, etcd, ttl, tos, df, networks } satisfies HostConfig);
}

/** One network from `vxland network add`'s flags (or the equivalent control
 *  request), validated as a network of a config file is (local: the host's,
 *  for the MTU limit of src/config/underlay.ts); dev defaults to vxl<VNI>.
 *  Throws VXLAND_CONFIG_INVALID naming the flag. */
export function networkFromFlags(flags: NetworkFlags, family: 'udp4' | 'udp6', local: string | null = null): NetworkConfig {
  const source = (key: NetworkKey): Source => {
    const f = NETWORK_FLAG[key];
    return { name: f?.flag ?? key, value: f === null ? undefined : flags[f.name], fromFlag: true };
  };
  if (flags.vni === undefined) invalid('vni is required (--vni N)');
  const localFamily = family === 'udp6' ? 6 : 4;
  return deepFreeze(parseNetwork(source, localFamily, null, underlayMtuLimit(localFamily, underlayDevice(local))));
}

/** One entry of the host state file's networks added at run time; `where`
 *  prefixes every message. Its MTU was held to the underlay when it was
 *  added: not again (the underlay may have changed; doctor says so). */
export function networkFromFile(value: unknown, family: 'udp4' | 'udp6', where: string): NetworkConfig {
  return deepFreeze(fileNetwork(value, family === 'udp6' ? 6 : 4, where, null));
}

/** A network as a "networks" entry of a config file: what networkFromFile reads back. */
export function networkToFile(n: NetworkConfig): Record<NetworkKey, unknown> {
  return {
    vni: n.vni, dev: n.dev, mtu: n.mtu, addresses: n.addresses, peers: n.peers, fdb: n.fdb, ageingS: n.ageingS,
    maxFdb: n.maxFdb, maxFdbPerVtep: n.maxFdbPerVtep, learnRatePerS: n.learnRatePerS, accept: describeAccept(n.accept),
    allowVlan: n.allowVlan, mac: n.mac, bridge: n.bridge, suppress: n.suppress, neigh: n.neigh,
  };
}

/** A host as a host file: what loadConfig reads back to the same HostConfig
 *  (paths are absolute, so the file may live anywhere). */
export function hostToFile(h: HostConfig): Record<string, unknown> & { networks: Array<Record<string, unknown>> } {
  const metricsHost = h.metrics === null ? null : ipFamily(h.metrics.host) === 6 ? `[${h.metrics.host}]` : h.metrics.host;
  const etcd = h.etcd === null ? null : {
    endpoints: h.etcd.endpoints, prefix: h.etcd.prefix, leaseTtlS: h.etcd.leaseTtlS,
    ...(h.etcd.tls === null ? {} : { tls: { ca: h.etcd.tls.ca, ...(h.etcd.tls.cert === null ? {} : { cert: h.etcd.tls.cert, key: h.etcd.tls.key }) } }),
  };
  return {
    local: h.local, port: h.port, srcport: h.srcport === null ? null : `${h.srcport.min}-${h.srcport.max}`, datapath: h.datapath,
    socket: h.socket, stateDir: h.stateDir, logLevel: h.logLevel,
    metrics: h.metrics === null ? null : `${metricsHost}:${h.metrics.port}`, controlGroup: h.controlGroup, etcd, ttl: h.ttl, tos: h.tos, df: h.df,
    networks: h.networks.map(networkToFile),
  };
}

/** The source policy as written in a file or shown by status: "peers", "any" or the CIDR list. */
export function describeAccept(policy: AcceptPolicy): string {
  return policy.kind === 'cidrs' ? policy.cidrs.map((c) => `${c.address}/${c.prefixLength}`).join(',') : policy.kind;
}

/** How a network is named in messages: "vni 42 (vxl42)". */
export function networkLabel(n: { vni: number; dev: string }): string {
  return `vni ${n.vni} (${n.dev})`;
}

function networksOf(value: unknown, localFamily: IpFamily | null, problems: Problems, limit: MtuLimit): NetworkConfig[] {
  if (!Array.isArray(value)) return problems.at('networks', () => invalid(`networks must be a list of network objects (got ${show(value)})`), []);
  const networks: NetworkConfig[] = [];
  const byVni = new Map<number, number>();
  const byDev = new Map<string, number>();
  value.forEach((item: unknown, index) => {
    const where = networkWhere(item, index);
    const n = problems.at(`networks[${index}]`, () => fileNetwork(item, localFamily, where, limit), null);
    // A network with problems of its own is not compared with the others.
    if (n === null) return;
    const vniAt = byVni.get(n.vni);
    const devAt = byDev.get(n.dev);
    if (vniAt !== undefined) problems.at(`networks[${index}].vni`, () => invalid(`${where}: vni ${n.vni} is already used by networks[${vniAt}]`), null);
    else if (devAt !== undefined) problems.at(`networks[${index}].dev`, () => invalid(`${where}: dev ${n.dev} is already used by networks[${devAt}]`), null);
    else {
      byVni.set(n.vni, index);
      byDev.set(n.dev, index);
      networks.push(n);
    }
  });
  return networks;
}

/** "networks[1] (vni 43)", or "networks[1]" when its vni is not an integer. */
function networkWhere(item: unknown, index: number): string {
  const vni = typeof item === 'object' && item !== null ? (item as { vni?: unknown }).vni : undefined;
  return Number.isInteger(vni) ? `networks[${index}] (vni ${vni as number})` : `networks[${index}]`;
}

/** `where` prefixes every message ("networks[1] (vni 43): ..."), `at` every key path ("networks[1].mtu"). */
function fileNetwork(item: unknown, localFamily: IpFamily | null, where: string, limit: MtuLimit, at = ''): NetworkConfig {
  if (typeof item !== 'object' || item === null || Array.isArray(item)) invalid(`${where} must be a JSON object`);
  const values = item as Record<string, unknown>;
  const problems = new Problems();
  for (const key of Object.keys(values)) {
    if (!(NETWORK_KEYS as readonly string[]).includes(key)) problems.at(key, () => invalid(`unknown key "${key}" (known keys: ${NETWORK_KEYS.join(', ')})`), null);
  }
  const network = values.vni === undefined
    ? problems.at('vni', () => invalid('vni is required'), null)
    : problems.at('', () => parseNetwork((key) => ({ name: key, value: values[key], fromFlag: false }), localFamily, null, limit), null);
  problems.throwIfAny(where, at);
  return network!;
}

/** Problems of a config, collected with the key path of each, so that
 *  `vxland config check` can list them all. */
class Problems {
  private readonly list: ConfigProblem[] = [];

  /** parse(), or fallback when it finds the config invalid: its problems are
   *  recorded under path (a nested collection keeps its own paths, under path). */
  at<T>(path: string, parse: () => T, fallback: T): T {
    try {
      return parse();
    } catch (err) {
      if (err instanceof ConfigInvalidError) this.list.push(...err.problems.map((p) => ({ ...p, path: joinPath(path, p.path) })));
      else if (err instanceof VxlandError && err.code === 'VXLAND_CONFIG_INVALID') this.list.push({ path, message: err.message });
      else throw err;
      return fallback;
    }
  }

  /** Throws them all as one ConfigInvalidError, each message prefixed with
   *  `where: ` and each path with `at`; `locate` adds where in the file each is. */
  throwIfAny(where = '', at = '', locate?: Locate): void {
    if (this.list.length === 0) return;
    throw new ConfigInvalidError(this.list.map((p) => {
      const problem = { ...p, path: joinPath(at, p.path), message: where === '' ? p.message : `${where}: ${p.message}` };
      const found = problem.line === undefined ? locate?.(problem.path) : undefined;
      return found === undefined ? problem : { ...problem, ...found };
    }));
  }
}

function joinPath(outer: string, inner: string): string {
  if (outer === '' || inner === '') return outer + inner;
  return inner.startsWith('[') ? `${outer}${inner}` : `${outer}.${inner}`;
}

/** The underlay's MTU limit (src/config/underlay.ts); null: MTU_MAX only. */
type MtuLimit = ReturnType<typeof underlayMtuLimit>;

/** The one validation of a network's settings, wherever they come from.
 *  defaultDev null = vxl<VNI>. */
function parseNetwork(source: (key: NetworkKey) => Source, localFamily: IpFamily | null, defaultDev: string | null, limit: MtuLimit): NetworkConfig {
  const problems = new Problems();
  const key = <T>(k: NetworkKey, parse: (s: Source) => T, fallback: T): T => {
    const s = source(k);
    return problems.at(s.name, () => parse(s), fallback);
  };
  const vni = key('vni', (s) => integerIn(s, 'vni', 0, VNI_MAX), null);
  const dev = key('dev', (s) => {
    const name = s.value === undefined || s.value === null ? defaultDev ?? defaultDevFor(vni ?? 0) : requireString(s);
    const devProblem = ifnameProblem(name);
    if (devProblem !== null) invalid(`dev must be a Linux interface name: "${name}" ${devProblem}`);
    return name;
  }, '');
  const defaultMtu = localFamily === 6 ? DEFAULT_MTU_IPV6 : DEFAULT_MTU;
  const mtu = key('mtu', (s) => {
    const value = optionalIntegerIn(s, 'mtu', MTU_MIN, MTU_MAX, defaultMtu);
    if (limit !== null && value > limit.maxMtu) {
      invalid(`mtu ${value} does not fit the underlay: at most ${limit.maxMtu} (${limit.why}); the outer packets would be fragmented`);
    }
    return value;
  }, defaultMtu);
  const addresses = key('addresses', (s) => stringList(s, 'addresses').map((text) => {
    if (parseCidr(text) === null) invalid(`address must be a CIDR like 10.0.0.1/24 or fd00::1/64 (got ${show(text)})`);
    return text;
  }), []);
  const peers = key('peers', (s) => {
    const list: string[] = [];
    const listed = new Set<string>();
    for (const text of stringList(s, 'peers')) {
      const peer = vtepAddress(text, 'peer', localFamily);
      if (listed.has(peer)) invalid(`peer ${peer} is listed twice`);
      listed.add(peer);
      list.push(peer);
    }
    return list;
  }, []);
  const fdb = key('fdb', (s) => staticEntries(s.value, localFamily), []);
  const ageingS = key('ageingS', (s) => optionalIntegerIn(s, 'ageing', 0, Number.MAX_SAFE_INTEGER, DEFAULT_AGEING_S, 'seconds (0 = never)'), 0);
  const maxFdb = key('maxFdb', (s) => optionalIntegerIn(s, 'max-fdb', 1, Number.MAX_SAFE_INTEGER, FDB_MAX_LEARNED_DEFAULT), 0);
  const maxFdbPerVtep = key('maxFdbPerVtep', (s) => optionalIntegerIn(s, 'max-fdb-per-vtep', 1, Number.MAX_SAFE_INTEGER, FDB_MAX_LEARNED_PER_VTEP_DEFAULT), 0);
  const learnRatePerS = key('learnRatePerS', (s) => optionalIntegerIn(s, 'learn-rate', 0, Number.MAX_SAFE_INTEGER, FDB_LEARN_RATE_PER_VTEP_DEFAULT_PER_S, 'MACs per second per VTEP (0 = no limit)'), 0);
  const accept = key('accept', (s) => acceptPolicy(s, localFamily), { kind: 'peers' } as AcceptPolicy);
  const allowVlan = key('allowVlan', (s) => {
    if (s.value !== undefined && typeof s.value !== 'boolean') invalid(`allowVlan must be true or false (got ${show(s.value)})`);
    return s.value === true;
  }, false);
  const mac = key('mac', tapMac, null);
  const bridge = key('bridge', bridgeName, null);
  const suppress = key('suppress', (s) => {
    if (s.value !== undefined && s.value !== null && typeof s.value !== 'boolean') invalid(`suppress must be true or false (got ${show(s.value)})`);
    return typeof s.value === 'boolean' ? s.value : null;
  }, null);
  const neigh = key('neigh', (s) => neighbourEntries(s.value), []);
  problems.throwIfAny();
  return { vni: vni!, dev, mtu, addresses, peers, fdb, ageingS, maxFdb, maxFdbPerVtep, learnRatePerS, accept, allowVlan, mac, bridge, suppress, neigh };
}

interface Source {
  /** The flag ("--vni") or file key ("vni") the value came from. */
  name: string;
  value: unknown;
  fromFlag: boolean;
}

/** The file's values; a file that cannot be parsed throws at once, while
 *  each unknown key is a problem of its own. */
function readConfigFile(file: string, problems: Problems): { values: Record<string, unknown>; dir: string; locate: Locate } {
  const text = readConfigText(file);
  const keys = new Map<string, number>();
  let parsed: unknown;
  try {
    parsed = parseStrictJson(text, keys);
  } catch (err) {
    if (!(err instanceof JsonError)) throw err;
    throw new ConfigInvalidError([{
      path: err.reason === 'duplicate-key' ? err.path : '',
      message: err.reason === 'duplicate-key' ? `config file ${file}: ${err.message}` : `config file ${file} is not valid JSON: ${err.message}`,
      line: err.line, column: err.column,
    }]);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    invalid(`config file ${file} must contain a JSON object`);
  }
  const hostFile = Object.hasOwn(parsed, 'networks');
  const known: readonly string[] = hostFile ? [...HOST_KEYS, 'networks'] : [...HOST_KEYS, ...NETWORK_KEYS];
  const values: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(parsed)) {
    if (key === SCHEMA_KEY) continue;
    if (known.includes(key)) {
      Object.defineProperty(values, key, { value, writable: true, enumerable: true, configurable: true });
      continue;
    }
    problems.at(key, () => {
      if (hostFile && (NETWORK_KEYS as readonly string[]).includes(key)) {
        invalid(`config file ${file}: "${key}" is a network setting; with "networks" in the file it belongs in each networks[] entry`);
      }
      invalid(`config file ${file}: unknown key "${key}" (known keys: ${known.join(', ')})`);
    }, null);
  }
  const locate: Locate = (keyPath) => {
    // The key itself, else the nearest enclosing one (networks[4] -> networks).
    for (let p = keyPath; p !== ''; p = p.replace(/(\.[^.[\]]+|\[[^\]]*\])$/, '')) {
      const at = keys.get(p);
      if (at !== undefined) return lineAndColumn(text, at);
      if (!/[.[]/.test(p)) break;
    }
    return undefined;
  };
  return { values, dir: path.dirname(path.resolve(file)), locate };
}

/** Where a key path is in the file (its key's line and column), if it is there. */
type Locate = (keyPath: string) => { line: number; column: number } | undefined;

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

/** --tos / "tos": 0..255 (decimal or 0x hex, as `ping -Q` takes it) or "inherit". */
function tosSetting(source: Source): number | 'inherit' {
  if (source.value === undefined) return DEFAULT_TOS;
  if (source.value === 'inherit') return 'inherit';
  const text = typeof source.value === 'number' ? String(source.value) : source.value;
  const value = typeof text === 'string' && /^(0x[0-9a-f]{1,2}|\d{1,3})$/i.test(text) ? Number(text) : NaN;
  if (!(value >= 0 && value <= 255)) invalid(`tos must be 0..255 (decimal or 0x hex) or inherit (got ${show(source.value)})`);
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
function vtepAddress(text: string, label: string, localFamily: IpFamily | null): string {
  const address = normalizeIp(text);
  if (address === null) invalid(`${label} must be an IPv4 or IPv6 address (got ${show(text)})`);
  if (localFamily !== null && ipFamily(address) !== localFamily) {
    invalid(
      localFamily === 4
        ? `${label} ${address} is IPv6 but the VXLAN socket is IPv4; set local to an IPv6 address of this host`
        : `${label} ${address} is IPv4 but the VXLAN socket is IPv6 (local is IPv6)`,
    );
  }
  return address;
}

function neighbourEntries(value: unknown): NeighbourConfig[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) invalid(`neigh must be a list of {"ip": ..., "mac": ...} (got ${show(value)})`);
  const entries: NeighbourConfig[] = [];
  const ips = new Set<string>();
  value.forEach((item: unknown, index) => {
    const where = `neigh[${index}]`;
    if (typeof item !== 'object' || item === null || Array.isArray(item)) invalid(`${where} must be {"ip": ..., "mac": ...}`);
    for (const key of Object.keys(item)) {
      if (key !== 'ip' && key !== 'mac') invalid(`${where}: unknown key "${key}" (known keys: ip, mac)`);
    }
    const { ip, mac } = item as { ip?: unknown; mac?: unknown };
    const checked = checkNeighbour(ip, mac);
    if ('problem' in checked) invalid(`${where}: ${checked.problem}`);
    if (ips.has(checked.ip)) invalid(`${where}: ip ${checked.ip} is listed twice`);
    ips.add(checked.ip);
    entries.push(checked);
  });
  return entries;
}

function staticEntries(value: unknown, localFamily: IpFamily | null): StaticFdbConfig[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) invalid(`fdb must be a list of {"mac": ..., "vtep": ...} (got ${show(value)})`);
  const entries: StaticFdbConfig[] = [];
  const macs = new Set<string>();
  value.forEach((item: unknown, index) => {
    const where = `fdb[${index}]`;
    if (typeof item !== 'object' || item === null || Array.isArray(item)) invalid(`${where} must be {"mac": ..., "vtep": ...}`);
    for (const key of Object.keys(item)) {
      if (!(STATIC_FDB_KEYS as readonly string[]).includes(key)) invalid(`${where}: unknown key "${key}" (known keys: ${STATIC_FDB_KEYS.join(', ')})`);
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
function acceptPolicy(source: Source, localFamily: IpFamily | null): AcceptPolicy {
  if (source.value === undefined) return { kind: 'peers' };
  const text = requireString(source);
  if (text === 'peers' || text === 'any') return { kind: text };
  const cidrs = text.split(',').map((part) => {
    const cidr = parseCidr(part.trim());
    if (cidr === null) invalid(`accept must be "peers", "any" or CIDRs like 192.0.2.0/24,198.51.100.7/32 (got ${show(part)})`);
    if (localFamily !== null && cidr.family !== localFamily) invalid(`accept ${part} is IPv${cidr.family} but the VXLAN socket is IPv${localFamily}`);
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
function metricsEndpoint(source: Source): HostConfig['metrics'] {
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

/** "MIN-MAX" (flag or file) or {"min", "max"} (file), 1..65535, MIN <= MAX. */
function srcPortRange(source: Source): SrcPortRange | null {
  if (source.value === undefined || source.value === null) return null;
  const problem = `srcport must be MIN-MAX with ports 1..65535 and MIN <= MAX, e.g. 40000-40999 (got ${show(source.value)})`;
  let min: number | null = null;
  let max: number | null = null;
  if (typeof source.value === 'string') {
    const m = /^([0-9]+)-([0-9]+)$/.exec(source.value);
    if (m !== null) [min, max] = [parseDecimal(m[1]), parseDecimal(m[2])];
  } else if (!source.fromFlag && typeof source.value === 'object' && !Array.isArray(source.value)) {
    const o = source.value as Record<string, unknown>;
    if (Object.keys(o).every((k) => k === 'min' || k === 'max') && Number.isInteger(o.min) && Number.isInteger(o.max)) {
      [min, max] = [o.min as number, o.max as number];
    }
  }
  if (min === null || max === null || min < 1 || max > 65_535 || min > max) invalid(problem);
  return { min, max };
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

/** The etcd settings of the file, with --etcd replacing its endpoints. */
/** localGiven: false when neither --local nor "local" names an address (an invalid one counts as given: it is its own problem). */
function etcdConfig(fileValue: unknown, flagValue: string | undefined, dir: string, localGiven: boolean): EtcdConfig | null {
  if (flagValue === undefined && (fileValue === undefined || fileValue === null)) return null;
  // Each problem with its full key path (etcd.prefix, --etcd).
  const problems = new Problems();
  if (fileValue !== undefined && fileValue !== null && (typeof fileValue !== 'object' || Array.isArray(fileValue))) {
    problems.at('etcd', () => invalid(`etcd must be an object { "endpoints", "prefix", "leaseTtlS", "tls" } (got ${show(fileValue)})`), null);
    problems.throwIfAny();
  }
  const o = (fileValue ?? {}) as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!(ETCD_KEYS as readonly string[]).includes(key)) problems.at(`etcd.${key}`, () => invalid(`etcd.${key} is not a setting (etcd has ${ETCD_KEYS.join(', ')})`), null);
  }
  const endpointsName = flagValue !== undefined ? '--etcd' : 'etcd.endpoints';
  const urls = problems.at(endpointsName, () => {
    const endpoints = flagValue !== undefined ? flagValue.split(',').map((u) => u.trim()).filter((u) => u !== '') : o.endpoints;
    if (!Array.isArray(endpoints) || endpoints.length === 0) invalid(`${endpointsName} must list at least one URL, e.g. http://127.0.0.1:2379 (got ${show(endpoints)})`);
    return endpoints.map((u: unknown) => {
      if (typeof u !== 'string' || !/^https?:\/\/[^/\s]+\/?$/.test(u)) invalid(`${endpointsName}: ${show(u)} is not an http:// or https:// URL with a host and port`);
      return u.replace(/\/$/, '');
    });
  }, []);
  const prefix = problems.at('etcd.prefix', () => {
    const value = o.prefix ?? ETCD_PREFIX_DEFAULT;
    if (typeof value !== 'string' || !/^\/[A-Za-z0-9._\-/]*[A-Za-z0-9._-]$/.test(value) || value.includes('//')) {
      invalid(`etcd.prefix must start with "/", not end with "/", and hold only letters, digits, ".", "_", "-" and "/" (got ${show(value)})`);
    }
    return value;
  }, ETCD_PREFIX_DEFAULT);
  const leaseTtlS = problems.at('etcd.leaseTtlS', () =>
    optionalIntegerIn({ name: 'etcd.leaseTtlS', value: o.leaseTtlS, fromFlag: false }, 'etcd.leaseTtlS', 1, ETCD_LEASE_TTL_MAX_S, ETCD_LEASE_TTL_DEFAULT_S, 's'), 0);
  const tls = problems.at('etcd.tls', () => etcdTls(o.tls, dir), null);
  if (!localGiven) problems.at(flagValue !== undefined ? '--etcd' : 'etcd', () => invalid('etcd needs --local (or "local"): the VTEP address other hosts reach this one at, published in etcd'), null);
  problems.throwIfAny();
  return { endpoints: urls, prefix, leaseTtlS, tls };
}

function etcdTls(value: unknown, dir: string): EtcdConfig['tls'] {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'object' || Array.isArray(value)) invalid(`etcd.tls must be an object { "ca", "cert", "key" } (got ${show(value)})`);
  const t = value as Record<string, unknown>;
  for (const key of Object.keys(t)) {
    if (!(ETCD_TLS_KEYS as readonly string[]).includes(key)) invalid(`etcd.tls.${key} is not a setting (etcd.tls has ${ETCD_TLS_KEYS.join(', ')})`);
  }
  const file = (key: string): string | null => optionalPath({ name: `etcd.tls.${key}`, value: t[key], fromFlag: false }, `etcd.tls.${key}`, dir);
  const ca = file('ca');
  const cert = file('cert');
  const key = file('key');
  if (ca === null) invalid('etcd.tls.ca is required with etcd.tls (the CA that signed the etcd servers\' certificates)');
  if ((cert === null) !== (key === null)) invalid('etcd.tls.cert and etcd.tls.key go together (a client certificate and its key)');
  return { ca, cert, key };
}
