// VXLAN overlays between "hosts" that are network namespaces on one underlay switch (a bridge in
// its own netns), plumb run inside each host netns as that host's plumb: every guest reaches
// every other across the overlay (ping, TCP, UDP, a full-size frame with DF set), a third host
// joins by a remote, and removing a remote cuts exactly that host off.

import test from 'ava'
import type { ExecutionContext } from 'ava'
import { randomInt } from 'node:crypto'
import { execa } from 'execa'
import { hasOvs, isRoot, makeNetns, runCli, sh, shQuiet, uniq, holdGcLock, assertTraffic } from '../helpers/index.js'
import type { CliResult } from '../helpers/index.js'
import { addrsOf } from './ops-fixture.js'
import { plumbIn } from './links-fixture.js'

const rootTest = isRoot ? test : test.skip
const ovsTest = isRoot && hasOvs() ? test : test.skip

interface Host {
  ns: string
  addr: string
  guests: Array<{ ns: string; ip: string }>
  plumb(...args: string[]): Promise<CliResult>
}

interface Overlay {
  id: string
  br: string
  hosts: Host[]
  /** third octet of the guests' subnet */
  sub: number
  /** add host number n (1-based) to the underlay, with `guests` guests on its bridge */
  addHost(n: number, guests: number): Promise<Host>
}

/**
 * An underlay switch (a bridge in netns `${id}u`) and host netns `${id}hN` plugged into it at
 * 198.18.U.N/24; each host's guests live on its bridge at 198.18.S.(10N+G)/24.
 */
async function overlay(t: ExecutionContext): Promise<Overlay> {
  const id = uniq()
  const underOctet = randomInt(2, 120)
  const sub = randomInt(130, 250)
  const sw = await makeNetns(t, { name: `${id}u` })
  await sh('ip', ['-n', sw, 'link', 'add', 'ub', 'type', 'bridge'])
  await sh('ip', ['-n', sw, 'link', 'set', 'ub', 'up'])
  const br = 'br0'
  const o: Overlay = {
    id,
    br,
    hosts: [],
    sub,
    async addHost(n, guests) {
      const ns = await makeNetns(t, { name: `${id}h${n}` })
      await sh('ip', ['link', 'add', `${id}s${n}`, 'netns', sw, 'type', 'veth', 'peer', 'name', 'under', 'netns', ns])
      await sh('ip', ['-n', sw, 'link', 'set', `${id}s${n}`, 'master', 'ub', 'up'])
      const addr = `198.18.${underOctet}.${n}`
      await sh('ip', ['-n', ns, 'addr', 'add', `${addr}/24`, 'dev', 'under'])
      await sh('ip', ['-n', ns, 'link', 'set', 'under', 'up'])
      const host: Host = { ns, addr, guests: [], plumb: (...args) => plumbIn(ns, ...args) }
      for (let g = 1; g <= guests; g++) {
        const gns = await makeNetns(t, { name: `${id}g${n}${g}` })
        const ip = `198.18.${sub}.${10 * n + g}`
        host.guests.push({ ns: gns, ip })
      }
      o.hosts.push(host)
      return host
    },
  }
  return o
}

const ok = (t: ExecutionContext, r: CliResult, what: string): void => {
  t.is(r.exitCode, 0, `${what}: ${r.stderr}`)
}

/** ping (with a payload of `size` bytes and DF set when given) from one netns to an address */
async function pings(from: string, to: string, size?: number): Promise<boolean> {
  const args = ['netns', 'exec', from, 'ping', '-n', '-q', '-c', '2', '-i', '0.2', '-W', '1', '-w', '3', ...(size ? ['-M', 'do', '-s', String(size)] : []), to]
  return (await execa('ip', args, { reject: false })).exitCode === 0
}

async function attachGuests(t: ExecutionContext, h: Host, br: string): Promise<void> {
  for (const g of h.guests) ok(t, await h.plumb('attach-veth', `netns:${g.ns}`, br, `${g.ip}/24`), `attach ${g.ns}`)
  t.teardown(async () => {
    for (const g of h.guests) await h.plumb('detach', `netns:${g.ns}`, '--all')
    await h.plumb('vxlan', br, '--vni', '42', '--del')
  })
}

