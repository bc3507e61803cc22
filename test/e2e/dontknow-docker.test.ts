// A Docker engine that cannot be asked (a dead socket, a hung one) is "don't know" for gc and ls,
// never "gone": a live container's host end, bridge and OVS row are kept and the reason said;
// and ls lists a netns once, under its container's name, whatever else names it. A container of
// another dockerd on the same host (one gc is not asking) is "don't know" too, while a process
// lives in its netns.

import test from 'ava'
import { existsSync, mkdirSync, readdirSync, rmSync, symlinkSync } from 'node:fs'
import { RECORDS_DIR, TEST_IMAGE, deadSocket, getLink, hasDocker, hasOvs, hungSocket, ipJson, isRoot, makeContainer, makeNetns, privateDockerd, runCli, shQuiet, snapshot, testIf, uniq, holdGcLock, reserveOctet, NETNS_TEARDOWN_MS, waitFor } from '../helpers/index.js'
import type { Teardown } from '../helpers/index.js'
import { plumb, stable, sweepHost } from '../integration/ops-fixture.js'
import { ovsPortsOf } from '../integration/links-fixture.js'

const withDocker = testIf(isRoot && hasDocker(), 'dontknow-docker: needs root and dockerd with plumb-test:busybox (scripts/testbed.sh up)')
const withDockerOvs = testIf(isRoot && hasDocker() && hasOvs(), 'dontknow-docker: needs root, dockerd with plumb-test:busybox and Open vSwitch')
// gc is host-wide: serial here, and alone among the gc tests (the gc lock)
const serialDocker = withDocker === test ? test.serial : test.serial.skip
const serialDockerOvs = withDockerOvs === test ? test.serial : test.serial.skip

function ids(t: Teardown): { id: string; net: string } {
  const octet = reserveOctet(t) // first: its teardown runs last
  const id = uniq()
  t.teardown(() => sweepHost(id))
  return { id, net: `198.18.${octet}` }
}

const dockerAt = (socket: string): Record<string, string> => ({ DOCKER_HOST: `unix://${socket}` })
const hostEndOf = (r: { json?: { interfaces: Array<{ netns: string; name: string }> } }): string => r.json!.interfaces.find((i) => i.netns === 'host')!.name
const namesIn = async (sandboxKey: string): Promise<string[]> => (await ipJson(['link', 'show'], { path: sandboxKey })).map((l) => String(l.ifname)).sort()

interface Kept {
  name: string
  what: string
  guest?: string
  unknown?: boolean
  reason: string
}

serialDockerOvs("Docker unreachable (a dead socket): gc --dry-run and gc keep a live container's host end, bridge and OVS row, say why, and exit 0 having decided about the rest", async (t) => {
  await holdGcLock(t)
  const { id, net } = ids(t)
  const c = await makeContainer(t, { name: `${id}c` })
  t.teardown(async () => void (await shQuiet('ovs-vsctl', ['--timeout=10', '--if-exists', 'del-br', `${id}o`])))
  const onBridge = await plumb('attach-veth', c.name, `${id}b`, `${net}.10/24`, '--json')
  t.is(onBridge.exitCode, 0, onBridge.stderr)
  const onOvs = await plumb('ovs-port', c.name, `${id}o`, `${net}.20/24`, '--create-bridge', '--json')
  t.is(onOvs.exitCode, 0, onOvs.stderr)
  const [hostEnd, ovsEnd] = [hostEndOf(onBridge), hostEndOf(onOvs)]
  // something gc can decide without Docker (and that no other gc on this shared host removes):
  // an ip netns guest that is there
  const n = await makeNetns(t, { name: `${id}n` })
  const live = await plumb('attach-veth', `netns:${n}`, `${id}d`, `${net}.30/24`, '--json')
  t.is(live.exitCode, 0, live.stderr)

  const dead = deadSocket(t)
  const dry = await runCli(['gc', '--dry-run', '--json'], { env: dockerAt(dead) })
  t.is(dry.exitCode, 0, dry.stderr)
  const about = (name: string) => (dry.json.plan as string[]).filter((l) => l.includes(name))
  t.deepEqual([...about(hostEnd), ...about(ovsEnd), ...about(`${id}b`)], [], 'nothing of the container is planned')
  const kept = dry.json.kept as Kept[]
  const guest = `docker:${c.name}`
  t.like(kept.find((k) => k.name === hostEnd), { what: 'host end', guest, unknown: true })
  t.regex(kept.find((k) => k.name === hostEnd)!.reason, /cannot tell whether its guest docker:pt-\w+c is gone: Docker API not reachable at unix:\/\/.*: ECONNREFUSED/)
  // the OVS port's host end is kept twice: as a host end, and as an OVS row
  t.like(kept.find((k) => k.name === ovsEnd && k.what === 'OVS port'), { guest, unknown: true })
  t.like(kept.find((k) => k.name === ovsEnd && k.what === 'host end'), { guest, unknown: true })
  t.like(kept.find((k) => k.name === `${id}b`), { what: 'bridge', unknown: true })
  t.like(kept.find((k) => k.name === hostEndOf(live)), { what: 'host end', guest: `netns:${n}`, reason: `its guest netns:${n} is there` })
  t.false(kept.some((k) => k.name === hostEndOf(live) && k.unknown), 'the ip netns guest is decided about')
  t.true((dry.json.warnings as string[]).some((w) => w.startsWith(`kept host end ${hostEnd}: cannot tell`)))

  const text = await runCli(['gc', '--dry-run'], { env: dockerAt(dead) })
  t.is(text.exitCode, 0, text.stderr)
  t.regex(text.stderr, new RegExp(`plumb: kept host end ${hostEnd}: cannot tell whether its guest ${guest} is gone: Docker API not reachable`))
  t.regex(text.stderr, new RegExp(`plumb: kept OVS port ${ovsEnd}: cannot tell`))
  t.notRegex(text.stdout, new RegExp(hostEnd))

  const r = await runCli(['gc', '--json'], { env: dockerAt(dead) })
  t.is(r.exitCode, 0, r.stderr)
  const bridge = await getLink(`${id}b`)
  t.truthy(bridge, 'the bridge stays')
  t.is((await getLink(hostEnd))?.master, `${id}b`, 'the host end stays on it')
  t.deepEqual((await ovsPortsOf(id)).map((p) => p.name), [ovsEnd], 'the OVS row stays')
  t.deepEqual(await namesIn(c.sandboxKey), ['eth1', 'eth2', 'lo'], 'the container keeps both links')

  // Docker back: the same things are kept because the container is there, and gc says so
  const back = await plumb('gc', '--json')
  t.is(back.exitCode, 0, back.stderr)
  t.like((back.json.kept as Kept[]).find((k) => k.name === hostEnd), { guest, reason: `its guest ${guest} is there` })
  t.false((back.json.kept as Kept[]).some((k) => k.name === hostEnd && k.unknown))
})

