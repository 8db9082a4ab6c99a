import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { STATE_FORMAT_VERSION, StateStore, type PersistedState } from '../src/state/store.js';
import { VxlandError } from '../src/errors.js';
import { networkFromFlags } from '../src/config/config.js';
import { NETWORKS_FILE_NAME, NetworksStore } from '../src/state/networks-store.js';
import { fillFilesystem, mountTmpfs, tmpfsSkipReason, TMPFS_PAGE_BYTES } from './helpers/tmpfs.js';

const FIRST: PersistedState = { vni: 42, peers: ['192.0.2.2'], fdb: [{ mac: '02:00:00:00:00:01', vtep: '192.0.2.2' }] };
const SECOND: PersistedState = { vni: 42, peers: ['192.0.2.2', '192.0.2.3'], fdb: [] };

function setup(t: tap.Test): { dir: string; store: () => StateStore; warnings: string[] } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'vxland-state-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  const dir = path.join(root, 'lib', 'vxland');
  const warnings: string[] = [];
  const log = { warn: (_obj: object, msg: string) => void warnings.push(msg) };
  return { dir, warnings, store: () => new StateStore({ stateDir: dir, dev: 'vxl0', log }) };
}

function loadError(store: StateStore): VxlandError {
  try {
    store.load();
  } catch (err) {
    return err as VxlandError;
  }
  throw new Error('load() did not throw');
}

t.test('no file means empty state', async (t) => {
  const { store } = setup(t);
  t.equal(store().load(), null);
});

t.test('save creates the directory and writes a versioned file that reloads', async (t) => {
  const { dir, store } = setup(t);
  store().save(FIRST);
  const file = path.join(dir, 'vxl0.json');
  const onDisk = JSON.parse(fs.readFileSync(file, 'utf8'));
  t.same(onDisk, { version: STATE_FORMAT_VERSION, ...FIRST });
  t.same(store().load(), FIRST);
  t.same(fs.readdirSync(dir), ['vxl0.json'], 'no temp file or backup left after the first save');
});

t.test('static neighbours are saved and read back; a file without them reads as before; a bad one is corrupt', async (t) => {
  const { dir, store } = setup(t);
  const withNeigh: PersistedState = { ...FIRST, neigh: [{ ip: '10.42.0.2', mac: '02:00:00:00:00:02' }, { ip: 'fd00::2', mac: '02:00:00:00:00:02' }] };
  store().save(withNeigh);
  t.same(store().load(), withNeigh);
  store().save(FIRST);
  t.notOk('neigh' in JSON.parse(fs.readFileSync(path.join(dir, 'vxl0.json'), 'utf8')), 'no neigh key when there are none');
  t.same(store().load(), FIRST);
  fs.writeFileSync(path.join(dir, 'vxl0.json'), JSON.stringify({ version: STATE_FORMAT_VERSION, ...FIRST, neigh: [{ ip: '224.0.0.1', mac: '02:00:00:00:00:02' }] }));
  fs.rmSync(path.join(dir, 'vxl0.json.bak'), { force: true });
  t.match(loadError(store()).message, 'neighbour ip 224.0.0.1 is not a unicast address');
});

t.test('the previous good state is kept as .bak', async (t) => {
  const { dir, store } = setup(t);
  const writer = store();
  writer.save(FIRST);
  writer.save(SECOND);
  t.same(JSON.parse(fs.readFileSync(path.join(dir, 'vxl0.json'), 'utf8')).peers, SECOND.peers);
  t.same(JSON.parse(fs.readFileSync(path.join(dir, 'vxl0.json.bak'), 'utf8')).peers, FIRST.peers);
  t.same(fs.readdirSync(dir).sort(), ['vxl0.json', 'vxl0.json.bak']);
});

t.test('a truncated main file is recovered from the backup with a warning', async (t) => {
  const { dir, store, warnings } = setup(t);
  const writer = store();
  writer.save(FIRST);
  writer.save(SECOND);
  const file = path.join(dir, 'vxl0.json');
  const text = fs.readFileSync(file, 'utf8');
  fs.writeFileSync(file, text.slice(0, text.length / 2));
  const reader = store();
  t.same(reader.load(), FIRST);
  t.equal(warnings.length, 1);
  t.match(warnings[0], 'recovered the previous state from its backup');

  // The next save writes a good main file and keeps the recovered state as backup.
  reader.save(SECOND);
  t.same(store().load(), SECOND);
  t.same(JSON.parse(fs.readFileSync(`${file}.bak`, 'utf8')).peers, FIRST.peers);
});

