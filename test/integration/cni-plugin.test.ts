// plumb as a CNI plugin, driven by the in-repo runtime (test/helpers/cni.ts) exactly as the spec
// says: every verb at every version, error codes, rollback with IPAM released, DEL with the netns
// gone or CNI_NETNS empty, GC, STATUS. State is read back from the kernel, host-local's store
// and plumb's records; traffic is ping, TCP and UDP.

import test from 'ava'
import type { ExecutionContext } from 'ava'
import { randomInt } from 'node:crypto'
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { CniCallError, REFERENCE_PLUGINS, assertTraffic, execPlugin, findInPath, getLink, hasOvs, httpGet, ipJson, isRoot, makeNetns, makeVethPair, runCli, sh, shQuiet, startEcho, startHttpd, testIf, udpAsk, uniq } from '../helpers/index.js'
import { probeLinkKind } from '../../lib/kernel/index.js'
import { netnsAt } from '../../lib/guest/nsfile.js'
import { addrsIn, installPlumb, markedLinks, network, records, reserved } from './cni-fixture.js'

const asRoot = testIf(isRoot && existsSync(`${REFERENCE_PLUGINS}/host-local`), `needs root and the reference plugins in ${REFERENCE_PLUGINS} (containernetworking-plugins)`)
const withOvs = testIf(isRoot && hasOvs() && existsSync(`${REFERENCE_PLUGINS}/host-local`), 'needs root, Open vSwitch and the reference plugins')
const VERSIONS = ['0.3.1', '0.4.0', '1.0.0', '1.1.0']

let bin = ''
const binTeardown: Array<() => unknown> = []
test.before(async () => {
  if (isRoot) bin = await installPlumb({ teardown: (fn) => void binTeardown.push(fn) })
})
test.after.always(async () => {
  for (const fn of binTeardown) await fn()
})

// The reference portmap plugin (in the chains below) creates its nat chains and their jumps once
// and never removes them: they go after this file's tests when they were not there before.
const PORTMAP_JUMPS: Array<[string, string[]]> = [
  ['PREROUTING', ['-m', 'addrtype', '--dst-type', 'LOCAL', '-j', 'CNI-HOSTPORT-DNAT']],
  ['OUTPUT', ['-m', 'addrtype', '--dst-type', 'LOCAL', '-j', 'CNI-HOSTPORT-DNAT']],
  ['POSTROUTING', ['-m', 'comment', '--comment', 'CNI portfwd requiring masquerade', '-j', 'CNI-HOSTPORT-MASQ']],
]
let portmapChainsBefore = true
test.before(async () => {
  if (isRoot) portmapChainsBefore = (await sh('iptables-save', ['-t', 'nat'])).includes(':CNI-HOSTPORT-DNAT ')
})
test.after.always(async () => {
  if (!isRoot || portmapChainsBefore) return
  for (const [chain, args] of PORTMAP_JUMPS) while ((await shQuiet('iptables', ['-w', '-t', 'nat', '-D', chain, ...args])).exitCode === 0);
  for (const chain of ['CNI-HOSTPORT-DNAT', 'CNI-HOSTPORT-MASQ', 'CNI-HOSTPORT-SETMARK']) {
    await shQuiet('iptables', ['-w', '-t', 'nat', '-F', chain])
    await shQuiet('iptables', ['-w', '-t', 'nat', '-X', chain])
  }
})

asRoot('VERSION lists 0.3.1, 0.4.0, 1.0.0 and 1.1.0', async (t) => {
  const r = await execPlugin(findInPath('plumb', [bin]), 'VERSION', {}, '', [bin])
  t.is(r.exitCode, 0, r.stderr)
  t.deepEqual(r.json, { cniVersion: '1.1.0', supportedVersions: ['0.3.1', '0.4.0', '1.0.0', '1.1.0'] })
})

