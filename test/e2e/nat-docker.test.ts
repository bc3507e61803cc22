// expose, masquerade and isolate on real `docker run --net=none` containers on this Docker host
// (br_netfilter on, FORWARD DROP in force), and the Docker-bridge fix: attach-veth adds no ACCEPT
// on a Docker network's bridge (enable_icc=false stays closed). Real servers in the guests
// (busybox httpd, a UDP echo in their netns); "another machine" is a netns behind a host veth.
//
// The host's firewall is shared with other tests running at the same time, so "iptables-save as
// before" is checked on what is not theirs: Docker's own lines and every line naming this test
// (hostSave). nat-netns.test.ts checks the exact save of a host of its own.

import { randomInt } from 'node:crypto'
import { conntrackEntries, hasBinary, hasDocker, holdGcLock, httpGet, isRoot, makeBridge, makeContainer, makeNetns, ping, sh, shQuiet, startEcho, startHttpd, tcpAsk, testIf, udpAsk, uniq, reach, reserveOctet } from '../helpers/index.js'
import type { TestContainer, Teardown } from '../helpers/index.js'
import { dropEmptyPlumbChains, forwardDropActive, plumb } from '../integration/ops-fixture.js'
import { normalizeSave } from '../integration/nat-fixture.js'
import { withFirewallLock } from '../../lib/ops/firewall.js'

const withDocker = testIf(isRoot && hasDocker() && hasBinary('conntrack'), 'nat-docker: needs root, dockerd with plumb-test:busybox, and conntrack (scripts/testbed.sh up)')

// Docker's own lines (its chains, the docker0 rules, the jumps): other tests do not touch them.
const DOCKER_CORE = [
  /^\*(filter|nat)$/,
  /^COMMIT$/,
  /^:(INPUT|FORWARD|OUTPUT|PREROUTING|POSTROUTING|DOCKER|DOCKER-USER|DOCKER-ISOLATION-STAGE-[12]) /,
  /^-A (FORWARD|PREROUTING|OUTPUT) .*-j (DOCKER|DOCKER-USER|DOCKER-ISOLATION-STAGE-1)$/,
  /^-A (DOCKER-USER|DOCKER-ISOLATION-STAGE-[12]) -j RETURN$/,
  /^-A (FORWARD|DOCKER-ISOLATION-STAGE-[12]) .*docker0/,
  /^-A DOCKER -i docker0 -j RETURN$/,
  /^-A POSTROUTING -s \S+ ! -o docker0 -j MASQUERADE$/,
]
const TEST_ID = /\bpt-?[0-9a-f]{6}/g

/**
 * The host's iptables-save (both tables) as far as this test owns it (see the top): Docker's
 * own lines and every line naming this test. Other tests' rules (and plumb's shared chains,
 * which come and go with them) are not this test's to compare.
 */
async function hostSave(id: string): Promise<string> {
  const text = normalizeSave((await shQuiet('iptables-save', [])).stdout)
  return text
    .split('\n')
    .filter((l) => l.includes(id) || (DOCKER_CORE.some((re) => re.test(l)) && (l.match(TEST_ID) ?? []).every((x) => id.startsWith(x))))
    .join('\n')
}

/** Remove whatever rule still names this test (a failed test must not leave its rules behind). */
async function sweepRules(id: string): Promise<void> {
  // under plumb's firewall lock, as removeFirewallRules
  await withFirewallLock(false, async () => {
    const save = (await shQuiet('iptables-save', [])).stdout
    let table = 'filter'
    for (const line of save.split('\n')) {
      if (line.startsWith('*')) table = line.slice(1)
      if (!line.startsWith('-A ') || !line.includes(id)) continue
      const args = line.replace(/^-A /, '-D ').match(/"[^"]*"|\S+/g)!.map((a) => a.replace(/^"|"$/g, ''))
      await shQuiet('iptables', ['-w', '-t', table, ...args])
    }
  })
  await dropEmptyPlumbChains()
}

interface Site {
  id: string
  /** the plumb bridge (ours, with the guests' gateway) and a second one */
  br: string
  br2: string
  net: string
  net2: string
  /** another machine: a netns behind the host veth `${id}u` */
  far: string
  upAddr: string
  farAddr: string
}

