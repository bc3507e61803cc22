// Bad input through the real CLI against a real guest: each case has its exit code, a message
// naming the problem, a hint where one is promised, and leaves host and guest exactly as they were.

import { isRoot, testIf, uniq } from '../helpers/index.js'
import { fixture, plumb, views } from './ops-fixture.js'
import type { Fixture } from './ops-fixture.js'

const asRoot = testIf(isRoot, 'ops-badinput: needs root (ip netns)')

interface Case {
  name: string
  args: (f: Fixture) => string[]
  exit: number
  message: RegExp | ((f: Fixture) => RegExp)
  hint?: RegExp | ((f: Fixture) => RegExp)
}

const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

const CASES: Case[] = [
  {
    name: 'address without prefix',
    args: (f) => ['attach-veth', f.guest, f.br, `198.18.${f.octet}.10`],
    exit: 2,
    message: (f) => new RegExp(`missing prefix length in IP spec "198\\.18\\.${f.octet}\\.10"`),
    hint: (f) => new RegExp(`^hint: did you mean 198\\.18\\.${f.octet}\\.10/24\\?$`),
  },
  { name: 'prefix 33', args: (f) => ['attach-veth', f.guest, f.br, `198.18.${f.octet}.10/33`], exit: 2, message: /33/, hint: /./ },
  { name: 'prefix 129 on IPv6', args: (f) => ['attach-veth', f.guest, f.br, '2001:db8::10/129'], exit: 2, message: /129/, hint: /./ },
  { name: 'octet 300', args: (f) => ['attach-veth', f.guest, f.br, '300.1.1.1/24'], exit: 2, message: /300\.1\.1\.1/ },
  {
    name: 'gateway of the other family',
    args: (f) => ['attach-veth', f.guest, f.br, `${f.v4(10)}@2001:db8::1`],
    exit: 2,
    message: /gateway 2001:db8::1 is IPv6/,
    hint: /same family/,
  },
  { name: 'v4 address with a v6 gateway on set-ip', args: (f) => ['set-ip', f.guest, 'eth1', `${f.v6(10)}@198.18.0.1`], exit: 2, message: /IPv4 but/ },
  { name: 'multicast MAC', args: (f) => ['attach-veth', f.guest, f.br, '--mac', '01:00:5e:00:00:01'], exit: 2, message: /multicast/, hint: /unicast MAC/ },
  { name: 'all-zero MAC', args: (f) => ['attach-veth', f.guest, f.br, '--mac', '00:00:00:00:00:00'], exit: 2, message: /all zeros/, hint: /./ },
  { name: 'MAC of wrong length', args: (f) => ['attach-veth', f.guest, f.br, '--mac', 'aa:bb:cc:dd:ee'], exit: 2, message: /wrong length/, hint: /six hex bytes/ },
  { name: 'ifname over 15 bytes', args: (f) => ['attach-veth', f.guest, f.br, '-i', 'eth-much-too-long'], exit: 2, message: /17 bytes/, hint: /shorter/ },
  { name: 'multi-byte ifname over 15 bytes', args: (f) => ['attach-veth', f.guest, f.br, '-i', 'éééééééé'], exit: 2, message: /16 bytes/ },
  { name: 'ifname with /', args: (f) => ['attach-veth', f.guest, f.br, '-i', 'eth/1'], exit: 2, message: /contains "\/"/, hint: /./ },
  { name: 'ifname with :', args: (f) => ['attach-veth', f.guest, f.br, '-i', 'eth:1'], exit: 2, message: /contains ":"/ },
  { name: 'ifname with a space', args: (f) => ['attach-veth', f.guest, f.br, '-i', 'eth 1'], exit: 2, message: /whitespace/ },
  { name: 'ifname with ;', args: (f) => ['attach-veth', f.guest, f.br, '-i', 'eth1;ls'], exit: 2, message: /contains ";"/, hint: /metacharacters/ },
  { name: 'ifname with $(', args: (f) => ['attach-veth', f.guest, f.br, '-i', 'e$(id)'], exit: 2, message: /contains "\$"/ },
  { name: 'host ifname over 15 bytes', args: (f) => ['attach-veth', f.guest, f.br, '-l', 'host-end-too-long'], exit: 2, message: /host interface name/ },
  { name: 'bridge name with ;', args: (f) => ['attach-veth', f.guest, `${f.id};x`], exit: 2, message: /bridge name/ },
  { name: 'MTU 0', args: (f) => ['attach-veth', f.guest, f.br, '--mtu', '0'], exit: 2, message: /invalid MTU "0"/, hint: /./ },
  { name: 'MTU 70000', args: (f) => ['attach-veth', f.guest, f.br, '--mtu', '70000'], exit: 2, message: /invalid MTU "70000"/ },
  { name: 'MTU too small for IPv6', args: (f) => ['attach-veth', f.guest, f.br, f.v6(10), '--mtu', '1000'], exit: 2, message: /too small for IPv6/, hint: /1280/ },
  { name: 'route with host bits', args: (f) => ['attach-veth', f.guest, f.br, '--route', '198.19.0.1/16'], exit: 2, message: /host bits/, hint: /198\.19\.0\.0\/16/ },
  { name: 'unknown container', args: (f) => ['attach-veth', `${f.id}-nope`, f.br, f.v4(10)], exit: 3, message: (f) => new RegExp(esc(`${f.id}-nope`)) },
  { name: 'netns that does not exist', args: (f) => ['attach-veth', `netns:${f.id}-nope`, f.br, f.v4(10)], exit: 3, message: (f) => new RegExp(esc(`${f.id}-nope`)) },
  { name: 'set-ip on a netns that does not exist', args: (f) => ['set-ip', `netns:${f.id}-nope`, 'eth1', f.v4(10)], exit: 3, message: /nope/ },
  { name: 'detach on a netns that does not exist', args: (f) => ['detach', `netns:${f.id}-nope`, '--all'], exit: 3, message: /nope/ },
  { name: 'pid that does not exist', args: (f) => ['attach-veth', 'pid:4194303', f.br, f.v4(10)], exit: 3, message: /4194303/ },
]

