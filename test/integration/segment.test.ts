// Issue 8, item 12: an address already used on the same L2 segment is a conflict (exit 4) that
// names its holder, found before anything is touched: another guest on the Linux bridge (by
// plumb's mark, or by netns id for a port plumb did not make), the bridge's own address, the
// guests on the same VLAN of an OVS bridge (not another VLAN's), a macvlan's parent.

import type { ExecutionContext } from 'ava'
import { hasOvs, isRoot, makeBridge, makeOvsBridge, makeVethPair, sh, shQuiet, testIf, NETNS_TEARDOWN_MS, waitFor } from '../helpers/index.js'
import { closeFd, openHostHandle, openNetnsFd } from '../../lib/kernel/index.js'
import type { LinkInfo, NetHandle } from '../../lib/kernel/types.js'
import { addressHolders, prefetchSegment } from '../../lib/ops/segment.js'
import { parseIpSpec } from '../../lib/parse/index.js'
import { fixture, plumb } from './ops-fixture.js'
import { extraGuest, nicWithFarEnd, ovsBridgeName, worldView } from './links-fixture.js'

const asRoot = testIf(isRoot, 'segment: needs root (ip netns, links)')
const withOvs = testIf(isRoot && hasOvs(), 'segment: needs root and a running Open vSwitch')

const re = (s: string): RegExp => new RegExp(s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))

asRoot('Linux bridge: a second guest with the same address (v4 or v6, any prefix) is exit 4 naming the first; nothing changed; another address is fine', async (t) => {
  const f = await fixture(t)
  const b = await extraGuest(t, f, 'b')
  const first = await plumb('attach-veth', f.guest, f.br, f.v4(10), f.v6(10), '--json')
  t.is(first.exitCode, 0, first.stderr)
  const port = first.json.interfaces[0].name as string
  const before = await worldView(f.id, [f.ns, b.ns])

  for (const addrs of [[f.v4(10)], [f.v4(10, 16)], [f.v4(11), f.v6(10)]]) {
    for (const dry of [[], ['--dry-run']]) {
      const r = await plumb('attach-veth', b.guest, f.br, ...addrs, ...dry)
      t.is(r.exitCode, 4, `${addrs.join(' ')} ${dry.join(' ')}: ${r.stderr}`)
      t.regex(r.stderr, re(`plumb: address already in use on bridge ${f.br}: `))
      t.regex(r.stderr, re(`is used by ${f.guest} eth1 (port ${port})`))
      t.regex(r.stderr, /^hint: /m)
    }
  }
  t.deepEqual(await worldView(f.id, [f.ns, b.ns]), before, 'nothing changed')

  const ok = await plumb('attach-veth', b.guest, f.br, f.v4(11), f.v6(11))
  t.is(ok.exitCode, 0, ok.stderr)
  // the first guest's re-run is still "already" (its own address is not a conflict with itself)
  const again = await plumb('attach-veth', f.guest, f.br, f.v4(10), f.v6(10))
  t.is(again.exitCode, 0, again.stderr)
  t.regex(again.stdout, /already/)
})

asRoot("Linux bridge: the bridge's own address, and a guest behind a port plumb did not make (named by netns id)", async (t) => {
  const f = await fixture(t)
  const br = await makeBridge(t, f.br)
  await sh('ip', ['addr', 'add', f.v4(1), 'dev', br])
  const other = await extraGuest(t, f, 'o')
  await makeVethPair(t, `${f.id}x`, 'eth0', other.ns)
  await sh('ip', ['link', 'set', `${f.id}x`, 'master', br])
  await sh('ip', ['-n', other.ns, 'addr', 'add', f.v4(20), 'dev', 'eth0'])
  const before = await worldView(f.id, [f.ns])

  const own = await plumb('attach-veth', f.guest, br, f.v4(1))
  t.is(own.exitCode, 4, own.stderr)
  t.regex(own.stderr, re(`${f.v4(1).split('/')[0]} is used by the bridge ${br} itself`))
  const foreign = await plumb('attach-veth', f.guest, br, f.v4(20))
  t.is(foreign.exitCode, 4, foreign.stderr)
  t.regex(foreign.stderr, new RegExp(`is used by the guest behind port ${f.id}x \\(netns id \\d+\\)`))
  t.deepEqual(await worldView(f.id, [f.ns]), before)
  t.is((await plumb('attach-veth', f.guest, br, f.v4(21))).exitCode, 0)
})