rootTest('two hosts: every guest reaches every other across the overlay (ping, TCP, UDP, 1422 bytes with DF); MTU, learning, port and flood entries read back', async (t) => {
  const o = await overlay(t)
  const [h1, h2] = [await o.addHost(1, 2), await o.addHost(2, 2)]
  ok(t, await h1.plumb('vxlan', o.br, '--vni', '42', '--remote', h2.addr), 'vxlan on h1')
  ok(t, await h2.plumb('vxlan', o.br, '--vni', '42', '--remote', h1.addr), 'vxlan on h2')
  // guests attached afterwards inherit the overlay's MTU
  await attachGuests(t, h1, o.br)
  await attachGuests(t, h2, o.br)

  const vx = JSON.parse(await sh('ip', ['-n', h1.ns, '-j', '-d', 'link', 'show', 'vx42']))[0]
  t.is(vx.linkinfo.info_kind, 'vxlan')
  t.is(vx.linkinfo.info_data.id, 42)
  t.is(vx.linkinfo.info_data.port, 4789, 'IANA port, not the kernel default 8472')
  t.false(vx.linkinfo.info_data.learning, 'learning off')
  t.is(vx.mtu, 1450, 'underlay 1500 - 50')
  t.is(vx.master, o.br)
  t.regex(String(vx.ifalias), /^plumb:1 role=port op=vxlan /)
  const br = JSON.parse(await sh('ip', ['-n', h1.ns, '-j', 'link', 'show', o.br]))[0]
  t.is(br.mtu, 1450, "the bridge carries the overlay's MTU")
  const guestEth = JSON.parse(await sh('ip', ['-n', h1.guests[0]!.ns, '-j', 'link', 'show', 'eth1']))[0]
  t.is(guestEth.mtu, 1450, 'a guest attached afterwards gets it too')
  const fdb = JSON.parse(await sh('ip', ['netns', 'exec', h1.ns, 'bridge', '-j', 'fdb', 'show', 'dev', 'vx42'])) as Array<{ mac: string; dst?: string; state?: string }>
  t.deepEqual(fdb.filter((e) => e.mac === '00:00:00:00:00:00').map((e) => [e.dst, e.state]), [[h2.addr, 'permanent']])

  for (const a of [...h1.guests, ...h2.guests]) {
    for (const b of [...h1.guests, ...h2.guests]) {
      if (a === b) continue
      t.true(await pings(a.ns, b.ip), `${a.ns} -> ${b.ip} ping`)
    }
  }
  for (const [a, b] of [
    [h1.guests[0]!, h2.guests[1]!],
    [h2.guests[0]!, h1.guests[1]!],
  ] as const) {
    t.true(await pings(a.ns, b.ip, 1422), `${a.ns} -> ${b.ip}: a 1450-byte packet with DF set crosses`)
    t.false(await pings(a.ns, b.ip, 1423), `${a.ns} -> ${b.ip}: 1451 bytes with DF do not fit the guest's MTU`)
    await assertTraffic(t, a.ns, b.ns, b.ip, `${a.ns} -> ${b.ip}`)
  }

  const ls = await h1.plumb('ls', '--json')
  ok(t, ls, 'ls')
  const bridge = (JSON.parse(ls.stdout) as { bridges: Array<{ name: string; overlays?: Array<{ vni: number; remotes: string[]; mtu: number; dstport: number }> }> }).bridges.find((b) => b.name === o.br)
  t.like(bridge?.overlays?.[0], { vni: 42, remotes: [h2.addr], mtu: 1450, dstport: 4789 })

  const again = await h1.plumb('vxlan', o.br, '--vni', '42', '--remote', h2.addr)
  ok(t, again, 'rerun')
  t.regex(again.stdout, /already so/)

  // a guest asking for more than the overlay carries is told
  const big = await makeNetns(t, { name: `${o.id}gb` })
  const r = await h1.plumb('attach-veth', `netns:${big}`, o.br, `198.18.${o.sub}.99/24`, '--mtu', '1500')
  ok(t, r, 'attach with --mtu 1500')
  t.regex(r.stdout, /warning: MTU 1500 is more than bridge br0 carries \(1450\)/)
  ok(t, await h1.plumb('detach', `netns:${big}`, '--all'), 'detach the big one')
})