// Each site's three /24s, held by no other running test (two bridges with one subnet would split
// a guest's traffic between them).
async function site(t: Teardown): Promise<Site> {
  const [a, b, u] = [reserveOctet(t, '198.19'), reserveOctet(t, '198.19'), reserveOctet(t, '198.19')]
  const id = uniq()
  t.teardown(() => sweepRules(id))
  const br = await makeBridge(t, `${id}b`)
  const br2 = await makeBridge(t, `${id}c`)
  await sh('ip', ['addr', 'add', `198.19.${a}.1/24`, 'dev', br])
  await sh('ip', ['addr', 'add', `198.19.${b}.1/24`, 'dev', br2])
  const far = await makeNetns(t, { name: `${id}f`, loUp: true })
  const up = `${id}u`
  t.teardown(async () => void (await shQuiet('ip', ['link', 'del', up])))
  await sh('ip', ['link', 'add', up, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', far])
  await sh('ip', ['addr', 'add', `198.19.${u}.1/24`, 'dev', up])
  await sh('ip', ['link', 'set', up, 'up'])
  await sh('ip', ['-n', far, 'addr', 'add', `198.19.${u}.2/24`, 'dev', 'eth0'])
  await sh('ip', ['-n', far, 'link', 'set', 'eth0', 'up'])
  return { id, br, br2, net: `198.19.${a}`, net2: `198.19.${b}`, far, upAddr: `198.19.${u}.1`, farAddr: `198.19.${u}.2` }
}

/** A --net=none container attached to `bridge` with ADDR/24 and the bridge as its gateway. */
async function guest(t: Teardown, name: string, bridge: string, net: string, host: number): Promise<TestContainer> {
  const c = await makeContainer(t, { name })
  const r = await plumb('attach-veth', c.name, bridge, `${net}.${host}/24@${net}.1`)
  if (r.exitCode !== 0) throw new Error(`attach ${c.name}: ${r.stderr}`)
  return c
}

withDocker('expose on Docker containers under FORWARD DROP: TCP and UDP from another machine, the host (its address, 127.0.0.1), the same bridge and another bridge; --del: from none; iptables-save as before', async (t) => {
  t.true(await forwardDropActive(), "Docker's FORWARD DROP is in force for bridged frames")
  const s = await site(t)
  const web = await guest(t, `${s.id}w`, s.br, s.net, 10)
  const peer = await guest(t, `${s.id}p`, s.br, s.net, 11)
  const other = await guest(t, `${s.id}o`, s.br2, s.net2, 10)
  await startHttpd(t, { container: web.name }, 80, 'web')
  await startEcho(t, { container: web.name }, 53, 'udp-web', 'udp')
  const before = await hostSave(s.id)
  // tests of this file run at once on one host: each its own ports
  const [tcp, udp] = [20000 + randomInt(0, 4999), 25000 + randomInt(0, 4999)]

  const r = await plumb('expose', web.name, `${tcp}:80`, `${udp}:53/udp`, '80', '--json')
  t.is(r.exitCode, 0, r.stderr)
  const chosen = (r.json.published as Array<{ hostPort: number; proto: string; port: number }>).find((p) => p.hostPort !== tcp && p.proto === 'tcp')!.hostPort
  const [lo, hi] = (await sh('sysctl', ['-n', 'net.ipv4.ip_local_port_range'])).split(/\s+/).map(Number)
  t.true(chosen >= lo! && chosen <= hi!, `the chosen host port ${chosen} is in ip_local_port_range`)
  const from: Array<[string, Parameters<typeof httpGet>[0], string]> = [
    ['another machine', s.far, s.upAddr],
    ['the host, its own address', undefined, s.upAddr],
    ['the host, 127.0.0.1', undefined, '127.0.0.1'],
    ['a container on the same bridge (hairpin)', { container: peer.name }, `${s.net}.1`],
    ['a container on another bridge', { container: other.name }, s.upAddr],
  ]
  for (const [who, ns, addr] of from) {
    t.is(await httpGet(ns, addr, tcp), 'web', `TCP from ${who}`)
    t.regex((await udpAsk(ns, addr, udp)) ?? 'no answer', /^udp-web /, `UDP from ${who}`)
  }
  t.is(await httpGet(s.far, s.upAddr, chosen), 'web', 'the chosen port answers too')
  t.is(await udpAsk(s.far, s.upAddr, udp), `udp-web ${s.farAddr}`, "the far end's address reaches the guest as it is")
  const ls = await plumb('ls', web.name)
  t.regex(ls.stdout, new RegExp(`expose {3}0\\.0\\.0\\.0:${tcp}/tcp -> \\S+:80$`, 'm'))

  const del = await plumb('expose', web.name, `${tcp}:80`, `${udp}:53/udp`, '80', '--del')
  t.is(del.exitCode, 0, del.stderr)
  for (const [who, ns, addr] of from) {
    t.is(await httpGet(ns, addr, tcp, { timeout: 1000 }), undefined, `no TCP from ${who}`)
    t.is(await udpAsk(ns, addr, udp, { timeout: 1000 }), undefined, `no UDP from ${who}`)
  }
  t.is(await hostSave(s.id), before, 'iptables-save (filter and nat) as before')
  t.is(await sh('sysctl', ['-n', `net.ipv4.conf.${s.br}.route_localnet`]), '0')
})

withDocker('expose HOSTIP answers only there; a UDP flow republished to another container reaches it (conntrack)', async (t) => {
  const s = await site(t)
  const a = await guest(t, `${s.id}a`, s.br, s.net, 10)
  const b = await guest(t, `${s.id}b2`, s.br, s.net, 11)
  await startHttpd(t, { container: a.name }, 80, 'web-a')
  await startEcho(t, { container: a.name }, 53, 'udp-a', 'udp')
  await startEcho(t, { container: b.name }, 53, 'udp-b', 'udp')
  await sh('ip', ['-n', s.far, 'route', 'add', `${s.net}.0/24`, 'via', s.upAddr])

  const web = 30000 + randomInt(0, 4999)
  t.is((await plumb('expose', a.name, `${s.upAddr}:${web}:80`)).exitCode, 0)
  t.is(await httpGet(s.far, s.upAddr, web), 'web-a')
  t.is(await httpGet(s.far, `${s.net}.1`, web, { timeout: 1000 }), undefined, "not through the bridge's address")
  t.is(await httpGet(undefined, '127.0.0.1', web, { timeout: 1000 }), undefined, 'not through 127.0.0.1')
  t.is((await plumb('expose', a.name, `${s.upAddr}:${web}:80`, '--del')).exitCode, 0)

  const flow = { srcPort: 40000 + randomInt(0, 9999) }
  const port = String(35000 + randomInt(0, 4999))
  t.is((await plumb('expose', a.name, `${port}:53/udp`)).exitCode, 0)
  t.is(await udpAsk(s.far, s.upAddr, Number(port), flow), `udp-a ${s.farAddr}`)
  t.is((await plumb('expose', a.name, `${port}:53/udp`, '--del')).exitCode, 0)
  t.is(await udpAsk(s.far, s.upAddr, Number(port), { ...flow, timeout: 1000 }), undefined, 'nothing answers while unpublished')
  t.true((await conntrackEntries(undefined, 'udp', Number(port))).some((l) => l.includes(`sport=${flow.srcPort}`)), 'the flow has a (stale) entry')
  t.is((await plumb('expose', b.name, `${port}:53/udp`)).exitCode, 0)
  t.is(await udpAsk(s.far, s.upAddr, Number(port), flow), `udp-b ${s.farAddr}`, 'the same flow reaches the new container')
  t.is((await plumb('expose', b.name, `${port}:53/udp`, '--del')).exitCode, 0)
})

withDocker("a host port held by Docker's own -p, by a host socket or by plumb is exit 4 naming the holder; --all publishes the EXPOSE list", async (t) => {
  const s = await site(t)
  const web = await guest(t, `${s.id}w`, s.br, s.net, 10)
  const hostPort = 10000 + randomInt(0, 4999)
  const pub = await makeContainer(t, { name: `${s.id}d`, net: 'bridge', args: ['-p', `${hostPort}:80`] })
  const before = await hostSave(s.id)
  const byDocker = await plumb('expose', web.name, `${hostPort}:80`)
  t.is(byDocker.exitCode, 4, byDocker.stderr)
  t.regex(byDocker.stderr, new RegExp(`host port 0\\.0\\.0\\.0:${hostPort}/tcp is taken: Docker \\(container ${pub.name}, -p ${hostPort}:80/tcp\\)`))
  t.is(await hostSave(s.id), before, 'nothing changed')

  const echoPort = 15000 + randomInt(0, 4999)
  await startEcho(t, undefined, echoPort, 'holder', 'tcp')
  const bySocket = await plumb('expose', web.name, `${echoPort}:80`)
  t.is(bySocket.exitCode, 4)
  t.regex(bySocket.stderr, new RegExp(`taken: a host socket listening on \\S+:${echoPort}/tcp \\(pid \\d+ \\(node\\)\\)`))

  // --all: the container's EXPOSE list (docker run --expose, as an image's EXPOSE), ports chosen
  const exposing = await makeContainer(t, { name: `${s.id}x`, args: ['--expose', '80', '--expose', '53/udp'] })
  t.is((await plumb('attach-veth', exposing.name, s.br, `${s.net}.12/24@${s.net}.1`)).exitCode, 0)
  await startHttpd(t, { container: exposing.name }, 80, 'exposing')
  const all = await plumb('expose', exposing.name, '--all', '--json')
  t.is(all.exitCode, 0, all.stderr)
  const ports = all.json.published as Array<{ proto: string; port: number; hostPort: number; state: string }>
  t.deepEqual(ports.map((p) => [p.proto, p.port, p.state]).sort(), [['tcp', 80, 'published'], ['udp', 53, 'published']])
  const http = ports.find((p) => p.proto === 'tcp')!.hostPort
  t.is(await httpGet(s.far, s.upAddr, http), 'exposing', `the chosen port ${http} answers`)
  const byPlumb = await plumb('expose', web.name, `${http}:80`)
  t.is(byPlumb.exitCode, 4)
  t.regex(byPlumb.stderr, new RegExp(`taken: plumb \\(published to docker:${exposing.name} ${s.net}\\.12:80\\)`))
  t.is((await plumb('expose', exposing.name, '--all', '--del')).exitCode, 0)
  t.is(await hostSave(s.id), before)
})

withDocker('masquerade and isolate under FORWARD DROP: out with the host\'s address; isolated guests reach the bridge and the outside, not each other; an allowed pair talks; --del restores', async (t) => {
  const s = await site(t)
  const a = await guest(t, `${s.id}a`, s.br, s.net, 10)
  const b = await guest(t, `${s.id}b2`, s.br, s.net, 11)
  const c = await guest(t, `${s.id}c2`, s.br, s.net, 12)
  await startEcho(t, s.far, 7000, 'far', 'tcp')
  await startEcho(t, s.far, 7001, 'far', 'udp')
  const at = (g: TestContainer): { container: string } => ({ container: g.name })
  // ping, a TCP echo and a UDP echo (the shared traffic helper), the server in the container holding `to`
  const holder = (to: string): TestContainer => [a, b, c].find((g) => to === `${s.net}.${10 + [a, b, c].indexOf(g)}`)!
  const reachAddr = (from: TestContainer, to: string): Promise<boolean[]> => reach(at(from), at(holder(to)), to)
  const before = await hostSave(s.id)
  t.is(await tcpAsk(at(a), s.farAddr, 7000, { timeout: 1000 }), undefined, 'the far end has no route back: no answer before masquerade')

  t.is((await plumb('masquerade', s.br)).exitCode, 0)
  t.is(await tcpAsk(at(a), s.farAddr, 7000), `far ${s.upAddr}`, "TCP out, with the host's address")
  t.is(await udpAsk(at(a), s.farAddr, 7001), `far ${s.upAddr}`, 'UDP out')
  t.deepEqual(await reachAddr(a, `${s.net}.11`), [true, true, true], 'before isolate: a reaches b')

  t.is((await plumb('isolate', s.br)).exitCode, 0)
  t.deepEqual(await reachAddr(a, `${s.net}.11`), [false, false, false], 'a cannot reach b')
  t.deepEqual(await reachAddr(b, `${s.net}.12`), [false, false, false], 'b cannot reach c')
  t.true(await ping(at(a), `${s.net}.1`), "a reaches the bridge's address")
  t.is(await tcpAsk(at(b), s.farAddr, 7000), `far ${s.upAddr}`, 'b reaches the outside')

  t.is((await plumb('isolate', s.br, '--allow', `${a.name},${b.name}`)).exitCode, 0)
  t.deepEqual(await reachAddr(a, `${s.net}.11`), [true, true, true], 'the allowed pair talks')
  t.deepEqual(await reachAddr(b, `${s.net}.10`), [true, true, true], 'both ways')
  t.deepEqual(await reachAddr(c, `${s.net}.10`), [false, false, false], 'c still cannot reach a')
  const d = await guest(t, `${s.id}d2`, s.br, s.net, 13)
  t.false(await ping(at(d), `${s.net}.10`, { timeout: 1 }), 'a container attached later is isolated too')

  t.is((await plumb('isolate', s.br, '--del')).exitCode, 0)
  t.deepEqual(await reachAddr(c, `${s.net}.10`), [true, true, true], 'after --del c reaches a')
  t.is((await plumb('masquerade', s.br, '--del')).exitCode, 0)
  t.is(await tcpAsk(at(a), s.farAddr, 7000, { timeout: 1000 }), undefined, 'no way out after masquerade --del')
  t.is(await hostSave(s.id), before)
})

withDocker("attach-veth onto a Docker network's bridge (enable_icc=false) adds no ACCEPT: Docker's policy holds; isolate and masquerade refuse Docker's bridges", async (t) => {
  const net = `198.19.${reserveOctet(t, '198.19')}`
  const id = uniq()
  t.teardown(() => sweepRules(id))
  const bridge = `${id}d`
  t.teardown(async () => void (await shQuiet('docker', ['network', 'rm', `${id}n`])))
  await sh('docker', ['network', 'create', '-o', 'com.docker.network.bridge.enable_icc=false', '-o', `com.docker.network.bridge.name=${bridge}`, '--subnet', `${net}.0/24`, `${id}n`])
  // registered after the network's: containers go first (their ports leave the bridge), then the network
  const [a, b] = [await makeContainer(t, { name: `${id}a` }), await makeContainer(t, { name: `${id}b` })]
  for (const [c, h] of [[a, 10], [b, 11]] as const) {
    const r = await plumb('attach-veth', c.name, bridge, `${net}.${h}/24`)
    t.is(r.exitCode, 0, r.stderr)
    t.regex(r.stdout, /is Docker's bridge: its forwarding policy is Docker's/)
  }
  const filter = (await sh('iptables-save', ['-t', 'filter'])).split('\n')
  t.false(filter.some((l) => l.includes(`plumb:${bridge}`)), 'no plumb ACCEPT for the bridge')
  t.true(filter.includes(`-A FORWARD -i ${bridge} -o ${bridge} -j DROP`), "Docker's own icc=false DROP is there")
  t.false(await ping({ container: a.name }, `${net}.11`, { timeout: 1 }), 'and it holds: a cannot reach b')

  const iso = await plumb('isolate', bridge)
  t.is(iso.exitCode, 4)
  t.regex(iso.stderr, /is Docker's bridge: its isolation is Docker's --icc setting/)
  const masq = await plumb('masquerade', bridge)
  t.is(masq.exitCode, 4)
  t.regex(masq.stderr, /Docker masquerades its networks itself/)
  for (const c of [a, b]) t.is((await plumb('detach', c.name, '--all')).exitCode, 0)
  t.is((await sh('ip', ['link', 'show', bridge])).includes(bridge), true, "detach leaves Docker's bridge alone")
})

withDocker("detach --all removes a container's published ports; gc removes those of a container that is gone", async (t) => {
  await holdGcLock(t) // a host-wide gc: one at a time across the test files
  const s = await site(t)
  const a = await guest(t, `${s.id}a`, s.br, s.net, 10)
  const b = await guest(t, `${s.id}b2`, s.br, s.net, 11)
  const before = await hostSave(s.id)
  t.is((await plumb('expose', a.name, '80', '53/udp')).exitCode, 0)
  t.is((await plumb('expose', b.name, '80')).exitCode, 0)
  const d = await plumb('detach', a.name, '--all')
  t.is(d.exitCode, 0, d.stderr)
  t.regex(d.stdout, /unpublished 0\.0\.0\.0:\d+\/tcp \(to docker:\S+ \S+:80\)/)
  t.false((await sh('iptables-save', [])).includes(`guest=docker:${a.name} `))

  await sh('docker', ['rm', '-f', b.name])
  const gc = await plumb('gc')
  t.is(gc.exitCode, 0, gc.stderr)
  t.regex(gc.stdout, new RegExp(`removed plumb's expose rule expose tcp :\\d+: its guest docker:${b.name} is gone`))
  t.false((await sh('iptables-save', [])).includes(`guest=docker:${b.name} `))
  t.is(await hostSave(s.id), before)
})