asRoot('bad input: each case has its exit code, names the problem, hints, and changes nothing', async (t) => {
  const f = await fixture(t)
  const before = await views(f)
  const results = await Promise.all(CASES.map(async (c) => ({ c, r: await plumb(...c.args(f)) })))
  for (const { c, r } of results) {
    t.is(r.exitCode, c.exit, `${c.name}: exit ${r.exitCode}, stderr ${r.stderr}`)
    t.is(r.stdout, '', `${c.name}: nothing on stdout`)
    const lines = r.stderr.split('\n')
    const first = lines[0] ?? ''
    t.regex(first, /^plumb: /, c.name)
    const msg = typeof c.message === 'function' ? c.message(f) : c.message
    t.regex(first, msg, c.name)
    if (c.hint) {
      const hint = typeof c.hint === 'function' ? c.hint(f) : c.hint
      const hintLine = lines.find((l) => l.startsWith('hint: '))
      t.truthy(hintLine, `${c.name}: a hint line`)
      t.regex(hintLine ?? '', hint, c.name)
    }
  }
  t.deepEqual(await views(f), before)
})

asRoot('bad input with --json: {"error":{code,message,hint}} on stderr, exit code unchanged', async (t) => {
  const f = await fixture(t)
  const before = await views(f)
  const r = await plumb('attach-veth', f.guest, f.br, `198.18.${f.octet}.10`, '--json')
  t.is(r.exitCode, 2)
  t.is(r.stdout, '')
  t.like(r.json, { error: { code: 'USAGE', hint: `did you mean 198.18.${f.octet}.10/24?` } })
  const nf = await plumb('attach-veth', `netns:${uniq('n')}`, f.br, f.v4(10), '--json')
  t.is(nf.exitCode, 3)
  t.is(nf.json?.error?.code, 'NOT_FOUND')
  t.deepEqual(await views(f), before)
})
