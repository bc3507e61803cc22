// expose, masquerade and isolate on a host with Docker's rules absent: plumb runs inside a
// throwaway netns acting as the host (see nat-fixture.ts), its guests are ip netns. Real servers
// answer (busybox httpd, UDP and TCP echoes); the truth is read back from the traffic, from
// iptables-save of the host netns, its sysctls, conntrack and `ip -d link`.

import { conntrackEntries, getLink, hasBinary, httpGet, isRoot, ping, sh, startEcho, startHttpd, tcpAsk, testIf, udpAsk, reach, isolatedPorts } from '../helpers/index.js'
import { natLab } from './nat-fixture.js'
import type { NatLab } from './nat-fixture.js'

const withRoot = testIf(isRoot && hasBinary('iptables-save') && hasBinary('conntrack') && hasBinary('busybox'), 'nat-netns: needs root, iptables, conntrack and busybox (scripts/testbed.sh up)')

/** g1 (198.18.1.10) serving http on 80 and UDP echo on 53, g2 (198.18.1.11) on the same bridge, g3 (198.18.2.10) on the other. */
async function served(t: Parameters<typeof natLab>[0], lab: NatLab): Promise<{ g1: string; g2: string; g3: string }> {
  const g1 = await lab.guest('1', lab.br, '198.18.1.10')
  const g2 = await lab.guest('2', lab.br, '198.18.1.11')
  const g3 = await lab.guest('3', lab.br2, '198.18.2.10')
  await startHttpd(t, g1, 80, 'web-g1')
  await startEcho(t, g1, 53, 'udp-g1', 'udp')
  return { g1, g2, g3 }
}

