// Open vSwitch that cannot be asked is "don't know" (exit 5, nothing touched), never "not OVS";
// the switch's own devices and port rows are refused (move-dev, attach-veth onto a port row);
// and `ls` shows OVS bridges, their ports and VLANs as ovs-vsctl reads them.

import test from 'ava'
import { mkdirSync, rmSync, symlinkSync } from 'node:fs'
import { getLink, hasOvs, hungSocket, deadSocket, isRoot, makeNetns, runCli, sh, shQuiet, testIf, holdGcLock } from '../helpers/index.js'
import type { CliResult } from '../helpers/index.js'
import { fixture, guestLinks, plumb } from './ops-fixture.js'
import type { Fixture } from './ops-fixture.js'
import { extraGuest, ovsBridgeName, ovsPortsOf, worldView } from './links-fixture.js'

const REASON = 'dontknow-ovs: needs root and a running Open vSwitch (scripts/testbed.sh up)'
const withOvs = testIf(isRoot && hasOvs(), REASON)
// gc is host-wide: serial here, and alone among the gc tests (the gc lock)
const withOvsSerial = withOvs === test ? test.serial : test.serial.skip

const vsctl = (...args: string[]): Promise<string> => sh('ovs-vsctl', ['--timeout=10', ...args])

/** An OVS bridge on the userspace datapath (its kernel side: a tap), deleted in teardown. */
async function ovsBridge(t: Parameters<typeof ovsBridgeName>[0], f: Fixture, suffix = 'o'): Promise<string> {
  const br = ovsBridgeName(t, f, suffix)
  await vsctl('add-br', br, '--', 'set', 'bridge', br, 'datapath_type=netdev')
  return br
}

/** A veth end in the host standing in for a NIC (its peer in the host too), deleted in teardown. */
async function nic(t: { teardown(fn: () => Promise<void>): void }, name: string): Promise<string> {
  t.teardown(async () => void (await shQuiet('ip', ['link', 'del', name])))
  await sh('ip', ['link', 'add', name, 'type', 'veth', 'peer', 'name', `${name}x`])
  return name
}

const withOvsdb = (socket: string, ...args: string[]): Promise<CliResult> => runCli(args, { env: { PLUMB_OVSDB: socket } })

withOvs('OVSDB unreachable (a dead socket) while an OVS bridge is in the kernel: macvlan, attach-veth, vlan, move-dev, ovs-port exit 5 naming Open vSwitch, nothing changed', async (t) => {
  const f = await fixture(t)
  const br = await ovsBridge(t, f)
  t.is((await getLink(br))?.linkinfo?.info_kind, 'tun', "the userspace bridge's kernel side is a tap")
  const dead = deadSocket(t)
  const before = await worldView(f.id, [f.ns], { ovs: true })
  for (const args of [
    ['macvlan', f.guest, br, f.v4(10)],
    ['attach-veth', f.guest, br, f.v4(10)],
    ['attach-veth', f.guest, br, f.v4(10), '--dry-run'],
    ['vlan', f.guest, br, '10', f.v4(10)],
    ['move-dev', f.guest, br],
    ['ovs-port', f.guest, br, f.v4(10)],
  ]) {
    const r = await withOvsdb(dead, ...args, '--json')
    t.is(r.exitCode, 5, `${args.join(' ')}: ${r.stderr}`)
    t.is(r.json?.error?.code, 'UNSUPPORTED')
    t.regex(r.json?.error?.message ?? '', /Open vSwitch/, args.join(' '))
    t.regex(r.json?.error?.message ?? '', /Connection refused/)
    t.deepEqual(await worldView(f.id, [f.ns], { ovs: true }), before, `${args[0]} changed nothing`)
  }
  t.deepEqual([...(await guestLinks(f.ns)).keys()], ['lo'])
})

