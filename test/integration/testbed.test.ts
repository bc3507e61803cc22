// Self-test of the shared test helpers: each one is checked against the kernel / dockerd / OVS it
// claims to change, and its teardown against what is left afterwards.

import test from 'ava'
import { existsSync, readFileSync } from 'node:fs'
import { isDeepStrictEqual } from 'node:util'
import {
  PLUMB_BIN,
  getLink,
  hasBinary,
  hasDocker,
  hasOvs,
  ipJson,
  isRoot,
  makeBridge,
  makeContainer,
  makeNetns,
  makeOvsBridge,
  makeVethPair,
  nsArgv,
  ping,
  runCli,
  sh,
  shIn,
  shQuiet,
  snapshot,
  startDnsmasq,
  stopContainer,
  uniq,
  waitFor,
  testIf,
} from '../helpers/index.js'
import type { Teardown } from '../helpers/index.js'

const asRoot = testIf(isRoot, 'testbed self-test: needs root (ip netns)')
const withDocker = testIf(isRoot && hasDocker(), 'testbed self-test: needs root and dockerd with plumb-test:busybox (scripts/testbed.sh up)')
const withOvs = testIf(isRoot && hasOvs(), 'testbed self-test: needs root and Open vSwitch (scripts/testbed.sh up)')
const withDhcp = testIf(isRoot && hasBinary('dnsmasq') && hasBinary('udhcpc'), 'testbed self-test: needs root, dnsmasq and udhcpc')
const withCli = testIf(existsSync(PLUMB_BIN), `testbed self-test: ${PLUMB_BIN} not built (npm run build)`)

/** A teardown we run by hand, so a test can check what teardown leaves; t's own runs it too if the test dies first. */
function manualTeardown(t: Teardown): Teardown & { run(): Promise<void> } {
  const fns: Array<() => unknown> = []
  const run = async () => {
    for (const fn of fns.splice(0).reverse()) await fn()
  }
  t.teardown(run)
  return { teardown: (fn) => void fns.push(fn), run }
}

const netnsNames = async () => (await sh('ip', ['netns', 'list'])).split('\n').map((l) => l.split(' ')[0])

test('uniq names are pt- + 6 hex + suffix, distinct, and refused over 15 bytes', (t) => {
  const a = uniq('br')
  t.regex(a, /^pt-[0-9a-f]{6}br$/)
  t.regex(uniq('', { dash: false }), /^pt[0-9a-f]{6}$/)
  t.not(uniq(), uniq())
  t.is(uniq('123456').length, 15)
  t.throws(() => uniq('1234567'), { message: /15-byte/ })
})

asRoot('makeNetns creates a netns that teardown deletes', async (t) => {
  const td = manualTeardown(t)
  const name = await makeNetns(td, { loUp: true })
  t.regex(name, /^pt-[0-9a-f]{6}$/)
  t.true((await netnsNames()).includes(name))
  const lo = await getLink('lo', name)
  t.truthy(lo)
  t.true((lo?.flags as string[]).includes('UP'))
  await td.run()
  t.false((await netnsNames()).includes(name))
  t.false(existsSync(`/run/netns/${name}`))
})

asRoot('makeVethPair puts one end in a netns, makeBridge makes an up bridge, teardown removes both', async (t) => {
  const td = manualTeardown(t)
  const ns = await makeNetns(td)
  const a = uniq('a')
  const br = await makeBridge(td, uniq('br'))
  await makeVethPair(td, a, 'nic0', ns)
  const host = await getLink(a)
  const guest = await getLink('nic0', ns)
  t.is(host?.linkinfo?.info_kind, 'veth')
  t.is(guest?.linkinfo?.info_kind, 'veth')
  t.true((guest?.flags as string[]).includes('UP'))
  const bridge = await getLink(br)
  t.is(bridge?.linkinfo?.info_kind, 'bridge')
  t.true((bridge?.flags as string[]).includes('UP'))
  await td.run()
  t.is(await getLink(a), undefined)
  t.is(await getLink(br), undefined)
})

