// Lab files (LAB.md) through the pure parser: containerlab's merge rules, link forms and naming,
// plumb's additions, and every bad file refused with exit 2 (5 for a kind plumb cannot deploy),
// naming the file, line:column and the path in it.

import test from 'ava'
import { PlumbError } from '../../lib/errors.js'
import { parseLab, shellWords } from '../../lib/lab/parse.js'
import { runtimeName } from '../../lib/lab/names.js'
import type { LabLink } from '../../lib/lab/types.js'

const lab = (body: string): string => `name: t1\ntopology:\n${body}`

test('LAB.md\'s own example parses: kinds, links classified, plumb\'s sections', (t) => {
  const l = parseLab(
    `name: lesson12
prefix: clab
topology:
  defaults: {kind: linux, image: plumb-test:busybox}
  kinds: {linux: {cmd: sleep 1000000}}
  nodes:
    web:
      cmd: sleep 1000000
      env: {K: V}
      exec:
        - ip route add 198.19.0.0/16 via 198.18.1.1
      sysctls: {net.ipv4.ip_forward: 1}
      names: {hostname: web, add-host: ["db:198.18.1.11"], dns: [198.18.1.53]}
    db: {kind: linux, container: some-existing-container}
    r1: {kind: netns}
    lan0: {kind: bridge}
    ovs0: {kind: ovs-bridge}
  links:
    - endpoints: ["web:eth1", "lan0:web-eth1"]
    - endpoints: ["web:eth2", "db:eth2"]
    - endpoints: ["r1:eth1", "host:r1-eth1"]
    - endpoints: ["web:eth3", "db:eth3"]
      ips: ["198.18.2.0/31", "198.18.2.1/31"]
    - type: veth
      mtu: 1400
      endpoints:
        - {node: web, interface: eth4, ips: ["198.18.3.10/24@198.18.3.1"], mac: "seed:web4", routes: ["198.19.3.0/24@198.18.3.254"]}
        - {node: ovs0, interface: web-eth4, vlan: 10}
    - type: macvlan
      endpoints: [{node: web, interface: lan1, ips: [dhcp]}]
      host-interface: pt-nic0
      mode: bridge
nat:
  expose: [{node: web, ports: ["8080:80"]}]
  masquerade: [lan0]
  isolate: [{bridge: lan0, allow: [[web, db]]}]
checks:
  - {from: web, ping: db}
  - {from: web, ping: 198.19.9.9, expect: fail}
  - {from: web, tcp: "db:80"}
  - {node: web, ifname: eth1, has-address: 198.18.1.10/24}
  - {node: web, has-route: "default via 198.18.1.1"}
  - {node: web, exec: "cat /etc/hostname", stdout: "^web$", exit: 0}
`,
    'lesson12.yml',
  )
  t.deepEqual(
    l.nodes.map((n) => [n.name, n.kind, n.runtime, n.existing]),
    [
      ['web', 'linux', 'clab-lesson12-web', false],
      ['db', 'linux', 'some-existing-container', true],
      ['r1', 'netns', 'clab-lesson12-r1', false],
      ['lan0', 'bridge', 'lan0', false],
      ['ovs0', 'ovs-bridge', 'ovs0', false],
    ],
  )
  t.deepEqual(l.links.map((x) => x.kind), ['bridge', 'p2p', 'host', 'p2p', 'ovs', 'macvlan'])
  const ovs = l.links[4] as Extract<LabLink, { kind: 'ovs' }>
  t.like(ovs, { mtu: 1400, a: { node: 'web', ifname: 'eth4', ips: ['198.18.3.10/24@198.18.3.1'], mac: 'seed:web4', routes: ['198.19.3.0/24@198.18.3.254'] }, b: { node: 'ovs0', ifname: 'web-eth4', vlan: 10 } })
  t.like(l.links[3], { a: { ips: ['198.18.2.0/31'] }, b: { ips: ['198.18.2.1/31'] } })
  t.like(l.links[5], { kind: 'macvlan', parent: 'pt-nic0', mode: 'bridge', a: { ips: ['dhcp'] } })
  t.deepEqual(l.nodes[0]!.cmd, ['sleep', '1000000'])
  t.deepEqual(l.nodes[0]!.sysctls, { 'net.ipv4.ip_forward': '1' })
  t.is(l.nodes[1]!.image, undefined, 'an existing container takes no image from the defaults')
  t.deepEqual(l.checks.map((c) => [c.kind, c.expect, c.points]), [
    ['ping', 'ok', 1],
    ['ping', 'fail', 1],
    ['tcp', 'ok', 1],
    ['has-address', 'ok', 1],
    ['has-route', 'ok', 1],
    ['exec', 'ok', 1],
  ])
  t.like(l.checks[4], { dst: 'default', via: '198.18.1.1' })
  t.like(l.checks[2], { port: 80, target: { kind: 'node', node: 'db' } })
  t.deepEqual(l.nat.isolate, [{ bridge: 'lan0', allow: [['web', 'db']], at: 'nat.isolate[0]' }])
})