serialDocker('nothing gc can decide, only an unreachable Docker: gc and gc --dry-run exit 5 naming it and change nothing; a hung Docker likewise after its timeout; Docker back: exit 0', async (t) => {
  await holdGcLock(t)
  const { id, net } = ids(t)
  const c = await makeContainer(t, { name: `${id}c` })
  // a host of its own (plumb run in this netns takes it for the host): no other guest's leftovers to decide about
  const h = await makeNetns(t, { name: `${id}h` })
  const a = await runCli(['attach-veth', c.name, `${id}b`, `${net}.10/24`, '--json'], { netns: h })
  t.is(a.exitCode, 0, a.stderr)
  const hostEnd = hostEndOf(a)
  // nor OVS rows or DHCP state (both host-wide): no OVS on this "host", an empty DHCP state dir
  // nor the replay records of other tests' containers (a store of its own, empty)
  const env = { OVS_RUNDIR: `/run/${id}-no-ovs`, PLUMB_OVSDB: `/run/${id}-no-ovs/db.sock`, PLUMB_DHCP_STATE_DIR: `/run/${id}-dhcp`, PLUMB_RECORDS_DIR: `/run/${id}-records` }
  const before = stable(await snapshot({ netns: h }))

  const dead = deadSocket(t)
  for (const args of [['gc', '--dry-run', '--json'], ['gc', '--json']]) {
    const r = await runCli(args, { netns: h, env: { ...env, ...dockerAt(dead) } })
    t.is(r.exitCode, 5, `${args.join(' ')}: ${r.stderr}`)
    t.is(r.json.error.code, 'UNSUPPORTED')
    t.regex(r.json.error.message, new RegExp(`gc could not decide about anything it found, and changed nothing: kept host end ${hostEnd}: cannot tell whether its guest docker:${c.name} is gone: Docker API not reachable at unix://.*: ECONNREFUSED`))
    t.regex(r.json.error.hint, /is dockerd running/)
  }
  const text = await runCli(['gc'], { netns: h, env: { ...env, ...dockerAt(dead) } })
  t.is(text.exitCode, 5)
  t.regex(text.stderr, /^plumb: gc could not decide/)

  const started = Date.now()
  const hung = await runCli(['gc', '--json'], { netns: h, env: { ...env, ...dockerAt(await hungSocket(t)) } })
  t.is(hung.exitCode, 5, hung.stderr)
  t.regex(hung.json.error.message, /Docker API at unix:\/\/.* did not answer within 5 s/)
  t.true(Date.now() - started >= 5_000)
  t.deepEqual(stable(await snapshot({ netns: h })), before, 'the host netns is as it was')
  t.deepEqual(await namesIn(c.sandboxKey), ['eth1', 'lo'])

  const back = await runCli(['gc', '--json'], { netns: h, env })
  t.is(back.exitCode, 0, back.stderr)
  // Guest records (sysctl and name edits) are host-wide files this test cannot give a store of its
  // own: a container another test removed meanwhile leaves one, which gc, Docker back, forgets (CI
  // saw one). Nothing else, and nothing of this test's.
  const othersRecord = (l: string): boolean => /^# forget the record of docker:/.test(l) && !l.includes(id)
  t.deepEqual((back.json.plan as string[]).filter((l) => !othersRecord(l)), [])
  t.like((back.json.kept as Kept[]).find((k) => k.name === hostEnd), { reason: `its guest docker:${c.name} is there` })
})

