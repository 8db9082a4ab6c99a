// The `vxland` command: `run` starts the daemon, `config check` judges a
// config file; every other command is a client of a running daemon's control
// socket. Like iproute2: -j/--json (before or after the command) prints the
// result as compact JSON on stdout, -p/--pretty indents it; every command
// group has a default (`vxland fdb` is `vxland fdb show`). Errors go to
// stderr: one line "vxland: <message>" (one per problem for an invalid
// config), or under -j one JSON object {code, message} with the stable code
// of src/errors.ts. The exit codes are the same for every command (EXIT_*).

import type { MembershipStatus } from './ports/membership.js';
import path from 'node:path';
import { Command, CommanderError } from 'commander';
import {
  ConfigInvalidError, DATAPATH_CHOICES, DEFAULT_CONFIG_FILE, DEFAULT_DEV, DEFAULT_MTU, DEFAULT_MTU_IPV6, DEFAULT_SOCKET, DEFAULT_TOS, DEFAULT_TTL, DF_CHOICES, LOG_LEVELS,
  MTU_MAX, MTU_MIN, VXLAN_IANA_PORT, loadConfig, networkLabel, type ConfigFlags, type ConfigProblem,
} from './config/config.js';
import { ifnameProblem, normalizeIp, parseDecimal, VNI_MAX } from './config/validate.js';
import { request, stream } from './control/client.js';
import {
  FDB_TYPES,
  RUNTIME_LOG_LEVELS,
  type ConfigShowResult,
  type FdbGetResult,
  type FdbShowResult,
  type NeighChangeResult,
  type NeighShowResult,
  type LogLevelResult,
  type MonitorEvent,
  type NetworkChangeResult,
  type NetworkListResult,
  type NetworkSelector,
  type NetworkShowResult,
  type NetworkStatus,
  type PeerChangeResult,
  type PeerListResult,
  type ReloadResult,
  type StatsResult,
  type StatusResult,
} from './control/protocol.js';
import type { DoctorReport } from './doctor.js';
import { VxlandError, isVxlandError, type ErrorCode } from './errors.js';
import { FLOOD_MAC, parseMac, type FdbEntry } from './fdb/fdb.js';
import { isJournalStream, SYSLOG_PRIORITY } from './util/journal.js';
import { LOG_FORMATS, type LogFormat } from './util/log-format.js';
import { packageVersion } from './util/version.js';

/** The command failed, or the daemon refused it; `doctor`: problems found. */
export const EXIT_FAILED = 1;
/** Bad usage or invalid input (a malformed argument, an invalid config):
 *  nothing was sent to a daemon, nothing was started. */
export const EXIT_USAGE_ERROR = 2;
/** No daemon listens on the control socket. */
export const EXIT_NO_DAEMON = 3;

const USAGE_ERROR_CODES: readonly ErrorCode[] = ['VXLAND_BAD_ARGUMENT', 'VXLAND_CONFIG_INVALID'];

export function exitCodeFor(err: unknown): number {
  if (!isVxlandError(err)) return EXIT_FAILED;
  if (err.code === 'VXLAND_NO_DAEMON') return EXIT_NO_DAEMON;
  return USAGE_ERROR_CODES.includes(err.code) ? EXIT_USAGE_ERROR : EXIT_FAILED;
}

/** The program's options, which every command sees (optsWithGlobals). */
interface OutputOptions {
  json?: boolean;
  pretty?: boolean;
}

interface ClientOptions extends OutputOptions {
  socket?: string;
  /** The network selector (and, for `network add`, the new network's). */
  vni?: string;
  dev?: string;
}

