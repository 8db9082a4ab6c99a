import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  CONFIG_FILE_KEYS, ConfigInvalidError, DATAPATH_CHOICES, DEFAULT_TTL, DF_CHOICES, checkEnvelopeFor, describeEnvelope, ETCD_LEASE_TTL_MAX_S, LOG_LEVELS, MTU_MAX, MTU_MIN, effectiveSuppress, hostToFile, loadConfig, networkFromFile,
  networkFromFlags, networkToFile, resolveDatapath, type ConfigEnv, type ConfigFlags, type ConfigProblem, type HostConfig,
} from '../src/config/config.js';
import { VNI_MAX } from '../src/config/validate.js';
import { CONFIG_FILE_MAX_BYTES } from '../src/config/file.js';
import { VxlandError } from '../src/errors.js';

function tempDir(t: tap.Test): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vxland-config-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function writeConfig(t: tap.Test, content: unknown): string {
  const file = path.join(tempDir(t), 'vxl0.json');
  fs.writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

/** A default config file that does not exist: what /etc/vxland/vxland.json is on a host without one. */
const NO_DEFAULT_FILE = path.join(os.tmpdir(), 'vxland-config-test-no-default.json');

function load(flags: ConfigFlags, env: ConfigEnv = {}): HostConfig {
  return loadConfig(flags, env, NO_DEFAULT_FILE);
}

/** The host's settings and its one network's, side by side (a single-network config). */
function one(flags: ConfigFlags, env: ConfigEnv = {}) {
  const { networks, ...host } = load(flags, env);
  if (networks.length !== 1) throw new Error(`expected one network, got ${networks.length}`);
  return { ...host, ...networks[0] };
}

/** Asserts loadConfig refuses flags with exactly this code and a message containing `message`. */
function refuses(t: tap.Test, flags: ConfigFlags, message: string, code = 'VXLAND_CONFIG_INVALID'): void {
  let caught: unknown = null;
  try {
    load(flags);
  } catch (err) {
    caught = err;
  }
  t.type(caught, VxlandError, `refused: ${message}`);
  t.match(caught, { code, message }, message);
}

t.test('defaults with only a vni: one host, one network', async (t) => {
  const config = load({ vni: '42' });
  t.same(config, {
    local: null, family: 'udp4', port: 4789, srcport: null, datapath: 'auto', stateDir: '/var/lib/vxland', socket: '/run/vxland/vxland.sock',
    logLevel: 'info', metrics: null, controlGroup: null, etcd: null, ttl: 64, tos: 0, df: 'unset',
    networks: [{
      vni: 42, dev: 'vxl0', mtu: 1450, addresses: [], peers: [], fdb: [], ageingS: 300, maxFdb: 16384, maxFdbPerVtep: 4096,
      learnRatePerS: 500, accept: { kind: 'peers' }, allowVlan: false, mac: null, bridge: null, suppress: null, neigh: [],
    }],
  });
});

t.test('the outer header: --ttl, --tos (decimal, hex or inherit), --df; the file keys the same', async (t) => {
  t.match(load({ vni: '1', ttl: '1', tos: '0x14', df: 'set' }), { ttl: 1, tos: 0x14, df: 'set' });
  t.match(load({ vni: '1', ttl: '255', tos: '184' }), { ttl: 255, tos: 184, df: 'unset' });
  t.match(load({ vni: '1', tos: 'inherit' }), { tos: 'inherit' });
  t.match(load({ config: writeConfig(t, { vni: 1, ttl: 8, tos: 32, df: 'set' }) }), { ttl: 8, tos: 32, df: 'set' });
  t.match(load({ config: writeConfig(t, { vni: 1, tos: 'inherit' }), tos: '0' }), { tos: 0 }, 'a flag overrides the file');
  t.equal(describeEnvelope({ ttl: 64, tos: 'inherit', df: 'unset' }, 'native'), 'ttl 64, tos inherit, df unset; ECN per RFC 6040 (encap and decap)');
  t.equal(describeEnvelope({ ttl: 9, tos: 0xb8, df: 'set' }, 'dgram'), 'ttl 9, tos 0xb8, df set; no ECN (outer not-ECT, inner never marked CE)');
  t.doesNotThrow(() => checkEnvelopeFor({ tos: 'inherit' }, 'native'));
  t.doesNotThrow(() => checkEnvelopeFor({ tos: 0x20 }, 'dgram'));
  t.throws(() => checkEnvelopeFor({ tos: 'inherit' }, 'dgram'), { code: 'VXLAND_CONFIG_INVALID', message: /tos inherit needs the native data path/ });
});

t.test('the bridge: --bridge or "bridge", an interface name; null by default', async (t) => {
  t.equal(one({ vni: '1', bridge: 'br0' }).bridge, 'br0');
  t.equal(one({ vni: '1', config: writeConfig(t, { vni: 1, bridge: 'br1' }) }).bridge, 'br1');
  t.equal(one({ vni: '1', config: writeConfig(t, { vni: 1, bridge: null }) }).bridge, null);
  refuses(t, { vni: '1', bridge: 'br/0' }, 'bridge must be a Linux interface name: "br/0"');
  refuses(t, { vni: '1', config: writeConfig(t, { vni: 1, bridge: 7 }) }, 'bridge must be a string (got 7)');
});

t.test('the TAP MAC: --mac or "mac", normalised; unicast and not zero', async (t) => {
  t.equal(one({ vni: '1', mac: '02-42-0A-2A-00-01' }).mac, '02:42:0a:2a:00:01');
  t.equal(one({ vni: '1', config: writeConfig(t, { vni: 1, mac: '02:00:00:00:00:02' }) }).mac, '02:00:00:00:00:02');
  t.equal(one({ vni: '1', mac: '02:00:00:00:00:03', config: writeConfig(t, { vni: 1, mac: '02:00:00:00:00:02' }) }).mac, '02:00:00:00:00:03', 'the flag wins');
  refuses(t, { vni: '1', mac: '01:00:5e:00:00:01' }, 'mac must be a unicast address, not zero (got 01:00:5e:00:00:01)');
  refuses(t, { vni: '1', mac: 'ff:ff:ff:ff:ff:ff' }, 'mac must be a unicast address, not zero');
  refuses(t, { vni: '1', mac: '00:00:00:00:00:00' }, 'mac must be a unicast address, not zero');
  refuses(t, { vni: '1', mac: '02:00:00:00:00' }, 'mac must be a MAC address like 02:00:00:00:00:01 (got "02:00:00:00:00")');
  refuses(t, { vni: '1', config: writeConfig(t, { vni: 1, mac: 42 }) }, 'mac must be a string (got 42)');
});

t.test('hardening and metrics settings', async (t) => {
  const c = one({ vni: '1', accept: '192.0.2.0/24,198.51.100.7/32', allowVlan: true, maxFdbPerVtep: '10', learnRate: '0', metrics: '127.0.0.1:9798', controlGroup: 'vxland' });
  t.same(c.accept, { kind: 'cidrs', cidrs: [{ address: '192.0.2.0', prefixLength: 24, family: 4 }, { address: '198.51.100.7', prefixLength: 32, family: 4 }] });
  t.same([c.allowVlan, c.maxFdbPerVtep, c.learnRatePerS, c.metrics, c.controlGroup], [true, 10, 0, { host: '127.0.0.1', port: 9798 }, 'vxland']);
  t.same(one({ vni: '1', accept: 'any' }).accept, { kind: 'any' });
  t.same(one({ vni: '1', metrics: '[::1]:9798' }).metrics, { host: '::1', port: 9798 });
  const bad: Array<[Record<string, unknown>, string]> = [
    [{ accept: 'everyone' }, 'accept must be "peers", "any" or CIDRs like 192.0.2.0/24,198.51.100.7/32 (got "everyone")'],
    [{ accept: 'fd00::/64' }, 'accept fd00::/64 is IPv6 but the VXLAN socket is IPv4'],
    [{ metrics: '9798' }, 'metrics must be HOST:PORT with an IP address, e.g. 127.0.0.1:9798 (got "9798")'],
    [{ metrics: 'localhost:9798' }, 'metrics must be HOST:PORT with an IP address, e.g. 127.0.0.1:9798 (got "localhost:9798")'],
    [{ learnRate: '-1' }, 'learn-rate must be an integer >= 0 MACs per second per VTEP (0 = no limit) (got "-1")'],
    [{ maxFdbPerVtep: '0' }, 'max-fdb-per-vtep must be an integer >= 1 (got "0")'],
    [{ controlGroup: 'a b' }, 'control-group must be a group name (got "a b")'],
  ];
  for (const [flags, message] of bad) t.throws(() => load({ vni: '1', ...flags }), { code: 'VXLAND_CONFIG_INVALID', message }, message);
});

t.test('the outer source port range: --srcport MIN-MAX, "srcport" as text or {min, max}; null = the ephemeral range', async (t) => {
  t.same(one({ vni: '1', srcport: '40000-40999' }).srcport, { min: 40000, max: 40999 });
  t.same(one({ vni: '1', srcport: '4789-4789' }).srcport, { min: 4789, max: 4789 }, 'one port is a range');
  t.same(one({ config: writeConfig(t, { vni: 1, srcport: '1-65535' }) }).srcport, { min: 1, max: 65535 });
  t.same(one({ config: writeConfig(t, { vni: 1, srcport: { min: 50000, max: 50100 } }) }).srcport, { min: 50000, max: 50100 });
  t.equal(one({ config: writeConfig(t, { vni: 1, srcport: null }) }).srcport, null, 'null: the default');
  t.same(one({ config: writeConfig(t, { vni: 1, srcport: '1-2' }), srcport: '3-4' }).srcport, { min: 3, max: 4 }, 'the flag wins');
  const problem = 'srcport must be MIN-MAX with ports 1..65535 and MIN <= MAX, e.g. 40000-40999';
  for (const bad of ['40000', '0-100', '100-65536', '2000-1000', '40000-', ' 1-2', '1-2-3', '0x10-0x20']) refuses(t, { vni: '1', srcport: bad }, `${problem} (got ${JSON.stringify(bad)})`);
  for (const bad of [{ min: 1 }, { min: 1, max: 2, step: 1 }, { min: 1.5, max: 2 }, { min: '1', max: '2' }, [1, 2], 40000]) {
    refuses(t, { config: writeConfig(t, { vni: 1, srcport: bad }) }, problem);
  }
});

t.test('one control socket per daemon, whatever the device', async (t) => {
  t.equal(load({ vni: '1', dev: 'blue' }).socket, '/run/vxland/vxland.sock');
});

t.test('an IPv6 local address selects udp6 and canonical form', async (t) => {
  const config = one({ vni: '1', local: 'FD00:0::0001', peer: ['fd00::0002'] });
  t.equal(config.local, 'fd00::1');
  t.equal(config.family, 'udp6');
  t.same(config.peers, ['fd00::2']);
});

t.test('file settings are used and flags override them', async (t) => {
  const file = writeConfig(t, {
    dev: 'red', vni: 7, port: 8472, mtu: 1400, addresses: ['10.7.0.1/24', 'fd07::1/64'],
    peers: ['192.0.2.2', '192.0.2.3'], fdb: [{ mac: '02:00:00:00:00:0A', vtep: '192.0.2.2' }],
    ageingS: 0, maxFdb: 10, datapath: 'dgram', stateDir: 'state', socket: 'ctl.sock', logLevel: 'debug',
  });
  const fromFile = one({ config: file });
  const dir = path.dirname(file);
  t.equal(fromFile.dev, 'red');
  t.equal(fromFile.vni, 7);
  t.equal(fromFile.port, 8472);
  t.equal(fromFile.mtu, 1400);
  t.same(fromFile.addresses, ['10.7.0.1/24', 'fd07::1/64']);
  t.same(fromFile.peers, ['192.0.2.2', '192.0.2.3']);
  t.same(fromFile.fdb, [{ mac: '02:00:00:00:00:0a', vtep: '192.0.2.2' }]);
  t.equal(fromFile.ageingS, 0);
  t.equal(fromFile.maxFdb, 10);
  t.equal(fromFile.datapath, 'dgram');
  t.equal(fromFile.stateDir, path.join(dir, 'state'), 'relative paths are relative to the file');
  t.equal(fromFile.socket, path.join(dir, 'ctl.sock'));
  t.equal(fromFile.logLevel, 'debug');

  const merged = one({ config: file, vni: '8', port: '4789', peer: ['198.51.100.1'], address: ['10.8.0.1/16'], logLevel: 'warn' });
  t.equal(merged.vni, 8, 'flag wins');
  t.equal(merged.port, 4789);
  t.same(merged.peers, ['198.51.100.1'], 'repeated --peer replaces the list');
  t.same(merged.addresses, ['10.8.0.1/16'], 'repeated --address replaces the list');
  t.equal(merged.mtu, 1400, 'unset flags keep the file value');
  t.equal(merged.logLevel, 'warn');
});

t.test('VXLAND_CONFIG names the file when --config is absent', async (t) => {
  const file = writeConfig(t, { vni: 99 });
  t.equal(one({}, { VXLAND_CONFIG: file }).vni, 99);
});

t.test('the result is deeply frozen', async (t) => {
  const file = writeConfig(t, { vni: 1, peers: ['192.0.2.2'], fdb: [{ mac: '02:00:00:00:00:01', vtep: '192.0.2.2' }] });
  const host = load({ config: file });
  const config = host.networks[0];
  t.ok(Object.isFrozen(host));
  t.ok(Object.isFrozen(host.networks), 'the networks list too');
  t.ok(Object.isFrozen(config));
  t.ok(Object.isFrozen(config.peers));
  t.ok(Object.isFrozen(config.fdb));
  t.ok(Object.isFrozen(config.fdb[0]));
  t.throws(() => (config.peers as string[]).push('192.0.2.9'));
  t.throws(() => {
    (config as { vni: number }).vni = 2;
  });
});

t.test('every validation message', async (t) => {
  refuses(t, {}, 'vni is required');
  refuses(t, { vni: '16777216' }, 'vni must be an integer 0..16777215');
  refuses(t, { vni: '-1' }, 'vni must be an integer 0..16777215');
  refuses(t, { vni: '4e1' }, 'vni must be an integer 0..16777215');
  refuses(t, { vni: '1', dev: 'this-name-is-too-long' }, 'dev must be a Linux interface name: "this-name-is-too-long" is longer than 15 bytes');
  refuses(t, { vni: '1', dev: 'a/b' }, 'dev must be a Linux interface name');
  refuses(t, { vni: '1', dev: '' }, 'dev must be a Linux interface name: "" is empty');
  refuses(t, { vni: '1', local: '10.0.0.300' }, 'local must be an IPv4 or IPv6 address (got "10.0.0.300")');
  refuses(t, { vni: '1', port: '0' }, 'port must be an integer 1..65535');
  refuses(t, { vni: '1', port: '65536' }, 'port must be an integer 1..65535');
  refuses(t, { vni: '1', mtu: '67' }, 'mtu must be an integer 68..65481');
  refuses(t, { vni: '1', mtu: '65482' }, 'mtu must be an integer 68..65481');
  refuses(t, { vni: '1', address: ['10.0.0.1'] }, 'address must be a CIDR like 10.0.0.1/24 or fd00::1/64 (got "10.0.0.1")');
  refuses(t, { vni: '1', address: ['10.0.0.1/33'] }, 'address must be a CIDR');
  refuses(t, { vni: '1', peer: ['nope'] }, 'peer must be an IPv4 or IPv6 address (got "nope")');
  refuses(t, { vni: '1', peer: ['192.0.2.2', '192.0.2.2'] }, 'peer 192.0.2.2 is listed twice');
  refuses(t, { vni: '1', peer: ['fd00::2'] }, 'peer fd00::2 is IPv6 but the VXLAN socket is IPv4');
  refuses(t, { vni: '1', local: 'fd00::1', peer: ['192.0.2.2'] }, 'peer 192.0.2.2 is IPv4 but the VXLAN socket is IPv6');
  refuses(t, { vni: '1', ageing: '-5' }, 'ageing must be an integer >= 0 seconds (0 = never)');
  refuses(t, { vni: '1', maxFdb: '0' }, 'max-fdb must be an integer >= 1');
  refuses(t, { vni: '1', datapath: 'fast' }, 'datapath must be one of auto, native, dgram (got "fast")');
  refuses(t, { vni: '1', logLevel: 'loud' }, 'log-level must be one of fatal, error, warn, info, debug, trace, silent');
  refuses(t, { vni: '1', ttl: '0' }, 'ttl must be an integer 1..255');
  refuses(t, { vni: '1', ttl: '256' }, 'ttl must be an integer 1..255');
  refuses(t, { vni: '1', tos: '256' }, 'tos must be 0..255 (decimal or 0x hex) or inherit (got "256")');
  refuses(t, { vni: '1', tos: '0x1g' }, 'tos must be 0..255');
  refuses(t, { vni: '1', df: 'maybe' }, 'df must be one of unset, set (got "maybe")');
  refuses(t, { vni: '1', df: 'inherit' }, 'df inherit is not supported: a Linux UDP socket cannot set DF per datagram; use set or unset');
});

t.test('suppression: "suppress" (null = on with etcd) and "neigh", normalised', async (t) => {
  const c = load({ config: writeConfig(t, { vni: 1, neigh: [{ ip: 'FD00:0::2', mac: '02-00-00-00-00-AA' }, { ip: '10.0.0.2', mac: '02:00:00:00:00:bb' }] }) });
  t.same(c.networks[0].neigh, [{ ip: 'fd00::2', mac: '02:00:00:00:00:aa' }, { ip: '10.0.0.2', mac: '02:00:00:00:00:bb' }]);
  t.equal(c.networks[0].suppress, null);
  t.equal(effectiveSuppress(c.networks[0], true), true, 'default on with etcd');
  t.equal(effectiveSuppress(c.networks[0], false), false, 'default off without');
  const off = load({ config: writeConfig(t, { vni: 1, suppress: false }) }).networks[0];
  t.equal(effectiveSuppress(off, true), false, 'an explicit false wins over etcd');
  t.same(networkFromFile(networkToFile(c.networks[0]), 'udp4', 'x'), c.networks[0], 'round-trips through a networks[] entry');
});

t.test('file-only validation messages', async (t) => {
  const cases: [unknown, string][] = [
    [{ vni: 1, colour: 'red' }, 'unknown key "colour"'],
    [{ vni: 1.5 }, 'vni must be an integer 0..16777215 (got 1.5)'],
    [{ vni: '7' }, 'vni must be an integer 0..16777215 (got "7")'],
    [{ vni: 1, dev: 5 }, 'dev must be a string'],
    [{ vni: 1, peers: '192.0.2.2' }, 'peers must be a list of strings'],
    [{ vni: 1, fdb: {} }, 'fdb must be a list'],
    [{ vni: 1, fdb: [{ mac: 'zz', vtep: '192.0.2.2' }] }, 'fdb[0].mac must be a MAC address like 02:00:00:00:00:01 (got "zz")'],
    [{ vni: 1, fdb: [{ mac: '02:00:00:00:00:01', vtep: 'x' }] }, 'fdb[0].vtep must be an IPv4 or IPv6 address'],
    [{ vni: 1, fdb: [{ mac: '00:00:00:00:00:00', vtep: '192.0.2.2' }] }, 'is the flood address'],
    [{ vni: 1, fdb: [{ mac: '02:00:00:00:00:01', vtep: '192.0.2.2', port: 1 }] }, 'fdb[0]: unknown key "port"'],
    [
      { vni: 1, fdb: [{ mac: '02:00:00:00:00:01', vtep: '192.0.2.2' }, { mac: '02:00:00:00:00:01', vtep: '192.0.2.3' }] },
      'fdb[1]: MAC 02:00:00:00:00:01 is listed twice',
    ],
    [{ vni: 1, suppress: 'yes' }, 'suppress must be true or false (got "yes")'],
    [{ vni: 1, neigh: {} }, 'neigh must be a list of {"ip": ..., "mac": ...}'],
    [{ vni: 1, neigh: [{ ip: '10.0.0', mac: '02:00:00:00:00:01' }] }, 'neigh[0]: neighbour ip must be an IPv4 or IPv6 address (got "10.0.0")'],
    [{ vni: 1, neigh: [{ ip: '224.0.0.1', mac: '02:00:00:00:00:01' }] }, 'neigh[0]: neighbour ip 224.0.0.1 is not a unicast address a host can own'],
    [{ vni: 1, neigh: [{ ip: 'ff02::1', mac: '02:00:00:00:00:01' }] }, 'neigh[0]: neighbour ip ff02::1 is not a unicast address'],
    [{ vni: 1, neigh: [{ ip: '10.0.0.2', mac: '01:00:5e:00:00:01' }] }, 'neigh[0]: neighbour mac 01:00:5e:00:00:01 is not a unicast MAC'],
    [{ vni: 1, neigh: [{ ip: '10.0.0.2', mac: '02:00:00:00:00:01', vtep: '192.0.2.2' }] }, 'neigh[0]: unknown key "vtep" (known keys: ip, mac)'],
    [{ vni: 1, neigh: [{ ip: '10.0.0.2', mac: '02:00:00:00:00:01' }, { ip: '10.0.0.2', mac: '02:00:00:00:00:02' }] }, 'neigh[1]: ip 10.0.0.2 is listed twice'],
    [{ vni: 1, stateDir: '' }, 'state-dir must be a non-empty path'],
    [[1, 2], 'must contain a JSON object'],
    ['{"vni": 1,', 'is not valid JSON'],
  ];
  for (const [content, message] of cases) refuses(t, { config: writeConfig(t, content) }, message);
});

t.test('an unreadable config file', async (t) => {
  refuses(t, { config: path.join(tempDir(t), 'missing.json') }, 'cannot read config file', 'VXLAND_CONFIG_FILE');
});

/** Bounds a config load that might block or read for ever: it runs in a child
 *  process, killed after this long. */
const CHILD_TIMEOUT_MS = 10_000;
/** What the issue asks of a hostile path: a clear error in under a second,
 *  beyond what refusing an ordinary bad path (a missing file) costs in a
 *  child started the same way just before (a loaded machine slows both). */
const REFUSAL_MAX_MS = 1_000;

/** loadConfig({ config: file }) in a child process: what it threw and how long it took. */
function loadInChild(file: string): { code?: string; message?: string; elapsedMs?: number; timedOut: boolean } {
  const script = `
    const { loadConfig } = require(${JSON.stringify(path.resolve(__dirname, '..', 'src', 'config', 'config.js'))});
    const start = performance.now();
    let out = { loaded: true };
    try { loadConfig({ config: ${JSON.stringify(file)} }, {}, ''); } catch (err) { out = { code: err.code, message: err.message }; }
    console.log(JSON.stringify({ ...out, elapsedMs: performance.now() - start }));`;
  const r = spawnSync(process.execPath, ['-e', script], { timeout: CHILD_TIMEOUT_MS, killSignal: 'SIGKILL', encoding: 'utf8' });
  if (r.error !== undefined || r.status !== 0) return { timedOut: true, message: `${r.error?.message ?? ''} ${r.stderr}` };
  return { ...JSON.parse(r.stdout), timedOut: false };
}

t.test('a config path that is not a regular file, or too large, is refused at once', async (t) => {
  const dir = tempDir(t);
  const fifo = path.join(dir, 'fifo.json');
  execFileSync('mkfifo', [fifo]);
  const big = path.join(dir, 'big.json');
  fs.writeFileSync(big, `{"vni": 1${' '.repeat(2 * 1024 * 1024)}}`);
  const overByOne = path.join(dir, 'over.json');
  fs.writeFileSync(overByOne, `{"vni": 1${' '.repeat(CONFIG_FILE_MAX_BYTES - 9)}}`);
  const zeroLink = path.join(dir, 'zero.json');
  fs.symlinkSync('/dev/zero', zeroLink);
  const cases: [string, string][] = [
    [fifo, `cannot read config file ${fifo}: it is a FIFO, not a regular file`],
    ['/dev/zero', 'cannot read config file /dev/zero: it is a character device, not a regular file'],
    [zeroLink, `cannot read config file ${zeroLink}: it is a character device, not a regular file`],
    [dir, `cannot read config file ${dir}: it is a directory, not a regular file`],
    [big, `cannot read config file ${big}: it is larger than 1048576 bytes (1 MiB), the most a config file may be`],
    [overByOne, `cannot read config file ${overByOne}: it is larger than 1048576 bytes (1 MiB)`],
  ];
  const missing = path.join(dir, 'missing.json');
  for (const [file, message] of cases) {
    const baseline = loadInChild(missing);
    t.match(baseline, { code: 'VXLAND_CONFIG_FILE', message: `cannot read config file ${missing}` }, 'a missing file is refused (the baseline)');
    const r = loadInChild(file);
    t.notOk(r.timedOut, `${file}: loadConfig returned (${r.message ?? ''})`);
    t.match(r, { code: 'VXLAND_CONFIG_FILE', message }, message);
    const [ms, baseMs] = [Math.round(r.elapsedMs!), Math.round(baseline.elapsedMs!)];
    t.comment(`${file}: refused in ${ms} ms; a missing file just before: ${baseMs} ms`);
    t.ok(r.elapsedMs! <= baseline.elapsedMs! + REFUSAL_MAX_MS, `${file}: refused in ${ms} ms, within ${REFUSAL_MAX_MS} ms of a missing file (${baseMs} ms)`);
  }
});

t.test('a file of exactly the size cap, and a symlink to a config file, are read', async (t) => {
  const dir = tempDir(t);
  const full = path.join(dir, 'full.json');
  fs.writeFileSync(full, `{"vni": 5${' '.repeat(CONFIG_FILE_MAX_BYTES - 10)}}`);
  t.equal(fs.statSync(full).size, CONFIG_FILE_MAX_BYTES);
  t.equal(one({ config: full }).vni, 5);
  const link = path.join(dir, 'link.json');
  fs.symlinkSync(full, link);
  t.equal(one({ config: link }).vni, 5);
});

t.test('a key given twice is refused, named by its path', async (t) => {
  const cases: [string, string][] = [
    ['{"vni": 1, "peers": ["192.0.2.2"], "peers": []}', 'duplicate key "peers" at line 1, column 36'],
    ['{"vni": 1,\n "fdb": [{"mac": "02:00:00:00:00:01", "vtep": "192.0.2.2", "mac": "02:00:00:00:00:02"}]}', 'duplicate key "fdb[0].mac" at line 2, column 60'],
    ['{"vni": 1, "vni": 2}', 'duplicate key "vni"'],
  ];
  for (const [content, message] of cases) {
    const file = writeConfig(t, content);
    refuses(t, { config: file }, `config file ${file}: ${message}`);
  }
});

t.test('a syntax error names its line and column', async (t) => {
  const file = writeConfig(t, '{\n  "vni": 1,\n  "peers": ["192.0.2.2",]\n}');
  refuses(t, { config: file }, `config file ${file} is not valid JSON: unexpected "]", expected a value at line 3, column 25`);
});

t.test('"__proto__" in the file is an unknown key, not a prototype', async (t) => {
  refuses(t, { config: writeConfig(t, '{"vni": 1, "__proto__": {"dev": "evil"}}') }, 'unknown key "__proto__"');
});

/** Generous: the quadratic checks took minutes for this size. */
const FULL_FILE_VALIDATION_MAX_MS = 5_000;

t.test('a file at the size cap full of peers or static entries validates in linear time', async (t) => {
  const ip = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
  const peers = Array.from({ length: 70_000 }, (_, i) => ip(i));
  const fdb = Array.from({ length: 18_000 }, (_, i) => ({ mac: `02:00:00:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`, vtep: ip(i % 300) }));
  for (const [label, content, count] of [['peers', { vni: 1, peers }, peers.length], ['fdb', { vni: 1, fdb }, fdb.length]] as const) {
    const file = writeConfig(t, content);
    t.ok(fs.statSync(file).size <= CONFIG_FILE_MAX_BYTES, `${label}: the file fits the cap (${fs.statSync(file).size} bytes)`);
    const start = performance.now();
    const config = one({ config: file });
    const elapsedMs = performance.now() - start;
    t.equal(config[label].length, count, `${label}: all ${count} are loaded`);
    t.ok(elapsedMs < FULL_FILE_VALIDATION_MAX_MS, `${label}: validated in ${Math.round(elapsedMs)} ms`);
  }
  const twice = writeConfig(t, { vni: 1, peers: [...peers, ip(0)] });
  refuses(t, { config: twice }, 'peer 10.0.0.0 is listed twice');
});

t.test('resolveDatapath: auto picks native where it can run, native fails clearly where it cannot', async (t) => {
  const supported = () => true as const;
  const missing = () => '/dev/net/tun is missing';
  t.equal(resolveDatapath('auto', supported), 'native');
  t.equal(resolveDatapath('auto', missing), 'dgram');
  t.equal(resolveDatapath('native', supported), 'native');
  t.equal(resolveDatapath('dgram', supported), 'dgram');
  t.throws(() => resolveDatapath('native', missing), {
    code: 'VXLAND_DATAPATH_UNAVAILABLE',
    message: 'native data path unavailable: /dev/net/tun is missing; use --datapath dgram or auto',
  });
});

const HOST_FILE = {
  local: '192.0.2.1', port: 4789, datapath: 'dgram', socket: 'ctl.sock', stateDir: 'state', logLevel: 'debug', metrics: '127.0.0.1:9470', controlGroup: null,
  networks: [
    { vni: 42, dev: 'vxl42', mtu: 1450, addresses: ['10.42.0.1/24'], peers: ['192.0.2.2'], fdb: [], ageingS: 300, maxFdb: 16384,
      maxFdbPerVtep: 4096, learnRatePerS: 500, accept: 'peers', allowVlan: false, mac: null, bridge: null },
    { vni: 43, peers: ['192.0.2.3'], accept: '192.0.2.0/24', bridge: 'br43', mac: '02:00:00:00:43:01' },
  ],
};

t.test('a host file: host settings and every network, defaults filled in per network', async (t) => {
  const file = writeConfig(t, HOST_FILE);
  const dir = path.dirname(file);
  const c = load({ config: file });
  t.same([c.local, c.family, c.port, c.datapath, c.socket, c.stateDir, c.logLevel, c.metrics, c.controlGroup],
    ['192.0.2.1', 'udp4', 4789, 'dgram', path.join(dir, 'ctl.sock'), path.join(dir, 'state'), 'debug', { host: '127.0.0.1', port: 9470 }, null]);
  t.same(c.networks.map((n) => [n.vni, n.dev, n.mtu, n.peers, n.bridge, n.mac]), [
    [42, 'vxl42', 1450, ['192.0.2.2'], null, null],
    [43, 'vxl43', 1450, ['192.0.2.3'], 'br43', '02:00:00:00:43:01'],
  ], 'a network without dev gets vxl<VNI>');
  t.same(c.networks[1].accept, { kind: 'cidrs', cidrs: [{ address: '192.0.2.0', prefixLength: 24, family: 4 }] });
  t.ok(Object.isFrozen(c.networks[1].peers), 'deeply frozen');
  t.same(load({ config: writeConfig(t, { networks: [] }) }).networks, [], 'no networks at all is a host waiting for "network add"');
  t.equal(load({ config: file, port: '8472', logLevel: 'warn' }).port, 8472, 'host flags still override the file');
});

t.test('a host file: errors name the network', async (t) => {
  const net = (extra: Record<string, unknown>) => writeConfig(t, { networks: [{ vni: 42 }, { vni: 43, ...extra }] });
  const cases: [string, string][] = [
    [net({ mtu: 70000 }), 'networks[1] (vni 43): mtu must be an integer 68..65481 (got 70000)'],
    [net({ peers: ['fd00::2'] }), 'networks[1] (vni 43): peer fd00::2 is IPv6 but the VXLAN socket is IPv4'],
    [net({ colour: 'red' }), 'networks[1] (vni 43): unknown key "colour" (known keys: vni, dev, mtu,'],
    [net({ bridge: 'a bridge too long' }), 'networks[1] (vni 43): bridge must be a Linux interface name'],
    [net({ fdb: [{ mac: 'zz', vtep: '192.0.2.2' }] }), 'networks[1] (vni 43): fdb[0].mac must be a MAC address'],
    [writeConfig(t, { networks: [{ vni: 42 }, { dev: 'x' }] }), 'networks[1]: vni is required'],
    [writeConfig(t, { networks: [{ vni: 42 }, { vni: 'x' }] }), 'networks[1]: vni must be an integer 0..16777215 (got "x")'],
    [writeConfig(t, { networks: [{ vni: 42 }, 7] }), 'networks[1] must be a JSON object'],
    [writeConfig(t, { networks: { vni: 42 } }), 'networks must be a list of network objects'],
  ];
  for (const [file, message] of cases) refuses(t, { config: file }, message);
});

t.test('a host file: duplicate VNI or dev refused, naming both entries', async (t) => {
  refuses(t, { config: writeConfig(t, { networks: [{ vni: 42 }, { vni: 43 }, { vni: 42, dev: 'other' }] }) },
    'networks[2] (vni 42): vni 42 is already used by networks[0]');
  refuses(t, { config: writeConfig(t, { networks: [{ vni: 42, dev: 'blue' }, { vni: 43, dev: 'blue' }] }) },
    'networks[1] (vni 43): dev blue is already used by networks[0]');
  refuses(t, { config: writeConfig(t, { networks: [{ vni: 42 }, { vni: 43, dev: 'vxl42' }] }) },
    'networks[1] (vni 43): dev vxl42 is already used by networks[0]');
});

t.test('a host file: network keys at the top level and per-network flags are refused by name', async (t) => {
  const file = writeConfig(t, HOST_FILE);
  refuses(t, { config: writeConfig(t, { vni: 42, networks: [] }) },
    '"vni" is a network setting; with "networks" in the file it belongs in each networks[] entry');
  refuses(t, { config: writeConfig(t, { networks: [], colour: 'red' }) }, 'unknown key "colour" (known keys: local, port, srcport, datapath, socket, stateDir, logLevel, metrics, controlGroup, etcd, ttl, tos, df, networks)');
  for (const [flags, flag] of [[{ peer: ['192.0.2.9'] }, '--peer'], [{ vni: '44' }, '--vni'], [{ bridge: 'br0' }, '--bridge'], [{ allowVlan: true }, '--allow-vlan']] as Array<[ConfigFlags, string]>) {
    refuses(t, { config: file, ...flags }, `${flag} describes one network, but config file ${file} lists "networks"`);
  }
});

t.test("today's single-network file is one network; its host keys are the host's", async (t) => {
  const file = writeConfig(t, { vni: 7, dev: 'red', port: 8472, peers: ['192.0.2.2'], socket: 'ctl.sock', bridge: 'br0' });
  const c = load({ config: file });
  t.equal(c.port, 8472);
  t.equal(c.socket, path.join(path.dirname(file), 'ctl.sock'));
  t.same(c.networks.map((n) => [n.vni, n.dev, n.peers, n.bridge]), [[7, 'red', ['192.0.2.2'], 'br0']]);
});

t.test('the default file is read when it exists and nothing else names a file', async (t) => {
  const file = writeConfig(t, { networks: [{ vni: 42 }, { vni: 43 }] });
  t.same(loadConfig({}, {}, file).networks.map((n) => n.vni), [42, 43], 'the default file when it exists');
  const other = writeConfig(t, { vni: 9 });
  t.same(loadConfig({ config: other }, {}, file).networks.map((n) => n.vni), [9], '--config wins');
  t.same(loadConfig({}, { VXLAND_CONFIG: other }, file).networks.map((n) => n.vni), [9], 'VXLAND_CONFIG wins');
  t.same(loadConfig({ vni: '5' }, { VXLAND_CONFIG: '' }, file).networks.map((n) => n.vni), [5], 'an empty VXLAND_CONFIG means no file');
  t.same(load({ vni: '5' }).networks.map((n) => n.vni), [5], 'no default file: the flags alone');
});

t.test('a network from flags (network add) is validated as a file network; dev defaults to vxl<VNI>', async (t) => {
  const n = networkFromFlags({ vni: '44', address: ['10.44.0.1/24'], peer: ['192.0.2.2'], mtu: '1400', bridge: 'br44', accept: 'any' }, 'udp4');
  t.same([n.vni, n.dev, n.mtu, n.addresses, n.peers, n.bridge, n.accept], [44, 'vxl44', 1400, ['10.44.0.1/24'], ['192.0.2.2'], 'br44', { kind: 'any' }]);
  t.ok(Object.isFrozen(n));
  t.throws(() => networkFromFlags({ dev: 'x' }, 'udp4'), { code: 'VXLAND_CONFIG_INVALID', message: 'vni is required (--vni N)' });
  t.throws(() => networkFromFlags({ vni: '44', mtu: '9' }, 'udp4'), { code: 'VXLAND_CONFIG_INVALID', message: 'mtu must be an integer 68..65481 (got "9")' });
  t.throws(() => networkFromFlags({ vni: '44', peer: ['192.0.2.2'] }, 'udp6'), { message: 'peer 192.0.2.2 is IPv4 but the VXLAN socket is IPv6' });
});

t.test('networkToFile and networkFromFile round-trip a network', async (t) => {
  for (const n of load({ config: writeConfig(t, HOST_FILE) }).networks) {
    const text = JSON.stringify(networkToFile(n));
    t.same(networkFromFile(JSON.parse(text), 'udp4', 'networks[0]'), n, `vni ${n.vni}`);
  }
  t.throws(() => networkFromFile({ vni: 1, mtu: 1 }, 'udp4', 'networks[3]'), { message: 'networks[3]: mtu must be an integer 68..65481 (got 1)' });
});

t.test('etcd: --etcd or "etcd" in the file, with defaults; needs a local address; checked', async (t) => {
  t.equal(load({ vni: '42' }).etcd, null, 'none by default');
  t.same(load({ vni: '42', local: '192.0.2.1', etcd: 'http://127.0.0.1:2379, http://127.0.0.2:2379/' }).etcd, {
    endpoints: ['http://127.0.0.1:2379', 'http://127.0.0.2:2379'], prefix: '/vxland', leaseTtlS: 15, tls: null,
  });
  const file = writeConfig(t, {
    local: '192.0.2.1', etcd: { endpoints: ['https://10.0.0.1:2379'], prefix: '/overlay/a', leaseTtlS: 5, tls: { ca: 'ca.pem', cert: 'c.pem', key: 'k.pem' } },
    networks: [{ vni: 42 }],
  });
  const dir = path.dirname(file);
  t.same(load({ config: file }).etcd, {
    endpoints: ['https://10.0.0.1:2379'], prefix: '/overlay/a', leaseTtlS: 5,
    tls: { ca: path.join(dir, 'ca.pem'), cert: path.join(dir, 'c.pem'), key: path.join(dir, 'k.pem') },
  }, 'paths relative to the file');
  t.same(load({ config: file, etcd: 'http://127.0.0.1:2379' }).etcd?.endpoints, ['http://127.0.0.1:2379'], '--etcd replaces the endpoints');
  refuses(t, { vni: '42', etcd: 'http://127.0.0.1:2379' }, 'etcd needs --local');
  refuses(t, { vni: '42', local: '192.0.2.1', etcd: '127.0.0.1:2379' }, 'is not an http:// or https:// URL');
  refuses(t, { vni: '42', local: '192.0.2.1', etcd: ',' }, '--etcd must list at least one URL');
  const bad = (etcd: unknown, message: string): void => {
    let caught: unknown = null;
    try {
      load({ config: writeConfig(t, { local: '192.0.2.1', etcd, vni: 42 }) });
    } catch (err) {
      caught = err;
    }
    t.match(caught, { code: 'VXLAND_CONFIG_INVALID', message }, message);
  };
  bad({ endpoints: ['http://a:1'], prefix: 'vxland' }, 'etcd.prefix must start with "/"');
  bad({ endpoints: ['http://a:1'], leaseTtlS: 0 }, 'etcd.leaseTtlS must be an integer 1..3600 s');
  bad({ endpoints: ['http://a:1'], tls: { cert: 'c.pem', key: 'k.pem' } }, 'etcd.tls.ca is required');
  bad({ endpoints: ['http://a:1'], tls: { ca: 'ca.pem', cert: 'c.pem' } }, 'etcd.tls.cert and etcd.tls.key go together');
  bad({ endpoints: ['http://a:1'], ttl: 3 }, 'etcd.ttl is not a setting');
  bad(['http://a:1'], 'etcd must be an object');
});

/** The problems loadConfig finds in flags (none: []). */
function problemsOf(flags: ConfigFlags): readonly ConfigProblem[] {
  try {
    load(flags);
    return [];
  } catch (err) {
    if (err instanceof ConfigInvalidError) return err.problems;
    throw err;
  }
}

t.test('every problem is found, each with its key path; the message joins them', async (t) => {
  const file = writeConfig(t, {
    local: '192.0.2.300', port: 0, logLevel: 'loud', colour: 'red', vni: 1,
    networks: [
      { vni: 42, mtu: 9, peers: ['fd00::2', 'x'], fdb: [{ mac: 'zz', vtep: '192.0.2.2' }], shape: 'round' },
      { vni: 43, dev: 'a/b', ageingS: -1 },
      { vni: 44, dev: 'blue' }, { vni: 44, dev: 'green' },
      7,
    ],
    etcd: { endpoints: [], prefix: 'x', tls: { cert: 'c.pem' }, ttl: 1 },
  });
  const problems = problemsOf({ config: file });
  t.same(problems.map((p) => p.path), [
    'colour', 'vni', 'local', 'port', 'logLevel', 'etcd.ttl', 'etcd.endpoints', 'etcd.prefix', 'etcd.tls',
    'networks[0].shape', 'networks[0].mtu', 'networks[0].peers', 'networks[0].fdb',
    'networks[1].dev', 'networks[1].ageingS',
    'networks[3].vni', 'networks[4]',
  ]);
  t.match(problems, [
    { message: 'unknown key "colour"' }, { message: '"vni" is a network setting' }, { message: 'local must be an IPv4 or IPv6 address (got "192.0.2.300")' },
    { message: 'port must be an integer 1..65535 (got 0)' }, { message: 'log-level must be one of' },
    { message: 'etcd.ttl is not a setting' }, { message: 'etcd.endpoints must list at least one URL' }, { message: 'etcd.prefix must start with "/"' }, { message: 'etcd.tls.ca is required' },
    { message: 'networks[0] (vni 42): unknown key "shape"' }, { message: 'networks[0] (vni 42): mtu must be an integer 68..65481 (got 9)' },
    { message: 'networks[0] (vni 42): peer must be an IPv4 or IPv6 address (got "x")' }, { message: 'networks[0] (vni 42): fdb[0].mac must be a MAC address' },
    { message: 'networks[1] (vni 43): dev must be a Linux interface name' }, { message: 'networks[1] (vni 43): ageing must be an integer >= 0' },
    { message: 'networks[3] (vni 44): vni 44 is already used by networks[2]' }, { message: 'networks[4] must be a JSON object' },
  ]);
  t.notOk(problems.some((p) => p.message.includes('fd00::2')), 'with local itself invalid, no address is judged by its family');
  let caught: unknown;
  try {
    load({ config: file });
  } catch (err) {
    caught = err;
  }
  t.match(caught, { code: 'VXLAND_CONFIG_INVALID', message: problems.map((p) => p.message).join('; ') });
  t.same(JSON.parse(JSON.stringify(caught)), { code: 'VXLAND_CONFIG_INVALID', message: (caught as Error).message, problems }, 'its JSON has them all');

  t.same(problemsOf({ vni: 'x', mtu: '9', peer: ['y'], port: '0' }).map((p) => p.path), ['--port', '--vni', '--mtu', '--peer'], 'flags are named as flags');
  t.same(problemsOf({ config: writeConfig(t, { networks: [] }), vni: '1', mtu: '1400' }).map((p) => p.path), ['--vni', '--mtu'], 'each network flag refused with a host file');
  t.same(problemsOf({ vni: '1' }), [], 'a valid config has none');
  t.same(problemsOf({ vni: '1', etcd: ',' }).map((p) => p.path), ['--etcd', '--etcd'], '--etcd: no URL, and no --local');
  t.same(problemsOf({ config: writeConfig(t, { vni: 1, etcd: [] }) }).map((p) => p.path), ['etcd'], 'etcd that is no object');
});

t.test('a syntax error or a key given twice is one problem, with its line, column and key path', async (t) => {
  const syntax = problemsOf({ config: writeConfig(t, '{\n  "networks": [{"vni": 1,}]\n}') });
  t.match(syntax, [{ path: '', line: 2, column: 26, message: /is not valid JSON: unexpected "}", expected a key in double quotes at line 2, column 26$/ }]);
  const twice = problemsOf({ config: writeConfig(t, '{"networks": [{"vni": 1, "vni": 2}]}') });
  t.match(twice, [{ path: 'networks[0].vni', line: 1, column: 26, message: /duplicate key "networks\[0\]\.vni" at line 1, column 26$/ }]);
});

t.test('"$schema" is accepted at the top level and ignored', async (t) => {
  const c = load({ config: writeConfig(t, { $schema: 'https://example.org/vxland.schema.json', networks: [{ vni: 42 }] }) });
  t.same(c.networks.map((n) => n.vni), [42]);
  t.equal(one({ config: writeConfig(t, { $schema: '../schema/vxland.schema.json', vni: 7 }) }).vni, 7, 'in a single-network file too');
  refuses(t, { config: writeConfig(t, { networks: [{ vni: 42, $schema: 'x' }] }) }, 'networks[0] (vni 42): unknown key "$schema"');
  refuses(t, { config: writeConfig(t, { vni: 1, local: '192.0.2.1', etcd: { endpoints: ['http://a:1'], tls: { ca: 'ca.pem', pin: 'x' } } }) }, 'etcd.tls.pin is not a setting (etcd.tls has ca, cert, key)');
});

const SCHEMA = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'schema', 'vxland.schema.json'), 'utf8'));
const sorted = (keys: Iterable<string>): string[] => [...keys].sort();