withRoot('expose without Docker: TCP and UDP answer from another machine, the host (its addresses, 127.0.0.1), the same bridge and another bridge; --del leaves iptables-save and the sysctls as they were', async (t) => {
  const lab = await natLab(t)
  const { g1, g2, g3 } = await served(t, lab)
  const before = await lab.save()
  t.is(await lab.sysctl('net.ipv4.ip_forward'), '0')

  const dry = await lab.plumb('expose', `netns:${g1}`, '8080:80', '5353:53/udp', '--dry-run')
  t.is(dry.exitCode, 0, dry.stderr)
  t.regex(dry.stdout, /^iptables -w -t nat -A PLUMB-DNAT -p tcp -m tcp --dport 8080 -m comment --comment "plumb:expose [^"]+" -j DNAT --to-destination 198\.18\.1\.10:80$/m)
  t.regex(dry.stdout, /^sysctl -w net\.ipv4\.ip_forward=1$/m)
  t.regex(dry.stdout, /^conntrack -D -p udp --orig-dst 198\.18\.250\.1 --orig-port-dst 5353$/m)
  t.is(await lab.save(), before, 'the dry run changed nothing')
  t.is(await lab.sysctl('net.ipv4.ip_forward'), '0')

  const r = await lab.plumb('expose', `netns:${g1}`, '8080:80', '5353:53/udp', '--json')
  t.is(r.exitCode, 0, r.stderr)
  t.deepEqual(
    r.json.published.map((p: { hostIp: string; hostPort: number; proto: string; to: string; state: string }) => [p.hostIp, p.hostPort, p.proto, p.to, p.state]),
    [
      ['', 8080, 'tcp', '198.18.1.10:80', 'published'],
      ['', 5353, 'udp', '198.18.1.10:53', 'published'],
    ],
  )
  t.is(await lab.sysctl('net.ipv4.ip_forward'), '1', 'forwarding on (it was off)')
  t.is(await lab.sysctl(`net.ipv4.conf.${lab.br}.route_localnet`), '1', '127.0.0.1 may leave through the bridge')

  const from: Array<[string, string, string]> = [
    ['another machine, through the host address', lab.far, lab.upAddr],
    ['the host, through its own address', lab.host, lab.upAddr],
    ['the host, through 127.0.0.1', lab.host, '127.0.0.1'],
    ['a guest on the same bridge (hairpin)', g2, lab.brAddr],
    ['a guest on another bridge', g3, lab.upAddr],
  ]
  for (const [who, ns, addr] of from) {
    t.is(await httpGet(ns, addr, 8080), 'web-g1', `TCP from ${who}`)
    t.regex((await udpAsk(ns, addr, 5353)) ?? 'no answer', /^udp-g1 /, `UDP from ${who}`)
  }
  // The far end's address reaches the guest as it is (no masquerade on the way in) ...
  t.is(await udpAsk(lab.far, lab.upAddr, 5353), `udp-g1 ${lab.farAddr}`)
  // ... the hairpin and 127.0.0.1 come from the bridge's address, so the replies come back.
  t.is(await udpAsk(g2, lab.brAddr, 5353), `udp-g1 ${lab.brAddr}`)
  t.is(await udpAsk(lab.host, '127.0.0.1', 5353), `udp-g1 ${lab.brAddr}`)

  const published = await lab.save()
  const again = await lab.plumb('expose', `netns:${g1}`, '8080:80', '5353:53/udp')
  t.is(again.exitCode, 0, again.stderr)
  t.regex(again.stdout, /already published 0\.0\.0\.0:8080\/tcp/)
  t.is(await lab.save(), published, 'a rerun changes nothing')

  const ls = await lab.plumb('ls', `netns:${g1}`, '--json')
  t.deepEqual(ls.json.guests[0].exposes.map((e: { hostPort: number; proto: string }) => `${e.hostPort}/${e.proto}`), ['5353/udp', '8080/tcp'])

  const del = await lab.plumb('expose', `netns:${g1}`, '8080:80', '5353:53/udp', '--del')
  t.is(del.exitCode, 0, del.stderr)
  for (const [who, ns, addr] of from) {
    t.is(await httpGet(ns, addr, 8080, { timeout: 1000 }), undefined, `no TCP from ${who} after --del`)
    t.is(await udpAsk(ns, addr, 5353, { timeout: 1000 }), undefined, `no UDP from ${who} after --del`)
  }
  t.is(await lab.save(), before, 'iptables-save (filter and nat) is what it was')
  t.is(await lab.sysctl('net.ipv4.ip_forward'), '0', 'forwarding back off')
  t.is(await lab.sysctl(`net.ipv4.conf.${lab.br}.route_localnet`), '0')
  const gone = await lab.plumb('expose', `netns:${g1}`, '8080:80', '--del')
  t.is(gone.exitCode, 0)
  t.regex(gone.stdout, /not published/)
})

withRoot('expose HOSTIP: only through that address; 127.0.0.1::PORT gets a chosen port, printed, and only 127.0.0.1', async (t) => {
  const lab = await natLab(t)
  const { g1 } = await served(t, lab)
  // the far end can reach the bridge's address too (through the host), so "only HOSTIP" means something
  await sh('ip', ['-n', lab.far, 'route', 'add', '198.18.1.0/24', 'via', lab.upAddr])
  const before = await lab.save()
  const r = await lab.plumb('expose', `netns:${g1}`, `${lab.upAddr}:8080:80`, '127.0.0.1::80')
  t.is(r.exitCode, 0, r.stderr)
  const chosen = Number(/published 127\.0\.0\.1:(\d+)\/tcp/.exec(r.stdout)?.[1])
  const [lo, hi] = (await lab.sysctl('net.ipv4.ip_local_port_range')).split(/\s+/).map(Number)
  t.true(chosen >= lo! && chosen <= hi!, `the chosen port ${chosen} is in ip_local_port_range ${lo}-${hi}`)

  t.is(await httpGet(lab.far, lab.upAddr, 8080), 'web-g1', 'through HOSTIP')
  t.is(await httpGet(lab.far, lab.brAddr, 8080, { timeout: 1000 }), undefined, 'not through another host address')
  t.is(await httpGet(lab.host, '127.0.0.1', 8080, { timeout: 1000 }), undefined, 'not through 127.0.0.1')
  t.is(await httpGet(lab.host, '127.0.0.1', chosen), 'web-g1', '127.0.0.1::80 answers on 127.0.0.1')
  t.is(await httpGet(lab.host, lab.upAddr, chosen, { timeout: 1000 }), undefined, '... and only there')

  // the same PORTSPEC without a host port finds the chosen one again (idempotent), and --del removes it
  const again = await lab.plumb('expose', `netns:${g1}`, '127.0.0.1::80')
  t.regex(again.stdout, new RegExp(`already published 127\\.0\\.0\\.1:${chosen}/tcp`))
  const del = await lab.plumb('expose', `netns:${g1}`, '127.0.0.1::80', `${lab.upAddr}:8080:80`, '--del')
  t.is(del.exitCode, 0, del.stderr)
  t.regex(del.stdout, new RegExp(`unpublished 127\\.0\\.0\\.1:${chosen}/tcp`))
  t.is(await httpGet(lab.host, '127.0.0.1', chosen, { timeout: 1000 }), undefined)
  t.false((await lab.save()).includes('plumb:'))
  t.is(await lab.save(), before, 'iptables-save (filter and nat) is what it was: no chain or jump left')
})