export function buildProgram(): Command {
  const program = new Command('vxland')
    .description('user-space VXLAN tunnel endpoint')
    .version(packageVersion(), '-V, --version')
    .option('-j, --json', 'print results as JSON, and errors as JSON {code, message} (before or after the command)')
    .option('-p, --pretty', 'with --json: indent the JSON')
    .showSuggestionAfterError(false)
    .exitOverride()
    .configureOutput({
      // Commander's usage errors ("error: unknown option ...") are printed by
      // main() like every other error, as a line or as JSON.
      outputError: () => undefined,
    });

  program
    .command('run')
    .description('run the VXLAN daemon in the foreground (needs CAP_NET_ADMIN, and CAP_NET_RAW to announce its addresses)')
    .option('--config <file>', `JSON config file (default ${DEFAULT_CONFIG_FILE} when it exists); flags override its settings`)
    .option('--dev <name>', `TAP device name (default ${DEFAULT_DEV}); this and the other network flags describe one network, and are refused with a file that lists "networks"`)
    .option('--vni <n>', 'VXLAN network identifier 0..16777215 (required without a config file)')
    .option('--local <ip>', 'local IPv4/IPv6 address to bind and send from; its family picks IPv4 or IPv6 (default: IPv4, any address)')
    .option('--port <n>', `VXLAN UDP port (default ${VXLAN_IANA_PORT}; use 8472 to talk to old Linux kernels)`)
    .option('--srcport <min-max>', 'outer UDP source ports, one per flow from this range (RFC 7348 §5: ECMP and NIC queues spread flows by it; default the ephemeral range, ip_local_port_range)')
    .option('--mtu <n>', `TAP device MTU ${MTU_MIN}..${MTU_MAX}, at most the underlay's less the headers (default ${DEFAULT_MTU}, ${DEFAULT_MTU_IPV6} over IPv6)`)
    .option('--address <cidr>', 'address to put on the TAP device, e.g. 10.0.0.1/24 (repeatable; replaces the file\'s list)', collect)
    .option('--peer <ip>', 'remote VTEP to flood to (repeatable; replaces the file\'s list)', collect)
    .option('--ageing <seconds>', 'forget a learned MAC after this long without a frame from it; 0 = never (default 300)')
    .option('--max-fdb <n>', 'most learned MACs kept (default 16384)')
    .option('--datapath <kind>', `data path: ${DATAPATH_CHOICES.join(', ')} (default auto)`)
    .option('--ttl <n>', `outer IP TTL / IPv6 hop limit 1..255 (default ${DEFAULT_TTL})`)
    .option('--tos <n|inherit>', `outer TOS / traffic class 0..255 or inherit (the inner packet's; native data path only); ECN per RFC 6040 on the native path (default ${DEFAULT_TOS})`)
    .option('--df <mode>', `outer IPv4 don't-fragment bit: ${DF_CHOICES.join(', ')} (default unset, as the kernel's vxlan)`)
    .option('--state-dir <dir>', 'where runtime peer/fdb changes are saved (default /var/lib/vxland)')
    .option('--socket <path>', `control socket (default ${DEFAULT_SOCKET})`)
    .option('--log-level <level>', `${LOG_LEVELS.join(', ')} (default info)`)
    .option('--metrics <host:port>', 'serve Prometheus metrics on this address, e.g. 127.0.0.1:9798 (default off)')
    .option('--accept <who>', 'who may send us VXLAN: peers (peers and static entries\' VTEPs), any, or CIDR[,CIDR...] (default peers)')
    .option('--allow-vlan', 'carry VLAN-tagged inner frames (dropped by default, RFC 7348 6.1)')
    .option('--max-fdb-per-vtep <n>', 'most learned MACs behind one VTEP (default 4096)')
    .option('--learn-rate <n>', 'new MACs learned per second per VTEP; 0 = no limit (default 500)')
    .option('--control-group <group>', 'group that may use the control socket besides root (default: root only)')
    .option('--etcd <urls>', 'join networks through etcd v3 at URL[,URL...], e.g. http://127.0.0.1:2379 (default: no etcd; needs --local)')
    .option('--mac <mac>', 'MAC address of the TAP device, unicast (default: the one saved in the state dir, else a random one saved there)')
    .option('--bridge <name>', 'existing Linux bridge to put the TAP device into (default: none)')
    .option('--log-format <format>', `log lines as ${LOG_FORMATS.join(' or ')} (default pretty on a terminal, json otherwise; under journald each line carries its priority)`)
    .action(async (allFlags: ConfigFlags & { logFormat?: string }) => {
      const { logFormat, ...flags } = allFlags;
      if (logFormat !== undefined && !(LOG_FORMATS as readonly string[]).includes(logFormat)) {
        throw usage(`--log-format must be one of ${LOG_FORMATS.join(', ')} (got "${logFormat}")`);
      }
      const config = loadConfig(flags, process.env);
      // Loaded here so that client commands do not pay for the data path.
      const { runDaemon } = await import('./daemon.js');
      try {
        await runDaemon(config, () => loadConfig(flags, process.env), { logFormat: logFormat as LogFormat | undefined });
      } catch (err) {
        // runDaemon has undone its startup; should anything still hold the
        // event loop, a failed start must exit all the same (systemd then
        // sees the failure instead of a daemon without a socket).
        setTimeout(() => process.exit(exitCodeFor(err)), STARTUP_FAILURE_EXIT_MS).unref();
        throw err;
      }
    });

  const peer = program.command('peer').description('manage the flood list (remote VTEPs); without a command: list');
  clientCommand(peer, 'add <ip>', 'add a remote VTEP', async (opts, ip) => {
    const result = (await request(socketOf(opts), 'peer.add', { ...selectorOf(opts), ip: requireIp(ip) })) as PeerChangeResult;
    print(opts, result, () => (result.changed ? `added peer ${result.ip}` : `${result.ip} is already a peer`));
  });
  clientCommand(peer, 'del <ip>', 'remove a remote VTEP', async (opts, ip) => {
    const result = (await request(socketOf(opts), 'peer.del', { ...selectorOf(opts), ip: requireIp(ip) })) as PeerChangeResult;
    print(opts, result, () => `removed peer ${result.ip}`);
  });
  clientCommand(peer, 'list', 'list remote VTEPs', async (opts) => {
    const result = (await request(socketOf(opts), 'peer.list', selectorOf(opts))) as PeerListResult;
    print(opts, result, () => (result.length === 0 ? 'no peers' : formatTable(['PEER', 'KIND'], result.map((p) => [p.ip, p.kind]))));
  }, { isDefault: true });

  const fdb = program.command('fdb').description('show and edit the forwarding database; without a command: show');
  clientCommand(fdb, 'show', 'list FDB entries (peers appear as 00:00:00:00:00:00); --mac, --vtep, --type: only those', async (opts) => {
    const result = (await request(socketOf(opts), 'fdb.show', { ...selectorOf(opts), ...fdbFilterOf(opts) })) as FdbShowResult;
    print(opts, result, () => formatFdb(result));
  }, {
    isDefault: true,
    options: (cmd) => cmd
      .option('--mac <mac>', 'only the entry of this MAC (00:00:00:00:00:00: the peers)')
      .option('--vtep <ip>', 'only entries towards this VTEP')
      .option('--type <type>', `only entries of this type: ${FDB_TYPES.join(', ')}`),
  });
  clientCommand(fdb, 'get <mac>', 'show the entry of one MAC (exit 1, VXLAND_NOT_FOUND, when there is none)', async (opts, mac) => {
    const result = (await request(socketOf(opts), 'fdb.get', { ...selectorOf(opts), mac: requireUnicastMac(mac) })) as FdbGetResult;
    print(opts, result, () => formatFdb([result]));
  });
  clientCommand(fdb, 'add <mac> <ip>', 'pin a MAC address to a remote VTEP (static entry)', async (opts, mac, ip) => {
    const params = { mac: requireUnicastMac(mac), ip: requireIp(ip) };
    const result = await request(socketOf(opts), 'fdb.add', { ...selectorOf(opts), ...params });
    print(opts, result, () => `added ${params.mac} dst ${params.ip}`);
  });
  clientCommand(fdb, 'del <mac>', 'remove a static or learned entry', async (opts, mac) => {
    const params = { mac: requireMac(mac) };
    const result = await request(socketOf(opts), 'fdb.del', { ...selectorOf(opts), ...params });
    print(opts, result, () => `removed ${params.mac}`);
  });
  clientCommand(
    fdb,
    'flush',
    'remove learned and static entries (peers stay)',
    async (opts) => {
      const learned = (opts as ClientOptions & { learned?: boolean }).learned === true;
      const result = (await request(socketOf(opts), 'fdb.flush', { ...selectorOf(opts), learned })) as { removed: number };
      print(opts, result, () => `removed ${plural(result.removed, learned ? 'learned entry' : 'entry', learned ? 'learned entries' : 'entries')}`);
    },
    { options: (cmd) => cmd.option('--learned', 'remove learned entries only') },
  );

  const neigh = program.command('neigh').description('the neighbour table ARP/ND suppression answers from; without a command: show');
  clientCommand(neigh, 'show', 'list neighbours (every network unless --vni/--dev says which)', async (opts) => {
    const result = (await request(socketOf(opts), 'neigh.show', selectorOf(opts))) as NeighShowResult;
    print(opts, result, () => formatNeighbours(result));
  }, { isDefault: true });
  clientCommand(neigh, 'add <ip> <mac>', 'answer ARP/ND for ip with mac (static entry, saved)', async (opts, ip, mac) => {
    const params = { ip: requireIp(ip), mac: requireUnicastMac(mac) };
    const result = (await request(socketOf(opts), 'neigh.add', { ...selectorOf(opts), ...params })) as NeighChangeResult;
    print(opts, result, () => `added neighbour ${result.ip} lladdr ${result.mac} (vni ${result.vni})`);
  });
  clientCommand(neigh, 'del <ip>', 'remove a static neighbour', async (opts, ip) => {
    const result = (await request(socketOf(opts), 'neigh.del', { ...selectorOf(opts), ip: requireIp(ip) })) as NeighChangeResult;
    print(opts, result, () => `removed neighbour ${result.ip} (vni ${result.vni})`);
  });

  const network = program.command('network').description('list, show, add and delete the networks (VNIs) the daemon serves; without a command: list');
  clientCommand(network, 'list', 'list the networks', async (opts) => {
    const result = (await request(socketOf(opts), 'network.list')) as NetworkListResult;
    print(opts, result, () => result.length === 0 ? 'no networks' : formatTable(
      ['VNI', 'DEV', 'MAC', 'MTU', 'PEERS', 'BRIDGE', 'ORIGIN'],
      result.map((n) => [String(n.vni), n.dev, n.mac, String(n.mtu), String(n.peers), n.bridge ?? '-', n.origin]),
    ));
  }, { isDefault: true });
  clientCommand(network, 'show', 'show one network: its status and settings', async (opts) => {
    const result = (await request(socketOf(opts), 'network.show', selectorOf(opts))) as NetworkShowResult;
    print(opts, result, () => formatNetworkShow(result));
  });
  clientCommand(
    network,
    'add',
    'serve another network from now on (saved: it comes back after a restart); --vni is required',
    async (opts) => {
      const result = (await request(socketOf(opts), 'network.add', { network: networkFlagsOf(opts) }, NETWORK_CHANGE_TIMEOUT_MS)) as NetworkChangeResult;
      print(opts, result, () => `added network vni ${result.vni} (${result.dev})`);
    },
    { options: (cmd) => cmd
      .option('--mtu <n>', `TAP MTU ${MTU_MIN}..${MTU_MAX} (default ${DEFAULT_MTU}, ${DEFAULT_MTU_IPV6} over IPv6)`)
      .option('--address <cidr>', 'address for the TAP device (repeatable)', collect)
      .option('--peer <ip>', 'remote VTEP to flood to (repeatable)', collect)
      .option('--bridge <name>', 'existing Linux bridge to put the TAP device into')
      .option('--mac <mac>', 'MAC address of the TAP device (default: saved, else random)')
      .option('--accept <who>', 'who may send us VXLAN: peers, any, or CIDR[,CIDR...] (default peers)')
      .option('--ageing <seconds>', 'forget a learned MAC after this long; 0 = never (default 300)')
      .option('--max-fdb <n>', 'most learned MACs kept (default 16384)')
      .option('--max-fdb-per-vtep <n>', 'most learned MACs behind one VTEP (default 4096)')
      .option('--learn-rate <n>', 'new MACs learned per second per VTEP; 0 = no limit (default 500)')
      .option('--allow-vlan', 'carry VLAN-tagged inner frames') },
  );
  clientCommand(network, 'del', 'stop serving a network added with "network add" (--vni or --dev required)', async (opts) => {
    const selector = selectorOf(opts);
    if (selector.vni === undefined && selector.dev === undefined) throw usage('say which network to delete: --vni N or --dev NAME');
    const result = (await request(socketOf(opts), 'network.del', { ...selector }, NETWORK_CHANGE_TIMEOUT_MS)) as NetworkChangeResult;
    print(opts, result, () => `removed network vni ${result.vni} (${result.dev})`);
  });

  clientCommand(program, 'status', 'show the daemon\'s settings, then each network\'s counters and FDB size (--vni/--dev: that network only)', async (opts) => {
    const result = (await request(socketOf(opts), 'status', selectorOf(opts))) as StatusResult;
    print(opts, result, () => formatStatus(result));
  });

  clientCommand(program, 'stats', 'counters per VTEP and drops by reason', async (opts) => {
    const result = (await request(socketOf(opts), 'stats', selectorOf(opts))) as StatsResult;
    print(opts, result, () => formatStats(result));
  });

  clientCommand(program, 'monitor', 'print FDB and peer changes as they happen (like bridge monitor fdb)', async (opts) => {
    const stop = new AbortController();
    process.once('SIGINT', () => stop.abort());
    process.once('SIGTERM', () => stop.abort());
    await stream(socketOf(opts), 'monitor', (event) => {
      const e = event as MonitorEvent;
      // One event per line, also with --pretty: a stream is read line by line.
      process.stdout.write(opts.json ? `${JSON.stringify(e)}\n` : `${formatMonitorEvent(e)}\n`);
    }, stop.signal, selectorOf(opts));
  });

  clientCommand(program, 'log-level [level]', `show or set the daemon's log level (${RUNTIME_LOG_LEVELS.join(', ')})`, async (opts, level) => {
    if (level !== undefined && !(RUNTIME_LOG_LEVELS as readonly string[]).includes(level)) {
      throw usage(`log level must be one of ${RUNTIME_LOG_LEVELS.join(', ')} (got "${level}")`);
    }
    const result = (await request(socketOf(opts), 'log.level', level === undefined ? {} : { level })) as LogLevelResult;
    print(opts, result, () => (result.level === result.previous ? `log level: ${result.level}` : `log level: ${result.level} (was ${result.previous})`));
  });

  clientCommand(program, 'doctor', `check for MTU, VNI, peer, drop and checksum problems and say how to fix them (exit ${EXIT_FAILED} if any, ${EXIT_NO_DAEMON} without a daemon; --vni/--dev: the host and that network)`, async (opts) => {
    const result = (await request(socketOf(opts), 'doctor', selectorOf(opts), DOCTOR_TIMEOUT_MS)) as DoctorReport;
    print(opts, result, () => formatDoctor(result));
    if (!result.ok) process.exitCode = EXIT_FAILED;
  });

  const config = program.command('config').description('check a config file, or show the running configuration');
  config
    .command('check <file>')
    .description(`check a config file without starting anything: exit 0 when it is valid, ${EXIT_USAGE_ERROR} with every problem when it is not`)
    .action((file: string, _opts: unknown, cmd: Command) => {
      const checked = loadConfig({ config: file }, {}, '');
      const networks = checked.networks.map((n) => ({ vni: n.vni, dev: n.dev }));
      print(cmd.optsWithGlobals<OutputOptions>(), { file, valid: true, networks }, () =>
        `${file}: valid, ${plural(networks.length, 'network', 'networks')}${networks.length === 0 ? '' : ` (${networks.map(networkLabel).join(', ')})`}`);
    });
  clientCommand(config, 'show', 'print the running configuration (the file\'s settings with the changes made at run time) as a config file', async (opts) => {
    const result = (await request(socketOf(opts), 'config.show')) as ConfigShowResult;
    // Its human form is the file itself, indented as people write one.
    print(opts, result, () => JSON.stringify(result, null, 2));
  });

  clientCommand(program, 'reload', 're-read the config file and apply the difference, as SIGHUP does, and say what changed (exit 2: the file was rejected and nothing changed; 1: a network could not be changed)', async (opts) => {
    const result = (await request(socketOf(opts), 'reload', {}, RELOAD_TIMEOUT_MS)) as ReloadResult;
    print(opts, result, () => formatReload(result));
    for (const f of result.failed) process.stderr.write(`vxland: network vni ${f.vni} could not be changed and runs as it was: ${f.error}\n`);
    if (result.failed.length > 0) process.exitCode = EXIT_FAILED;
  });

  return program;
}

