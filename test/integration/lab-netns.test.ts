// Labs of `kind: netns` nodes (root, no dockerd): reconcile (a link added to or removed from the
// file changes only that), a failing deploy rolling back all it made and naming the link, bad
// files refused with nothing touched, --dry-run touching nothing, unsupported kinds and ops exit
// 5, the SVG drawing, and the library API. Truth from `ip -j`, traffic and iptables-save.

import { readFileSync, writeFileSync } from 'node:fs'
import { XMLValidator } from 'fast-xml-parser'
import { checkLab, deployLab, destroyLab, graphLab, inspectLab, parseLab } from '../../lib/index.js'
import { hasBinary, ipJson, isRoot, ping, runCli, sh, testIf, reserveOctet } from '../helpers/index.js'
import { forwardDropActive } from './ops-fixture.js'
import { labFixture, leftovers, nothingLeft } from '../e2e/lab-fixture.js'

const asRoot = testIf(isRoot, 'lab-netns: needs root')

/** a, b, c netns; a--b direct, a and c on bridge ID-br. */
function threeNodes(id: string, net: string, extra = ''): string {
  return `name: ${id}
prefix: __lab-name
topology:
  defaults: {kind: netns}
  nodes:
    a: {}
    b: {}
    c: {}
    ${id}br: {kind: bridge}
  links:
    - endpoints: ["a:eth1", "b:eth1"]
      ips: [${net}.0/31, ${net}.1/31]
    - endpoints: ["a:eth2", "${id}br:${id}a2"]
      ips: [${net}.10/24]
    - endpoints: ["c:eth1", "${id}br:${id}c1"]
      ips: [${net}.11/24]
${extra}`
}

/** Name, index and addresses of every interface of a netns, from `ip -j`. */
async function view(ns: string): Promise<Array<[string, number, string[]]>> {
  return (await ipJson(['addr', 'show'], ns)).map((l) => [l.ifname, l.ifindex, (l.addr_info ?? []).filter((a: { scope: string }) => a.scope === 'global').map((a: { local: string; prefixlen: number }) => `${a.local}/${a.prefixlen}`)])
}

asRoot('reconcile: a link added to the file is the only thing made, a link removed the only thing removed', async (t) => {
  const net = `198.18.${reserveOctet(t)}`
  const f = labFixture(t)
  const file = f.write('lab.yml', threeNodes(f.id, net))
  t.is((await f.plumb('lab', 'deploy', file)).exitCode, 0)
  const before = { a: await view(`${f.id}-a`), b: await view(`${f.id}-b`), c: await view(`${f.id}-c`) }

  // add b:eth2 -- c:eth2
  writeFileSync(file, threeNodes(f.id, net, `    - endpoints: ["b:eth2", "c:eth2"]\n      ips: [${net}.100/31, ${net}.101/31]\n`))
  const add = await f.plumb('lab', 'deploy', file)
  t.is(add.exitCode, 0, add.stderr)
  t.regex(add.stdout, /0 nodes made, 1 links made, 0 repaired, 0 removed; 4 nodes and 3 links were in place/)
  t.deepEqual(await view(`${f.id}-a`), before.a, 'a untouched (same interfaces, same ifindexes)')
  const b = await view(`${f.id}-b`)
  t.deepEqual(b.filter(([n]) => n !== 'eth2'), before.b)
  t.deepEqual(b.find(([n]) => n === 'eth2')?.[2], [`${net}.100/31`])
  t.true(await ping(`${f.id}-b`, `${net}.101`))

  // remove a:eth1 -- b:eth1 (and keep the new one)
  writeFileSync(file, threeNodes(f.id, net, `    - endpoints: ["b:eth2", "c:eth2"]\n      ips: [${net}.100/31, ${net}.101/31]\n`).replace(/    - endpoints: \["a:eth1", "b:eth1"\]\n      ips: .*\n/, ''))
  const rm = await f.plumb('lab', 'deploy', file)
  t.is(rm.exitCode, 0, rm.stderr)
  t.regex(rm.stdout, /0 links made, 0 repaired, 2 removed/)
  t.deepEqual((await view(`${f.id}-a`)).map(([n]) => n).sort(), ['eth2', 'lo'])
  t.deepEqual((await view(`${f.id}-b`)).map(([n]) => n).sort(), ['eth2', 'lo'])
  t.deepEqual((await view(`${f.id}-c`)).filter(([n]) => n !== 'eth2'), before.c, 'c keeps its bridge link as it was')
  t.true(await ping(`${f.id}-a`, `${net}.11`), 'a and c still talk over the bridge')
  t.is((await f.plumb('lab', 'deploy', file)).stdout.includes('nothing changed'), true)

  t.is((await f.plumb('lab', 'destroy', file)).exitCode, 0)
  t.deepEqual(await leftovers(f.id), nothingLeft)
})

