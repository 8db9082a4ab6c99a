import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { STATE_FORMAT_VERSION, StateStore, type PersistedState } from '../src/state/store.js';
import { VxlandError } from '../src/errors.js';

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

t.test('a save that cannot write leaves the previous file intact', { skip: process.getuid?.() === 0 ? 'root ignores file permissions' : false }, async (t) => {
  const { dir, store } = setup(t);
  const writer = store();
  writer.save(FIRST);
  fs.chmodSync(dir, 0o555);
  t.teardown(() => fs.chmodSync(dir, 0o755));
  t.throws(() => writer.save(SECOND), { code: 'VXLAND_STATE_IO' });
  t.same(store().load(), FIRST);
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