withOvs('OVSDB unreachable: move-dev of a plain NIC and attach-veth to a new bridge name are exit 5 too (OVS is on this host: either may be its port)', async (t) => {
  const f = await fixture(t)
  const dev = await nic(t, `${f.id}n`)
  const dead = deadSocket(t)
  const before = await worldView(f.id, [f.ns])
  const move = await withOvsdb(dead, 'move-dev', f.guest, dev)
  t.is(move.exitCode, 5, move.stderr)
  t.regex(move.stderr, /failed to tell whether Open vSwitch owns "pt-\w+n": Open vSwitch is not running/)
  const attach = await withOvsdb(dead, 'attach-veth', f.guest, f.br, f.v4(10))
  t.is(attach.exitCode, 5, attach.stderr)
  t.regex(attach.stderr, /the kernel has no interface of that name/)
  t.deepEqual(await worldView(f.id, [f.ns]), before)
})

withOvs('OVSDB hung (accepts, never answers): exit 5 after the timeout, nothing changed', async (t) => {
  const f = await fixture(t)
  const br = await ovsBridge(t, f)
  const before = await worldView(f.id, [f.ns], { ovs: true })
  const r = await withOvsdb(await hungSocket(t), 'macvlan', f.guest, br, f.v4(10))
  t.is(r.exitCode, 5, r.stderr)
  t.regex(r.stderr, /Open vSwitch owns "pt-\w+o": ovsdb-server did not answer within 5 s/)
  t.deepEqual(await worldView(f.id, [f.ns], { ovs: true }), before)
})

withOvs('no Open vSwitch on the host at all (no socket, no run directory): attach-veth makes its Linux bridge as before', async (t) => {
  const f = await fixture(t)
  const none = `/run/${f.id}-no-ovs`
  const r = await runCli(['attach-veth', f.guest, f.br, f.v4(10), '--json'], { env: { PLUMB_OVSDB: `${none}/db.sock`, OVS_RUNDIR: none } })
  t.is(r.exitCode, 0, r.stderr)
  t.is((await getLink(f.br))?.linkinfo?.info_kind, 'bridge')
  t.true((await guestLinks(f.ns)).has('eth1'))
})

withOvs("move-dev of an OVS bridge's own port, of a port, and of a bond's member: exit 4, nothing moved", async (t) => {
  const f = await fixture(t)
  const br = await ovsBridge(t, f)
  const port = await nic(t, `${f.id}p`)
  await vsctl('add-port', br, port)
  const [m1, m2] = [await nic(t, `${f.id}m`), await nic(t, `${f.id}k`)]
  await vsctl('add-bond', br, `${f.id}bd`, m1, m2)
  const before = await worldView(f.id, [f.ns], { ovs: true })

  const own = await plumb('move-dev', f.guest, br)
  t.is(own.exitCode, 4, own.stderr)
  t.regex(own.stderr, new RegExp(`"${br}" is an Open vSwitch bridge`))
  const p = await plumb('move-dev', f.guest, port)
  t.is(p.exitCode, 4, p.stderr)
  t.regex(p.stderr, new RegExp(`"${port}" is a port of Open vSwitch bridge "${br}"`))
  const member = await plumb('move-dev', f.guest, m2)
  t.is(member.exitCode, 4, member.stderr)
  t.regex(member.stderr, new RegExp(`"${m2}" is an interface of port "${f.id}bd" of Open vSwitch bridge "${br}"`))

  t.deepEqual(await worldView(f.id, [f.ns], { ovs: true }), before)
  for (const dev of [br, port, m2]) t.truthy(await getLink(dev), `${dev} is still in the host`)
  t.regex(await vsctl('list-ports', br), new RegExp(port))
})

