// linkFromWire and addrFromWire (plumb's direct reads of RTM_NEWLINK and RTM_NEWADDR payloads)
// against `ip -j -d link show` and `ip -j addr show`, on real dumps: the host's links plus a bridge
// carrying an alias, an enslaved veth pair and a private-mode macvlan made for the test; the
// addresses of a netns made for the test (IPv4 and IPv6, permanent and with lifetimes, a peer
// address): every field, as ip reads them.

import test from 'ava'
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { FlagsGet } from '../../lib/kernel/netlink.js'
import { addrFromWire, linkFromWire } from '../../lib/kernel/parse.js'
import { RtSocket } from '../../lib/kernel/socket.js'
import { closeFd, openNetnsFd, withNetns } from '../../lib/kernel/index.js'
import type { AddrInfo, LinkInfo } from '../../lib/kernel/types.js'

const root = process.geteuid?.() === 0
const maybe = root ? test : test.skip
const ip = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8' })

interface IpLink {
  ifindex: number
  ifname: string
  mtu: number
  flags: string[]
  operstate: string
  link_type: string
  address?: string
  master?: string
  ifalias?: string
  link?: string | null
  link_index?: number
  link_netnsid?: number
  linkinfo?: {
    info_kind?: string
    info_slave_kind?: string
    info_data?: { mode?: string; id?: number; local?: string; local6?: string; link?: string; port?: number; learning?: boolean }
    info_slave_data?: { isolated?: boolean }
  }
}

/** What `ip -j -d` says of a link, in LinkInfo's terms. */
function fromIp(l: IpLink, byName: Map<string, number>): LinkInfo {
  const info: LinkInfo = { index: l.ifindex, name: l.ifname, mtu: l.mtu, up: l.flags.includes('UP'), operState: l.operstate, linkType: l.link_type }
  if (l.address && /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(l.address)) info.mac = l.address
  if (l.master) info.master = byName.get(l.master)!
  if (l.ifalias) info.alias = l.ifalias
  if (typeof l.link === 'string') info.link = byName.get(l.link)!
  if (l.link_index !== undefined) info.link = l.link_index
  if (l.link_netnsid !== undefined) info.linkNetnsId = l.link_netnsid
  const li = l.linkinfo
  if (li?.info_kind) info.kind = li.info_kind
  if (li?.info_slave_kind) info.slaveKind = li.info_slave_kind
  if (li?.info_kind === 'macvlan' && li.info_data?.mode) info.macvlanMode = li.info_data.mode as LinkInfo['macvlanMode']
  if (li?.info_kind === 'vlan' && li.info_data?.id !== undefined) info.vlanId = li.info_data.id
  // (another test's VXLAN port may be on the host while this one reads it)
  if (li?.info_kind === 'vxlan' && li.info_data) {
    const d = li.info_data
    const local = d.local ?? d.local6
    info.vxlan = { vni: d.id ?? 0, port: d.port ?? 0, learning: d.learning ?? true, ...(local ? { local } : {}), ...(d.link ? { dev: byName.get(d.link)! } : {}) }
  }
  if (li?.info_slave_kind === 'bridge' && li.info_slave_data?.isolated !== undefined) info.isolated = li.info_slave_data.isolated
  return info
}

maybe('linkFromWire reads every link of a real dump as `ip -j -d link show` does', async (t) => {
  const id = `pt${randomBytes(3).toString('hex')}`
  ip('link', 'add', `${id}b`, 'type', 'bridge')
  t.teardown(() => {
    for (const n of [`${id}m`, `${id}a`, `${id}b`]) {
      try {
        ip('link', 'del', n)
      } catch {
        // gone with its peer or parent
      }
    }
  })
  ip('link', 'set', `${id}b`, 'alias', 'plumb:1 role=bridge op=attach-veth br=x%20y')
  ip('link', 'add', `${id}a`, 'mtu', '1400', 'master', `${id}b`, 'up', 'type', 'veth', 'peer', 'name', `${id}p`)
  ip('link', 'add', `${id}m`, 'link', `${id}p`, 'type', 'macvlan', 'mode', 'private')
  ip('link', 'set', `${id}a`, 'type', 'bridge_slave', 'isolated', 'on')

  const sock = new RtSocket()
  t.teardown(() => sock.close())
  // RTM_GETLINK dump without stats (IFLA_EXT_MASK), as plumb asks
  const dump = async (): Promise<LinkInfo[]> =>
    (await sock.request(18, [Buffer.alloc(16), Buffer.from([8, 0, 29, 0, 8, 0, 0, 0])], FlagsGet.DUMP, { op: 'RTM_GETLINK' })).filter((m) => m.type === 16).map((m) => linkFromWire(m.data))
  // ip's read between two of ours: a link other tests made, removed or changed (a bridge set up)
  // meanwhile reads differently in our two dumps and is left out; every other link is compared
  const ours = await dump()
  const theirs = JSON.parse(ip('-j', '-d', 'link', 'show')) as IpLink[]
  const after = new Map((await dump()).map((l) => [l.index, JSON.stringify(l)]))
  const byName = new Map(theirs.map((l) => [l.ifname, l.ifindex]))
  let compared = 0
  for (const l of theirs) {
    const o = ours.find((x) => x.index === l.ifindex)
    if (!o || after.get(l.ifindex) !== JSON.stringify(o)) continue
    t.deepEqual(o, fromIp(l, byName), l.ifname)
    compared++
  }
  t.true(compared >= 4, `compared ${compared} links`) // lo and the three made here at least
  // the links made here are among them, with the fields this test is about
  const mine = new Map(ours.map((l) => [l.name, l]))
  t.like(mine.get(`${id}b`), { kind: 'bridge', alias: 'plumb:1 role=bridge op=attach-veth br=x%20y' })
  t.like(mine.get(`${id}a`), { mtu: 1400, master: mine.get(`${id}b`)!.index, slaveKind: 'bridge', isolated: true, link: mine.get(`${id}p`)!.index, up: true })
  t.like(mine.get(`${id}m`), { kind: 'macvlan', macvlanMode: 'private', link: mine.get(`${id}p`)!.index })
})