rootTest('a third host joins by adding a remote; removing a remote cuts exactly that host off', async (t) => {
  const o = await overlay(t)
  const [h1, h2, h3] = [await o.addHost(1, 1), await o.addHost(2, 1), await o.addHost(3, 1)]
  ok(t, await h1.plumb('vxlan', o.br, '--vni', '42', '--remote', h2.addr), 'h1')
  ok(t, await h2.plumb('vxlan', o.br, '--vni', '42', '--remote', h1.addr), 'h2')
  for (const h of [h1, h2, h3]) await attachGuests(t, h, o.br)
  const [g1, g2, g3] = [h1.guests[0]!, h2.guests[0]!, h3.guests[0]!]
  t.true(await pings(g1.ns, g2.ip))

  // h3 joins: it names both, and both add it
  ok(t, await h3.plumb('vxlan', o.br, '--vni', '42', '--remote', `${h1.addr},${h2.addr}`), 'h3')
  ok(t, await h1.plumb('vxlan', o.br, '--vni', '42', '--remote', h3.addr), 'h1 adds h3')
  ok(t, await h2.plumb('vxlan', o.br, '--vni', '42', '--remote', h3.addr), 'h2 adds h3')
  for (const [a, b] of [
    [g1, g3],
    [g3, g2],
    [g2, g1],
  ] as const) {
    t.true(await pings(a.ns, b.ip), `${a.ns} -> ${b.ip}`)
    await assertTraffic(t, a.ns, b.ns, b.ip, `${a.ns} -> ${b.ip}`)
  }

  // h1 and h2 drop h3: h3's guest is cut off, h1 and h2 still talk
  for (const h of [h1, h2]) {
    const r = await h.plumb('vxlan', o.br, '--vni', '42', '--remote', h3.addr, '--del')
    ok(t, r, 'drop h3')
    const fdb = JSON.parse(await sh('ip', ['netns', 'exec', h.ns, 'bridge', '-j', 'fdb', 'show', 'dev', 'vx42'])) as Array<{ mac: string; dst?: string }>
    t.false(fdb.some((e) => e.dst === h3.addr), 'its flood entry is gone')
  }
  // neighbours learned while h3 was in would answer from cache: start clean
  for (const g of [g1, g2, g3]) await sh('ip', ['-n', g.ns, 'neigh', 'flush', 'all'])
  t.false(await pings(g3.ns, g1.ip), 'h3 -> h1 cut')
  t.false(await pings(g1.ns, g3.ip), 'h1 -> h3 cut')
  t.true(await pings(g1.ns, g2.ip), 'h1 -> h2 still')
  await assertTraffic(t, g2.ns, g1.ns, g1.ip, 'h2 -> h1 still')
})

rootTest('--del and detach take the port away and give the bridge its MTU back; gc removes a port whose bridge was deleted', async (t) => {
  await holdGcLock(t)
  const o = await overlay(t)
  const [h1, h2] = [await o.addHost(1, 0), await o.addHost(2, 0)]
  const br = o.br
  await sh('ip', ['-n', h1.ns, 'link', 'add', br, 'type', 'bridge'])
  await sh('ip', ['-n', h1.ns, 'link', 'set', br, 'up'])
  const mtuOf = async (ns: string, name: string): Promise<number> => JSON.parse(await sh('ip', ['-n', ns, '-j', 'link', 'show', name]))[0].mtu

  ok(t, await h1.plumb('vxlan', br, '--vni', '42', '--remote', h2.addr), 'join')
  t.is(await mtuOf(h1.ns, br), 1450)
  const dry = await h1.plumb('vxlan', br, '--vni', '42', '--del', '--dry-run')
  ok(t, dry, 'dry run')
  t.regex(dry.stdout, /ip link del vx42/)
  t.is(await mtuOf(h1.ns, 'vx42'), 1450, 'a dry run changes nothing')
  const del = await h1.plumb('vxlan', br, '--vni', '42', '--del')
  ok(t, del, 'del')
  t.is((await shQuiet('ip', ['-n', h1.ns, 'link', 'show', 'vx42'])).exitCode, 1, 'the port is gone')
  t.is(await mtuOf(h1.ns, br), 1500, 'the bridge has its MTU back')
  t.true((await shQuiet('ip', ['-n', h1.ns, 'link', 'show', br])).exitCode === 0, "a bridge plumb did not make stays")
  const again = await h1.plumb('vxlan', br, '--vni', '42', '--del')
  ok(t, again, 'del again')
  t.regex(again.stdout, /already removed/)

  ok(t, await h1.plumb('vxlan', br, '--vni', '42', '--remote', h2.addr), 'join again')
  ok(t, await h1.plumb('detach', 'host', 'vx42'), 'detach host vx42')
  t.is((await shQuiet('ip', ['-n', h1.ns, 'link', 'show', 'vx42'])).exitCode, 1, 'detach took it away')
  t.is(await mtuOf(h1.ns, br), 1500)

  ok(t, await h1.plumb('vxlan', br, '--vni', '42', '--remote', h2.addr), 'join once more')
  await sh('ip', ['-n', h1.ns, 'link', 'del', br])
  const gc = await h1.plumb('gc')
  ok(t, gc, 'gc')
  t.regex(gc.stdout, /removed vx42: its bridge br0 is gone/)
  t.is((await shQuiet('ip', ['-n', h1.ns, 'link', 'show', 'vx42'])).exitCode, 1)
})