for (const version of VERSIONS) {
  asRoot(`${version}: ADD gives the guest host-local's address on the bridge, in ${version}'s result format; ${version >= '0.4.0' ? 'CHECK passes; ' : ''}DEL removes it all and releases the address; DEL again is fine`, async (t) => {
    const net = network(t, bin)
    const ns = await makeNetns(t)
    const rt = net.runtime(version)
    const call = { containerId: `${ns}-c`, netns: `/run/netns/${ns}`, ifname: 'eth0' }
    const res = await rt.add(call)
    t.is(res.cniVersion, version)
    const guestIf = res.interfaces.find((i: { sandbox?: string }) => i.sandbox === call.netns)
    t.is(guestIf.name, 'eth0')
    const ip = res.ips[0]
    t.regex(ip.address, new RegExp(`^198\\.18\\.${net.octet}\\.\\d+/24$`))
    t.is(ip.gateway, net.gateway)
    t.is(ip.interface, res.interfaces.indexOf(guestIf))
    if (version < '1.0.0') t.is(ip.version, '4')
    else t.false('version' in ip)
    if (version === '1.1.0') t.is(guestIf.mtu, 1500, '1.1.0 results carry the MTU')
    else t.false('mtu' in guestIf)
    // The kernel's view.
    t.deepEqual(await addrsIn(ns, 'eth0'), [ip.address])
    const route = (await ipJson(['-4', 'route', 'show', 'default'], ns))[0]
    t.is(route?.gateway, net.gateway)
    t.is(route?.dev, 'eth0')
    const hostEnd = res.interfaces.find((i: { sandbox?: string }) => !i.sandbox)
    t.is((await getLink(hostEnd.name))?.master, net.bridge)
    t.deepEqual(reserved(net), [ip.address.split('/')[0]])
    t.deepEqual(records(net), [`${call.containerId}:eth0`])
    if (version >= '0.4.0') await t.notThrowsAsync(rt.check(call))

    await rt.del(call)
    t.is(await getLink('eth0', ns), undefined)
    t.is(await getLink(hostEnd.name), undefined)
    t.is(await getLink(net.bridge), undefined, 'the bridge plumb made went with its last port')
    t.deepEqual(reserved(net), [])
    t.deepEqual(records(net), [])
    await t.notThrowsAsync(rt.del(call), 'a second DEL is fine')
  })
}

asRoot('two guests on one network reach each other: ping, TCP and UDP', async (t) => {
  const net = network(t, bin)
  const [a, b] = [await makeNetns(t, { loUp: true }), await makeNetns(t, { loUp: true })]
  const rt = net.runtime('1.0.0')
  const ra = await rt.add({ containerId: `${a}-c`, netns: `/run/netns/${a}`, ifname: 'eth0' })
  const rb = await rt.add({ containerId: `${b}-c`, netns: `/run/netns/${b}`, ifname: 'eth0' })
  t.teardown(() => rt.del({ containerId: `${a}-c`, netns: `/run/netns/${a}`, ifname: 'eth0' }).catch(() => undefined))
  t.teardown(() => rt.del({ containerId: `${b}-c`, netns: `/run/netns/${b}`, ifname: 'eth0' }).catch(() => undefined))
  const ipB = rb.ips[0].address.split('/')[0]
  const ipA = ra.ips[0].address.split('/')[0]
  await assertTraffic(t, a, b, ipB, 'a to b')
  await assertTraffic(t, b, a, ipA, 'b to a')
})

asRoot('the `ips` and `mac` capabilities without IPAM: plumb sets them itself', async (t) => {
  const net = network(t, bin)
  const ns = await makeNetns(t)
  const rt = net.runtime('1.0.0', [{ ...net.plumb({ ipam: undefined, capabilities: { ips: true, mac: true } }) }])
  const call = { containerId: `${ns}-c`, netns: `/run/netns/${ns}`, ifname: 'eth0' }
  const res = await rt.add(call, { ips: [`198.18.${net.octet}.77/24`], mac: '02:00:00:00:aa:01' })
  t.teardown(() => rt.del(call).catch(() => undefined))
  t.deepEqual(await addrsIn(ns, 'eth0'), [`198.18.${net.octet}.77/24`])
  t.is((await getLink('eth0', ns))?.address, '02:00:00:00:aa:01')
  t.deepEqual(res.ips, [{ address: `198.18.${net.octet}.77/24`, interface: 1 }])
})