/** A reload may open several TAPs (and, native, hand each to the engine). */
const RELOAD_TIMEOUT_MS = 60_000;

function formatReload(r: ReloadResult): string {
  const vnis = (list: number[]): string => list.map((vni) => `vni ${vni}`).join(', ');
  const changes = [
    ...(r.addedNetworks.length === 0 ? [] : [`added ${vnis(r.addedNetworks)}`]),
    ...(r.removedNetworks.length === 0 ? [] : [`removed ${vnis(r.removedNetworks)}`]),
    ...(r.changedNetworks.length === 0 ? [] : [`changed ${vnis(r.changedNetworks)}`]),
    ...(r.logLevel === null ? [] : [`log level ${r.logLevel}`]),
  ];
  const lines = [changes.length === 0 ? 'reloaded: nothing to change' : `reloaded: ${changes.join('; ')}`];
  if (r.needRestart.length > 0) lines.push(`apply only after a restart: ${r.needRestart.join(', ')}`);
  return lines.join('\n');
}

/** How long a daemon whose start failed may take to exit by itself. */
const STARTUP_FAILURE_EXIT_MS = 1_000;
/** doctor looks up routes and reads /sys, which may take longer than a plain request. */
const DOCTOR_TIMEOUT_MS = 15_000;
/** Opening or closing a TAP (and, native, the engine's hand-over) takes longer than a plain request. */
const NETWORK_CHANGE_TIMEOUT_MS = 15_000;