withOvs('attach-veth to a name OVS has a port row for (no device): exit 4, no Linux bridge made for OVS to adopt', async (t) => {
  const f = await fixture(t)
  const br = await ovsBridge(t, f)
  const ghost = `${f.id}g`
  // add-port of a missing device exits 0 with an error printed; the row stays
  await shQuiet('ovs-vsctl', ['--timeout=10', 'add-port', br, ghost])
  t.is(await vsctl('port-to-br', ghost), br)
  const before = await worldView(f.id, [f.ns], { ovs: true })
  const r = await plumb('attach-veth', f.guest, ghost, f.v4(10), '--json')
  t.is(r.exitCode, 4, r.stderr)
  t.regex(r.json.error.message, new RegExp(`"${ghost}" is a port of Open vSwitch bridge "${br}", not a bridge`))
  t.is(await getLink(ghost), undefined, 'no kernel device of that name')
  t.deepEqual(await worldView(f.id, [f.ns], { ovs: true }), before)
})

withOvs('ls on OVS: a --create-bridge bridge is plumb-made with its ports, and each plumb port shows its tag or trunks as ovs-vsctl has them', async (t) => {
  const f = await fixture(t)
  const b = await extraGuest(t, f, 'c')
  const br = ovsBridgeName(t, f)
  const foreignBr = await ovsBridge(t, f, 'y')
  t.is((await plumb('ovs-port', f.guest, br, f.v4(10), '--tag', '10', '--create-bridge')).exitCode, 0)
  t.is((await plumb('ovs-port', b.guest, br, '--trunks', '20,10')).exitCode, 0)
  t.is((await plumb('attach-veth', b.guest, foreignBr, f.v4(11), '--vlan', '30')).exitCode, 0)
  const foreign = await nic(t, `${f.id}z`)
  await vsctl('add-port', br, foreign)

  const rows = await ovsPortsOf(f.id)
  const ls = await plumb('ls', '--json')
  t.is(ls.exitCode, 0, ls.stderr)
  const made = ls.json.bridges.find((x: { name: string }) => x.name === br)
  t.like(made, { name: br, type: 'ovs', plumbMade: true })
  t.deepEqual([...made.ports].sort(), (await vsctl('list-ports', br)).split('\n').sort())
  const plumbRows = rows.filter((r) => r.bridge === br && r.externalIds['plumb-owner'] === 'plumb')
  t.deepEqual(
    [...made.vlans].sort((x: { port: string }, y: { port: string }) => (x.port < y.port ? -1 : 1)),
    plumbRows.map((r) => ({ port: r.name, ...(r.tag !== undefined ? { tag: r.tag } : {}), ...(r.trunks.length ? { trunks: r.trunks } : {}) })),
  )
  t.deepEqual(plumbRows.map((r) => r.tag ?? r.trunks).sort(), [10, [10, 20]].sort(), 'ovs-vsctl: one access port, one trunk')
  const other = ls.json.bridges.find((x: { name: string }) => x.name === foreignBr)
  t.like(other, { type: 'ovs', plumbMade: false })
  t.deepEqual(other.vlans.map((v: { tag?: number }) => v.tag), [30])
  t.false(ls.json.bridges.some((x: { name: string; type: string }) => x.type === 'linux' && (x.name === br || x.name === foreignBr)), 'an OVS bridge is not listed as a Linux one')

  // per interface, from the guest's side
  const ifaceOf = (guest: string, bridge: string) =>
    ls.json.guests.find((g: { guest: string }) => g.guest === guest)?.interfaces.find((i: { bridge: string }) => i.bridge === bridge)
  t.like(ifaceOf(f.guest, br), { op: 'ovs-port', tag: 10 })
  t.like(ifaceOf(b.guest, br), { op: 'ovs-port', trunks: [10, 20] })
  t.like(ifaceOf(b.guest, foreignBr), { tag: 30 })
  const one = await plumb('ls', b.guest, '--json')
  t.like(one.json.guests[0].interfaces.find((i: { bridge: string }) => i.bridge === br), { trunks: [10, 20] })

  const text = await plumb('ls')
  const accessPort = plumbRows.find((r) => r.tag === 10)!.name
  t.regex(text.stdout, new RegExp(`OVS bridge ${br} \\(plumb made it\\): ports .*${accessPort} \\(tag 10\\)`))
  t.regex(text.stdout, /trunks 10,20/)
})