withOvs('OVS: the same address on the same VLAN is exit 4 naming the holder; on another VLAN it is another segment', async (t) => {
  const f = await fixture(t)
  const br = ovsBridgeName(t, f)
  const b = await extraGuest(t, f, 'b')
  const c = await extraGuest(t, f, 'c')
  const first = await plumb('ovs-port', f.guest, br, f.v4(10), '--tag', '10', '--create-bridge', '--json')
  t.is(first.exitCode, 0, first.stderr)
  const port = first.json.interfaces[0].name as string
  const before = await worldView(f.id, [f.ns, b.ns, c.ns], { ovs: true })

  for (const argv of [['ovs-port', b.guest, br, f.v4(10), '--tag', '10'], ['attach-veth', b.guest, br, f.v4(10), '--vlan', '10'], ['vlan', b.guest, br, '10', f.v4(10)]]) {
    const r = await plumb(...argv)
    t.is(r.exitCode, 4, `${argv.join(' ')}: ${r.stderr}`)
    t.regex(r.stderr, re(`address already in use on OVS bridge ${br} (VLAN 10): ${f.v4(10).split('/')[0]} is used by ${f.guest} eth1 (port ${port})`))
  }
  t.deepEqual(await worldView(f.id, [f.ns, b.ns, c.ns], { ovs: true }), before, 'nothing changed')
  const otherVlan = await plumb('ovs-port', c.guest, br, f.v4(10), '--tag', '20')
  t.is(otherVlan.exitCode, 0, otherVlan.stderr)
})

withOvs("OVS: the bridge's own (local port) address is taken for untagged ports", async (t) => {
  const f = await fixture(t)
  const br = await makeOvsBridge(t, `${f.id}o`)
  await sh('ip', ['addr', 'add', f.v4(1), 'dev', br])
  const r = await plumb('ovs-port', f.guest, br, f.v4(1))
  t.is(r.exitCode, 4, r.stderr)
  t.regex(r.stderr, re(`is used by the bridge ${br} itself`))
})

asRoot("macvlan: the parent's own address (the host's, on the same LAN) is exit 4", async (t) => {
  const f = await fixture(t)
  const { nic } = await nicWithFarEnd(t, f)
  await sh('ip', ['addr', 'add', f.v4(5), 'dev', nic])
  const before = await worldView(f.id, [f.ns])
  const r = await plumb('macvlan', f.guest, nic, f.v4(5))
  t.is(r.exitCode, 4, r.stderr)
  t.regex(r.stderr, re(`address already in use on the LAN of ${nic}: ${f.v4(5).split('/')[0]} is used by the parent ${nic} itself`))
  t.deepEqual(await worldView(f.id, [f.ns]), before)
})

asRoot('a port whose guest netns is being dismantled (its netns id names no netns any more: EINVAL) holds no address: the check goes on', async (t) => {
  const hostNs = openHostHandle()
  t.teardown(() => hostNs.close())
  const gone = 2_000_000_000 // a netns id nothing has
  const e = await t.throwsAsync(hostNs.getAddrs({ netnsId: gone }))
  t.regex(e!.message, /EINVAL/, 'the kernel answers EINVAL for it')
  const port = { index: 999_999, name: 'pt-gone', mtu: 1500, up: true, operState: 'DOWN', link: 2, linkNetnsId: gone }
  const wanted = [parseIpSpec('198.18.0.10/24')].filter((ip) => ip.kind === 'static')
  t.deepEqual(await addressHolders(hostNs, wanted as Parameters<typeof addressHolders>[1], undefined, [port]), [])
})

asRoot("a veth the checking handle makes itself is known without reading its guest: an address another program gives the new peer is seen", async (t) => {
  const { hostNs, dumps } = handleCounting(t, (method, filter) => method === 'getAddrs' && filter?.netnsId !== undefined)
  const f = await fixture(t)
  const br = await makeBridge(t, f.br)
  const bridge = (await hostNs.getLink(br))!
  const holders = async (cidr: string): Promise<string[]> => {
    const wanted = [parseIpSpec(cidr)].filter((ip) => ip.kind === 'static') as Parameters<typeof addressHolders>[1]
    return (await addressHolders(hostNs, wanted, undefined, await hostNs.getLinks({ master: bridge.index }))).map((h) => h.holder)
  }
  t.deepEqual(await holders(f.v4(20)), [], 'an empty bridge (the cache is made)')
  const g = await extraGuest(t, f, 'n')
  const nsFd = openNetnsFd(`/run/netns/${g.ns}`)
  t.teardown(() => closeFd(nsFd))
  const made = await hostNs.createVeth({ name: `${f.id}n`, master: bridge.index, up: true, peer: { name: 'eth5', nsFd } })
  t.teardown(() => shQuiet('ip', ['link', 'del', `${f.id}n`]))
  t.deepEqual(await holders(f.v4(20)), [])
  t.is(dumps(), 0, 'the new peer was not read')
  await sh('ip', ['-n', g.ns, 'addr', 'add', f.v4(20), 'dev', 'eth5'])
  await sh('ip', ['-n', g.ns, 'link', 'set', 'eth5', 'up'])
  t.deepEqual(await holders(f.v4(20)), [`the guest behind port ${f.id}n (netns id ${(await hostNs.getLinkByIndex(made.index))!.linkNetnsId})`])
  t.is(dumps(), 0, 'nor read since')
})