t.test('a main file with garbage or a bad field is recovered from the backup', async (t) => {
  const { dir, store } = setup(t);
  const writer = store();
  writer.save(FIRST);
  writer.save(SECOND);
  const file = path.join(dir, 'vxl0.json');
  for (const garbage of ['', '\0\0\0\0', '{"version":1,"vni":42,"peers":["not-an-ip"],"fdb":[]}']) {
    fs.writeFileSync(file, garbage);
    t.same(store().load(), FIRST, `recovered from ${JSON.stringify(garbage)}`);
  }
});

t.test('both files corrupt: VXLAND_STATE_CORRUPT naming the files', async (t) => {
  const { dir, store } = setup(t);
  const writer = store();
  writer.save(FIRST);
  writer.save(SECOND);
  const file = path.join(dir, 'vxl0.json');
  fs.writeFileSync(file, '{"version":1,"vni":4');
  fs.writeFileSync(`${file}.bak`, 'garbage');
  const err = loadError(store());
  t.type(err, VxlandError);
  t.equal(err.code, 'VXLAND_STATE_CORRUPT');
  t.match(err.message, `${file}: not valid JSON`);
  t.match(err.message, `${file}.bak: not valid JSON`);
});

t.test('corrupt main file and no backup is an error, not an empty start', async (t) => {
  const { dir, store } = setup(t);
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'vxl0.json');
  fs.writeFileSync(file, '{"version":1,"vni":42,"peers":[');
  const err = loadError(store());
  t.equal(err.code, 'VXLAND_STATE_CORRUPT');
  t.match(err.message, `${file}: not valid JSON (truncated?)`);
  t.match(err.message, `${file}.bak: missing`);
});

t.test('a file from a newer version is refused', async (t) => {
  const { dir, store } = setup(t);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'vxl0.json'), JSON.stringify({ version: STATE_FORMAT_VERSION + 1, vni: 1, peers: [], fdb: [] }));
  const err = loadError(store());
  t.equal(err.code, 'VXLAND_STATE_CORRUPT');
  t.match(err.message, 'written by a newer vxland');
});

/** A state of `entries` static entries: about 75 bytes each on disk. */
function sized(entries: number, vtep: string): PersistedState {
  const fdb = Array.from({ length: entries }, (_, i) => ({ mac: `02:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`, vtep }));
  return { vni: 42, peers: [vtep], fdb };
}

/** A store whose directory is a fresh tmpfs (root only; else the test skips). */
function onTmpfs(t: tap.Test): { dir: string; store: () => StateStore; warnings: string[] } | null {
  const reason = tmpfsSkipReason();
  if (reason !== false) {
    t.comment(`skipping: ${reason}`);
    t.plan(0, `skip: ${reason}`);
    return null;
  }
  const dir = mountTmpfs(t, 1024 * 1024);
  const warnings: string[] = [];
  const log = { warn: (_obj: object, msg: string) => void warnings.push(msg) };
  return { dir, warnings, store: () => new StateStore({ stateDir: dir, dev: 'vxl0', log }) };
}

t.test('a save on a full disk fails with VXLAND_STATE_IO and leaves the previous file intact', async (t) => {
  const fs0 = onTmpfs(t);
  if (fs0 === null) return;
  const { dir, store } = fs0;
  const writer = store();
  writer.save(FIRST);
  fillFilesystem(dir, 0);
  t.throws(() => writer.save(SECOND), { code: 'VXLAND_STATE_IO', message: /ENOSPC/ });
  t.same(store().load(), FIRST);
  t.same(fs.readdirSync(dir).sort(), ['filler', 'vxl0.json'], 'no temp file left');
});