withRoot('a UDP flow published, removed and published again to another guest reaches the new guest (stale conntrack entries go)', async (t) => {
  const lab = await natLab(t)
  const g1 = await lab.guest('1', lab.br, '198.18.1.10')
  const g2 = await lab.guest('2', lab.br, '198.18.1.11')
  await startEcho(t, g1, 53, 'udp-g1', 'udp')
  await startEcho(t, g2, 53, 'udp-g2', 'udp')
  const flow = { srcPort: 40053 } // one flow: the same 5-tuple every time
  // conntrack runs in a netns only while a rule needs it (on a Docker host, always): another
  // published port keeps it on, as anything NATed on the host would.
  t.is((await lab.plumb('expose', `netns:${g1}`, '8053:53/udp')).exitCode, 0)

  t.is((await lab.plumb('expose', `netns:${g1}`, '5353:53/udp')).exitCode, 0)
  t.is(await udpAsk(lab.far, lab.upAddr, 5353, flow), `udp-g1 ${lab.farAddr}`)
  t.is((await lab.plumb('expose', `netns:${g1}`, '5353:53/udp', '--del')).exitCode, 0)
  t.deepEqual((await conntrackEntries(lab.host, 'udp', 5353)).filter((l) => l.includes('198.18.1.10')), [], 'the entry to the old guest is gone')
  // the flow keeps coming while nothing is published: the host answers it (port unreachable) and conntrack remembers it un-NATed
  t.is(await udpAsk(lab.far, lab.upAddr, 5353, { ...flow, timeout: 1000 }), undefined)
  t.true((await conntrackEntries(lab.host, 'udp', 5353)).length > 0, 'a stale entry for the flow is there')
  t.is((await lab.plumb('expose', `netns:${g2}`, '5353:53/udp')).exitCode, 0)
  t.is(await udpAsk(lab.far, lab.upAddr, 5353, flow), `udp-g2 ${lab.farAddr}`, 'the same flow reaches the new guest')
  t.is((await lab.plumb('expose', `netns:${g2}`, '5353:53/udp', '--del')).exitCode, 0)
  t.is((await lab.plumb('expose', `netns:${g1}`, '8053:53/udp', '--del')).exitCode, 0)
})