t.test('the JSON Schema knows exactly the keys the validator accepts, with its choices and bounds', async (t) => {
  const defs = SCHEMA.$defs;
  const networkProps = defs.networkProperties.properties;
  t.same(sorted([...Object.keys(SCHEMA.properties), ...Object.keys(networkProps)]), sorted([...CONFIG_FILE_KEYS.host, ...CONFIG_FILE_KEYS.network]),
    'the top level: host keys, "networks", "$schema" and (single-network file) network keys');
  t.same(sorted(Object.keys(networkProps)), sorted(CONFIG_FILE_KEYS.network), 'a networks[] entry');
  t.same(sorted(Object.keys(SCHEMA.dependentSchemas.networks.properties)), sorted(CONFIG_FILE_KEYS.network), 'network keys are refused next to "networks"');
  t.same(sorted(Object.keys(defs.etcd.properties)), sorted(CONFIG_FILE_KEYS.etcd), 'etcd');
  t.same(sorted(Object.keys(defs.etcd.properties.tls.oneOf[1].properties)), sorted(CONFIG_FILE_KEYS.etcdTls), 'etcd.tls');
  t.same(sorted(Object.keys(defs.staticFdb.properties)), sorted(CONFIG_FILE_KEYS.staticFdb), 'an fdb[] entry');
  t.same([SCHEMA.unevaluatedProperties, defs.network.unevaluatedProperties, defs.etcd.additionalProperties, defs.staticFdb.additionalProperties], [false, false, false, false], 'no other keys anywhere');
  t.same(defs.network.required, ['vni']);
  t.same(SCHEMA.properties.datapath.enum, [...DATAPATH_CHOICES]);
  t.same(SCHEMA.properties.logLevel.enum, [...LOG_LEVELS]);
  t.same(SCHEMA.properties.df.enum, [...DF_CHOICES]);
  t.same([SCHEMA.properties.ttl.minimum, SCHEMA.properties.ttl.maximum, SCHEMA.properties.ttl.default], [1, 255, DEFAULT_TTL]);
  t.same([networkProps.mtu.minimum, networkProps.mtu.maximum, networkProps.vni.maximum, defs.etcd.properties.leaseTtlS.maximum], [MTU_MIN, MTU_MAX, VNI_MAX, ETCD_LEASE_TTL_MAX_S]);
  // And each key the schema names is one the validator reads: a bad value under it is refused by name.
  for (const key of Object.keys(networkProps)) {
    const problems = problemsOf({ config: writeConfig(t, { local: '192.0.2.1', networks: [{ vni: 42, [key]: { not: 'valid' } }] }) });
    t.match(problems, [{ path: `networks[0].${key}` }], `networks[0].${key} is read`);
  }
  for (const key of Object.keys(SCHEMA.properties).filter((k) => k !== '$schema' && k !== 'networks')) {
    const problems = problemsOf({ config: writeConfig(t, { local: '192.0.2.1', networks: [], [key]: { not: 'valid' } }) });
    t.match(problems, [{ path: key }], `${key} is read`);
  }
});