/** The flags of `network add` as the daemon validates them (NetworkFlags). */
function networkFlagsOf(opts: ClientOptions): Record<string, unknown> {
  const { socket: _socket, json: _json, pretty: _pretty, ...flags } = opts as ClientOptions & Record<string, unknown>;
  return Object.fromEntries(Object.entries(flags).filter(([, value]) => value !== undefined));
}

function formatStats(r: StatsResult): string {
  const vteps = formatTable(
    ['VTEP', 'RX PACKETS', 'RX BYTES', 'TX PACKETS', 'TX BYTES', 'DROPS', 'LAST RX'],
    r.vteps.map((v) => [
      v.vtep, String(v.rxPackets), String(v.rxBytes), String(v.txPackets), String(v.txBytes), String(v.drops),
      v.lastRxMs === 0 ? 'never' : `${seconds(Date.now() - v.lastRxMs)} ago`,
    ]),
  );
  const drops = Object.entries(r.stats.drops);
  const dropTable = drops.length === 0 ? 'no drops' : formatTable(['DROP REASON', 'COUNT'], drops.map(([reason, n]) => [reason, String(n)]));
  return `${vteps}\n\n${dropTable}`;
}

function formatMonitorEvent(e: MonitorEvent): string {
  const moved = e.previousVtep === undefined ? '' : ` (was ${e.previousVtep})`;
  return `${e.time} ${e.type} ${e.mac} dst ${e.vtep}${moved} vni ${e.vni} ${e.kind}`;
}