withRoot('a host port taken by plumb or by a listening host socket is exit 4 naming the holder, and nothing changes', async (t) => {
  const lab = await natLab(t)
  const { g1, g2 } = await served(t, lab)
  t.is((await lab.plumb('expose', `netns:${g1}`, '8080:80')).exitCode, 0)
  const before = await lab.save()

  const byPlumb = await lab.plumb('expose', `netns:${g2}`, '8080:80')
  t.is(byPlumb.exitCode, 4, byPlumb.stderr)
  t.regex(byPlumb.stderr, new RegExp(`host port 0\\.0\\.0\\.0:8080/tcp is taken: plumb \\(published to netns:${g1} 198\\.18\\.1\\.10:80\\)`))
  const onIp = await lab.plumb('expose', `netns:${g2}`, `${lab.upAddr}:8080:80`)
  t.is(onIp.exitCode, 4, 'a specific address overlaps every address')
  const otherPort = await lab.plumb('expose', `netns:${g1}`, '8080:81')
  t.is(otherPort.exitCode, 4, 'the same guest with another port is a different configuration')
  t.regex(otherPort.stderr, /hint: unpublish it first: plumb expose netns:\S+ 8080:80\/tcp --del/)

  // a real listener in the host netns, found with its pid
  await startEcho(t, lab.host, 9090, 'holder', 'tcp')
  const bySocket = await lab.plumb('expose', `netns:${g2}`, '9090:80', '--json')
  t.is(bySocket.exitCode, 4)
  t.is(bySocket.json.error.code, 'CONFLICT')
  t.regex(bySocket.json.error.message, /host port 0\.0\.0\.0:9090\/tcp is taken: a host socket listening on (0\.0\.0\.0|::):9090\/tcp \(pid \d+ \(node\)\)/)
  t.is(await lab.save(), before, 'nothing changed')
  // a UDP port is another port: 9090/udp is free
  const udp = await lab.plumb('expose', `netns:${g2}`, '9090:53/udp')
  t.is(udp.exitCode, 0, udp.stderr)
})

withRoot('masquerade without Docker: the far end, with no route back, sees the host\'s address; --del ends it and puts ip_forward back', async (t) => {
  const lab = await natLab(t)
  const g1 = await lab.guest('1', lab.br, '198.18.1.10')
  await startEcho(t, lab.far, 7000, 'far', 'tcp')
  await startEcho(t, lab.far, 7001, 'far', 'udp')
  const before = await lab.save()
  t.false(await ping(g1, lab.farAddr, { timeout: 1 }), 'no way out before')

  const dry = await lab.plumb('masquerade', lab.br, '--dry-run')
  t.is(dry.exitCode, 0)
  t.regex(dry.stdout, /^iptables -w -t nat -A PLUMB-POSTROUTING -s 198\.18\.1\.0\/24 ! -o \S+ -m comment --comment "plumb:masquerade src=\S+ br=\S+ fwd=0" -j MASQUERADE$/m)
  t.regex(dry.stdout, /^sysctl -w net\.ipv4\.ip_forward=1$/m)
  t.is(await lab.save(), before, 'the dry run changed nothing')

  const r = await lab.plumb('masquerade', lab.br)
  t.is(r.exitCode, 0, r.stderr)
  t.true(await ping(g1, lab.farAddr), 'ICMP out')
  t.is(await tcpAsk(g1, lab.farAddr, 7000), `far ${lab.upAddr}`, "TCP out: the far end sees the host's address")
  t.is(await udpAsk(g1, lab.farAddr, 7001), `far ${lab.upAddr}`, 'UDP too')
  const again = await lab.plumb('masquerade', lab.br)
  t.regex(again.stdout, /already masqueraded/)
  const ls = await lab.plumb('ls', '--json')
  t.deepEqual(ls.json.masquerades, [{ source: lab.br, bridge: lab.br }])
  const other = await lab.plumb('masquerade', lab.br, '--out', lab.uplink)
  t.is(other.exitCode, 4, 'a different configuration in place')

  const del = await lab.plumb('masquerade', lab.br, '--del')
  t.is(del.exitCode, 0, del.stderr)
  t.is(await tcpAsk(g1, lab.farAddr, 7000, { timeout: 1000 }), undefined, 'no way out after --del')
  t.is(await lab.save(), before)
  t.is(await lab.sysctl('net.ipv4.ip_forward'), '0')

  // --out: only traffic leaving through it; a CIDR works as a bridge does
  t.is((await lab.plumb('masquerade', '198.18.1.0/24', '--out', lab.uplink)).exitCode, 0)
  t.is(await tcpAsk(g1, lab.farAddr, 7000), `far ${lab.upAddr}`)
  t.is((await lab.plumb('masquerade', '198.18.1.0/24', '--del')).exitCode, 0)
  t.is(await lab.save(), before)
})