test("containerlab's merge: node > group > kind > defaults for values; env merged; exec appended; the kind may come from a group", (t) => {
  const l = parseLab(
    lab(`  defaults: {image: d:1, env: {A: d, B: d}, exec: [d1], group: g0}
  kinds:
    linux: {image: k:1, env: {B: k, C: k}, exec: [k1], cmd: "sleep 1"}
  groups:
    g0: {kind: linux}
    g1: {image: g:1, env: {C: g}, exec: [g1], user: "1000"}
  nodes:
    n1: {group: g1, env: {D: n}, exec: [n1]}
    n2: {image: n:2}
    n3: {kind: netns}
`),
    'm.yml',
  )
  const [n1, n2, n3] = l.nodes
  t.is(n1!.kind, 'linux', "the kind of defaults' group")
  t.is(n1!.image, 'g:1')
  t.deepEqual(n1!.env, { A: 'd', B: 'k', C: 'g', D: 'n' })
  t.deepEqual(n1!.exec, ['d1', 'k1', 'g1', 'n1'])
  t.is(n1!.user, '1000')
  t.deepEqual(n1!.cmd, ['sleep', '1'])
  t.is(n2!.image, 'n:2')
  t.deepEqual(n2!.exec, ['d1', 'k1'], 'n2 is in the default group g0, which adds nothing')
  t.is(n3!.kind, 'netns')
  t.deepEqual(n3!.exec, ['d1'], 'a netns takes the defaults, not the linux kind')
  t.is(n3!.image, undefined)
})

test("the prefix rule: none -> clab-LAB-NODE, \"\" -> NODE, __lab-name -> LAB-NODE, P -> P-LAB-NODE", (t) => {
  t.is(runtimeName('l', undefined, 'n'), 'clab-l-n')
  t.is(runtimeName('l', '', 'n'), 'n')
  t.is(runtimeName('l', '__lab-name', 'n'), 'l-n')
  t.is(runtimeName('l', 'pt', 'n'), 'pt-l-n')
  const node = (prefix: string): string => parseLab(`name: l\n${prefix}topology: {nodes: {n: {kind: netns}}}\n`).nodes[0]!.runtime
  t.is(node(''), 'clab-l-n')
  t.is(node('prefix: ""\n'), 'n')
  t.is(node('prefix:\n'), 'n', 'a bare prefix: is the empty one')
  t.is(node('prefix: __lab-name\n'), 'l-n')
})

