// plumb watch on the shared dockerd, with a record store of the test's own (so it replays only
// the test's containers): a restart-policy restart (PID 1 killed: only die and start) is
// re-plumbed; a watch started after a restart reconciles; `docker rm -f` forgets the record and
// gc (run by the watch) removes the OVS row, the host end and the bridges plumb made. Each is
// read back from the kernel, OVS and the store, and carries ping, TCP and UDP.

import { existsSync } from 'node:fs'
import { assertTraffic, getLink, hasDocker, hasOvs, holdGcLock, inspectContainer, ipJson, isRoot, makeContainer, runCli, sh, shQuiet, testIf } from '../helpers/index.js'
import type { TestContainer } from '../helpers/index.js'
import { interfacesOf, recordsIn, restartLab, restarted, startWatch } from './restart-fixture.js'

const withDocker = testIf(isRoot && hasDocker(), 'watch-docker: needs root and dockerd with plumb-test:busybox')
const withDockerOvs = testIf(isRoot && hasDocker() && hasOvs(), 'watch-docker: needs root, dockerd with plumb-test:busybox and Open vSwitch')

const at = (c: TestContainer): { path: string } => ({ path: c.sandboxKey })

withDockerOvs('a restart-policy restart (--restart=always, PID 1 killed: die and start only) is re-plumbed by watch: same names, MACs, addresses; ping, TCP and UDP', async (t) => {
  const lab = restartLab(t)
  const { id, plumb } = lab
  const [brNet, ovsNet] = [lab.net(), lab.net()]
  const [a, b] = await Promise.all([makeContainer(t, { name: `${id}a`, args: ['--restart=always'] }), makeContainer(t, { name: `${id}b` })])
  for (const s of [
    ['attach-veth', a.name, `${id}L`, `${brNet}.10/24`],
    ['attach-veth', b.name, `${id}L`, `${brNet}.11/24`],
    ['ovs-port', a.name, `${id}O`, `${ovsNet}.10/24`, '--create-bridge'],
    ['ovs-port', b.name, `${id}O`, `${ovsNet}.11/24`],
  ]) {
    const r = await plumb(...s)
    t.is(r.exitCode, 0, r.stderr)
  }
  t.teardown(async () => void (await sh('ovs-vsctl', ['--timeout=10', '--if-exists', 'del-br', `${id}O`])))
  const before = await interfacesOf(a)
  const w = startWatch(t, lab.env)
  await w.line(/following Docker's container events/)
  await w.line(new RegExp(`docker:${a.name} \\(${a.id.slice(0, 12)}\\) is running with its record in place \\(2 entries\\)`))

  const from = w.lines.length
  await sh('kill', ['-KILL', String(a.pid)])
  const a2 = await restarted(a)
  await w.line(new RegExp(`replayed docker:${a.name} \\(${a.id.slice(0, 12)}\\) after its start: made eth1 attach-veth, eth2 ovs-port`), { from })
  t.deepEqual(await interfacesOf(a2), before)
  await assertTraffic(t, at(b), at(a2), `${brNet}.10`, 'the bridge, after the restart-policy restart')
  await assertTraffic(t, at(a2), at(b), `${ovsNet}.11`, 'OVS, after the restart-policy restart')
  await w.stop()
})

withDocker('watch started after a restart reconciles: the container is re-plumbed at start-up (a start watch never saw)', async (t) => {
  const lab = restartLab(t)
  const { id, plumb } = lab
  const net = lab.net()
  const [a, b] = await Promise.all([makeContainer(t, { name: `${id}a` }), makeContainer(t, { name: `${id}b` })])
  for (const c of [a, b]) t.is((await plumb('attach-veth', c.name, `${id}L`, `${net}.${c === a ? 10 : 11}/24`)).exitCode, 0)
  const before = await interfacesOf(a)
  await sh('docker', ['restart', '-t', '0', a.name])
  const a2 = await restarted(a)
  t.deepEqual(await interfacesOf(a2), {})

  const w = startWatch(t, lab.env)
  await w.line(new RegExp(`replayed docker:${a.name} \\(${a.id.slice(0, 12)}\\) found running: made eth1 attach-veth`))
  await w.line(new RegExp(`docker:${b.name} \\(${b.id.slice(0, 12)}\\) is running with its record in place`))
  t.deepEqual(await interfacesOf(a2), before)
  await assertTraffic(t, at(b), at(a2), `${net}.10`, 'the bridge, reconciled')
  await w.stop()
})

withDockerOvs('docker rm -f while watch runs: the record is forgotten, and the gc it runs removes the OVS row, the OVS bridge and the Linux bridge plumb made, and no host end is left', async (t) => {
  await holdGcLock(t) // the watch's gc is host-wide
  const lab = restartLab(t)
  const { id, plumb } = lab
  const net = lab.net()
  const a = await makeContainer(t, { name: `${id}a` })
  t.teardown(async () => void (await sh('ovs-vsctl', ['--timeout=10', '--if-exists', 'del-br', `${id}O`])))
  t.is((await plumb('attach-veth', a.name, `${id}L`, `${net}.10/24`)).exitCode, 0)
  const o = await plumb('ovs-port', a.name, `${id}O`, `${net}.20/24`, '--create-bridge', '--json')
  t.is(o.exitCode, 0, o.stderr)
  const ovsEnd = o.json.interfaces[0].name as string
  t.is(Object.keys(recordsIn(lab.records)).length, 1)
  const w = startWatch(t, lab.env)
  await w.line(/is running with its record in place/)

  await sh('docker', ['rm', '-f', a.name])
  await w.line(new RegExp(`forgot the record of docker:${a.name} \\(${a.id.slice(0, 12)}\\): the container was removed`))
  await w.line(/^\S+ gc: /)
  t.deepEqual(recordsIn(lab.records), {})
  t.is(await sh('ovs-vsctl', ['--timeout=5', '--if-exists', 'get', 'Port', ovsEnd, 'name']), '', 'no OVS row of the container')
  t.is(await sh('ovs-vsctl', ['--timeout=5', '--if-exists', 'br-exists', `${id}O`]).catch(() => 'gone'), 'gone', 'the OVS bridge plumb made is gone')
  t.is(await getLink(`${id}L`), undefined, 'the Linux bridge plumb made is gone')
  const left = (await ipJson(['-d', 'link', 'show'])).filter((l) => String(l.ifalias ?? '').includes(`docker:${a.name} `))
  t.deepEqual(left, [], 'no host end marked for the container')
  await w.stop()
  t.false(existsSync(`${lab.records}/docker-${a.id}.json`))
})

withDocker('watch --once: a container whose replay fails is reported (exit 1) and the others are still replayed', async (t) => {
  const lab = restartLab(t)
  const { id, plumb } = lab
  const net = lab.net()
  const nic = `${id}N`
  t.teardown(async () => void (await shQuiet('ip', ['link', 'del', nic])))
  await sh('ip', ['link', 'add', nic, 'type', 'veth', 'peer', 'name', `${id}F`])
  await sh('ip', ['link', 'set', nic, 'up'])
  const [a, b] = await Promise.all([makeContainer(t, { name: `${id}a` }), makeContainer(t, { name: `${id}b` })])
  t.is((await plumb('macvlan', a.name, nic, `${net}.10/24`)).exitCode, 0)
  t.is((await plumb('attach-veth', b.name, `${id}L`, `${net}.11/24`)).exitCode, 0)
  await sh('docker', ['restart', '-t', '0', a.name, b.name])
  await Promise.all([restarted(a), restarted(b)])
  await sh('ip', ['link', 'del', nic]) // a's macvlan parent is gone: its replay cannot succeed

  const once = await plumb('watch', '--once')
  t.is(once.exitCode, 1, once.stdout)
  t.regex(once.stdout, new RegExp(`replay of docker:${a.name} \\(${a.id.slice(0, 12)}\\) failed: .*eth1 macvlan: no interface "${nic}" on the host`))
  t.regex(once.stdout, new RegExp(`replayed docker:${b.name} \\(${b.id.slice(0, 12)}\\) found running: made eth1 attach-veth`))
  t.regex(once.stdout, /watch --once: 2 replayed, 1 failed, 0 records forgotten/)
  t.deepEqual((await interfacesOf(await inspectContainer(b.name))).eth1?.addrs, [`${net}.11/24`])
})

withDocker('gc forgets the record of a container the engine no longer has (and the p2p links to it in other records), keeps a stopped one\'s, and keeps all while Docker cannot be asked', async (t) => {
  await holdGcLock(t) // gc is host-wide
  const lab = restartLab(t)
  const { id, plumb } = lab
  const net = lab.net()
  const [a, b] = await Promise.all([makeContainer(t, { name: `${id}a` }), makeContainer(t, { name: `${id}b` })])
  t.is((await plumb('attach-veth', a.name, `${id}L`, `${lab.net()}.10/24`)).exitCode, 0)
  t.is((await plumb('p2p-link', a.name, b.name, '--ip-a', `${net}.0/31`, '--ip-b', `${net}.1/31`)).exitCode, 0)
  await sh('docker', ['stop', '-t', '0', a.name])
  await sh('docker', ['rm', '-f', b.name])
  t.is(Object.keys(recordsIn(lab.records)).length, 2)

  const blind = await runCli(['gc', '--dry-run', '--json'], { env: { ...lab.env, DOCKER_HOST: `unix:///run/${id}-no-docker.sock` } })
  t.false(JSON.stringify(blind.json ?? {}).includes(`forget the replay record of docker:${b.name}`), `Docker unreachable: nothing forgotten (${blind.stderr})`)
  t.regex(blind.stderr + JSON.stringify(blind.json ?? {}), new RegExp(`kept replay record .*docker-${b.id}\\.json: cannot tell whether container docker:${b.name} still exists`))
  t.is(Object.keys(recordsIn(lab.records)).length, 2)

  const g = await plumb('gc', '--json')
  t.is(g.exitCode, 0, g.stderr)
  t.true(g.json.messages.includes(`forgot the replay record of docker:${b.name}: the container no longer exists`), JSON.stringify(g.json.messages))
  const left = recordsIn(lab.records)
  t.deepEqual(Object.keys(left), [`docker-${a.id}.json`], 'the stopped container keeps its record')
  t.deepEqual(left[`docker-${a.id}.json`]?.entries.map((e) => e.op), ['attach-veth'], 'without the p2p link to the removed one')
})
