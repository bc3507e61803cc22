// Labs on real containers (dockerd), driven through the CLI as a teacher would: deploy -> check
// passes in all four formats (TAP by a TAP parser, JUnit by an XML parser) -> one address deleted
// by hand -> exactly that check fails, exit 1 -> deploy repairs it -> destroy leaves nothing ->
// destroy again is a no-op. A lab built by hand (docker run, ip) is graded the same; a
// containerlab-style file deploys unchanged. Truth is read from docker, ip, iptables and traffic.

import { readFileSync } from 'node:fs'
import { XMLParser } from 'fast-xml-parser'
import { Parser } from 'tap-parser'
import { TEST_IMAGE, assertTraffic, hasDocker, hasOvs, inspectContainer, ipJson, isRoot, ping, sh, testIf, waitFor, reserveOctet } from '../helpers/index.js'
import { forwardDropActive } from '../integration/ops-fixture.js'
import { labContainers, labFixture, leftovers, nothingLeft } from './lab-fixture.js'

const withDocker = testIf(isRoot && hasDocker(), 'lab-docker: needs root and dockerd with plumb-test:busybox (scripts/testbed.sh up)')
const withDockerOvs = testIf(isRoot && hasDocker() && hasOvs(), 'lab-docker: needs root, dockerd with plumb-test:busybox and Open vSwitch')

/** web and db on bridge ID-l (the host is 198.18.N.1 on it), a direct /31 between them, an ip netns r1 linked to the host. */
function lesson(id: string, net: string, p2p: string): string {
  return `name: ${id}
prefix: __lab-name
topology:
  defaults: {kind: linux, image: ${TEST_IMAGE}}
  kinds:
    linux: {cmd: sleep 1000000}
  nodes:
    web: {}
    db:
      # a TCP server on 80 (busybox nc: -ll keeps listening)
      cmd: ["nc", "-ll", "-p", "80", "-e", "echo", "hello from db"]
    r1: {kind: netns}
    ${id}l: {kind: bridge, ips: [${net}.1/24]}
  links:
    - endpoints: ["web:eth1", "${id}l:${id}w1"]
      ips: [${net}.10/24@${net}.1]
    - endpoints: ["db:eth1", "${id}l:${id}d1"]
      ips: [${net}.11/24]
    - endpoints: ["web:eth2", "db:eth2"]
      ips: [${p2p}.0/31, ${p2p}.1/31]
    - endpoints: ["r1:eth1", "host:${id}h"]
      ips: [${p2p}.66/32, ${p2p}.65/32]
checks:
  - {from: web, ping: db}
  - {from: web, tcp: "db:80", points: 2}
  - {name: web has its p2p address, node: web, ifname: eth2, has-address: ${p2p}.0/31}
  - {node: web, has-route: "default via ${net}.1"}
  - {from: r1, ping: host}
  - {from: web, ping: ${p2p}.99, expect: fail, timeout: 1}
  - {node: web, exec: "cat /etc/hostname", stdout: "^web$"}
`
}

function parseTap(text: string): Promise<{ ok: boolean; count: number; pass: number; failures: string[] }> {
  return new Promise((resolve) => {
    const p = new Parser((r) => resolve({ ok: r.ok, count: r.count, pass: r.pass, failures: r.failures.map((f) => f.name) }))
    p.end(text)
  })
}