interface IpAddr {
  ifindex: number
  addr_info: Array<{ family: 'inet' | 'inet6'; local: string; prefixlen: number; valid_life_time: number; preferred_life_time: number; dynamic?: boolean }>
}

maybe('addrFromWire reads every address of a real dump as `ip -j addr show` does', async (t) => {
  const ns = `pt-${randomBytes(3).toString('hex')}`
  ip('netns', 'add', ns)
  t.teardown(() => ip('netns', 'del', ns))
  const inNs = (...args: string[]): string => ip('-n', ns, ...args)
  inNs('link', 'add', 'd0', 'type', 'veth', 'peer', 'name', 'd1') // (no dummy module in TESTBED's kernel)
  inNs('link', 'set', 'd0', 'up')
  inNs('link', 'set', 'd1', 'up')
  inNs('link', 'set', 'lo', 'up')
  inNs('addr', 'add', '198.18.40.2/24', 'dev', 'd0')
  inNs('addr', 'add', '198.18.41.2', 'peer', '198.18.41.9/32', 'dev', 'd0')
  inNs('addr', 'add', '2001:db8:40::2/64', 'dev', 'd0', 'nodad')
  inNs('addr', 'add', '2001:db8:41::2/64', 'dev', 'd0', 'nodad', 'valid_lft', '600', 'preferred_lft', '300')

  const fd = openNetnsFd(`/run/netns/${ns}`)
  const sock = withNetns(fd, () => new RtSocket())
  closeFd(fd)
  t.teardown(() => sock.close())
  // RTM_GETADDR dump of every family in the netns
  const ours = (await sock.request(22, [Buffer.alloc(8)], FlagsGet.DUMP, { op: 'RTM_GETADDR' })).filter((m) => m.type === 20).map((m) => addrFromWire(m.data)!)
  const theirs = (JSON.parse(inNs('-j', 'addr', 'show')) as IpAddr[]).flatMap((l) =>
    l.addr_info.map((a): AddrInfo => {
      const info: AddrInfo = { index: l.ifindex, family: a.family === 'inet' ? 4 : 6, address: a.local, prefix: a.prefixlen, permanent: !a.dynamic }
      if (a.valid_life_time !== 4294967295) info.validLft = a.valid_life_time
      if (a.preferred_life_time !== 4294967295) info.preferredLft = a.preferred_life_time
      return info
    }),
  )
  // lifetimes count down between the two reads: every other field compared exactly, lifetimes within 2 s
  const key = (a: AddrInfo): string => `${a.index} ${a.address}/${a.prefix}`
  const fixed = (l: AddrInfo[]): unknown[] => l.map(({ validLft, preferredLft, ...a }) => ({ ...a, validLft: validLft !== undefined, preferredLft: preferredLft !== undefined })).sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y)))
  t.deepEqual(fixed(ours), fixed(theirs))
  for (const a of ours) {
    const b = theirs.find((x) => key(x) === key(a))!
    t.true(Math.abs((a.validLft ?? 0) - (b.validLft ?? 0)) <= 2 && Math.abs((a.preferredLft ?? 0) - (b.preferredLft ?? 0)) <= 2, key(a))
  }
  t.true(ours.some((a) => a.address === '198.18.41.2' && a.prefix === 32), 'IFA_LOCAL, not the peer')
  t.true(ours.some((a) => a.address === '2001:db8:41::2' && a.validLft !== undefined && !a.permanent))
  t.true(ours.length >= 6, `${ours.length} addresses`) // lo's two, d0's four and its link-local
})