t.test('hostToFile writes a host file that loadConfig reads back to the same config', async (t) => {
  const file = writeConfig(t, { ...HOST_FILE, metrics: '[::1]:9470', etcd: { endpoints: ['https://10.0.0.1:2379'], tls: { ca: 'ca.pem' } } });
  const c = load({ config: file });
  const again = load({ config: writeConfig(t, hostToFile(c)) });
  t.same(again, c);
});

t.test('the MTU defaults from the underlay family and must fit the underlay', async (t) => {
  // 2001:db8::/32 is documentation space: on no interface of this host.
  t.equal(one({ vni: '1', local: '2001:db8::1' }).mtu, 1430, 'over IPv6: 1500 - 70');
  t.equal(one({ vni: '1' }).mtu, 1450, 'over IPv4: 1500 - 50');
  t.equal(one({ vni: '1', local: '2001:db8::1', mtu: '1430' }).mtu, 1430);
  refuses(t, { vni: '1', local: '2001:db8::1', mtu: '1450' },
    'mtu 1450 does not fit the underlay: at most 1430 (a 1500-byte underlay (local is on no interface of this host) less 70 bytes of IPv6 VXLAN headers)');
  // ::1 and 127.0.0.1 are on lo, whose MTU is the limit.
  const lo = Number(fs.readFileSync('/sys/class/net/lo/mtu', 'utf8'));
  t.equal(one({ vni: '1', local: '::1', mtu: '1450' }).mtu, 1450, 'the device holding local decides, not the assumption');
  if (lo - 70 < 65481) {
    refuses(t, { vni: '1', local: '::1', mtu: String(lo - 69) }, `mtu ${lo - 69} does not fit the underlay: at most ${lo - 70} (lo (which holds local) has MTU ${lo}, less 70 bytes of IPv6 VXLAN headers)`);
  }
  t.equal(one({ vni: '1', mtu: '9000' }).mtu, 9000, 'IPv4 without local: any interface may carry it, doctor checks the routes');
  t.throws(() => networkFromFlags({ vni: '5', mtu: '1450' }, 'udp6', '2001:db8::1'), { code: 'VXLAND_CONFIG_INVALID', message: /mtu 1450 does not fit the underlay: at most 1430/ },
    'network add is held to the same limit');
  t.equal(networkFromFlags({ vni: '5' }, 'udp6', '2001:db8::1').mtu, 1430, 'and defaults the same way');
});