withDocker('deploy -> check passes (4 formats) -> an address deleted by hand fails exactly its check -> deploy repairs -> destroy leaves nothing -> destroy again is a no-op', async (t) => {
  const net = `198.18.${reserveOctet(t)}`
  const p2p = `198.19.${reserveOctet(t, '198.19')}`
  const f = labFixture(t)
  const file = f.write('lesson.yml', lesson(f.id, net, p2p))

  const dep = await f.plumb('lab', 'deploy', file)
  t.is(dep.exitCode, 0, dep.stderr)
  t.regex(dep.stdout, new RegExp(`lab ${f.id}: deployed \\(4 nodes made, 4 links made`))
  // a line per node and link on stderr (not a TTY here)
  t.regex(dep.stderr, new RegExp(`\\[\\s*\\d+/\\d+\\] link web:eth1 -- ${f.id}l:${f.id}w1: linked`))

  // The truth: privileged (or all the host's capabilities), --net=none containers labelled with the lab.
  const cs = await labContainers(f.id)
  t.deepEqual([...cs.keys()].sort(), [`${f.id}-db`, `${f.id}-web`])
  for (const [name, c] of cs) {
    t.true(c.running, name)
    t.is(c.labels['plumb.lab.node'], name.slice(f.id.length + 1))
    t.true(c.privileged || (c.capAdd ?? []).includes('ALL'), `${name} runs privileged (or with every capability this host has)`)
  }
  const web = await inspectContainer(`${f.id}-web`)
  const db = await inspectContainer(`${f.id}-db`)
  const at = (c: { sandboxKey: string }): { path: string } => ({ path: c.sandboxKey })
  const addrs = async (c: { sandboxKey: string }, ifname: string): Promise<string[]> =>
    ((await ipJson(['addr', 'show', 'dev', ifname], at(c)))[0]?.addr_info ?? []).filter((a: { scope: string }) => a.scope === 'global').map((a: { local: string; prefixlen: number }) => `${a.local}/${a.prefixlen}`)
  t.deepEqual(await addrs(web, 'eth1'), [`${net}.10/24`])
  t.deepEqual(await addrs(web, 'eth2'), [`${p2p}.0/31`])
  t.deepEqual(await addrs(db, 'eth2'), [`${p2p}.1/31`])
  t.true((await sh('ip', ['netns', 'list'])).includes(`${f.id}-r1`))
  // traffic (ping, TCP, UDP): over the bridge (through Docker's FORWARD DROP), over the direct link, r1 to the host over its /32
  await assertTraffic(t, at(web), at(db), `${net}.11`, 'web -> db over the bridge')
  await assertTraffic(t, at(web), at(db), `${p2p}.1`, 'web -> db over the p2p link')
  await assertTraffic(t, `${f.id}-r1`, undefined, `${p2p}.65`, 'r1 -> the host over the /32')
  // Docker's FORWARD DROP would block the lab's bridge: its ACCEPT rule is in place
  if (await forwardDropActive()) t.regex(await sh('iptables-save', []), new RegExp(`-i ${f.id}l -o ${f.id}l .*plumb:${f.id}l`))

  // check: all four formats, each parsed
  const text = await f.plumb('lab', 'check', file)
  t.is(text.exitCode, 0, text.stdout + text.stderr)
  t.regex(text.stdout, /score 8\/8$/)
  const tap = await f.plumb('lab', 'check', file, '--format', 'tap')
  t.is(tap.exitCode, 0)
  t.like(await parseTap(tap.stdout), { ok: true, count: 7, pass: 7 })
  const junit = await f.plumb('lab', 'check', file, '--format', 'junit', '--out', 'report.xml')
  t.is(junit.exitCode, 0)
  t.is(junit.stdout.trim(), 'score 8/8 (report in report.xml)')
  const xml = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '' }).parse(readFileSync(`${f.dir}/report.xml`, 'utf8')) as { testsuites: { tests: string; failures: string } }
  t.like(xml.testsuites, { tests: '7', failures: '0' })
  const json = await f.plumb('lab', 'check', file, '--json')
  t.like(json.json, { score: 8, total: 8 })

  // a second deploy changes nothing
  const before = await ipJson(['-d', 'link', 'show'], at(web))
  const again = await f.plumb('lab', 'deploy', file)
  t.is(again.exitCode, 0, again.stderr)
  t.regex(again.stdout, /already deployed \(4 nodes, 4 links in place\); nothing changed/)
  t.deepEqual((await ipJson(['-d', 'link', 'show'], at(web))).map((l) => [l.ifname, l.ifindex]), before.map((l) => [l.ifname, l.ifindex]))

  // break one thing by hand: the check of that thing fails, and only it
  await sh('nsenter', [`--net=${web.sandboxKey}`, 'ip', 'addr', 'del', `${p2p}.0/31`, 'dev', 'eth2'])
  const broken = await f.plumb('lab', 'check', file, '--format', 'tap')
  t.is(broken.exitCode, 1)
  const bt = await parseTap(broken.stdout)
  t.deepEqual(bt.failures, ['web has its p2p address'])
  t.is(bt.pass, 6)

  const repair = await f.plumb('lab', 'deploy', file)
  t.is(repair.exitCode, 0, repair.stderr)
  t.regex(repair.stdout, new RegExp(`repaired web:eth2: added ${p2p.replaceAll('.', '\\.')}\\.0/31`))
  t.deepEqual(await addrs(web, 'eth2'), [`${p2p}.0/31`])
  t.is((await f.plumb('lab', 'check', file)).exitCode, 0)

  const gone = await f.plumb('lab', 'destroy', file)
  t.is(gone.exitCode, 0, gone.stderr)
  t.deepEqual(await leftovers(f.id), nothingLeft)
  const twice = await f.plumb('lab', 'destroy', file)
  t.is(twice.exitCode, 0)
  t.regex(twice.stdout, /nothing to destroy/)
  // graded after destroy: every check fails (a node that is not there fails its checks, not the run)
  const none = await f.plumb('lab', 'check', file, '--json')
  t.is(none.exitCode, 1)
  t.is(none.json.score, 0)
  t.regex(none.json.checks[0].detail, /node (web|db) is not there/)
})

