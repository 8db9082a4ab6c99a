// The TAP keeps its MAC across restarts (src/state/tap-mac.ts): --mac when
// given, else the one saved in the state file on first start.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { chooseTapMac, randomLocalMac, stateWithMac } from '../src/state/tap-mac';
import { createTopology, execJson, skipUnlessRoot } from './helpers/netns';
import { datapathsUnderTest, startVxland, type VxlandHandle } from './helpers/vxland';

t.test('random MACs are unicast and locally administered, and differ', async (t) => {
  const macs = Array.from({ length: 200 }, () => randomLocalMac());
  const bad = macs.filter((mac) => !/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(mac) || (parseInt(mac.slice(0, 2), 16) & 0x03) !== 0x02);
  t.same(bad, [], 'every one is normalised text, locally administered (bit 1) and unicast (bit 0 clear)');
  t.ok(new Set(macs).size > 190, 'random');
});

t.test('the configured MAC wins, then the saved one, else a new one to save', async (t) => {
  const saved = { vni: 42, peers: ['192.0.2.2'], fdb: [], mac: '02:00:00:00:00:aa' };
  t.same(chooseTapMac('02:00:00:00:00:bb', saved), { mac: '02:00:00:00:00:bb', source: 'config' });
  t.same(chooseTapMac(null, saved), { mac: '02:00:00:00:00:aa', source: 'state' });
  t.equal(chooseTapMac(null, { vni: 42, peers: [], fdb: [] }).source, 'generated');
  t.equal(stateWithMac(saved, 42, '02:00:00:00:00:aa'), null, 'nothing to save when it is kept already');
  t.same(stateWithMac(saved, 7, '02:00:00:00:00:bb'), { ...saved, mac: '02:00:00:00:00:bb' }, 'saved peers and VNI stay as they were');
  t.same(stateWithMac(null, 7, '02:00:00:00:00:bb'), { vni: 7, peers: [], fdb: [], mac: '02:00:00:00:00:bb' }, 'config peers are not written');
});

async function kernelMac(v: VxlandHandle): Promise<string> {
  const link = await execJson<Array<{ address: string }>>(null, ['ip', '-n', v.host.ns, '-j', 'link', 'show', 'dev', v.dev]);
  return link[0].address;
}

for (const datapath of datapathsUnderTest()) {
  t.test(`the TAP MAC survives kill -9 and a clean stop; --mac sets it (${datapath})`, async (t) => {
    if (skipUnlessRoot(t)) return;
    const topo = await createTopology(t, { hosts: 2 });
    const [a, b] = topo.hosts;
    const first = await startVxland(t, a, { peers: [b.ip], address: '10.42.0.1/24', datapath });
    const mac = await kernelMac(first);
    t.equal((await first.json<any>('status')).mac, mac, 'status shows the MAC the kernel has');
    t.equal(parseInt(mac.slice(0, 2), 16) & 0x03, 0x02, `${mac} is locally administered unicast`);
    const state = JSON.parse(readFileSync(path.join(first.stateDir, `${first.dev}.json`), 'utf8'));
    t.equal(state.mac, mac, 'saved in the state file on first start');
    t.same(state.peers, [], 'without writing the configured peers into it');

    first.proc.proc.kill('SIGKILL');
    await first.proc.exited;
    const second = await startVxland(t, a, { peers: [b.ip], address: '10.42.0.1/24', datapath, stateDir: first.stateDir });
    t.equal(await kernelMac(second), mac, 'same MAC after kill -9');
    t.equal((await second.cli('peer', 'add', '198.18.1.9')).code, 0, 'a runtime change saves the state again');
    t.equal(JSON.parse(readFileSync(path.join(first.stateDir, `${first.dev}.json`), 'utf8')).mac, mac, 'and keeps the MAC in it');

    await second.proc.stop();
    t.equal(second.proc.exitCode, 0, 'clean stop');
    const third = await startVxland(t, a, { peers: [b.ip], address: '10.42.0.1/24', datapath, stateDir: first.stateDir });
    t.equal(await kernelMac(third), mac, 'same MAC after a clean stop');
    await third.proc.stop();

    const chosen = '02:42:0a:2a:00:01';
    const fourth = await startVxland(t, a, { peers: [b.ip], address: '10.42.0.1/24', datapath, stateDir: first.stateDir, extraArgs: ['--mac', chosen.toUpperCase()] });
    t.equal(await kernelMac(fourth), chosen, '--mac sets the MAC');
    t.equal((await fourth.json<any>('status')).mac, chosen);
  });
}