test('link forms: brief with special endpoints, extended host/macvlan, either order for a bridge', (t) => {
  const l = parseLab(
    lab(`  nodes:
    a: {kind: netns}
    b: {kind: netns}
    br: {kind: bridge}
  links:
    - endpoints: ["br:pt-a1", "a:eth1"]
    - endpoints: ["a:eth2", "macvlan:pt-nic0"]
    - type: host
      endpoint: {node: b, interface: eth1, ips: [198.18.9.2/32]}
      host-interface: pt-b1
    - type: macvlan
      endpoint: {node: b, interface: mv0}
      host-interface: pt-nic0
      mode: private
`),
  )
  t.like(l.links[0], { kind: 'bridge', a: { node: 'a', ifname: 'eth1' }, b: { node: 'br', ifname: 'pt-a1' } })
  t.like(l.links[1], { kind: 'macvlan', parent: 'pt-nic0', mode: 'bridge', a: { node: 'a', ifname: 'eth2' } })
  t.like(l.links[2], { kind: 'host', a: { node: 'b', ifname: 'eth1', ips: ['198.18.9.2/32'] }, b: { node: 'host', ifname: 'pt-b1' } })
  t.like(l.links[3], { kind: 'macvlan', mode: 'private' })
})

test("a plain scalar YAML reads as a number or boolean is taken as written where a string is due, as containerlab's Go YAML does", (t) => {
  const l = parseLab('name: 2e6912\nprefix: 007\ntopology: {nodes: {1: {kind: netns}, true: {kind: netns}}}\n')
  t.is(l.name, '2e6912', 'not Infinity')
  t.deepEqual(l.nodes.map((n) => n.runtime).sort(), ['007-2e6912-1', '007-2e6912-true'])
})

test('shellWords splits as containerlab does: quotes, escapes, no expansion', (t) => {
  t.deepEqual(shellWords(`sh -c 'ip a | grep "x y"'`), ['sh', '-c', 'ip a | grep "x y"'])
  t.deepEqual(shellWords('echo "a \\"b\\"" c\\ d $HOME'), ['echo', 'a "b"', 'c d', '$HOME'])
  t.deepEqual(shellWords("  x  ''  "), ['x', ''])
  t.throws(() => shellWords(`echo 'open`), { message: /unterminated single quote/ })
})

interface Bad {
  what: string
  text: string
  /** the whole start of the message: file:line:col: path: */
  at: RegExp
  message: RegExp
  exit?: number
}