withDocker('a lab built by hand (docker run, ip commands) is graded exactly like a deployed one', async (t) => {
  const net = `198.18.${reserveOctet(t)}`
  const p2p = `198.19.${reserveOctet(t, '198.19')}`
  const f = labFixture(t)
  const file = f.write('lesson.yml', lesson(f.id, net, p2p))
  t.teardown(async () => {
    await sh('docker', ['rm', '-f', `${f.id}-web`, `${f.id}-db`]).catch(() => undefined)
  })
  // The student's work: the same topology with docker and ip, no plumb.
  await sh('docker', ['run', '-d', '--net=none', '--hostname', 'web', '--name', `${f.id}-web`, TEST_IMAGE, 'sleep', '1000000'])
  await sh('docker', ['run', '-d', '--net=none', '--hostname', 'db', '--name', `${f.id}-db`, TEST_IMAGE, 'nc', '-ll', '-p', '80', '-e', 'echo', 'hello from db'])
  const web = await inspectContainer(`${f.id}-web`)
  const db = await inspectContainer(`${f.id}-db`)
  const lan = `${f.id}l`
  const script = [
    `ip link add ${lan} type bridge && ip link set ${lan} up && ip addr add ${net}.1/24 dev ${lan}`,
    `ip link add ${f.id}w1 master ${lan} up type veth peer name eth1 netns ${web.pid}`,
    `ip link add ${f.id}d1 master ${lan} up type veth peer name eth1 netns ${db.pid}`,
    `ip link add eth2 netns ${web.pid} type veth peer name eth2 netns ${db.pid}`,
    `nsenter --net=/proc/${web.pid}/ns/net sh -c 'ip addr add ${net}.10/24 dev eth1 && ip link set eth1 up && ip route add default via ${net}.1 && ip addr add ${p2p}.0/31 dev eth2 && ip link set eth2 up'`,
    `nsenter --net=/proc/${db.pid}/ns/net sh -c 'ip addr add ${net}.11/24 dev eth1 && ip link set eth1 up && ip addr add ${p2p}.1/31 dev eth2 && ip link set eth2 up'`,
    `ip netns add ${f.id}-r1 && ip link add ${f.id}h type veth peer name eth1 netns ${f.id}-r1`,
    `ip addr add ${p2p}.65/32 peer ${p2p}.66 dev ${f.id}h && ip link set ${f.id}h up`,
    `ip -n ${f.id}-r1 addr add ${p2p}.66/32 peer ${p2p}.65 dev eth1 && ip -n ${f.id}-r1 link set eth1 up`,
    // Docker's FORWARD DROP would block the bridge: the student opens it, as the lesson says
    `iptables -w -I DOCKER-USER -i ${lan} -o ${lan} -j ACCEPT || iptables -w -I FORWARD -i ${lan} -o ${lan} -j ACCEPT`,
  ]
  t.teardown(async () => {
    await sh('sh', ['-c', `ip link del ${lan}; ip link del ${f.id}h; ip netns del ${f.id}-r1; iptables -w -D DOCKER-USER -i ${lan} -o ${lan} -j ACCEPT || iptables -w -D FORWARD -i ${lan} -o ${lan} -j ACCEPT; true`])
  })
  for (const s of script) await sh('sh', ['-c', s])

  const r = await f.plumb('lab', 'check', file, '--json')
  t.is(r.exitCode, 0, JSON.stringify(r.json, null, 1))
  t.like(r.json, { score: 8, total: 8 })
  const ins = await f.plumb('lab', 'inspect', file, '--json')
  t.is(ins.exitCode, 0, ins.stderr)
  const webNode = ins.json.nodes.find((n: { name: string }) => n.name === 'web')
  t.like(webNode, { state: 'running', ours: false })
  t.deepEqual(webNode.interfaces.map((i: { name: string; lab: boolean }) => [i.name, i.lab]), [['eth1', false], ['eth2', false]])
  // destroy of a lab that made nothing here touches nothing of the student's
  const d = await f.plumb('lab', 'destroy', file)
  t.is(d.exitCode, 0, d.stderr)
  t.regex(d.stdout, /nothing to destroy/)
  t.true((await inspectContainer(`${f.id}-web`)).pid > 0)
  t.true(await ping({ path: web.sandboxKey }, `${net}.11`))
})