t.test('short writes on a nearly full disk: main file and backup intact, no temp file, then a save that fits works', async (t) => {
  const fs0 = onTmpfs(t);
  if (fs0 === null) return;
  const { dir, store, warnings } = fs0;
  // Two pages each: with 1..3 pages free the new file or the new backup
  // is cut short by ENOSPC part-way through a write.
  const [older, old, next] = [sized(80, '192.0.2.1'), sized(80, '192.0.2.2'), sized(80, '192.0.2.3')];
  const writer = store();
  writer.save(older);
  writer.save(old);
  const file = path.join(dir, 'vxl0.json');
  const [mainText, backupText] = [fs.readFileSync(file, 'utf8'), fs.readFileSync(`${file}.bak`, 'utf8')];
  t.ok(mainText.length > TMPFS_PAGE_BYTES && mainText.length <= 2 * TMPFS_PAGE_BYTES, `the state takes two pages (${mainText.length} bytes)`);

  for (const pages of [0, 1, 2, 3]) {
    const unfill = fillFilesystem(dir, pages * TMPFS_PAGE_BYTES);
    t.throws(() => writer.save(next), { code: 'VXLAND_STATE_IO', message: /ENOSPC/ }, `${pages} pages free: the save fails`);
    t.equal(fs.readFileSync(file, 'utf8'), mainText, `${pages} pages free: the main file is as before`);
    t.equal(fs.readFileSync(`${file}.bak`, 'utf8'), backupText, `${pages} pages free: so is the backup`);
    t.same(fs.readdirSync(dir).sort(), ['filler', 'vxl0.json', 'vxl0.json.bak'], `${pages} pages free: no temp file left`);
    t.same(store().load(), old, `${pages} pages free: a restart loads the last saved state`);
    unfill();
  }
  t.same(warnings, [], 'the main file was never damaged');

  const unfill = fillFilesystem(dir, 4 * TMPFS_PAGE_BYTES);
  t.teardown(unfill);
  writer.save(next);
  t.same(store().load(), next, 'with room for both temp files the save succeeds');
  t.equal(fs.readFileSync(`${file}.bak`, 'utf8'), mainText, 'and the backup holds the state before it');
});

t.test('state files are 0600, also when the old file was world-readable', async (t) => {
  const { dir, store } = setup(t);
  const writer = store();
  writer.save(FIRST);
  const file = path.join(dir, 'vxl0.json');
  t.equal(fs.statSync(file).mode & 0o777, 0o600, 'a new file is 0600');
  fs.chmodSync(file, 0o644);
  const previousUmask = process.umask(0);
  t.teardown(() => void process.umask(previousUmask));
  writer.save(SECOND);
  t.equal(fs.statSync(file).mode & 0o777, 0o600, 'a rewritten 0644 file is 0600 again (umask 0)');
  t.equal(fs.statSync(`${file}.bak`).mode & 0o777, 0o600, 'and so is the backup');
});

t.test('temp files a killed daemon left are removed; nothing else is', async (t) => {
  const { dir, store, warnings } = setup(t);
  const writer = store();
  writer.save(FIRST);
  writer.save(SECOND);
  const stale = ['vxl0.json.tmp-4242', 'vxl0.json.bak.tmp-77'];
  // Another device's files, including one whose name starts with vxl0.json.
  const others = ['vxl0.json', 'vxl0.json.bak', 'vxl0.lock', 'vxl1.json.tmp-4242', 'vxl0.json.tmp-4242.json', 'vxl0.json.tmp-x'];
  for (const name of [...stale, ...others]) if (!fs.existsSync(path.join(dir, name))) fs.writeFileSync(path.join(dir, name), '{"version":1,"vni":4');
  t.same(writer.removeStaleTemps().sort(), stale.map((name) => path.join(dir, name)).sort(), 'it names what it removed');
  t.same(fs.readdirSync(dir).sort(), [...others].sort(), 'only the stale temp files are gone');
  t.match(warnings, [/temp files left by an interrupted save/], 'with a warning');
  t.same(store().load(), SECOND, 'the state is untouched');
  t.same(new StateStore({ stateDir: path.join(dir, 'missing'), dev: 'vxl0' }).removeStaleTemps(), [], 'no directory yet: nothing to do');
});

t.test('a save into a path that is not a directory is VXLAND_STATE_IO', async (t) => {
  const { dir } = setup(t);
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  fs.writeFileSync(dir, 'a file where the state directory should be');
  const store = new StateStore({ stateDir: dir, dev: 'vxl0' });
  t.throws(() => store.save(FIRST), { code: 'VXLAND_STATE_IO', message: `cannot write state file ${path.join(dir, 'vxl0.json')}` });
});

