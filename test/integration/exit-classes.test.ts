// Issue 8, items 13, 14 and 16 on `ip netns` guests: a failed `dhcp` leaves the interface as it
// found it (down); `wait` says why an interface is not ready (no carrier is not "no address");
// a macvlan on lo is refused as not an Ethernet device, not as a passthru clash.

import { hasBinary, ipJson, isRoot, sh, testIf } from '../helpers/index.js'
import { fixture, foreignNic, plumb, views } from './ops-fixture.js'

const asRoot = testIf(isRoot, 'exit-classes: needs root (ip netns, links)')
const withUdhcpc = testIf(isRoot && hasBinary('udhcpc') && hasBinary('nsenter'), 'exit-classes: needs root, udhcpc and nsenter')

const flags = async (ns: string, ifname: string): Promise<string[]> => ((await ipJson(['link', 'show', ifname], ns))[0]?.flags as string[]) ?? []

withUdhcpc('a failed dhcp (no server) leaves a down interface down: the step that brought it up is undone', async (t) => {
  const f = await fixture(t)
  await foreignNic(t, f, 'eth1')
  await sh('ip', ['-n', f.ns, 'link', 'set', 'eth1', 'down'])
  t.false((await flags(f.ns, 'eth1')).includes('UP'))
  const before = await views(f)
  const r = await plumb('dhcp', f.guest, 'eth1', '--client', 'udhcpc', '--timeout', '1')
  t.is(r.exitCode, 1, r.stderr)
  t.regex(r.stderr, /^plumb: no DHCP offer on eth1 within 1 s/m)
  t.regex(r.stderr, /^rolled back: .*link set eth1 down/m)
  t.false((await flags(f.ns, 'eth1')).includes('UP'), 'down again')
  t.deepEqual(await views(f), before)
})

asRoot('wait: an interface that is up with an address but no carrier is "no carrier", not "no address"; down and missing say so too', async (t) => {
  const f = await fixture(t)
  await foreignNic(t, f, 'eth1', f.v4(10))
  await sh('ip', ['link', 'set', `${f.id}x`, 'down']) // the other end: no carrier in the guest
  const r = await plumb('wait', f.guest, 'eth1', '--timeout', '0.3')
  t.is(r.exitCode, 1, r.stderr)
  t.regex(r.stderr, /^plumb: eth1 in .* was not up with an address within 0\.3 s$/m)
  t.regex(r.stderr, /^hint: eth1 is up but has no carrier \(operstate [A-Z]+\): its other end is down or gone$/m)

  await sh('ip', ['-n', f.ns, 'link', 'set', 'eth1', 'down'])
  t.regex((await plumb('wait', f.guest, 'eth1', '--timeout', '0')).stderr, /^hint: eth1 is down$/m)
  await sh('ip', ['-n', f.ns, 'link', 'set', 'eth1', 'up'])
  await sh('ip', ['link', 'set', `${f.id}x`, 'up'])
  await sh('ip', ['-n', f.ns, 'addr', 'flush', 'dev', 'eth1'])
  const noAddr = await plumb('wait', f.guest, 'eth1', '--timeout', '0.3')
  t.regex(noAddr.stderr, /^hint: eth1 is up but has no address$/m)
  t.regex((await plumb('wait', f.guest, 'eth7', '--timeout', '0')).stderr, /^hint: there is no eth7 yet/m)
  await sh('ip', ['-n', f.ns, 'addr', 'add', f.v4(10), 'dev', 'eth1'])
  const ok = await plumb('wait', f.guest, 'eth1', '--timeout', '5')
  t.is(ok.exitCode, 0, ok.stderr)
})

asRoot('macvlan (and vlan) on lo: exit 4, "not an Ethernet device", nothing changed', async (t) => {
  const f = await fixture(t)
  const before = await views(f)
  for (const argv of [['macvlan', f.guest, 'lo', f.v4(10)], ['macvlan', f.guest, 'lo', '--mode', 'passthru'], ['vlan', f.guest, 'lo', '10']]) {
    const r = await plumb(...argv)
    t.is(r.exitCode, 4, `${argv.join(' ')}: ${r.stderr}`)
    t.regex(r.stderr, /^plumb: "lo" is not an Ethernet device \(link\/loopback\); a (macvlan|vlan) needs an Ethernet NIC as its parent$/m)
    t.notRegex(r.stderr, /passthru/)
  }
  t.deepEqual(await views(f), before)
})