asRoot("destroy after the lab's bridge node was deleted by hand removes plumb's firewall rule for it too", async (t) => {
  const net = `198.18.${reserveOctet(t)}`
  const f = labFixture(t)
  const file = f.write('lab.yml', threeNodes(f.id, net))
  t.is((await f.plumb('lab', 'deploy', file)).exitCode, 0)
  const bridge = `${f.id}br`
  const rulesFor = async (): Promise<string[]> => (await leftovers(f.id)).rules.filter((r) => r.includes(`-i ${bridge} `))
  // the ACCEPT rule is made where bridged frames meet a FORWARD that drops (Docker's, as in CI)
  t.is((await rulesFor()).length, (await forwardDropActive()) ? 1 : 0)
  await sh('ip', ['link', 'del', bridge])
  const r = await f.plumb('lab', 'destroy', file)
  t.is(r.exitCode, 0, r.stderr)
  t.deepEqual(await rulesFor(), [])
  t.deepEqual(await leftovers(f.id), nothingLeft)
  const again = await f.plumb('lab', 'destroy', file)
  t.regex(again.stdout, /nothing to destroy/)
})

asRoot('a deploy that fails part-way rolls back everything it made and names the link; the exit code names the cause', async (t) => {
  const net = `198.18.${reserveOctet(t)}`
  const f = labFixture(t)
  // a macvlan on a parent NIC that does not exist: not found, found only when the link is made
  const file = f.write('lab.yml', threeNodes(f.id, net, `    - type: macvlan\n      endpoint: {node: c, interface: mv0}\n      host-interface: ${f.id}nic\n`))
  const r = await f.plumb('lab', 'deploy', file)
  t.is(r.exitCode, 3, r.stderr)
  t.regex(r.stderr, new RegExp(`plumb: lab ${f.id}: link c:mv0 -- macvlan:${f.id}nic \\(topology\\.links\\[3\\]\\) failed: no interface "${f.id}nic" on the host`))
  t.regex(r.stderr, /rolled back: .*ip netns del/)
  t.deepEqual(await leftovers(f.id), nothingLeft)
})

asRoot('bad files exit 2 with the path in the file, and nothing is touched', async (t) => {
  const net = `198.18.${reserveOctet(t)}`
  const f = labFixture(t)
  const cases: Array<[string, string, RegExp]> = [
    ['unknown-node.yml', threeNodes(f.id, net, '    - endpoints: ["a:eth3", "zz:eth1"]\n'), /unknown-node\.yml:\d+:\d+: topology\.links\[3\]\.endpoints\[1\]: unknown node "zz"/],
    ['twice.yml', threeNodes(f.id, net, '    - endpoints: ["a:eth1", "c:eth3"]\n'), /topology\.links\[3\]\.endpoints\[0\]: interface "eth1" in a is already used by topology\.links\[0\]\.endpoints\[0\]/],
    ['dup-addr.yml', threeNodes(f.id, net, `    - endpoints: ["b:eth3", "c:eth3"]\n      ips: [${net}.10/31, null]\n`), /topology\.links\[3\]\.ips\[0\]: address [\d.]+ is already given at topology\.links\[1\]\.ips\[0\]/],
    ['bad-cidr.yml', threeNodes(f.id, net, `    - endpoints: ["b:eth3", "c:eth3"]\n      ips: [${net}.10/33, null]\n`), /topology\.links\[3\]\.ips\[0\]: .*prefix/],
    ['bad-type.yml', threeNodes(f.id, net).replace('    a: {}', '    a: {exec: {x: 1}}'), /topology\.nodes\.a\.exec: expected a string or a list of strings, got a mapping/],
    ['syntax.yml', threeNodes(f.id, net).replace('    b: {}', '    b: {kind: netns'), /syntax\.yml:\d+:\d+: YAML syntax error/],
  ]
  for (const [name, text, want] of cases) {
    const file = f.write(name, text)
    for (const cmd of ['deploy', 'check']) {
      const r = await f.plumb('lab', cmd, file)
      t.is(r.exitCode, 2, `${cmd} ${name}: ${r.stderr}`)
      t.regex(r.stderr, want, `${cmd} ${name}`)
    }
  }
  t.deepEqual(await leftovers(f.id), nothingLeft)
})