function formatDoctor(r: DoctorReport): string {
  const head = r.srcport === undefined ? '' : `outer source ports ${r.srcport}\n`;
  if (r.ok) return `${head}no problems found (checked: ${r.checks.join(', ')})`;
  const networks = new Set(r.findings.map((f) => f.vni).filter((vni) => vni !== undefined));
  const where = (vni: number | undefined): string => (networks.size > 1 && vni !== undefined ? ` (vni ${vni})` : '');
  const lines = r.findings.map((f) => `✖ ${f.check}${where(f.vni)}: ${f.problem}\n  fix: ${f.fix}`);
  return `${head}${lines.join('\n')}\n${plural(r.findings.length, 'problem', 'problems')} found`;
}

interface ClientCommandOptions {
  /** The command's own options besides --socket, --vni and --dev. */
  options?: (cmd: Command) => Command;
  /** What the group does when no command is named (`vxland fdb`: show). */
  isDefault?: boolean;
}

/** A command that talks to the daemon. run gets the command's options merged
 *  with the program's (-j, -p), so output and errors follow them alike for
 *  every command. */
function clientCommand(
  parent: Command,
  nameAndArgs: string,
  description: string,
  run: (opts: ClientOptions, ...args: string[]) => Promise<void>,
  o: ClientCommandOptions = {},
): void {
  const cmd = parent
    .command(nameAndArgs, { isDefault: o.isDefault === true })
    .description(description)
    .option('--socket <path>', `control socket (default ${DEFAULT_SOCKET})`)
    .option('--vni <n>', 'the network, by VNI (needed only when the daemon serves several)')
    .option('--dev <name>', 'the network, by TAP device name');
  (o.options ?? ((c) => c))(cmd).action(async (...actionArgs: unknown[]) => {
    // commander passes the positional arguments, then the options, then the command.
    const positional = actionArgs.slice(0, -2) as string[];
    const command = actionArgs[actionArgs.length - 1] as Command;
    await run(command.optsWithGlobals<ClientOptions>(), ...positional);
  });
}