asRoot('refusals before anything is touched: bad op (7), old version (1), missing env (4), netns missing (3), IPAM plugin missing (103), an IPv6 port mapping (7)', async (t) => {
  const net = network(t, bin)
  const ns = await makeNetns(t)
  const plumb = findInPath('plumb', [bin])
  const call = { containerId: `${ns}-c`, netns: `/run/netns/${ns}`, ifname: 'eth0' }
  const base = { cniVersion: '1.0.0', name: net.name, ...net.plumb() }
  const cases: Array<[string, Record<string, unknown>, typeof call, number, RegExp]> = [
    ['bad op', { ...base, op: 'teleport' }, call, 7, /unknown op "teleport"/],
    ['old version', { ...base, cniVersion: '0.2.0' }, call, 1, /incompatible CNI versions/],
    ['missing env', base, { ...call, netns: '' }, 4, /CNI_NETNS/],
    ['netns missing', base, { ...call, netns: `/run/netns/${uniq()}` }, 3, /no network namespace at CNI_NETNS/],
    ['IPAM plugin missing', { ...base, ipam: { ...net.ipam, type: 'pt-no-such-ipam' } }, call, 103, /failed to find IPAM plugin "pt-no-such-ipam"/],
    ['portMappings', { ...base, runtimeConfig: { portMappings: [{ hostPort: 18080, containerPort: 80, protocol: 'tcp', hostIP: '::1' }] } }, call, 7, /IPv6 host address "\[::1\]" in "\[::1\]:18080:80\/tcp": plumb publishes IPv4 only/],
    ['a bad MAC', { ...base, mac: 'ff:ff:ff:ff:ff:ff' }, call, 7, /MAC/],
  ]
  for (const [what, conf, c, code, msg] of cases) {
    const r = await execPlugin(plumb, 'ADD', c, conf, [bin, REFERENCE_PLUGINS])
    t.is(r.exitCode, 1, what)
    t.is(r.json?.code, code, `${what}: ${r.stdout}`)
    t.regex(r.json?.msg ?? '', msg, what)
    t.is(r.json?.cniVersion, conf.cniVersion === '0.2.0' ? '1.1.0' : '1.0.0', `${what}: the error object speaks the config's version`)
    t.false(r.stdout.includes('\n{'), `${what}: stdout holds one JSON object`)
  }
  t.is(await getLink(net.bridge), undefined)
  t.deepEqual(reserved(net), [])
  t.deepEqual(records(net), [])
  t.deepEqual((await ipJson(['link', 'show'], ns)).map((l) => l.ifname), ['lo'])
})