const BAD: Bad[] = [
  { what: 'YAML syntax error', text: 'name: t1\ntopology: [\n  nodes\n', at: /^bad\.yml:\d+:\d+: YAML syntax error/, message: /YAML syntax error/ },
  { what: 'a duplicate key', text: 'name: t1\nname: t2\ntopology: {nodes: {a: {kind: netns}}}\n', at: /^bad\.yml:2:1: /, message: /unique/ },
  { what: 'no name', text: 'topology: {nodes: {a: {kind: netns}}}\n', at: /^bad\.yml:1:1: /, message: /has no name/ },
  { what: 'a bad lab name', text: 'name: "a b"\ntopology: {nodes: {a: {kind: netns}}}\n', at: /^bad\.yml:1:7: name: /, message: /invalid lab name/ },
  { what: 'an unknown top field', text: 'name: t1\ntopolgy: {}\n', at: /^bad\.yml:2:1: topolgy: /, message: /unknown field "topolgy"/ },
  {
    what: 'an unknown node in an endpoint',
    text: lab('  nodes: {a: {kind: netns}, b: {kind: netns}}\n  links:\n    - endpoints: ["a:eth1", "b:eth1"]\n    - endpoints: ["a:eth2", "c:eth1"]\n'),
    at: /^bad\.yml:6:29: topology\.links\[1\]\.endpoints\[1\]: /,
    message: /unknown node "c"/,
  },
  {
    what: 'an endpoint used twice',
    text: lab('  nodes: {a: {kind: netns}, b: {kind: netns}}\n  links:\n    - endpoints: ["a:eth1", "b:eth1"]\n    - endpoints: ["a:eth1", "b:eth2"]\n'),
    at: /^bad\.yml:6:19: topology\.links\[1\]\.endpoints\[0\]: /,
    message: /interface "eth1" in a is already used by topology\.links\[0\]\.endpoints\[0\]/,
  },
  {
    what: 'a host end name used twice (two bridge ports)',
    text: lab('  nodes: {a: {kind: netns}, b: {kind: netns}, br: {kind: bridge}}\n  links:\n    - endpoints: ["a:eth1", "br:pt-x"]\n    - endpoints: ["b:eth1", "br:pt-x"]\n'),
    at: /topology\.links\[1\]\.endpoints\[1\]: /,
    message: /"pt-x" on the host is already used/,
  },
  {
    what: 'a duplicate address',
    text: lab('  nodes: {a: {kind: netns}, b: {kind: netns}, c: {kind: netns}}\n  links:\n    - endpoints: ["a:eth1", "b:eth1"]\n      ips: [198.18.1.1/24, 198.18.1.2/24]\n    - endpoints: ["a:eth2", "c:eth1"]\n      ips: [null, 198.18.1.2/24]\n'),
    at: /topology\.links\[1\]\.ips\[1\]: /,
    message: /address 198\.18\.1\.2 is already given at topology\.links\[0\]\.ips\[1\]/,
  },
  {
    what: 'a bad CIDR (extended endpoint)',
    text: lab('  nodes: {a: {kind: netns}, b: {kind: netns}}\n  links:\n    - type: veth\n      endpoints:\n        - {node: a, interface: eth1, ips: [198.18.1.300/24]}\n        - {node: b, interface: eth1}\n'),
    at: /^bad\.yml:7:44: topology\.links\[0\]\.endpoints\[0\]\.ips\[0\]: /,
    message: /198\.18\.1\.300/,
  },
  {
    what: 'a CIDR without prefix (brief form), with the hint kept',
    text: lab('  nodes: {a: {kind: netns}, b: {kind: netns}}\n  links:\n    - endpoints: ["a:eth1", "b:eth1"]\n      ips: [198.18.1.1, null]\n'),
    at: /topology\.links\[0\]\.ips\[0\]: /,
    message: /missing prefix length/,
  },
  {
    what: 'a field of the wrong type',
    text: lab('  nodes:\n    a: {kind: linux, image: x, cmd: 3}\n'),
    at: /^bad\.yml:4:37: topology\.nodes\.a\.cmd: /,
    message: /expected a string or a list of strings, got the number 3/,
  },
  { what: 'nodes as a list', text: lab('  nodes: [a, b]\n'), at: /topology\.nodes: /, message: /expected a mapping of node names, got a list/ },
  { what: 'an unknown node field, at its key', text: lab('  nodes:\n    a: {kind: linux, image: x, exex: [ls]}\n'), at: /^bad\.yml:4:32: topology\.nodes\.a\.exex: /, message: /unknown field "exex"/ },
  { what: 'a linux node without an image', text: lab('  nodes:\n    a: {kind: linux}\n'), at: /topology\.nodes\.a: /, message: /has no image/ },
  { what: 'no kind anywhere', text: lab('  nodes:\n    a: {}\n'), at: /topology\.nodes\.a: /, message: /has no kind/ },
  { what: 'a gateway on a host end', text: lab('  nodes: {a: {kind: netns}}\n  links:\n    - endpoints: ["a:eth1", "host:pt-h1"]\n      ips: [198.18.1.1/32, 198.18.1.2/32@198.18.1.1]\n'), at: /topology\.links\[0\]\.ips\[1\]: /, message: /takes no @gateway/ },
  { what: 'dhcp on a p2p link', text: lab('  nodes: {a: {kind: netns}, b: {kind: netns}}\n  links:\n    - endpoints: ["a:eth1", "b:eth1"]\n      ips: [dhcp, null]\n'), at: /topology\.links\[0\]\.ips\[0\]: /, message: /dhcp needs a DHCP server/ },
  { what: 'an address on a bridge port', text: lab('  nodes: {a: {kind: netns}, br: {kind: bridge}}\n  links:\n    - endpoints: ["a:eth1", "br:pt-p"]\n      ips: [null, 198.18.1.1/24]\n'), at: /topology\.links\[0\]\.ips\[1\]: /, message: /takes no address/ },
  { what: 'a link with no guest', text: lab('  nodes: {br: {kind: bridge}}\n  links:\n    - endpoints: ["br:pt-p", "host:pt-q"]\n'), at: /topology\.links\[0\]: /, message: /one side must be a linux or netns node/ },
  { what: 'a vlan on a Linux bridge port', text: lab('  nodes: {a: {kind: netns}, br: {kind: bridge}}\n  links:\n    - type: veth\n      endpoints: [{node: a, interface: eth1}, {node: br, interface: pt-p, vlan: 10}]\n'), at: /topology\.links\[0\]\.endpoints\[1\]\.vlan: /, message: /vlan\/trunks belong on an ovs-bridge endpoint/ },
  { what: 'an interface name over 15 bytes', text: lab('  nodes: {a: {kind: netns}, b: {kind: netns}}\n  links:\n    - endpoints: ["a:eth1234567890123", "b:eth1"]\n'), at: /topology\.links\[0\]\.endpoints\[0\]: /, message: /16 bytes/ },
  { what: 'a non-per-netns sysctl', text: lab('  nodes:\n    a: {kind: netns, sysctls: {kernel.panic: 1}}\n'), at: /topology\.nodes\.a\.sysctls\.kernel\.panic|topology\.nodes\.a\.sysctls\["kernel\.panic"\]/, message: /sysctl "kernel\.panic" is not per network namespace/ },
  { what: 'a check on an unknown node', text: `${lab('  nodes: {a: {kind: netns}}\n')}checks:\n  - {from: a, ping: zz}\n`, at: /checks\[0\]\.ping: /, message: /unknown node "zz"/ },
  { what: 'a check doing two things', text: `${lab('  nodes: {a: {kind: netns}}\n')}checks:\n  - {from: a, ping: 198.18.0.1, tcp: "a:80"}\n`, at: /checks\[0\]: /, message: /one check does one thing/ },
  { what: 'a tcp check without a port', text: `${lab('  nodes: {a: {kind: netns}}\n')}checks:\n  - {from: a, tcp: a}\n`, at: /checks\[0\]\.tcp: /, message: /has no port/ },
  { what: 'a bad regex', text: `${lab('  nodes: {a: {kind: netns}}\n')}checks:\n  - {node: a, exec: ls, stdout: "("}\n`, at: /checks\[0\]\.stdout: /, message: /invalid regular expression/ },
  { what: 'two checks with one name', text: `${lab('  nodes: {a: {kind: netns}}\n')}checks:\n  - {node: a, has-route: default}\n  - {node: a, has-route: default}\n`, at: /checks\[1\]: /, message: /a second check named "a has route default"/ },
  { what: 'a bad port spec', text: `${lab('  nodes: {a: {kind: netns}}\n')}nat:\n  expose: [{node: a, ports: ["80:99999"]}]\n`, at: /nat\.expose\[0\]\.ports\[0\]: /, message: /guest port 99999 out of range in "80:99999"/ },
  { what: 'isolate on a node that is not a bridge', text: `${lab('  nodes: {a: {kind: netns}}\n')}nat:\n  isolate: [a]\n`, at: /nat\.isolate\[0\]: /, message: /not a bridge/ },
  { what: 'a masquerade CIDR with host bits (as plumb masquerade refuses it)', text: `${lab('  nodes: {a: {kind: netns}}\n')}nat:\n  masquerade: [198.18.1.5/24]\n`, at: /nat\.masquerade\[0\]: /, message: /host bits set/ },
  {
    what: "a nat entry whose firewall mark could outgrow an iptables comment (the lab's name in it, and in its guests' names)",
    text: `name: ${'l'.repeat(60)}\n${lab('  nodes: {a: {kind: netns}, b: {kind: netns}, br: {kind: bridge}}\n').replace(/^name: t1\n/, '')}nat:\n  isolate: [{bridge: br, allow: [[a, b]]}]\n`,
    at: /nat\.isolate\[0\]: /,
    message: /firewall mark can take 2\d\d bytes .*at most 255/,
  },
  { what: 'an unsupported kind', text: lab('  nodes:\n    r1: {kind: nokia_srlinux, image: ghcr.io/nokia/srlinux}\n'), at: /^bad\.yml:4:16: topology\.nodes\.r1\.kind: /, message: /kind "nokia_srlinux" is not supported/, exit: 5 },
  { what: 'a mgmt-net endpoint', text: lab('  nodes: {a: {kind: netns}}\n  links:\n    - endpoints: ["a:eth1", "mgmt-net:pt-m"]\n'), at: /topology\.links\[0\]: /, message: /mgmt-net endpoints are not supported/, exit: 5 },
]