withDocker("ls with Docker unreachable: the container's state is unknown (with the reason and its host end), not orphaned; a warning says the containers could not be listed", async (t) => {
  const { id, net } = ids(t)
  const c = await makeContainer(t, { name: `${id}c` })
  const a = await plumb('attach-veth', c.name, `${id}b`, `${net}.10/24`, '--json')
  t.is(a.exitCode, 0, a.stderr)
  const hostEnd = hostEndOf(a)
  const guest = `docker:${c.name}`

  const dead = deadSocket(t)
  const r = await runCli(['ls', '--json'], { env: dockerAt(dead) })
  t.is(r.exitCode, 0, r.stderr)
  const g = r.json.guests.find((x: { guest: string }) => x.guest === guest)
  t.like(g, { state: 'unknown', hostEnds: [hostEnd], interfaces: [] })
  t.regex(g.reason, /Docker API not reachable at unix:\/\/.*: ECONNREFUSED/)
  t.false(r.json.orphans.includes(hostEnd), 'not called an orphan')
  t.true(r.json.warnings.some((w: string) => /could not list Docker's containers/.test(w)))
  t.truthy(r.json.bridges.find((b: { name: string }) => b.name === `${id}b`), 'its bridge is still listed')

  const text = await runCli(['ls'], { env: dockerAt(dead) })
  t.is(text.exitCode, 0, text.stderr)
  t.regex(text.stdout, new RegExp(`${guest}: state unknown \\(Docker API not reachable .*\\); its host ends ${hostEnd} are kept`))
  t.notRegex(text.stdout, new RegExp(`orphaned host ends.*${hostEnd}`))
  t.regex(text.stderr, /plumb: could not list Docker's containers/)

  const hung = await runCli(['ls', '--json'], { env: dockerAt(await hungSocket(t)) })
  t.is(hung.exitCode, 0, hung.stderr)
  t.like(hung.json.guests.find((x: { guest: string }) => x.guest === guest), { state: 'unknown' })
  t.false(hung.json.orphans.includes(hostEnd))

  const live = await plumb('ls', '--json')
  t.like(live.json.guests.find((x: { guest: string }) => x.guest === guest), { state: 'there', interfaces: [{ name: 'eth1', peer: hostEnd }] })
})

withDocker("ls lists a netns once: a stale /var/run/netns symlink to a container's netns (pipework leaves them) and a container sharing it (--net=container:X) are other names of the container's entry", async (t) => {
  const { id, net } = ids(t)
  const c = await makeContainer(t, { name: `${id}c` })
  const side = await makeContainer(t, { name: `${id}s`, net: `container:${c.name}` })
  t.is((await plumb('attach-veth', c.name, `${id}b`, `${net}.10/24`)).exitCode, 0)
  mkdirSync('/var/run/netns', { recursive: true })
  const link = `/var/run/netns/${id}`
  t.teardown(() => rmSync(link, { force: true }))
  symlinkSync(`/proc/${c.pid}/ns/net`, link)

  const r = await plumb('ls', '--json')
  t.is(r.exitCode, 0, r.stderr)
  const mine = r.json.guests.filter((g: { guest: string; alsoKnownAs?: string[] }) => [g.guest, ...(g.alsoKnownAs ?? [])].some((n) => n.includes(id)))
  t.is(mine.length, 1, JSON.stringify(mine.map((g: { guest: string }) => g.guest)))
  t.is(mine[0].guest, `docker:${c.name}`)
  t.deepEqual([...mine[0].alsoKnownAs].sort(), [`docker:${side.name}`, `netns:${id}`].sort())
  t.is(mine[0].interfaces.length, 1)
  const text = await plumb('ls')
  t.regex(text.stdout, new RegExp(`docker:${c.name} \\(also .*netns:${id}`))
})

serialDocker("a container on another dockerd (its DOCKER_HOST): gc and ls asked through the machine's keep its interface, its records and its rule, saying why; once it is removed, gc collects them", async (t) => {
  await holdGcLock(t, { timeout: 180_000 })
  const { id, net } = ids(t)
  const d = privateDockerd(t, id)
  await d.start()
  await d.loadTestImage()
  const name = `${id}a`
  await d.docker('run', '-d', '--net=none', '--name', name, TEST_IMAGE, 'sleep', '100000')
  const [cid = '', sandboxKey = ''] = (await d.docker('inspect', '-f', '{{.Id}}|{{.NetworkSettings.SandboxKey}}', name)).split('|')
  const theirs = { DOCKER_HOST: d.host }
  const a = await runCli(['attach-veth', name, `${id}b`, `${net}.10/24`, '--json'], { env: theirs })
  t.is(a.exitCode, 0, a.stderr)
  const hostEnd = hostEndOf(a)
  // a sysctl (a guest record) and a published port (a rule naming the guest)
  const s = await runCli(['sysctl', name, 'net.ipv4.conf.eth1.rp_filter=2'], { env: theirs })
  t.is(s.exitCode, 0, s.stderr)
  const x = await runCli(['expose', name, '80'], { env: theirs })
  t.is(x.exitCode, 0, x.stderr)
  // a second container with an interface only (no guest record): its host end's peer is the proof
  const other = `${id}c`
  await d.docker('run', '-d', '--net=none', '--name', other, TEST_IMAGE, 'sleep', '100000')
  const o = await runCli(['attach-veth', other, `${id}b`, `${net}.11/24`, '--json'], { env: theirs })
  t.is(o.exitCode, 0, o.stderr)
  const otherEnd = hostEndOf(o)
  const guest = `docker:${name}`
  const replayRecord = `${RECORDS_DIR}/docker-${cid}.json`
  const guestRecords = (): string[] => readdirSync('/run/plumb/guests').filter((f) => f.includes(cid) && f.endsWith('.json'))
  const rules = async (): Promise<string[]> => (await shQuiet('iptables-save')).stdout.split('\n').filter((l) => l.startsWith('-A ') && l.includes(guest))
  t.true(existsSync(replayRecord), 'recorded for replay')
  t.is(guestRecords().length, 1, 'a guest record (the sysctl)')
  t.not((await rules()).length, 0, 'the published port')

  // the machine's dockerd has no container of that name: gc and ls must not take it for gone
  const ls = await runCli(['ls', '--json'])
  t.is(ls.exitCode, 0, ls.stderr)
  t.false((ls.json.orphans as string[]).includes(hostEnd), 'ls lists no orphan')
  t.like((ls.json.guests as Array<{ guest: string }>).find((g) => g.guest === guest), { state: 'unknown' })
  const gc = await runCli(['gc', '--json'])
  t.is(gc.exitCode, 0, gc.stderr)
  const kept = gc.json.kept as Kept[]
  t.like(kept.find((k) => k.name === hostEnd), { what: 'host end', guest })
  t.false(kept.some((k) => k.unknown), 'decided: the guest is there')
  t.regex(kept.find((k) => k.name === hostEnd)!.reason, /^its guest docker:pt-\w+a is there: no such container "pt-\w+a", but a process \(pid \d+\) is in the netns of what plumb made for docker:pt-\w+a: a container of that name on another engine/)
  t.like(kept.find((k) => k.what === 'replay record' && k.guest === guest), { name: replayRecord })
  t.regex(kept.find((k) => k.name === otherEnd)?.reason ?? '', /^its guest docker:pt-\w+c is there: no such container "pt-\w+c", but a process \(pid \d+\) is in the netns/)
  t.is((await getLink(otherEnd))?.master, `${id}b`, "the other container's host end stays too")
  t.is((await getLink(hostEnd))?.master, `${id}b`, 'the host end stays on its bridge')
  t.deepEqual(await namesIn(sandboxKey), ['eth1', 'lo'], 'the container keeps its interface')
  t.true(existsSync(replayRecord), 'the replay record stays')
  t.is(guestRecords().length, 1, 'the guest record stays')
  t.not((await rules()).length, 0, 'the published port stays')

  // removed from its own dockerd: nothing proves it alive, and gc (through either) collects
  await d.docker('rm', '-f', name, other)
  await waitFor(async () => (await getLink(hostEnd)) === undefined && (await getLink(otherEnd)) === undefined, { what: 'the host ends to go with the netns', timeout: NETNS_TEARDOWN_MS })
  const after = await runCli(['gc', '--json'])
  t.is(after.exitCode, 0, after.stderr)
  t.false(existsSync(replayRecord), 'the replay record forgotten')
  t.deepEqual(guestRecords(), [], 'the guest record removed')
  t.deepEqual(await rules(), [], 'the published port removed')
})