asRoot('the `portMappings` capability publishes through plumb expose: the host port answers TCP and UDP; DEL unpublishes', async (t) => {
  const net = network(t, bin)
  // The host is the guests' gateway (the bridge has its address), so the published flows come back.
  await sh('ip', ['link', 'add', net.bridge, 'type', 'bridge'])
  await sh('ip', ['addr', 'add', `${net.gateway}/24`, 'dev', net.bridge])
  await sh('ip', ['link', 'set', net.bridge, 'up'])
  const ns = await makeNetns(t, { loUp: true })
  const rt = net.runtime('1.0.0', [net.plumb({ capabilities: { portMappings: true } })])
  const call = { containerId: `${ns}-c`, netns: `/run/netns/${ns}`, ifname: 'eth0' }
  const hostPort = randomInt(20_000, 30_000)
  const portMappings = [
    { hostPort, containerPort: 80, protocol: 'tcp' },
    { hostPort, containerPort: 53, protocol: 'udp' },
  ]
  await rt.add(call, { portMappings })
  t.teardown(() => rt.del(call, { portMappings }).catch(() => undefined))
  await startHttpd(t, ns, 80, 'cni-web')
  await startEcho(t, ns, 53, 'cni-udp', 'udp')
  t.is(await httpGet(undefined, '127.0.0.1', hostPort), 'cni-web', 'TCP through the published port')
  t.regex((await udpAsk(undefined, '127.0.0.1', hostPort)) ?? 'no answer', /^cni-udp /, 'UDP too')
  t.regex(await sh('iptables-save', ['-t', 'nat']), new RegExp(`plumb:expose guest=/run/netns/${ns} if=eth0 \\S+ host=:${hostPort} proto=tcp`))
  await rt.del(call, { portMappings })
  t.is(await httpGet(undefined, '127.0.0.1', hostPort, { timeout: 1000 }), undefined, 'DEL unpublished it')
  t.false((await sh('iptables-save', [])).includes(`host=:${hostPort} `), "no rule of plumb's names the port")
})

asRoot('an ADD that fails after IPAM gave an address rolls back everything and releases it (the exit code names the cause)', async (t) => {
  const net = network(t, bin)
  const ns = await makeNetns(t)
  // The "bridge" is a veth end: attach-veth refuses it (conflict) once IPAM has answered.
  const notBridge = uniq('v', { dash: false })
  await makeVethPair(t, notBridge, uniq('w', { dash: false }))
  const rt = net.runtime('1.0.0', [net.plumb({ bridge: notBridge })])
  const call = { containerId: `${ns}-c`, netns: `/run/netns/${ns}`, ifname: 'eth0' }
  const err = await t.throwsAsync(rt.add(call), { instanceOf: CniCallError })
  t.is(err!.code, 104, err!.message)
  t.regex(err!.run.json.msg, /is a veth interface, not a bridge/)
  t.regex(err!.run.json.details, /rolled back: .*host-local DEL/)
  t.deepEqual(reserved(net), [], "host-local's address was released")
  t.deepEqual(records(net), [])
  t.deepEqual((await ipJson(['link', 'show'], ns)).map((l) => l.ifname), ['lo'])
})

asRoot('DEL after the netns is gone, and DEL with an empty CNI_NETNS (containerd) while it is still there', async (t) => {
  const net = network(t, bin)
  const [a, b] = [await makeNetns(t), await makeNetns(t)]
  const rt = net.runtime('1.0.0')
  const ca = { containerId: `${a}-c`, netns: `/run/netns/${a}`, ifname: 'eth0' }
  const cb = { containerId: `${b}-c`, netns: `/run/netns/${b}`, ifname: 'eth0' }
  const ra = await rt.add(ca)
  await rt.add(cb)
  t.is((await markedLinks(ca.containerId)).length, 1)
  // a: the netns dies first, then the runtime's DEL still names it.
  await sh('ip', ['netns', 'del', a])
  await t.notThrowsAsync(rt.del(ca))
  t.deepEqual(await markedLinks(ca.containerId), [])
  t.false(reserved(net).includes(ra.ips[0].address.split('/')[0]))
  // b: DEL with CNI_NETNS empty; the netns is alive, and its interface must go too.
  await t.notThrowsAsync(rt.del({ ...cb, netns: '' }))
  t.is(await getLink('eth0', b), undefined, 'the record said where the netns was')
  t.deepEqual(await markedLinks(cb.containerId), [])
  t.deepEqual(reserved(net), [])
  t.deepEqual(records(net), [])
  t.is(await getLink(net.bridge), undefined)
  // DEL of an attachment never added: nothing to do, and no error.
  await t.notThrowsAsync(rt.del({ containerId: `${a}-never`, netns: '', ifname: 'eth0' }))
})