/** fdb show's --mac, --vtep and --type as the request's filter; checked here
 *  so that a malformed one is a usage error and nothing is sent. */
function fdbFilterOf(opts: ClientOptions & { mac?: string; vtep?: string; type?: string }): Record<string, string> {
  const filter: Record<string, string> = {};
  if (opts.mac !== undefined) filter.mac = requireMac(opts.mac);
  if (opts.vtep !== undefined) filter.vtep = requireIp(opts.vtep);
  if (opts.type !== undefined) {
    if (!(FDB_TYPES as readonly string[]).includes(opts.type)) throw usage(`--type must be one of ${FDB_TYPES.join(', ')} (got "${opts.type}")`);
    filter.type = opts.type;
  }
  return filter;
}

function formatFdb(entries: readonly FdbEntry[]): string {
  return formatTable(
    ['MAC', 'DST', 'VNI', 'TYPE', 'UPDATED', 'USED'],
    entries.map((e) => [e.mac, e.vtep, String(e.vni), e.kind, seconds(e.updatedAgoMs), seconds(e.usedAgoMs)]),
  );
}

function socketOf(opts: ClientOptions): string {
  return opts.socket !== undefined ? path.resolve(opts.socket) : DEFAULT_SOCKET;
}

/** --vni and --dev as the request's network selector; checked here so that
 *  a malformed one is a usage error and nothing is sent. */
function selectorOf(opts: ClientOptions): NetworkSelector & Record<string, unknown> {
  const selector: NetworkSelector & Record<string, unknown> = {};
  if (opts.vni !== undefined) {
    const vni = parseDecimal(opts.vni);
    if (vni === null || vni > VNI_MAX) throw usage(`--vni must be an integer 0..${VNI_MAX} (got "${opts.vni}")`);
    selector.vni = vni;
  }
  if (opts.dev !== undefined) {
    const problem = ifnameProblem(opts.dev);
    if (problem !== null) throw usage(`--dev must be a Linux interface name: "${opts.dev}" ${problem}`);
    selector.dev = opts.dev;
  }
  return selector;
}

function usage(message: string): VxlandError {
  return new VxlandError('VXLAND_BAD_ARGUMENT', message);
}

function requireIp(text: string): string {
  const ip = normalizeIp(text);
  if (ip === null) throw usage(`invalid IP address "${text}"`);
  return ip;
}

function requireMac(text: string): string {
  const mac = parseMac(text);
  if (mac === null) throw usage(`invalid MAC address "${text}" (expected six hex pairs like 02:00:00:00:00:01)`);
  return mac;
}

function requireUnicastMac(text: string): string {
  const mac = requireMac(text);
  if (mac === FLOOD_MAC) throw usage(`${FLOOD_MAC} is the flood address; use "vxland peer add IP" instead`);
  return mac;
}