/** A host handle of the test's own whose dumps of one kind (the caches' reads) are counted. */
function handleCounting(t: ExecutionContext, counted: (method: 'getAddrs' | 'getLinks', filter: { netnsId?: number; master?: number } | undefined) => boolean): { hostNs: NetHandle; dumps: () => number } {
  const hostNs = openHostHandle()
  t.teardown(() => hostNs.close())
  let dumps = 0
  const getAddrs = hostNs.getAddrs.bind(hostNs)
  const getLinks = hostNs.getLinks.bind(hostNs)
  hostNs.getAddrs = (filter) => {
    if (counted('getAddrs', filter)) dumps++
    return getAddrs(filter)
  }
  hostNs.getLinks = (filter) => {
    if (counted('getLinks', filter)) dumps++
    return getLinks(filter)
  }
  return { hostNs, dumps: () => dumps }
}

asRoot("one process's checks of a segment read each guest once, then follow the kernel: an address another program adds or deletes is seen, and a netns id taken back and given to another netns forgets the old one's", async (t) => {
  const { hostNs, dumps } = handleCounting(t, (method, filter) => method === 'getAddrs' && filter?.netnsId !== undefined)
  const f = await fixture(t)
  const br = await makeBridge(t, f.br)
  const holders = async (cidr: string): Promise<string[]> => {
    const wanted = [parseIpSpec(cidr)].filter((ip) => ip.kind === 'static') as Parameters<typeof addressHolders>[1]
    return (await addressHolders(hostNs, wanted, undefined, await hostNs.getLinks({ master: (await hostNs.getLink(br))!.index }))).map((h) => h.holder)
  }
  /** a guest behind a port another program made, its netns given id 4242, eth0 holding `cidr` */
  const guestBehind = async (suffix: string, cidr: string): Promise<{ ns: string; port: LinkInfo }> => {
    const g = await extraGuest(t, f, suffix)
    await sh('ip', ['netns', 'set', g.ns, '4242'])
    await makeVethPair(t, `${f.id}${suffix}`, 'eth0', g.ns)
    await sh('ip', ['link', 'set', `${f.id}${suffix}`, 'master', br])
    await sh('ip', ['-n', g.ns, 'addr', 'add', cidr, 'dev', 'eth0'])
    const port = (await hostNs.getLink(`${f.id}${suffix}`))!
    t.is(port.linkNetnsId, 4242)
    return { ns: g.ns, port }
  }
  const { ns: a, port: portA } = await guestBehind('a', f.v4(10))

  t.deepEqual(await holders(f.v4(10)), [`the guest behind port ${f.id}a (netns id 4242)`])
  t.is(dumps(), 1, 'the first check reads the guest')
  t.deepEqual(await holders(f.v4(11)), [])
  // (deleted first: deleting a primary address deletes its secondaries with it)
  await sh('ip', ['-n', a, 'addr', 'del', f.v4(10), 'dev', 'eth0'])
  await sh('ip', ['-n', a, 'addr', 'add', f.v4(11), 'dev', 'eth0'])
  t.deepEqual(await holders(f.v4(11)), [`the guest behind port ${f.id}a (netns id 4242)`], 'an address added since is seen')
  t.deepEqual(await holders(f.v4(10)), [], 'an address deleted since is gone')
  t.is(dumps(), 1, 'without reading the guest again')

  // netns id 4242 taken back (its netns deleted), then given to another netns whose peer has the same ifindex
  await sh('ip', ['netns', 'del', a])
  await waitFor(async () => (await shQuiet('ip', ['link', 'show', `${f.id}a`])).exitCode !== 0, { what: 'the port of the deleted netns to go', timeout: NETNS_TEARDOWN_MS })
  const { port: portB } = await guestBehind('c', f.v4(12))
  t.is(portB.link, portA.link, 'the new peer has the old one\'s ifindex')
  t.deepEqual(await holders(f.v4(11)), [], "the old netns's address is forgotten")
  t.deepEqual(await holders(f.v4(12)), [`the guest behind port ${f.id}c (netns id 4242)`])
  t.is(dumps(), 2, 'the new netns is read once')
})