asRoot('CHECK fails when the address is gone or the link is down, and names what is wrong', async (t) => {
  const net = network(t, bin)
  const ns = await makeNetns(t)
  const rt = net.runtime('1.1.0')
  const call = { containerId: `${ns}-c`, netns: `/run/netns/${ns}`, ifname: 'eth0' }
  const res = await rt.add(call)
  t.teardown(() => rt.del(call).catch(() => undefined))
  await t.notThrowsAsync(rt.check(call))
  await sh('ip', ['-n', ns, 'addr', 'del', res.ips[0].address, 'dev', 'eth0'])
  const err = await t.throwsAsync(rt.check(call), { instanceOf: CniCallError })
  t.regex(err!.message, new RegExp(`eth0 lacks ${res.ips[0].address.replace(/\./g, '\\.')}`))
  await sh('ip', ['-n', ns, 'addr', 'add', res.ips[0].address, 'dev', 'eth0'])
  await sh('ip', ['-n', ns, 'link', 'set', 'eth0', 'down'])
  const down = await t.throwsAsync(rt.check(call), { instanceOf: CniCallError })
  t.regex(down!.message, /eth0 in \/run\/netns\/\S+ is down/)
})

asRoot('GC (1.1.0) removes the attachments not in the valid list and releases their addresses; either key works', async (t) => {
  const net = network(t, bin)
  const [a, b, c] = [await makeNetns(t), await makeNetns(t), await makeNetns(t)]
  const rt = net.runtime('1.1.0')
  const calls = [a, b, c].map((ns) => ({ containerId: `${ns}-c`, netns: `/run/netns/${ns}`, ifname: 'eth0' }))
  const results = []
  for (const call of calls) results.push(await rt.add(call))
  t.teardown(async () => {
    for (const call of calls) await rt.del(call).catch(() => undefined)
  })
  const keep = { containerID: calls[0]!.containerId, ifname: 'eth0' }
  await rt.gc([keep, { containerID: calls[2]!.containerId, ifname: 'eth0' }], { key: 'old' })
  t.deepEqual(records(net).sort(), [`${calls[0]!.containerId}:eth0`, `${calls[2]!.containerId}:eth0`].sort())
  await rt.gc([keep], { key: 'valid' })
  t.deepEqual(records(net), [`${calls[0]!.containerId}:eth0`])
  t.deepEqual(reserved(net), [results[0].ips[0].address.split('/')[0]])
  t.is(await getLink('eth0', b), undefined)
  t.is(await getLink('eth0', c), undefined)
  t.truthy(await getLink('eth0', a), 'the valid attachment stays')
  t.deepEqual(await markedLinks(calls[1]!.containerId), [])
})

asRoot('STATUS (1.1.0): ready with host-local on CNI_PATH; 50 when the IPAM plugin is missing', async (t) => {
  const net = network(t, bin)
  await t.notThrowsAsync(net.runtime('1.1.0').status())
  const err = await t.throwsAsync(net.runtime('1.1.0', [net.plumb({ ipam: { type: 'pt-no-such-ipam' } })]).status(), { instanceOf: CniCallError })
  t.is(err!.code, 50)
  const old = await execPlugin(findInPath('plumb', [bin]), 'STATUS', {}, { cniVersion: '1.0.0', name: net.name, ...net.plumb() }, [bin])
  t.is(old.json?.code, 1, 'STATUS is 1.1.0 and later')
})

/**
 * The reference portmap plugin makes its top-level chains check-then-create, under a lock
 * (`iptables --wait`) that nftables' iptables does not take: two ADDs at once on a host without
 * them, one fails ("CHAIN_USER_ADD failed (File exists): chain CNI-HOSTPORT-DNAT", the race of
 * containernetworking/plugins#418). The chain cases below use it one at a time: each waits for
 * the one before to have run its teardown (its portmap DEL).
 */