/** The result on stdout: as JSON with -j (compact; indented with -p), else its human form. */
function print(opts: OutputOptions, result: unknown, human: () => string): void {
  process.stdout.write(opts.json ? `${JSON.stringify(result, null, opts.pretty ? 2 : undefined)}\n` : `${human()}\n`);
}

function seconds(ms: number): string {
  return `${Math.floor(ms / 1000)}s`;
}

/** Left-aligned columns separated by two spaces, header first. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => row[i].length)));
  return [header, ...rows]
    .map((row) => row.map((cell, i) => cell.padEnd(widths[i])).join('  ').trimEnd())
    .join('\n');
}

function formatStatus(s: StatusResult): string {
  const hostDrops = Object.entries(s.host.drops);
  const host = labelled([
    ['pid', String(s.pid)],
    ['uptime', formatDuration(s.uptimeS)],
    ['datapath', s.offloads.length === 0 ? s.datapath : `${s.datapath} (${s.offloads.join(', ')})`],
    ...(s.envelope === undefined ? [] : [['envelope', s.envelope] as [string, string]]),
    ['local', s.local === null ? 'any' : s.local],
    ['port', String(s.port)],
    ...(s.srcport === undefined ? [] : [['srcport', formatSrcport(s.srcport)] as [string, string]]),
    ['networks', String(s.networks.length)],
    ...(s.etcd === null || s.etcd === undefined ? [] : [['etcd', formatEtcd(s.etcd)] as [string, string]]),
    ['host drops', hostDrops.length === 0 ? 'none' : hostDrops.map(([reason, count]) => `${reason} ${count}`).join(', ')],
  ], '');
  return [host, ...s.networks.map((n) => `\nnetwork vni ${n.vni} (${n.dev}):\n${formatNetwork(n)}`)].join('\n');
}

/** "40000-40999 (16 ports)": the range and how many source ports are bound in it. */
function formatSrcport(r: NonNullable<StatusResult['srcport']>): string {
  return `${r.min}-${r.max} (${plural(r.ports.length, 'port', 'ports')})`;
}

/** "connected, revision 12, lease 14 s left, 3 remote VTEPs (http://…)". */
export function formatEtcd(e: MembershipStatus): string {
  const lease = e.leaseTtlLeftMs === null ? 'no lease' : `lease ${Math.ceil(e.leaseTtlLeftMs / 1000)} s left`;
  const revision = e.revision === null ? 'not listed yet' : `revision ${e.revision}`;
  const why = e.connected || e.lastError === null || e.lastError === undefined ? '' : ` (${e.lastError})`;
  return `${e.connected ? 'connected' : 'disconnected'}${why}, ${revision}, ${lease}, ${plural(e.remoteVteps, 'remote VTEP', 'remote VTEPs')} (${e.endpoints.join(', ')})`;
}

function formatNetwork(n: NetworkStatus): string {
  const drops = Object.entries(n.stats.drops);
  return labelled([
    ['device', `${n.dev} (${n.mac})`],
    ['vni', String(n.vni)],
    ['mtu', String(n.mtu)],
    ['addresses', n.addresses.length === 0 ? 'none' : n.addresses.join(', ')],
    ['bridge', n.bridge ?? 'none'],
    ['origin', n.origin === 'config' ? 'config file' : 'added at run time'],
    ['fdb', `${plural(n.fdb.size, 'entry', 'entries')} (${n.fdb.learned} learned), ${plural(n.fdb.peers, 'peer', 'peers')}`],
    ['rx', `${n.stats.rxPackets} packets, ${n.stats.rxBytes} bytes`],
    ['tx', `${n.stats.txPackets} packets, ${n.stats.txBytes} bytes`],
    ['drops', drops.length === 0 ? 'none' : drops.map(([reason, count]) => `${reason} ${count}`).join(', ')],
    ['accept', n.accept],
    ...(n.suppress === undefined ? [] : [['suppress', formatSuppress(n)] as [string, string]]),
    ['learn refused', `${n.stats.learnRefused.fdbFull} fdb full, ${n.stats.learnRefused.vtepFull} vtep full, ${n.stats.learnRefused.rate} rate`],
  ], '  ');
}

/** The table, then which networks do not suppress (their entries are kept but not used). */
function formatNeighbours(r: NeighShowResult): string {
  const table = r.entries.length === 0
    ? 'no neighbours'
    : formatTable(['IP', 'MAC', 'VNI', 'DEV', 'OWNER'], r.entries.map((e) => [e.ip, e.mac, String(e.vni), e.dev, e.owner === 'etcd' ? `etcd (${e.vtep})` : 'static']));
  const off = r.networks.filter((n) => !n.suppress);
  return off.length === 0 ? table : `${table}\nsuppression off: ${off.map((n) => `vni ${n.vni} (${n.dev})`).join(', ')}`;
}