asRoot('--dry-run prints the ip / plumb lines of the deploy and changes nothing', async (t) => {
  const net = `198.18.${reserveOctet(t)}`
  const f = labFixture(t)
  const file = f.write('lab.yml', threeNodes(f.id, net))
  const r = await f.plumb('lab', 'deploy', file, '--dry-run')
  t.is(r.exitCode, 0, r.stderr)
  const lines = r.stdout.split('\n')
  t.true(lines.includes(`ip netns add ${f.id}-a`))
  t.true(lines.includes(`ip link add ${f.id}br up type bridge`))
  t.true(lines.includes(`plumb p2p-link netns:${f.id}-a netns:${f.id}-b --ifname-a eth1 --ifname-b eth1 --ip-a ${net}.0/31 --ip-b ${net}.1/31`))
  t.true(lines.includes(`plumb attach-veth netns:${f.id}-c ${f.id}br ${net}.11/24 -i eth1 -l ${f.id}c1 --replace-gateway --no-firewall`))
  t.deepEqual(await leftovers(f.id), nothingLeft)
})

asRoot('kinds plumb cannot deploy are exit 5 naming them, before anything is touched', async (t) => {
  const net = `198.18.${reserveOctet(t)}`
  const f = labFixture(t)
  const kind = await f.plumb('lab', 'deploy', f.write('srl.yml', threeNodes(f.id, net).replace('    c: {}', '    c: {kind: nokia_srlinux, image: srl}')))
  t.is(kind.exitCode, 5)
  t.regex(kind.stderr, /topology\.nodes\.c\.kind: kind "nokia_srlinux" is not supported/)
  t.deepEqual(await leftovers(f.id), nothingLeft)
})

const withDot = testIf(hasBinary('dot'), "lab-netns: SVG needs Graphviz's dot (apt-get install graphviz)")

withDot('graph: SVG through Graphviz is valid XML naming every node; without dot on PATH it is exit 5 naming it', async (t) => {
  const f = labFixture(t)
  const file = f.write('lab.yml', threeNodes(f.id, '198.18.7'))
  const r = await f.plumb('lab', 'graph', file, '--format', 'svg', '--out', 'lab.svg')
  t.is(r.exitCode, 0, r.stderr)
  // Graphviz writes "-" as &#45;
  const svg = readFileSync(`${f.dir}/lab.svg`, 'utf8').replaceAll('&#45;', '-')
  t.is(XMLValidator.validate(svg), true)
  for (const n of ['a', 'b', 'c', `${f.id}br`, 'eth1 198.18.7.0/31']) t.true(svg.includes(`>${n}<`), n)
  const missing = await runCli(['lab', 'graph', file, '--format', 'svg'], { env: { PATH: '/nonexistent' } })
  t.is(missing.exitCode, 5, missing.stderr)
  t.regex(missing.stderr, /Graphviz's dot, which is not installed here/)
})

asRoot('the library API: parseLab, deployLab, checkLab, inspectLab, graphLab, destroyLab (as a zx recipe would)', async (t) => {
  const net = `198.18.${reserveOctet(t)}`
  const f = labFixture(t)
  const lab = parseLab(
    threeNodes(f.id, net).replace('    c: {}', `    c: {exec: ["ip addr add ${net}.200/32 dev lo"]}`) + `checks:\n  - {from: a, ping: c:eth1}\n  - {node: c, has-address: ${net}.200/32}\n  - {from: b, tcp: "${net}.0:9", expect: fail, timeout: 1}\n`,
    'lib.yml',
  )
  const seen: string[] = []
  const d = await deployLab(lab, { onProgress: (p) => seen.push(`${p.done}/${p.total} ${p.what}`) })
  t.true(d.changed)
  t.is(seen.length, 8, seen.join('\n'))
  t.is(seen.at(-1), '8/8 exec in c', 'exec lines run last, after the links')
  const report = await checkLab(lab)
  t.deepEqual(report.checks.map((c) => c.ok), [true, true, true], JSON.stringify(report.checks))
  t.is(report.score, 3)
  // the exec line ran in c (an ip netns: the host's ip, inside it)
  t.true((await ipJson(['addr', 'show', 'dev', 'lo'], `${f.id}-c`))[0]?.addr_info.some((a: { local: string }) => a.local === `${net}.200`))
  // a TCP server in c is reachable from a over the bridge: tcp checks see it
  const ins = await inspectLab(lab)
  t.deepEqual(ins.nodes.map((n) => [n.name, n.state, n.ours]), [['a', 'present', true], ['b', 'present', true], ['c', 'present', true], [`${f.id}br`, 'present', true]])
  t.regex(await graphLab(lab, 'dot'), new RegExp(`n_a -- n_${f.id.replace('-', '_')}br`))
  const gone = await destroyLab(lab)
  t.true(gone.changed)
  t.deepEqual(await leftovers(f.id), nothingLeft)
  t.false((await destroyLab(lab)).changed)
})