let portmapTurn: Promise<void> = Promise.resolve()
function portmapTurnFor(t: ExecutionContext): Promise<void> {
  const before = portmapTurn
  let done!: () => void
  portmapTurn = new Promise((resolve) => (done = resolve))
  t.teardown(() => done()) // the first registered: ava runs it after the test's own
  return before
}

for (const version of ['0.3.1', '0.4.0', '1.0.0']) {
  asRoot(`${version} chains: plumb then tuning and portmap (prevResult in, passed on); the reference bridge then plumb on its own interface`, async (t) => {
    await portmapTurnFor(t)
    const net = network(t, bin)
    const ns = await makeNetns(t)
    const call = { containerId: `${ns}-c`, netns: `/run/netns/${ns}`, ifname: 'eth0' }
    const hostPort = 20000 + Math.floor(Math.random() * 20000)
    const rt = net.runtime(version, [net.plumb(), { type: 'tuning', mtu: 1400 }, { type: 'portmap', capabilities: { portMappings: true } }])
    const res = await rt.add(call, { portMappings: [{ hostPort, containerPort: 80, protocol: 'tcp' }] })
    t.teardown(() => rt.del(call, { portMappings: [{ hostPort, containerPort: 80, protocol: 'tcp' }] }).catch(() => undefined))
    t.is(res.cniVersion, version)
    t.is(res.interfaces.find((i: { sandbox?: string }) => i.sandbox).name, 'eth0', 'plumb\'s interfaces passed through tuning and portmap')
    t.is((await getLink('eth0', ns))?.mtu, 1400, 'tuning found plumb\'s interface in prevResult')
    const addr = res.ips[0].address.split('/')[0]
    const nat = await sh('iptables-save', ['-t', 'nat'])
    t.regex(nat, new RegExp(`--dport ${hostPort} .*-j DNAT --to-destination ${addr.replace(/\./g, '\\.')}:80`), 'portmap found plumb\'s address in prevResult')
    if (version !== '0.3.1') await t.notThrowsAsync(rt.check(call))
    await rt.del(call, { portMappings: [{ hostPort, containerPort: 80, protocol: 'tcp' }] })
    t.notRegex(await sh('iptables-save', ['-t', 'nat']), new RegExp(`--dport ${hostPort} `))
    t.is(await getLink('eth0', ns), undefined)

    // bridge (host-local on its own range) makes eth0; plumb adds net1 on its bridge.
    const refBridge = uniq('r', { dash: false })
    t.teardown(() => sh('ip', ['link', 'del', refBridge]).catch(() => undefined))
    const other = network(t, bin)
    const chain = net.runtime(version, [
      { type: 'bridge', bridge: refBridge, ipam: other.ipam },
      net.plumb({ ifname: 'net1', ipam: { ...net.ipam, routes: [] } }),
    ])
    const both = await chain.add(call)
    t.teardown(() => chain.del(call).catch(() => undefined))
    const names = both.interfaces.map((i: { name: string }) => i.name)
    t.true(names.includes('eth0') && names.includes('net1'), names.join(','))
    const net1At = both.interfaces.findIndex((i: { name: string; sandbox?: string }) => i.name === 'net1' && i.sandbox)
    const eth0At = both.interfaces.findIndex((i: { name: string; sandbox?: string }) => i.name === 'eth0' && i.sandbox)
    t.deepEqual(both.ips.map((i: { interface: number }) => i.interface), [eth0At, net1At])
    t.deepEqual(await addrsIn(ns, 'net1'), [both.ips[1].address])
    t.deepEqual(await addrsIn(ns, 'eth0'), [both.ips[0].address])
    await chain.del(call)
    t.is(await getLink('net1', ns), undefined)
    t.is(await getLink('eth0', ns), undefined)
  })
}