withOvs('ls with OVSDB unreachable: exit 0, a warning that OVS was not read, and its bridge not passed off as a Linux bridge', async (t) => {
  const f = await fixture(t)
  const br = ovsBridgeName(t, f)
  t.is((await plumb('ovs-port', f.guest, br, f.v4(10), '--tag', '10', '--create-bridge')).exitCode, 0)
  const r = await withOvsdb(deadSocket(t), 'ls', '--json')
  t.is(r.exitCode, 0, r.stderr)
  t.true(r.json.warnings.some((w: string) => /could not read Open vSwitch.*Connection refused/.test(w)))
  t.false(r.json.bridges.some((b: { name: string }) => b.name === br))
  const text = await withOvsdb(deadSocket(t), 'ls')
  t.regex(text.stderr, /plumb: could not read Open vSwitch/)
})

withOvsSerial('gc with OVSDB unreachable keeps a plumb port row it would otherwise collect and says why; with nothing else to decide it exits 5', async (t) => {
  await holdGcLock(t)
  const f = await fixture(t)
  const br = ovsBridgeName(t, f)
  t.is((await plumb('ovs-port', f.guest, br, f.v4(10), '--create-bridge')).exitCode, 0)
  const [row] = await ovsPortsOf(f.id)
  t.truthy(row)
  // gc run in a netns of its own takes it for the host, but whether a port's interface is gone
  // it asks of ovs-vswitchd's netns (the real host's): there it is, so the row stays. (It once
  // looked in its own netns, found none of the machine's port interfaces and removed them all.)
  // Its DHCP state dir is empty.
  const h = await makeNetns(t, { name: `${f.id}h` })
  const env = { PLUMB_DHCP_STATE_DIR: `/run/${f.id}-dhcp` }
  const kept = await runCli(['gc', '--json'], { netns: h, env })
  t.is(kept.exitCode, 0, kept.stderr)
  t.false((kept.json.plan as string[]).some((l) => l.includes(row!.name)), kept.stdout)
  t.deepEqual((await ovsPortsOf(f.id)).map((p) => p.name), [row!.name])
  // Its interface deleted on the real host, the row is stale wherever gc runs (every other gc
  // waits for the lock this test holds).
  await sh('ip', ['link', 'del', row!.name])
  const live = await runCli(['gc', '--dry-run', '--json'], { netns: h, env })
  t.is(live.exitCode, 0, live.stderr)
  t.true((live.json.plan as string[]).includes(`ovs-vsctl --if-exists del-port ${row!.name}`), 'with OVS answering, this gc would remove the row')
  // OVSDB answering through a socket with no ovs-vswitchd pidfile beside it: where the switch's
  // interfaces live cannot be told, so neither can whether this one is gone
  const dir = `/run/${f.id}-ovs`
  mkdirSync(dir)
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  symlinkSync('/var/run/openvswitch/db.sock', `${dir}/db.sock`)
  const blind = await runCli(['gc', '--dry-run', '--json'], { netns: h, env: { ...env, OVS_RUNDIR: dir, PLUMB_OVSDB: `${dir}/db.sock` } })
  t.is(blind.exitCode, 5, blind.stderr)
  t.regex(blind.json.error.message, new RegExp(`kept OVS port ${row!.name}: cannot tell whether its interface is gone: cannot tell which network namespace Open vSwitch's interfaces are in: no ovs-vswitchd pidfile`))

  const dead = { ...env, PLUMB_OVSDB: deadSocket(t) }
  for (const args of [['gc', '--dry-run', '--json'], ['gc', '--json']]) {
    const r = await runCli(args, { netns: h, env: dead })
    t.is(r.exitCode, 5, r.stderr)
    t.regex(r.json.error.message, /gc could not decide about anything.*kept Open vSwitch's port rows: not examined: .*Open vSwitch is not running/)
  }
  t.deepEqual((await ovsPortsOf(f.id)).map((p) => p.name), [row!.name], 'the row is still there')
})