asRoot('snapshot is stable across calls and sees an address change', async (t) => {
  const ns = await makeNetns(t)
  // No IPv6 on the new eth1: its link-local address would appear whenever DAD finishes, between
  // any two snapshots on a loaded machine, and this test is about the snapshot, not the kernel.
  await sh('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.default.disable_ipv6=1'])
  await makeVethPair(t, uniq('h'), 'eth1', ns)
  const before = await snapshot({ netns: ns })
  t.deepEqual(await snapshot({ netns: ns }), before)
  t.deepEqual(await snapshot({ path: `/run/netns/${ns}` }), before)
  t.true(before.links.some((l) => l.ifname === 'eth1'))

  await sh('ip', ['-n', ns, 'addr', 'add', '198.18.200.2/24', 'dev', 'eth1'])
  const changed = await snapshot({ netns: ns })
  t.notDeepEqual(changed, before)
  t.true(changed.addrs.some((a) => a.ifname === 'eth1' && a.local === '198.18.200.2' && a.prefixlen === 24))
  t.true(changed.routes.some((r) => r.dst === '198.18.200.0/24' && r.dev === 'eth1'))

  await sh('ip', ['-n', ns, 'addr', 'del', '198.18.200.2/24', 'dev', 'eth1'])
  t.deepEqual(await snapshot({ netns: ns }), before)
})

asRoot('the snapshot is deterministic: two back-to-back calls agree (a netns nobody else changes, with a bridge, a veth, addresses and routes)', async (t) => {
  // Not the host: the other tests change it all the time, so two reads of it differ for real.
  const ns = await makeNetns(t, { loUp: true })
  for (const cmd of [
    ['link', 'add', 'br0', 'type', 'bridge'],
    ['link', 'add', 'eth1', 'master', 'br0', 'type', 'veth', 'peer', 'name', 'eth2'],
    ['addr', 'add', '198.18.202.1/24', 'dev', 'br0'],
    ['link', 'set', 'br0', 'up'],
    ['link', 'set', 'eth1', 'up'],
    ['link', 'set', 'eth2', 'up'],
    ['route', 'add', '198.18.203.0/24', 'via', '198.18.202.2'],
  ]) await sh('ip', ['-n', ns, ...cmd])
  // (link-local addresses and the bridge's state settle within a moment of the links coming up)
  let [first, second] = [await snapshot({ netns: ns }), await snapshot({ netns: ns })]
  for (let i = 0; i < 10 && !isDeepStrictEqual(first, second); i++) {
    await new Promise((r) => setTimeout(r, 300))
    ;[first, second] = [second, await snapshot({ netns: ns })]
  }
  t.true(isDeepStrictEqual(first, second), 'a snapshot holds nothing that changes by itself (counters, timers)')
  t.deepEqual(first.links.map((l) => l.ifname).sort(), ['br0', 'eth1', 'eth2', 'lo'])
  t.true(first.routes.some((r) => r.dst === '198.18.203.0/24'))
  t.true((await snapshot()).links.some((l) => l.ifname === 'lo'))
})

asRoot('ping reaches a peer netns over a veth, fails for a silent address, refuses non-test ranges', async (t) => {
  const a = await makeNetns(t, { loUp: true })
  const b = await makeNetns(t, { loUp: true })
  await sh('ip', ['-n', a, 'link', 'add', 'eth1', 'type', 'veth', 'peer', 'name', 'eth1', 'netns', b])
  for (const [ns, ip] of [
    [a, '198.18.201.1/24'],
    [b, '198.18.201.2/24'],
  ] as const) {
    await sh('ip', ['-n', ns, 'addr', 'add', ip, 'dev', 'eth1'])
    await sh('ip', ['-n', ns, 'link', 'set', 'eth1', 'up'])
  }
  t.true(await ping(a, '198.18.201.2', { count: 2 }))
  t.true(await ping({ path: `/run/netns/${b}` }, '198.18.201.1'))
  t.false(await ping(a, '198.18.201.99', { timeout: 1 }))
  await t.throwsAsync(ping(a, '192.0.2.1'), { message: /refusing/ })
  await t.throwsAsync(ping(a, '8.8.8.8'), { message: /refusing/ })
})

