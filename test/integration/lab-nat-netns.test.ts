// A lab's `nat:` reconciled by the lab's marks (LAB.md: deploy removes what the lab made and the
// file no longer names; destroy removes everything the lab made), without Docker: plumb runs in a
// throwaway netns acting as the host (nat-fixture.ts), the lab's nodes are ip netns. The truth is
// read back from iptables-save of that host, its sysctls, `ip -d link` and traffic (ping, TCP, UDP).

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { hasBinary, httpGet, isRoot, startEcho, startHttpd, tcpAsk, testIf, udpAsk, isolatedPorts, reach } from '../helpers/index.js'
import { sweep } from '../e2e/lab-fixture.js'
import { natLab } from './nat-fixture.js'

const withRoot = testIf(isRoot && hasBinary('iptables-save') && hasBinary('conntrack') && hasBinary('busybox'), 'lab-nat-netns: needs root, iptables, conntrack and busybox (scripts/testbed.sh up)')

/**
 * Two lab bridges, L (198.18.3.0/24: a, b, c) and M (198.18.4.0/24: d, e, f). `nat` is the file's
 * nat: section; `without` drops nodes (and their links) from it; BR_L, BR_M and UPLINK in it are the bridges' and the uplink's names.
 */
function labFile(id: string, uplink: string, nat: string, without: string[] = []): string {
  const L = `${id}L`
  const M = `${id}M`
  const nodes = [
    ['a', L, '198.18.3.10/24@198.18.3.1'],
    ['b', L, '198.18.3.11/24@198.18.3.1'],
    ['c', L, '198.18.3.12/24@198.18.3.1'],
    ['d', M, '198.18.4.10/24@198.18.4.1'],
    ['e', M, '198.18.4.11/24@198.18.4.1'],
    ['f', M, '198.18.4.12/24@198.18.4.1'],
  ].filter(([n]) => !without.includes(n!))
  return `name: ${id}
prefix: __lab-name
topology:
  nodes:
${nodes.map(([n]) => `    ${n}: {kind: netns}`).join('\n')}
    ${L}: {kind: bridge, ips: [198.18.3.1/24]}
    ${M}: {kind: bridge, ips: [198.18.4.1/24]}
  links:
${nodes.map(([n, br, ip]) => `    - endpoints: ["${n}:eth1", "${br}:${id}${n}1"]\n      ips: [${ip}]`).join('\n')}
${nat.replaceAll('UPLINK', uplink).replaceAll('BR_L', L).replaceAll('BR_M', M)}`
}

const FULL = `nat:
  expose:
    - {node: a, ports: ["8080:80", "5353:53/udp"]}
    - {node: b, ports: ["8081:80"]}
    - {node: d, ports: ["8082:80"]}
  masquerade: [BR_L, {target: 198.18.4.0/24, out: UPLINK}]
  isolate:
    - {bridge: BR_L, allow: [[a, b], [a, c]]}
    - BR_M
`
// One entry of each kind out: b's expose, the CIDR's masquerade, M's isolation, the pair a,c;
// and node d with its link and its expose (its rules can then only go by their marks).
const PART = `nat:
  expose:
    - {node: a, ports: ["8080:80", "5353:53/udp"]}
  masquerade: [BR_L]
  isolate:
    - {bridge: BR_L, allow: [[a, b]]}
`

