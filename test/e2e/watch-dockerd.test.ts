// plumb watch while its dockerd restarts. The machine's dockerd is shared by every test running,
// so this test starts a dockerd of its own (its own data root, exec root, pidfile, socket and
// managed containerd; no bridge, no iptables), stops and starts it by its pid, and points plumb
// at it with DOCKER_HOST. The container (--restart=always) dies with the daemon and is started
// again by it, in a new netns: the watch says it lost the stream, reconnects, and re-plumbs it.

import { TEST_IMAGE, assertTraffic, getLink, hasDocker, holdGcLock, isRoot, makeNetns, privateDockerd, testIf } from '../helpers/index.js'
import type { TestContainer } from '../helpers/index.js'
import { interfacesOf, restartLab, startWatch } from './restart-fixture.js'

const withDocker = testIf(isRoot && hasDocker(), 'watch-dockerd: needs root, dockerd and plumb-test:busybox (loaded into a dockerd of the test\'s own)')

withDocker('dockerd restarted while watch runs: the watch says it lost the stream, reconnects, and re-plumbs the container the daemon started again', async (t) => {
  // Its container lives on a private dockerd the machine's does not know: kept apart from other
  // tests' host-wide gcs all the same (they keep its links, whose netns is alive, but a gc run
  // while the daemon is down, its netns gone, is not what this test is about).
  await holdGcLock(t)
  const lab = restartLab(t)
  const { id } = lab
  const net = lab.net()
  // the machine's dockerd's default bridge: a private dockerd must never delete it (its carrier
  // and flags come and go with the other tests' containers: the same link is what counts)
  const bridgeIndex = async (): Promise<number | undefined> => (await getLink('docker0'))?.ifindex as number | undefined
  const docker0 = await bridgeIndex()
  const d = privateDockerd(t, id)
  await d.start()
  await d.loadTestImage()
  const env = { ...lab.env, DOCKER_HOST: d.host }
  const plumb = (...args: string[]) => import('../helpers/index.js').then((h) => h.runCli(args, { env }))
  const inspect = async (): Promise<TestContainer> => {
    const [name = '', cid = '', pid = '0', sandboxKey = ''] = (await d.docker('inspect', '-f', '{{.Name}}|{{.Id}}|{{.State.Pid}}|{{.NetworkSettings.SandboxKey}}', `${id}a`)).split('|')
    return { name: name.replace(/^\//, ''), id: cid, pid: Number(pid), sandboxKey }
  }
  await d.docker('run', '-d', '--net=none', '--restart=always', '--stop-timeout', '1', '--name', `${id}a`, TEST_IMAGE, 'sleep', '100000')
  const a = await inspect()
  const r = await plumb('attach-veth', a.name, `${id}L`, `${net}.10/24`)
  t.is(r.exitCode, 0, r.stderr)
  const before = await interfacesOf(a)
  // a peer on the same bridge, to carry traffic to the container before and after
  const peer = await makeNetns(t, { name: `${id}p` })
  const p = await plumb('attach-veth', `netns:${peer}`, `${id}L`, `${net}.11/24`)
  t.is(p.exitCode, 0, p.stderr)
  await assertTraffic(t, peer, { path: a.sandboxKey }, `${net}.10`, 'the container before the daemon restarts')

  const w = startWatch(t, env, ['-v'])
  await w.line(/following Docker's container events at unix:\/\/.*-dockerd\/docker\.sock/)
  // The first reconciliation may wait for the bridge lock (the op's own wait is 30 s): either its
  // line or the replay's failure, which names what it waited for, shows here.
  const id12 = a.id.slice(0, 12)
  await w.line(new RegExp(`docker:${a.name} \\(${id12}\\) is running with its record in place|replay of \\S+ \\(${id12}\\) failed`), { timeout: 45_000 })
  t.truthy(w.lines.find((l) => l.includes('is running with its record in place')), w.lines.join('\n'))
  const from = w.lines.length
  await d.stop()
  await w.line(/lost Docker's event stream: .*; reconnecting/, { from })
  await d.start()
  await w.line(/back: following Docker's container events/, { from, timeout: 30_000 })
  await w.line(new RegExp(`replayed docker:${a.name} \\(${a.id.slice(0, 12)}\\) (after its start|found running): made eth1 attach-veth`), { from, timeout: 30_000 })
  const a2 = await inspect()
  t.not(a2.pid, a.pid, 'the daemon started the container again')
  t.deepEqual(await interfacesOf(a2), before, 'same name, MAC and address in the new netns')
  await assertTraffic(t, peer, { path: a2.sandboxKey }, `${net}.10`, 'the container re-plumbed in its new netns')
  t.is(w.lines.slice(from).filter((l) => /lost Docker's event stream/.test(l)).length, 1, 'one line for the outage, not one per retry')
  t.is(await bridgeIndex(), docker0, "the host's docker0 is the same link as before")
  await w.stop()
})