withRoot('isolate without Docker: guests cannot reach each other (ICMP, TCP, UDP) but reach the bridge and, masqueraded, the outside; --allow opens one pair; later guests are isolated; --del restores', async (t) => {
  const lab = await natLab(t)
  const g1 = await lab.guest('1', lab.br, '198.18.1.10')
  const g2 = await lab.guest('2', lab.br, '198.18.1.11')
  const g3 = await lab.guest('3', lab.br, '198.18.1.12')
  await startEcho(t, lab.far, 7000, 'far', 'tcp')
  // ping, a TCP echo and a UDP echo (the shared traffic helper); a server in the guest of `to`
  const addrs: Record<string, string> = { '198.18.1.10': g1, '198.18.1.11': g2, '198.18.1.12': g3, '198.18.1.13': `${lab.id}4` }
  const reachAddr = (from: string, to: string): Promise<boolean[]> => reach(from, addrs[to], to)
  t.deepEqual(await reachAddr(g1, '198.18.1.11'), [true, true, true], 'before: g1 reaches g2')
  const before = await lab.save()
  t.is((await lab.plumb('masquerade', lab.br)).exitCode, 0)

  const r = await lab.plumb('isolate', lab.br)
  t.is(r.exitCode, 0, r.stderr)
  t.deepEqual(await reachAddr(g1, '198.18.1.11'), [false, false, false], 'g1 cannot reach g2')
  t.deepEqual(await reachAddr(g2, '198.18.1.12'), [false, false, false], 'g2 cannot reach g3')
  t.true(await ping(g1, lab.brAddr), "g1 reaches the bridge's address")
  t.is(await tcpAsk(g2, lab.farAddr, 7000), `far ${lab.upAddr}`, 'and, masqueraded, the outside')
  t.is((await isolatedPorts(lab.br, lab.host)).filter(Boolean).length, 3, 'the kernel says: three isolated ports')

  const allow = await lab.plumb('isolate', lab.br, '--allow', `netns:${g1},netns:${g2}`)
  t.is(allow.exitCode, 0, allow.stderr)
  t.deepEqual(await reachAddr(g1, '198.18.1.11'), [true, true, true], 'the allowed pair talks ...')
  t.deepEqual(await reachAddr(g2, '198.18.1.10'), [true, true, true], '... both ways')
  t.deepEqual(await reachAddr(g3, '198.18.1.10'), [false, false, false], 'exactly that pair: g3 still cannot reach g1')
  t.deepEqual(await reachAddr(g1, '198.18.1.12'), [false, false, false], 'nor g1 g3')

  const g4 = await lab.guest('4', lab.br, '198.18.1.13')
  const l4 = await lab.plumb('ls', `netns:${g4}`, '--json')
  const hostEnd = l4.json.guests[0].interfaces[0].peer as string
  t.is((await getLink(hostEnd, lab.host))?.linkinfo?.info_slave_data?.isolated, true, 'a guest attached later gets an isolated port')
  t.false(await ping(g4, '198.18.1.10', { timeout: 1 }), 'and cannot reach the others')
  t.true(await ping(g4, lab.brAddr))
  const ls = await lab.plumb('ls', '--json')
  t.deepEqual(ls.json.isolates.find((i: { bridge: string }) => i.bridge === lab.br), { bridge: lab.br, allow: [[`netns:${g1}`, `netns:${g2}`]] })

  const del = await lab.plumb('isolate', lab.br, '--del')
  t.is(del.exitCode, 0, del.stderr)
  t.deepEqual(await reachAddr(g3, '198.18.1.10'), [true, true, true], 'after --del g3 reaches g1 again')
  t.deepEqual(await reachAddr(g4, '198.18.1.11'), [true, true, true], 'and g4 g2')
  t.is((await lab.plumb('masquerade', lab.br, '--del')).exitCode, 0)
  t.is(await lab.save(), before, 'iptables-save is what it was')
  t.is(await lab.sysctl(`net.ipv4.conf.${lab.br}.proxy_arp_pvlan`), '0')
  t.is(await lab.sysctl('net.ipv4.ip_forward'), '0')
})