/** plumb's NAT rules in the host's iptables-save (both tables), as lines. */
const natLines = (save: string): string[] => save.split('\n').filter((l) => /--comment "?plumb:(expose|masquerade|isolate|allow) /.test(l))

withRoot("nat: reconciles by the lab's marks: an entry taken out of the file is removed by the next deploy (exactly its rules, sysctls put back), the rest by destroy even when the file no longer names it; destroy again is a no-op", async (t) => {
  const lab = await natLab(t)
  const id = lab.id
  const ns = (n: string): string => `${id}-${n}`
  const dir = mkdtempSync(`/tmp/${id}-`)
  const file = join(dir, 'lab.yml')
  t.teardown(async () => {
    // the lab's own destroy where it ran (the host netns), then whatever is left with the test's name
    await lab.plumb('lab', 'destroy', file, '-q')
    await sweep(id)
    rmSync(dir, { recursive: true, force: true })
  })
  const write = (nat: string, without: string[] = []): void => writeFileSync(file, labFile(id, lab.uplink, nat, without))
  const before = await lab.save()
  t.is(await lab.sysctl('net.ipv4.ip_forward'), '0')

  write(FULL)
  const dep = await lab.plumb('lab', 'deploy', file)
  t.is(dep.exitCode, 0, dep.stderr)
  const full = await lab.save()
  const lines = natLines(full)
  t.true(lines.length > 10, full)
  t.deepEqual(lines.filter((l) => !l.includes(` lab=${id}`)), [], "every NAT rule carries the lab's name")
  t.is(await lab.sysctl('net.ipv4.ip_forward'), '1')
  t.is(await lab.sysctl(`net.ipv4.conf.${id}M.route_localnet`), '1', "d's published port set route_localnet on M")
  t.is(await lab.sysctl(`net.ipv4.conf.${id}L.proxy_arp_pvlan`), '1', 'the allowed pairs set proxy_arp_pvlan on L')
  t.deepEqual(await isolatedPorts(`${id}M`, lab.host), [true, true, true])

  // What it does, by traffic: published ports from another machine, masquerade out, isolation with its pairs.
  await startHttpd(t, ns('a'), 80, 'web-a')
  await startEcho(t, ns('a'), 53, 'udp-a', 'udp')
  await startHttpd(t, ns('b'), 80, 'web-b')
  await startHttpd(t, ns('d'), 80, 'web-d')
  await startEcho(t, lab.far, 7000, 'far', 'tcp')
  await startEcho(t, lab.far, 7001, 'far', 'udp')
  t.is(await httpGet(lab.far, lab.upAddr, 8080), 'web-a')
  t.regex((await udpAsk(lab.far, lab.upAddr, 5353)) ?? 'no answer', /^udp-a /)
  t.is(await httpGet(lab.far, lab.upAddr, 8081), 'web-b')
  t.is(await httpGet(lab.far, lab.upAddr, 8082), 'web-d')
  t.is(await tcpAsk(ns('e'), lab.farAddr, 7000), `far ${lab.upAddr}`, 'M masqueraded out of the uplink (TCP)')
  t.is(await udpAsk(ns('e'), lab.farAddr, 7001), `far ${lab.upAddr}`, '... and UDP')
  t.deepEqual(await reach(ns('a'), ns('c'), '198.18.3.12'), [true, true, true], 'the pair a,c talks')
  t.deepEqual(await reach(ns('b'), ns('c'), '198.18.3.12'), [false, false, false], 'b and c do not')
  t.deepEqual(await reach(ns('e'), ns('f'), '198.18.4.12'), [false, false, false], 'M is isolated')

  const again = await lab.plumb('lab', 'deploy', file)
  t.is(again.exitCode, 0, again.stderr)
  t.regex(again.stdout, /already deployed .*nothing changed/)
  t.is(await lab.save(), full, 'a second deploy of the same file changes nothing')

  // One entry of each kind out of the file, and node d with its expose.
  write(PART, ['d'])
  const ins = await lab.plumb('lab', 'inspect', file, '--json')
  t.is(ins.exitCode, 0, ins.stderr)
  const stale = (ins.json.nat as Array<{ op: string; rule: string; lab: boolean; inFile: boolean }>).filter((x) => !x.inFile)
  t.deepEqual(stale.map((x) => [x.op, x.lab]).sort(), [['allow', true], ['expose', true], ['expose', true], ['isolate', true], ['masquerade', true]], JSON.stringify(ins.json.nat))
  const text = await lab.plumb('lab', 'inspect', file)
  t.regex(text.stdout, new RegExp(`^  masquerade 198\\.18\\.4\\.0/24 out ${lab.uplink} \\[lab; no longer in the file: the next deploy removes it\\]$`, 'm'))

  const dry = await lab.plumb('lab', 'deploy', file, '--dry-run')
  t.is(dry.exitCode, 0, dry.stderr)
  for (const line of [`plumb isolate ${id}M --del`, `plumb isolate ${id}L --allow netns:${ns('a')},netns:${ns('c')} --del`, `plumb masquerade 198.18.4.0/24 --out ${lab.uplink} --del`, `plumb expose netns:${ns('b')} 8081:80/tcp --del`, `plumb expose netns:${ns('d')} 8082:80/tcp --del`]) {
    t.true(dry.stdout.split('\n').includes(line), `${line}\n${dry.stdout}`)
  }
  t.is(await lab.save(), full, 'the dry run changed nothing')

  const part = await lab.plumb('lab', 'deploy', file)
  t.is(part.exitCode, 0, part.stderr)
  t.regex(part.stdout, /unpublished 0\.0\.0\.0:8081\/tcp .*\(no longer in the file\)/)
  const after = await lab.save()
  const gone = lines.filter((l) => !natLines(after).includes(l))
  t.deepEqual(natLines(after).filter((l) => !lines.includes(l)), [], 'nothing new')
  const removedKey = (l: string): boolean =>
    l.includes(`guest=netns:${ns('b')} `) || l.includes(`guest=netns:${ns('d')} `) || l.includes('src=198.18.4.0/24 ') || l.includes(`plumb:isolate br=${id}M `) || (l.includes('plumb:allow ') && l.includes(`netns:${ns('c')}`))
  t.deepEqual(gone, lines.filter(removedKey), 'exactly the rules of the entries taken out are gone')
  t.true(gone.length >= 8, gone.join('\n'))
  t.is(await lab.sysctl(`net.ipv4.conf.${id}M.route_localnet`), '0', "route_localnet on M is put back with d's published port, its last rule")
  t.is(await lab.sysctl(`net.ipv4.conf.${id}L.route_localnet`), '1', "a's published port still needs it on L")
  t.is(await lab.sysctl(`net.ipv4.conf.${id}L.proxy_arp_pvlan`), '1', 'the pair a,b still needs proxy_arp_pvlan')
  t.is(await lab.sysctl('net.ipv4.ip_forward'), '1')
  t.deepEqual(await isolatedPorts(`${id}M`, lab.host), [false, false], "M's ports are no longer isolated")

  t.is(await httpGet(lab.far, lab.upAddr, 8080), 'web-a', "a's port still answers (TCP)")
  t.regex((await udpAsk(lab.far, lab.upAddr, 5353)) ?? 'no answer', /^udp-a /, '... and UDP')
  t.is(await httpGet(lab.far, lab.upAddr, 8081, { timeout: 1000 }), undefined, "b's port no longer")
  t.is(await tcpAsk(ns('e'), lab.farAddr, 7000, { timeout: 1000 }), undefined, 'M is no longer masqueraded (TCP)')
  t.is(await udpAsk(ns('e'), lab.farAddr, 7001, { timeout: 1000 }), undefined, '... nor UDP')
  t.is(await tcpAsk(ns('a'), lab.farAddr, 7000), `far ${lab.upAddr}`, 'L still is')
  t.deepEqual(await reach(ns('e'), ns('f'), '198.18.4.12'), [true, true, true], 'e and f talk again')
  t.deepEqual(await reach(ns('a'), ns('c'), '198.18.3.12'), [false, false, false], 'a and c no longer')
  t.deepEqual(await reach(ns('a'), ns('b'), '198.18.3.11'), [true, true, true], 'a and b still')

  const third = await lab.plumb('lab', 'deploy', file)
  t.regex(third.stdout, /nothing changed/)
  t.is(await lab.save(), after)

  // The rest out of the file too: destroy still removes every rule the lab made.
  write('', ['d'])
  const des = await lab.plumb('lab', 'destroy', file)
  t.is(des.exitCode, 0, des.stderr)
  t.is(await lab.save(), before, 'iptables-save is what it was before the deploy')
  t.is(await lab.sysctl('net.ipv4.ip_forward'), '0', 'ip_forward put back')
  const twice = await lab.plumb('lab', 'destroy', file)
  t.is(twice.exitCode, 0, twice.stderr)
  t.regex(twice.stdout, /nothing to destroy/)
  t.is(await lab.save(), before)
})

withRoot("destroy leaves a NAT rule the lab found in place (made by hand), and removes the lab's own", async (t) => {
  const lab = await natLab(t)
  const id = lab.id
  const dir = mkdtempSync(`/tmp/${id}-`)
  const file = join(dir, 'lab.yml')
  t.teardown(async () => {
    await lab.plumb('lab', 'destroy', file, '-q')
    await lab.plumb('masquerade', '198.18.9.0/24', '--del')
    await sweep(id)
    rmSync(dir, { recursive: true, force: true })
  })
  const before = await lab.save()
  // by hand, before the lab: the lab's deploy finds it "already" there
  t.is((await lab.plumb('masquerade', '198.18.9.0/24')).exitCode, 0)
  const byHand = natLines(await lab.save())
  writeFileSync(file, labFile(id, lab.uplink, 'nat:\n  masquerade: [198.18.9.0/24, BR_L]\n', ['b', 'c', 'd', 'e', 'f']))
  const dep = await lab.plumb('lab', 'deploy', file)
  t.is(dep.exitCode, 0, dep.stderr)
  const mine = natLines(await lab.save()).filter((l) => !byHand.includes(l))
  t.true(mine.length > 0 && mine.every((l) => l.includes(` lab=${id}`) && l.includes(`src=${id}L `)), mine.join('\n'))
  t.true(byHand.every((l) => !l.includes(' lab=')), 'the rule made by hand stays unmarked')
  const ins = await lab.plumb('lab', 'inspect', file, '--json')
  t.deepEqual(ins.json.nat.map((x: { rule: string; lab: boolean; inFile: boolean }) => [x.rule.split(' ')[0], x.lab, x.inFile]).sort(), [['198.18.9.0/24', false, true], [`${id}L`, true, true]])
  t.is((await lab.plumb('lab', 'destroy', file)).exitCode, 0)
  t.deepEqual(natLines(await lab.save()), byHand, 'the lab took its own masquerade and left the one it found')
  t.is((await lab.plumb('masquerade', '198.18.9.0/24', '--del')).exitCode, 0)
  t.is(await lab.save(), before)
})