/** "on, 3 neighbours, answered 5 arp, 1 nd". */
function formatSuppress(n: NetworkStatus): string {
  const events = n.stats.events ?? {};
  const answered = `answered ${events.arp_suppressed ?? 0} arp, ${events.nd_suppressed ?? 0} nd`;
  return `${n.suppress!.on ? 'on' : 'off'}, ${plural(n.suppress!.neighbours, 'neighbour', 'neighbours')}, ${answered}`;
}

function formatNetworkShow(r: NetworkShowResult): string {
  const settings = r.settings as { peers: string[]; fdb: Array<{ mac: string; vtep: string }>; ageingS: number; maxFdb: number; maxFdbPerVtep: number; learnRatePerS: number; allowVlan: boolean };
  return `network vni ${r.vni} (${r.dev}):\n${formatNetwork(r)}\n${labelled([
    ['peers', settings.peers.length === 0 ? 'none' : settings.peers.join(', ')],
    ['static', settings.fdb.length === 0 ? 'none' : settings.fdb.map((e) => `${e.mac} dst ${e.vtep}`).join(', ')],
    ['limits', `ageing ${settings.ageingS} s, max-fdb ${settings.maxFdb}, max-fdb-per-vtep ${settings.maxFdbPerVtep}, learn-rate ${settings.learnRatePerS}/s`],
    ['allow vlan', settings.allowVlan ? 'yes' : 'no'],
  ], '  ')}`;
}

/** "label:  value" lines, the values aligned. */
function labelled(lines: ReadonlyArray<[string, string]>, indent: string): string {
  const width = Math.max(...lines.map(([label]) => label.length));
  return lines.map(([label, value]) => `${indent}${`${label}:`.padEnd(width + 2)}${value}`).join('\n');
}

function plural(count: number, one: string, many: string): string {
  return `${count} ${count === 1 ? one : many}`;
}

function formatDuration(totalS: number): string {
  const d = Math.floor(totalS / 86_400);
  const h = Math.floor((totalS % 86_400) / 3_600);
  const m = Math.floor((totalS % 3_600) / 60);
  const s = totalS % 60;
  return [d ? `${d}d` : '', d || h ? `${h}h` : '', d || h || m ? `${m}m` : '', `${s}s`].filter(Boolean).join(' ');
}

function collect(value: string, previous: string[] | undefined): string[] {
  return previous === undefined ? [value] : [...previous, value];
}

/** Whether the command line asks for JSON: -j, --json, or a j among
 *  combined short flags (-jp), before any "--". Errors are printed by it, as
 *  they may come before commander has parsed anything. */
export function wantsJson(args: readonly string[]): boolean {
  for (const arg of args) {
    if (arg === '--') return false;
    if (arg === '--json' || /^-[a-zA-Z]*j[a-zA-Z]*$/.test(arg)) return true;
  }
  return false;
}

/** The error on stderr: JSON {code, message} (and an invalid config's
 *  problems) with -j; else one line "vxland: ...", one per problem. */
function printError(err: unknown, json: boolean): void {
  const vxlandError = isVxlandError(err)
    ? err
    : new VxlandError('VXLAND_INTERNAL', `internal error: ${err instanceof Error ? err.message : String(err)}`);
  if (json) return void process.stderr.write(`${JSON.stringify(vxlandError)}\n`);
  const lines = err instanceof ConfigInvalidError ? err.problems.map(problemLine) : [vxlandError.message];
  // Under journald (a unit's stderr) each line is logged as an error, not as info.
  const priority = isJournalStream(2) ? `<${SYSLOG_PRIORITY.err}>` : '';
  for (const line of lines) process.stderr.write(`${priority}vxland: ${line.split('\n')[0]}\n`);
}

/** A config problem as a line: its message, and where in the file it is
 *  unless the message says so already (a syntax error does). */
function problemLine(p: ConfigProblem): string {
  return p.line === undefined || / at line \d+, column \d+$/.test(p.message) ? p.message : `${p.message} (line ${p.line}, column ${p.column})`;
}

export async function main(argv: readonly string[]): Promise<void> {
  const json = wantsJson(argv.slice(2));
  try {
    await buildProgram().parseAsync([...argv], { from: 'node' });
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and --version exit 0, and a group without a command prints its
      // help: commander has printed all of these already.
      if (err.exitCode === 0 || err.code === 'commander.help') {
        process.exitCode = err.exitCode === 0 ? 0 : EXIT_USAGE_ERROR;
        return;
      }
      printError(new VxlandError('VXLAND_BAD_ARGUMENT', err.message.replace(/^error: /, '')), json);
      process.exitCode = EXIT_USAGE_ERROR;
      return;
    }
    printError(err, json);
    process.exitCode = exitCodeFor(err);
  }
}

// Run directly (node dist/src/cli.js) or through bin/vxland, which calls main().
if (require.main === module) void main(process.argv);