withRoot('bad input is exit 2 with nothing changed; a missing guest address or bridge is exit 3', async (t) => {
  const lab = await natLab(t)
  const g1 = await lab.guest('1', lab.br, '198.18.1.10')
  const before = await lab.save()
  const cases: Array<[string[], number, RegExp]> = [
    [['expose', `netns:${g1}`, '80:80:80:80'], 2, /too many ":"/],
    [['expose', `netns:${g1}`, '0'], 2, /guest port 0 out of range/],
    [['expose', `netns:${g1}`, '65536:80'], 2, /host port 65536 out of range/],
    [['expose', `netns:${g1}`, '80/sctp'], 2, /unknown protocol "sctp"/],
    [['expose', `netns:${g1}`], 2, /needs a PORTSPEC or --all/],
    [['expose', `netns:${g1}`, '80', '--to', '198.18.1.10/24'], 2, /not a CIDR/],
    [['expose', `netns:${g1}`, '--all'], 2, /--all needs a container/],
    [['masquerade', '198.18.1.0'], 2, /missing prefix length in CIDR/],
    [['masquerade', '198.18.1.5/24'], 2, /host bits set/],
    [['isolate', lab.br, '--allow', `netns:${g1}`], 2, /not a pair/],
    [['expose', `netns:${g1}`, '80', '--to', '198.18.9.9'], 3, /is not an address of/],
    [['expose', `netns:${g1}`, '198.18.9.9:80:80'], 3, /is not an address of this host/],
    [['masquerade', `${lab.id}z`], 3, /no bridge/],
    [['isolate', `${lab.id}z`], 3, /no bridge/],
    [['isolate', lab.uplink], 4, /not a Linux bridge/],
  ]
  for (const [args, code, message] of cases) {
    const r = await lab.plumb(...args)
    t.is(r.exitCode, code, `${args.join(' ')}: ${r.stderr}`)
    t.regex(r.stderr, message)
    t.regex(r.stderr, /^hint: /m, `${args.join(' ')} has a hint`)
  }
  t.is(await lab.save(), before, 'nothing changed')
  t.is(await lab.sysctl('net.ipv4.ip_forward'), '0')
})

withRoot("detach --all removes the guest's published ports and allowed pairs", async (t) => {
  const lab = await natLab(t)
  const { g1, g2 } = await served(t, lab)
  const before = await lab.save()
  t.is((await lab.plumb('expose', `netns:${g1}`, '8080:80', '80')).exitCode, 0)
  t.is((await lab.plumb('isolate', lab.br, '--allow', `netns:${g1},netns:${g2}`)).exitCode, 0)
  const d = await lab.plumb('detach', `netns:${g1}`, '--all')
  t.is(d.exitCode, 0, d.stderr)
  t.regex(d.stdout, /unpublished 0\.0\.0\.0:8080\/tcp/)
  t.regex(d.stdout, /removed the allowed pair/)
  const left = await lab.save()
  t.false(left.includes(`guest=netns:${g1}`) || left.includes(`a=netns:${g1}`), left)
  t.true(left.includes(`plumb:isolate br=${lab.br}`), 'the bridge stays isolated')
  t.is((await lab.plumb('isolate', lab.br, '--del')).exitCode, 0)
  t.is(await lab.save(), before)
  const again = await lab.plumb('detach', `netns:${g1}`, '--all')
  t.regex(again.stdout, /nothing to detach/)
})