t.test('the TAP MAC is saved and read back; a file without one has none; a bad one is refused', async (t) => {
  const { dir, store } = setup(t);
  const withMac: PersistedState = { ...FIRST, mac: '02:42:0a:2a:00:01' };
  store().save(withMac);
  t.equal(JSON.parse(fs.readFileSync(path.join(dir, 'vxl0.json'), 'utf8')).mac, '02:42:0a:2a:00:01');
  t.same(store().load(), withMac);
  store().save(FIRST);
  t.notOk('mac' in (store().load() ?? {}), 'no mac key when none was saved');
  for (const bad of ['01:00:5e:00:00:01', '00:00:00:00:00:00', 'nope', 7]) {
    fs.writeFileSync(path.join(dir, 'vxl0.json'), JSON.stringify({ version: STATE_FORMAT_VERSION, ...FIRST, mac: bad }));
    fs.rmSync(path.join(dir, 'vxl0.json.bak'), { force: true });
    t.match(loadError(store()), { code: 'VXLAND_STATE_CORRUPT', message: /is not a unicast MAC address/ }, `mac ${JSON.stringify(bad)} refused`);
  }
});

t.test('discard removes a network\'s state file and its backup, and nothing else', async (t) => {
  const { dir, store } = setup(t);
  const s = store();
  s.save(FIRST);
  s.save(SECOND);
  fs.writeFileSync(path.join(dir, 'vxl1.json'), 'other network');
  s.discard();
  t.same(fs.readdirSync(dir).sort(), ['vxl1.json'], 'vxl0.json and vxl0.json.bak are gone');
  t.equal(store().load(), null, 'a new store of that network starts empty');
  s.save(FIRST);
  t.notOk(fs.existsSync(path.join(dir, 'vxl0.json.bak')), 'a save after discard makes no backup of the discarded state');
});

t.test('the networks added at run time: saved atomically with a backup, read back validated', async (t) => {
  const { dir } = setup(t);
  const warnings: string[] = [];
  const open = () => new NetworksStore({ stateDir: dir, family: 'udp4', log: { warn: (_o: object, msg: string) => void warnings.push(msg) } });
  const n44 = networkFromFlags({ vni: '44', address: ['10.44.0.1/24'], peer: ['192.0.2.4'], bridge: 'br44', accept: '192.0.2.0/24' }, 'udp4');
  const n45 = networkFromFlags({ vni: '45', dev: 'blue', mtu: '1400', mac: '02:00:00:00:45:01' }, 'udp4');
  t.equal(open().load(), null, 'none yet');
  const store = open();
  store.save([n44]);
  store.save([n44, n45]);
  const file = path.join(dir, NETWORKS_FILE_NAME);
  t.match(JSON.parse(fs.readFileSync(file, 'utf8')), { version: 1, networks: [{ vni: 44, accept: '192.0.2.0/24', bridge: 'br44' }, { vni: 45, dev: 'blue' }] },
    'as a config file\'s networks[] entries');
  t.equal(fs.statSync(file).mode & 0o777, 0o600);
  t.same(open().load(), [n44, n45], 'read back equal');
  t.same(JSON.parse(fs.readFileSync(`${file}.bak`, 'utf8')).networks.map((n: { vni: number }) => n.vni), [44], 'the backup holds the previous list');

  fs.writeFileSync(file, '{"version":1,"networks":[{"vni":44');
  t.same(open().load(), [n44], 'a truncated file: the backup is used');
  t.match(warnings, ['networks file unusable; recovered the previous state from its backup']);
  fs.writeFileSync(file, JSON.stringify({ version: 1, networks: [{ vni: 44, mtu: 7 }] }));
  fs.writeFileSync(`${file}.bak`, JSON.stringify({ version: 1, networks: [{ vni: 44, colour: 'red' }] }));
  t.throws(() => open().load(), {
    code: 'VXLAND_STATE_CORRUPT',
    message: new RegExp(`${NETWORKS_FILE_NAME}: networks\\[0\\]: mtu must be an integer 68\\.\\.65481 \\(got 7\\); backup .*networks\\[0\\]: unknown key "colour"`),
  }, 'both bad: refused, each file\'s problem named as in a config file');
});

t.test('the networks file cannot be mistaken for a network\'s state file', async (t) => {
  t.ok(NETWORKS_FILE_NAME.replace(/\.json$/, '').length > 15, `${NETWORKS_FILE_NAME}: no interface name (15 bytes at most) makes <dev>.json of it`);
});