asRoot("one process's checks of a bridge read its ports once, then follow the kernel: a port another program adds (with an address behind it) is seen, one it removes or moves to another bridge is gone", async (t) => {
  const { hostNs, dumps } = handleCounting(t, (method, filter) => method === 'getLinks' && filter?.master !== undefined)
  const f = await fixture(t)
  const br = await makeBridge(t, f.br)
  const other = await makeBridge(t, `${f.id}o`)
  const brIndex = (await hostNs.getLink(br))!.index
  // as attach-veth asks: the cached ports
  const holders = async (cidr: string): Promise<string[]> => {
    const wanted = [parseIpSpec(cidr)].filter((ip) => ip.kind === 'static') as Parameters<typeof addressHolders>[1]
    return (await addressHolders(hostNs, wanted, undefined, await hostNs.portsOf(brIndex))).map((h) => h.holder)
  }
  const guestBehind = async (suffix: string, cidr: string): Promise<string> => {
    const g = await extraGuest(t, f, suffix)
    await makeVethPair(t, `${f.id}${suffix}`, 'eth0', g.ns)
    await sh('ip', ['-n', g.ns, 'addr', 'add', cidr, 'dev', 'eth0'])
    return `${f.id}${suffix}`
  }
  t.deepEqual(await holders(f.v4(10)), [])
  t.is(dumps(), 1, 'the first check reads the ports')

  const a = await guestBehind('x', f.v4(10))
  await sh('ip', ['link', 'set', a, 'master', br])
  const held = await holders(f.v4(10))
  t.is(held.length, 1, 'a port added since is seen')
  t.regex(held[0] ?? '', re(`the guest behind port ${a} (netns id `))
  const b = await guestBehind('y', f.v4(11))
  await sh('ip', ['link', 'set', b, 'master', br])
  t.is((await holders(f.v4(11))).length, 1)
  await sh('ip', ['link', 'set', a, 'master', other])
  t.deepEqual(await holders(f.v4(10)), [], 'a port moved to another bridge is gone')
  await sh('ip', ['link', 'del', b])
  t.deepEqual(await holders(f.v4(11)), [], 'a port deleted is gone')
  t.is(dumps(), 1, 'without reading the ports again')
})

asRoot("a prefetch (the CNI plugin's, beside its IPAM call) reads the bridge's ports and each guest once: the check after it reads nothing more and sees what changed in between; a bridge that is not there is no error", async (t) => {
  const { hostNs, dumps } = handleCounting(t, (method, filter) => (method === 'getAddrs' && filter?.netnsId !== undefined) || (method === 'getLinks' && filter?.master !== undefined))
  const f = await fixture(t)
  const br = await makeBridge(t, f.br)
  const g = await extraGuest(t, f, 'p')
  await makeVethPair(t, `${f.id}p`, 'eth0', g.ns)
  await sh('ip', ['link', 'set', `${f.id}p`, 'master', br])
  await sh('ip', ['-n', g.ns, 'addr', 'add', f.v4(10), 'dev', 'eth0'])
  prefetchSegment(hostNs, br, [4])
  await waitFor(() => dumps() === 2 || undefined, { what: "the prefetch's reads of the ports and the guest" })
  // an address another program gives the guest after the prefetch read it
  await sh('ip', ['-n', g.ns, 'addr', 'add', f.v4(11), 'dev', 'eth0'])
  const bridge = (await hostNs.getLink(br))!
  // as attach-veth asks
  const holders = async (cidr: string): Promise<string[]> => {
    const wanted = [parseIpSpec(cidr)].filter((ip) => ip.kind === 'static') as Parameters<typeof addressHolders>[1]
    return (await addressHolders(hostNs, wanted, { index: bridge.index, holder: `the bridge ${br} itself` }, await hostNs.portsOf(bridge.index))).map((h) => h.holder)
  }
  for (const cidr of [f.v4(10), f.v4(11)]) t.regex((await holders(cidr))[0] ?? '', re(`the guest behind port ${f.id}p (netns id `), cidr)
  t.deepEqual(await holders(f.v4(12)), [])
  t.is(dumps(), 2, 'the checks read nothing the prefetch had read')
  prefetchSegment(hostNs, `${f.id}none`, [4])
  t.deepEqual(await holders(f.v4(12)), [])
})
