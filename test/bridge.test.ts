// enslaveToBridge (src/io/bridge.ts) against the kernel's bridge, inside a
// namespace created for this test: a device goes into an existing bridge,
// and each refusal the kernel can give comes back as VXLAND_BRIDGE with one
// line naming the bridge and the errno. The call runs in a child process
// started in the namespace (test/fixtures/bridge-child.ts). No data path is
// involved here (the bridge takes any Ethernet device); the TAP of either
// data path in a bridge is test/seed-topology.test.ts.
import { constants } from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { createNamespace, execJson, ip, skipUnlessRoot } from './helpers/netns';

const CHILD_PATH = path.join(__dirname, 'fixtures', 'bridge-child.js');

interface Outcome { ok: boolean; code?: string; errno?: number; syscall?: string; message?: string }

t.test('enslaveToBridge', async (t) => {
  if (skipUnlessRoot(t)) return;
  const ns = await createNamespace(t, 'brg');
  for (const bridge of ['br0', 'br1']) await ip(ns, 'link', 'add', bridge, 'type', 'bridge');
  // Plain Ethernet devices (veth; the dummy driver is not always built).
  for (const dev of ['d0', 'd1', 'd2']) await ip(ns, 'link', 'add', dev, 'type', 'veth', 'peer', 'name', `${dev}p`);
  const enslave = (dev: string, bridge: string) => execJson<Outcome>(ns, [process.execPath, CHILD_PATH, dev, bridge]);
  const masterOf = async (dev: string) => (await execJson<Array<{ master?: string }>>(null, ['ip', '-n', ns, '-j', 'link', 'show', 'dev', dev]))[0].master ?? null;

  t.same(await enslave('d0', 'br0'), { ok: true }, 'd0 into br0');
  t.equal(await masterOf('d0'), 'br0', 'the kernel shows br0 as d0\'s master');

  const refusals: Array<[string, string, string, string]> = [
    ['d1', 'brnone', 'ENODEV', 'cannot put d1 into bridge brnone: bridge brnone does not exist (ENODEV); create it first (ip link add brnone type bridge)'],
    ['nodev', 'br0', 'ENODEV', 'cannot put nodev into bridge br0: device nodev does not exist (ENODEV)'],
    ['d1', 'd2', 'EOPNOTSUPP', 'cannot put d1 into bridge d2: d2 is not a bridge (EOPNOTSUPP)'],
    ['d0', 'br1', 'EBUSY', 'cannot put d0 into bridge br1: d0 is already a port of a bridge or has another master (EBUSY)'],
    ['br1', 'br0', 'ELOOP', 'cannot put br1 into bridge br0: br1 is a bridge itself; putting it into br0 would make a loop (ELOOP)'],
    ['lo', 'br0', 'EINVAL', 'cannot put lo into bridge br0: the kernel takes only Ethernet devices with a unicast MAC as bridge ports (EINVAL)'],
  ];
  for (const [dev, bridge, errnoName, message] of refusals) {
    const outcome = await enslave(dev, bridge);
    t.match(outcome, { ok: false, code: 'VXLAND_BRIDGE', message, syscall: dev === 'nodev' ? 'if_nametoindex' : 'ioctl(SIOCBRADDIF)' }, `${dev} into ${bridge}: ${errnoName}`);
    t.equal(outcome.errno, constants.errno[errnoName as keyof typeof constants.errno], `${dev} into ${bridge}: errno ${errnoName}`);
  }
  t.equal(await masterOf('d0'), 'br0', 'a refused move leaves d0 where it was');
  t.equal(await masterOf('d1'), null, 'a refused device is in no bridge');
});