/** A network whose plumb config makes a macvlan child of a stand-in NIC, a netns, and the call for it. */
async function macvlanCase(t: ExecutionContext) {
  const net = network(t, bin)
  const ns = await makeNetns(t)
  const parent = uniq('p', { dash: false })
  await makeVethPair(t, parent, uniq('q', { dash: false }))
  const rt = net.runtime('1.0.0', [net.plumb({ op: 'macvlan', bridge: undefined, parent, mode: 'bridge' })])
  return { net, ns, rt, call: { containerId: `${ns}-c`, netns: `/run/netns/${ns}`, ifname: 'eth0' } }
}

asRoot('macvlan through CNI: a child of the stand-in NIC, born in the netns; DEL with the netns gone leaves nothing', async (t) => {
  const { net, ns, rt, call } = await macvlanCase(t)
  const res = await rt.add(call)
  const link = await getLink('eth0', ns)
  t.is(link?.linkinfo?.info_kind, 'macvlan')
  t.deepEqual(await addrsIn(ns, 'eth0'), [res.ips[0].address])
  await sh('ip', ['netns', 'del', ns])
  await t.notThrowsAsync(rt.del({ ...call, netns: '' }))
  t.deepEqual(reserved(net), [])
  t.deepEqual(records(net), [])
})

asRoot("a record's netns is told by its cookie too: with CNI_NETNS empty, DEL leaves a netns at the recorded path with the recorded inode and another cookie (a later netns given the freed inode), and takes it apart with the cookie matching or without one (an older record)", async (t) => {
  // macvlan: no host end, so only a DEL that looks inside the netns can remove it
  const { net, ns, rt, call } = await macvlanCase(t)
  await rt.add(call)
  const file = `${net.records}/${net.name}/${call.containerId}:eth0`
  const rec = JSON.parse(readFileSync(file, 'utf8')) as { nsIno: number; nsCookie?: number }
  const now = netnsAt(call.netns)!
  t.is(rec.nsIno, statSync(call.netns).ino)
  t.is(rec.nsCookie, now.cookie, 'ADD recorded the cookie of the netns it attached')
  // the inode of the netns there now, the cookie of another: what a reused inode looks like
  writeFileSync(file, JSON.stringify({ ...rec, nsCookie: now.cookie! + 1000 }))
  await rt.del({ ...call, netns: '' })
  t.is((await getLink('eth0', ns))?.linkinfo?.info_kind, 'macvlan', 'another netns: DEL did not look inside it')
  // a record of an older plumb (no cookie) goes by the inode; re-add the record the DEL removed
  writeFileSync(file, JSON.stringify({ ...rec, nsCookie: undefined }))
  await rt.del({ ...call, netns: '' })
  t.is(await getLink('eth0', ns), undefined, 'the same inode, no cookie to tell them apart: DEL took it apart')
  t.deepEqual(records(net), [])
})

asRoot('100 ADD+DEL cycles leave no address in host-local\'s store, no link and no record', async (t) => {
  t.timeout(300_000)
  const net = network(t, bin)
  const ns = await makeNetns(t)
  const rt = net.runtime('1.0.0')
  for (let i = 0; i < 100; i++) {
    const call = { containerId: `${ns}-${i}`, netns: `/run/netns/${ns}`, ifname: 'eth0' }
    await rt.add(call)
    await rt.del(call)
  }
  t.deepEqual(reserved(net), [])
  t.deepEqual(records(net), [])
  t.deepEqual((await ipJson(['link', 'show'], ns)).map((l) => l.ifname), ['lo'])
  const left = (await ipJson(['link', 'show'])).filter((l) => typeof l.ifalias === 'string' && l.ifalias.includes(` cni=${ns}-`))
  t.deepEqual(left, [])
  t.is(await getLink(net.bridge), undefined)
})