rootTest('a different port configuration is a conflict (4), bad input is refused (2), no route is not found (3): nothing changes', async (t) => {
  const o = await overlay(t)
  const [h1, h2] = [await o.addHost(1, 0), await o.addHost(2, 0)]
  t.teardown(() => h1.plumb('vxlan', o.br, '--vni', '42', '--del').then(() => undefined))
  ok(t, await h1.plumb('vxlan', o.br, '--vni', '42', '--remote', h2.addr), 'join')
  // what a user configures, not the operstate the kernel moves on its own
  const links = async (): Promise<unknown> =>
    (JSON.parse(await sh('ip', ['-n', h1.ns, '-j', '-d', 'link', 'show'])) as Array<Record<string, any>>).map((l) => [l.ifname, l.mtu, l.master, l.ifalias, l.linkinfo?.info_data?.id, l.linkinfo?.info_data?.port])
  const before = await links()
  const cases: Array<[string[], number, RegExp]> = [
    [['--vni', '42', '--remote', h2.addr, '--dstport', '8472'], 4, /with UDP port 4789, not 8472/],
    [['--vni', '0', '--remote', h2.addr], 2, /invalid VNI "0"/],
    [['--vni', '16777216', '--remote', h2.addr], 2, /invalid VNI/],
    [['--vni', '43'], 2, /needs at least one --remote/],
    [['--vni', '43', '--remote', `${h2.addr}/24`], 2, /takes an address, not a CIDR/],
    [['--vni', '43', '--remote', `${h2.addr},2001:db8::2`], 2, /mix IPv4 and IPv6/],
    [['--vni', '43', '--remote', h2.addr, '--dstport', '70000'], 2, /invalid --dstport/],
    [['--vni', '43', '--remote', '198.19.250.9'], 3, /no route to 198.19.250.9/],
    [['--vni', '43', '--remote', h2.addr, '--dev', 'pt-nosuch'], 3, /no interface "pt-nosuch"/],
  ]
  for (const [args, code, msg] of cases) {
    const r = await h1.plumb('vxlan', o.br, ...args)
    t.is(r.exitCode, code, `${args.join(' ')}: ${r.stderr}`)
    t.regex(r.stderr, msg)
  }
  t.deepEqual(await links(), before, 'nothing changed')
  t.deepEqual(await addrsOf('under', h1.ns), [`${h1.addr}/24`])
})

ovsTest('an Open vSwitch bridge is refused with exit 5 naming OVS, and the command that would do it', async (t) => {
  const br = uniq('o')
  t.teardown(() => shQuiet('ovs-vsctl', ['--if-exists', 'del-br', br]).then(() => undefined))
  await sh('ovs-vsctl', ['add-br', br, '--', 'set', 'bridge', br, 'datapath_type=netdev'])
  const res = await runCli(['vxlan', br, '--vni', '42', '--remote', '198.18.201.2'])
  t.is(res.exitCode, 5, res.stderr)
  t.regex(res.stderr, /Open vSwitch bridge/)
  t.regex(res.stderr, /type=vxlan/)
})