for (const b of BAD) {
  test(`a bad file: ${b.what} -> exit ${b.exit ?? 2}, naming where`, (t) => {
    const err = t.throws(() => parseLab(b.text, 'bad.yml'), { instanceOf: PlumbError }) as PlumbError
    t.is(err.exitCode, b.exit ?? 2, err.message)
    t.regex(err.message, b.at)
    t.regex(err.message, b.message)
  })
}

test("a nat entry's marks are measured at their widest: a lab name that fits every mark parses, one byte more does not", (t) => {
  // expose: guest docker:NAME-web, and the widest interface, address, port and recorded values
  const file = (name: string): string =>
    `name: ${name}\nprefix: __lab-name\ntopology:\n  nodes: {web: {kind: linux, image: x}}\nnat:\n  expose: [{node: web, ports: ["8080:80"]}]\n`
  let n = 1
  while (n < 200) {
    try {
      parseLab(file('l'.repeat(n + 1)))
      n++
    } catch {
      break
    }
  }
  t.true(n > 40 && n < 100, `the longest lab name an expose takes is ${n}`)
  const err = t.throws(() => parseLab(file('l'.repeat(n + 1)), 'x.yml'), { instanceOf: PlumbError }) as PlumbError
  t.is(err.exitCode, 2)
  t.regex(err.message, /nat\.expose\[0\]: this entry's firewall mark can take 256 bytes/)
  t.regex(err.hint ?? '', /shorten the lab's name/)
})

test('a bad CIDR keeps the hint of the IP spec parser', (t) => {
  const err = t.throws(() => parseLab(lab('  nodes: {a: {kind: netns}, b: {kind: netns}}\n  links:\n    - endpoints: ["a:eth1", "b:eth1"]\n      ips: [198.18.1.1, null]\n'), 'x.yml'), { instanceOf: PlumbError }) as PlumbError
  t.regex(err.hint ?? '', /did you mean 198\.18\.1\.1\/24\?/)
})

test('a link to a node of an unsupported kind is that exit 5, not an unknown node', (t) => {
  const err = t.throws(() => parseLab(lab('  nodes:\n    r1: {kind: ceos}\n    a: {kind: netns}\n  links:\n    - endpoints: ["a:eth1", "r1:eth1"]\n'), 'x.yml'), { instanceOf: PlumbError }) as PlumbError
  t.is(err.exitCode, 5)
  t.regex(err.message, /x\.yml:4:16: topology\.nodes\.r1\.kind: kind "ceos" is not supported/)
})

test('an unsupported kind is reported only once the file is otherwise valid (exit 2 wins)', (t) => {
  const err = t.throws(() => parseLab(lab('  nodes:\n    r1: {kind: ceos}\n    a: {kind: netns}\n  links:\n    - endpoints: ["a:eth1", "zz:eth1"]\n'), 'x.yml'), { instanceOf: PlumbError }) as PlumbError
  t.is(err.exitCode, 2)
  t.regex(err.message, /unknown node "zz"/)
})

test("containerlab's fields plumb does not act on are accepted and listed", (t) => {
  const l = parseLab(lab('  nodes:\n    a: {kind: linux, image: x, startup-config: a.cfg, ports: ["80:80"]}\n'))
  t.deepEqual(l.ignored, ['topology.nodes.a.startup-config', 'topology.nodes.a.ports'])
})