asRoot('move-dev through CNI (host-device): the stand-in NIC becomes the guest\'s eth0; DEL gives it back under its own name; plumb ls names the attachment', async (t) => {
  const net = network(t, bin)
  const ns = await makeNetns(t)
  const dev = uniq('d', { dash: false })
  await makeVethPair(t, dev, uniq('e', { dash: false }))
  const rt = net.runtime('1.0.0', [net.plumb({ op: 'move-dev', bridge: undefined, device: dev })])
  const call = { containerId: `${ns}-c`, netns: `/run/netns/${ns}`, ifname: 'eth0' }
  const res = await rt.add(call)
  t.teardown(() => rt.del(call).catch(() => undefined))
  t.is(await getLink(dev), undefined, 'moved out of the host')
  t.deepEqual(await addrsIn(ns, 'eth0'), [res.ips[0].address])
  const ls = await runCli(['ls', `netns:${ns}`, '--json'])
  t.deepEqual(ls.json.guests[0].interfaces[0].cni, { containerId: call.containerId, ifname: 'eth0' })
  await rt.del(call)
  t.truthy(await getLink(dev), 'back on the host under its old name')
  t.is(await getLink('eth0', ns), undefined)
  t.deepEqual(reserved(net), [])
})

asRoot('a kernel without 802.1q: the vlan op is CNI error 105 (unsupported here) and IPAM\'s address is released', async (t) => {
  const net = network(t, bin)
  const ns = await makeNetns(t)
  const parent = uniq('p', { dash: false })
  await makeVethPair(t, parent, uniq('q', { dash: false }))
  if (await probeLinkKind('vlan')) {
    t.log('this kernel has 802.1q: checking the success path instead')
    const res = await net.runtime('1.0.0', [net.plumb({ op: 'vlan', bridge: undefined, parent, vid: 10 })]).add({ containerId: `${ns}-c`, netns: `/run/netns/${ns}`, ifname: 'eth0' })
    t.is((await getLink('eth0', ns))?.linkinfo?.info_data?.id, 10)
    t.truthy(res.ips[0])
    return
  }
  const err = await t.throwsAsync(net.runtime('1.0.0', [net.plumb({ op: 'vlan', bridge: undefined, parent, vid: 10 })]).add({ containerId: `${ns}-c`, netns: `/run/netns/${ns}`, ifname: 'eth0' }), { instanceOf: CniCallError })
  t.is(err!.code, 105)
  t.regex(err!.run.json.msg, /no 802\.1q VLAN support/)
  t.deepEqual(reserved(net), [])
  t.deepEqual(records(net), [])
})

withOvs('ovs-port through CNI: the port row carries the attachment; DEL with the netns gone removes the row and the bridge plumb made', async (t) => {
  const net = network(t, bin)
  const ns = await makeNetns(t)
  const ovsBr = uniq('o', { dash: false })
  t.teardown(() => sh('ovs-vsctl', ['--timeout=10', '--if-exists', 'del-br', ovsBr]).then(() => undefined))
  const rt = net.runtime('1.0.0', [net.plumb({ op: 'ovs-port', bridge: ovsBr, createBridge: true, tag: 10 })])
  const call = { containerId: `${ns}-c`, netns: `/run/netns/${ns}`, ifname: 'eth0' }
  const res = await rt.add(call)
  const hostEnd = res.interfaces.find((i: { sandbox?: string }) => !i.sandbox).name
  const ids = await sh('ovs-vsctl', ['--timeout=10', 'get', 'port', hostEnd, 'external_ids'])
  t.regex(ids, new RegExp(`plumb-cni=${call.containerId.replace(/-/g, '\\-')}`))
  t.regex(ids, /plumb-cniif=eth0/)
  t.is(await sh('ovs-vsctl', ['--timeout=10', 'get', 'port', hostEnd, 'tag']), '10')
  await sh('ip', ['netns', 'del', ns])
  await rt.del({ ...call, netns: '' })
  t.is((await sh('ovs-vsctl', ['--timeout=10', 'list-ports', ovsBr]).catch(() => '')).trim(), '')
  t.not((await sh('ovs-vsctl', ['--timeout=10', 'br-exists', ovsBr]).then(() => 0, () => 2)), 0, 'the OVS bridge plumb made went with its last port')
  t.deepEqual(reserved(net), [])
})