withDocker('makeContainer gives a running --net=none container with only lo, removed in teardown', async (t) => {
  const td = manualTeardown(t)
  const c = await makeContainer(td)
  t.regex(c.name, /^pt-[0-9a-f]{6}$/)
  t.regex(c.id, /^[0-9a-f]{64}$/)
  t.true(c.pid > 1)
  t.true(existsSync(c.sandboxKey))
  // the kernel's view of its netns, reached three ways
  for (const where of [{ path: c.sandboxKey }, { container: c.name }, { pid: c.pid }]) {
    const links = await ipJson(['link', 'show'], where)
    t.deepEqual(
      links.map((l) => l.ifname),
      ['lo'],
    )
  }
  t.is(await shIn({ container: c.name }, 'cat', ['/proc/self/comm']), 'cat')
  const sameNs = await sh('stat', ['-L', '-c', '%i', c.sandboxKey])
  t.is(await sh('stat', ['-L', '-c', '%i', `/proc/${c.pid}/ns/net`]), sameNs)

  await stopContainer(c.name)
  t.is(await sh('docker', ['inspect', '-f', '{{.State.Running}}', c.name]), 'false')
  await td.run()
  t.not((await shQuiet('docker', ['inspect', c.name])).exitCode, 0)
})

withOvs('makeOvsBridge makes a userspace-datapath OVS bridge that teardown deletes', async (t) => {
  const td = manualTeardown(t)
  const br = await makeOvsBridge(td, uniq('ovs'))
  t.true((await sh('ovs-vsctl', ['list-br'])).split('\n').includes(br))
  t.is(await sh('ovs-vsctl', ['get', 'bridge', br, 'datapath_type']), 'netdev')
  await td.run()
  t.false((await sh('ovs-vsctl', ['list-br'])).split('\n').includes(br))
})

withDhcp('startDnsmasq serves a lease to a DHCP client in another netns and stops by pid', async (t) => {
  const td = manualTeardown(t)
  const srv = await makeNetns(td)
  const cli = await makeNetns(td)
  await sh('ip', ['-n', srv, 'link', 'add', 'dh0', 'type', 'veth', 'peer', 'name', 'eth1', 'netns', cli])
  await sh('ip', ['-n', srv, 'addr', 'add', '198.18.202.1/24', 'dev', 'dh0'])
  await sh('ip', ['-n', srv, 'link', 'set', 'dh0', 'up'])
  await sh('ip', ['-n', cli, 'link', 'set', 'eth1', 'up'])
  const { proc, leaseFile } = await startDnsmasq(td, srv, 'dh0', '198.18.202')
  // -s /bin/true: the lease is only reported, no script touches the host's files.
  const [cmd, args] = nsArgv(cli, 'udhcpc', ['-i', 'eth1', '-f', '-q', '-n', '-t', '8', '-T', '1', '-s', '/bin/true'])
  const res = await shQuiet(cmd, args)
  t.is(res.exitCode, 0, res.stderr)
  t.regex(res.stderr, /lease of 198\.18\.202\.1(?:[0-4]\d|50) obtained from 198\.18\.202\.1/)
  const mac = (await getLink('eth1', cli))?.address as string
  await waitFor(() => existsSync(leaseFile) && readFileSync(leaseFile, 'utf8').includes(mac), { what: 'the lease in dnsmasq lease file' })
  const pid = proc?.pid
  t.truthy(pid)
  await td.run()
  t.false(existsSync(`/proc/${pid}`) && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('dnsmasq'))
  t.false(existsSync(leaseFile))
})

withCli('runCli runs the built CLI: --help exits 0, a bad IP spec with --json is a USAGE error on stderr', async (t) => {
  const help = await runCli(['--help'])
  t.is(help.exitCode, 0, help.stderr)
  t.regex(help.stdout, /attach-veth/)
  const bad = await runCli(['attach-veth', 'netns:pt-nothere', uniq('br'), '198.18.0.10', '--json', '--dry-run'])
  t.is(bad.exitCode, 2, bad.stderr)
  t.is(bad.json?.error?.code, 'USAGE')
})