withDockerOvs('a containerlab-style file deploys unchanged: defaults/kinds/groups, exec, cmd, env, prefix, brief and extended links, host: endpoints, bridge and ovs-bridge kinds', async (t) => {
  const net = `198.18.${reserveOctet(t)}`
  const vnet = `198.19.${reserveOctet(t, '198.19')}`
  // the group's static route goes to a /24 of its own: a fixed one collided with vnet when the
  // reservation handed out that very octet (CI saw 198.19.250 both ways)
  const far = `198.19.${reserveOctet(t, '198.19')}`
  const f = labFixture(t)
  const ovs = `${f.id}o`
  const file = f.write(
    'clab.yml',
    `# a containerlab topology: linux nodes, a bridge, an OVS bridge
name: ${f.id.slice(3)}
prefix: pt
topology:
  defaults:
    kind: linux
    image: ${TEST_IMAGE}
    env: {LAB: clab}
  kinds:
    linux:
      cmd: sleep 1000000
      exec: ["ip link set lo up"]
  groups:
    servers:
      env: {ROLE: server}
      exec: ["ip route add ${far}.0/24 via ${net}.1"]
  nodes:
    h1: {group: servers}
    h2:
      group: servers
      cmd: ["sh", "-c", "exec sleep 1000000"]
    h3: {env: {ROLE: client}}
    ${f.id}b: {kind: bridge}
    ${ovs}: {kind: ovs-bridge}
  links:
    - endpoints: ["h1:eth1", "${f.id}b:${f.id}1"]
      ips: [${net}.11/24]
    - endpoints: ["${f.id}b:${f.id}2", "h2:eth1"]
      ips: [null, ${net}.12/24]
    - type: veth
      endpoints:
        - {node: h3, interface: eth1, ips: [${vnet}.13/24], mac: "seed:${f.id}-h3"}
        - {node: ${ovs}, interface: ${f.id}3, vlan: 30}
    - type: veth
      endpoints:
        - {node: h1, interface: eth2, ips: [${vnet}.11/24]}
        - {node: ${ovs}, interface: ${f.id}4, vlan: 30}
    - type: host
      endpoint: {node: h3, interface: eth2, ips: [${net}.66/32]}
      host-interface: ${f.id}h
checks:
  - {from: h1, ping: h2:eth1}
  - {from: h3, ping: ${vnet}.11}
  - {node: h1, has-route: "${far}.0/24 via ${net}.1"}
  - {node: h2, exec: "sh -c 'echo $LAB-$ROLE'", stdout: "^clab-server$"}
`,
  )
  const dep = await f.plumb('lab', 'deploy', file)
  t.is(dep.exitCode, 0, dep.stderr)
  const name = (n: string): string => `pt-${f.id.slice(3)}-${n}`
  const cs = await labContainers(f.id.slice(3))
  t.deepEqual([...cs.keys()].sort(), [name('h1'), name('h2'), name('h3')])
  const env = async (n: string): Promise<string[]> => JSON.parse(await sh('docker', ['inspect', '-f', '{{json .Config.Env}}', name(n)])) as string[]
  t.true((await env('h1')).includes('LAB=clab') && (await env('h1')).includes('ROLE=server'))
  t.true((await env('h3')).includes('ROLE=client'))
  t.deepEqual(JSON.parse(await sh('docker', ['inspect', '-f', '{{json .Config.Cmd}}', name('h2')])), ['sh', '-c', 'exec sleep 1000000'])
  // the group's exec line ran in h1 and h2 (after the links), not in h3
  const routes = async (n: string): Promise<string> => sh('nsenter', [`--net=${(await inspectContainer(name(n))).sandboxKey}`, 'ip', 'route'])
  t.true((await routes('h1')).includes(`${far}.0/24 via `))
  t.true((await routes('h2')).includes(`${far}.0/24 via `))
  t.false((await routes('h3')).includes(`${far}.0/24`))
  // the OVS ports: access ports on VLAN 30, marked with the lab
  const ports = (await sh('ovs-vsctl', ['--timeout=10', '--bare', '--columns=name,tag,external_ids', 'find', 'Port', `external_ids:plumb-lab=${f.id.slice(3)}`])).split('\n\n').map((b) => b.split('\n'))
  t.deepEqual(ports.map((p) => [p[0], p[1]]).sort(), [[`${f.id}3`, '30'], [`${f.id}4`, '30']])
  t.regex(await sh('ovs-vsctl', ['--timeout=10', 'get', 'Bridge', ovs, 'external_ids']), new RegExp(`plumb-lab="?${f.id.slice(3)}"?`))
  // the seeded MAC, the host end with the address on the guest side
  const h3 = await inspectContainer(name('h3'))
  t.is((await ipJson(['link', 'show', 'dev', 'eth1'], { path: h3.sandboxKey }))[0]?.address, (await import('../../lib/parse/index.js')).seedMac(`${f.id}-h3`))
  t.truthy((await ipJson(['link', 'show', 'dev', `${f.id}h`]))[0])
  // ping, TCP and UDP over the OVS access ports (VLAN 30) and over the Linux bridge
  const h1 = await inspectContainer(name('h1'))
  await assertTraffic(t, { path: h3.sandboxKey }, { path: h1.sandboxKey }, `${vnet}.11`, 'h3 -> h1 over OVS VLAN 30')
  await assertTraffic(t, { path: h1.sandboxKey }, { path: (await inspectContainer(name('h2'))).sandboxKey }, `${net}.12`, 'h1 -> h2 over the bridge')

  const chk = await f.plumb('lab', 'check', file, '--json')
  t.is(chk.exitCode, 0, JSON.stringify(chk.json, null, 1))
  t.is(chk.json.score, 4)

  t.is((await f.plumb('lab', 'destroy', file)).exitCode, 0)
  await waitFor(async () => (await leftovers(f.id)).ovs.length === 0, { what: 'the OVS bridge to go' })
  t.deepEqual(await leftovers(f.id), nothingLeft)
})
