// DHCP through plumb's commands on `ip netns` guests, against a real dnsmasq on a host bridge:
// the dhcp IP spec of attach-veth (library API and CLI), macvlan and move-dev, and of vlan on an
// OVS bridge (a VLAN, the server a guest too); refusals before
// anything starts; no server (rollback); the netns deleted (client exits); gc of a dead lease.

import test from 'ava'
import type { ExecutionContext } from 'ava'
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { attachVeth, PlumbError } from '../../lib/index.js'
import { assertTraffic, hasBinary, hasOvs, ipJson, isRoot, makeNetns, makeVethPair, netnsWithInode, processAlive, runCli, sh, shQuiet, startDnsmasq, testIf, uniq, waitFor, holdGcLock, reserveOctet } from '../helpers/index.js'
import type { CliResult } from '../helpers/index.js'
import { escapeRe, hostHashes, inRange, makeHostDhcpLab, pidsMentioning } from './ops-dhcp-fixture.js'
import type { HostDhcpLab } from './ops-dhcp-fixture.js'
import { linkNames } from './links-fixture.js'
import { sweepHost } from './ops-fixture.js'
import type { Lease } from '../../lib/dhcp/index.js'

const ready = isRoot && hasBinary('dnsmasq') && hasBinary('nsenter') && hasBinary('udhcpc')
const withLab = testIf(ready, 'ops-dhcp: needs root, dnsmasq, nsenter and udhcpc')
const withLabOvs = testIf(ready && hasOvs(), 'ops-dhcp: needs root, dnsmasq, nsenter, udhcpc and Open vSwitch')
// timing tests run before the others of this file, not beside them
const withLabSerial = ready ? test.serial : test.serial.skip

const plumb = (...args: string[]): Promise<CliResult> => runCli(args)

const hashesBefore = hostHashes()
test.after.always('host /etc/resolv.conf and /etc/hostname are byte-identical after all DHCP tests', (t) => {
  t.deepEqual(hostHashes(), hashesBefore)
})

/** a lease as `--json` prints it: lib/dhcp's Lease */
type JsonLease = Lease

const alive = processAlive

async function v4(ns: string, ifname: string): Promise<Array<{ local: string; valid_life_time: number }>> {
  const objs = await ipJson(['-4', 'addr', 'show', 'dev', ifname], ns).catch(() => [])
  return objs.flatMap((o) => o.addr_info ?? [])
}


async function assertLeased(t: ExecutionContext, lab: HostDhcpLab, ns: string, ifname: string, lease: JsonLease | undefined): Promise<void> {
  t.truthy(lease, 'a lease in the result')
  if (!lease) return
  t.true(inRange(lease.address, lab.net), `${lease.address} in ${lab.net}.100-150`)
  t.is(lease.server, `${lab.net}.1`)
  const a = (await v4(ns, ifname)).find((x) => x.local === lease.address)
  t.truthy(a, `the kernel has ${lease.address} on ${ifname}`)
  t.true(a !== undefined && a.valid_life_time > 0 && a.valid_life_time <= 120, `finite valid_lft (${a?.valid_life_time})`)
  t.true(alive(lease.pid) && alive(lease.clientPid), 'supervisor and client run')
}

async function assertReleased(t: ExecutionContext, lab: HostDhcpLab, lease: JsonLease): Promise<void> {
  await waitFor(() => lab.count(new RegExp(`DHCPRELEASE\\(pt-srv\\) ${escapeRe(lease.address)} `)) > 0, { timeout: 10_000, what: `dnsmasq to log the DHCPRELEASE of ${lease.address}` })
  t.false(alive(lease.pid), 'no supervisor')
  t.false(alive(lease.clientPid), 'no client')
  t.deepEqual(pidsMentioning(lease.stateDir), [])
  t.false(existsSync(lease.stateDir), 'no state dir')
}

withLab('library API: attachVeth with the dhcp spec and dhcp options; ls shows the lease; deleting the netns ends the client', async (t) => {
  const lab = await makeHostDhcpLab(t)
  const ns = await makeNetns(t, { name: `${lab.id}g` })
  const r = await attachVeth({ guest: `netns:${ns}`, bridge: lab.br, ips: ['dhcp'], dhcp: { client: 'udhcpc', timeout: 8, hostname: `${lab.id}h` } })
  const lease = r.lease as JsonLease
  await assertLeased(t, lab, ns, 'eth1', lease)
  t.is(lease.client, 'udhcpc')
  t.regex(lab.logText(), new RegExp(`DHCPACK\\(pt-srv\\) ${escapeRe(lease.address)} \\S+ ${escapeRe(lab.id)}h`), 'the server saw the hostname')
  // the default route from the lease
  const routes = await ipJson(['-4', 'route', 'show', 'default'], ns)
  t.is(routes[0]?.gateway, `${lab.net}.1`)

  const ls = await plumb('ls', `netns:${ns}`, '--json')
  t.is(ls.exitCode, 0, ls.stderr)
  t.like(ls.json?.guests?.[0]?.interfaces?.[0]?.lease, { address: lease.address, server: `${lab.net}.1`, leaseTime: 120, client: 'udhcpc', pid: lease.pid, alive: true })

  await sh('ip', ['netns', 'del', ns])
  const t0 = Date.now()
  await waitFor(() => !alive(lease.pid) && !alive(lease.clientPid) && !existsSync(lease.stateDir), { timeout: 5000, what: 'the client to exit after ip netns del' })
  t.log(`gone ${Date.now() - t0} ms after ip netns del`)
  t.deepEqual(pidsMentioning(lease.stateDir), [])
})

withLabSerial('no DHCP server: the library API rejects within the timeout + 1 s with exit code 1 and rolls the veth back', async (t) => {
  const lab = await makeHostDhcpLab(t, { server: false })
  const ns = await makeNetns(t, { name: `${lab.id}g` })
  // measured from the last step before the client started (the --verbose log), so the machine's
  // load on the guest lookup does not count against the DHCP timeout
  let lastStep = 0
  const log = (line: string) => {
    if (!line.startsWith('rollback:')) lastStep = Date.now()
  }
  const t0 = Date.now()
  const err = await t.throwsAsync(attachVeth({ guest: `netns:${ns}`, bridge: lab.br, ips: ['dhcp'], dhcp: { timeout: 2 }, log }), { instanceOf: PlumbError })
  const end = Date.now()
  t.log(`rejected after ${end - t0} ms, ${end - lastStep} ms after the step before the DHCP client`)
  t.true(lastStep > 0 && end - lastStep < 4000, `the DHCP wait, its cleanup and the rollback took ${end - lastStep} ms`)
  t.true(end - lastStep >= 2000, 'it did wait the whole timeout')
  t.is(err?.message, 'no DHCP offer on eth1 within 2 s')
  t.is((err as PlumbError).exitCode, 1)
  t.true((err as PlumbError).rolledBack?.some((l) => /^ip link del /.test(l)), `rolled back: ${JSON.stringify((err as PlumbError).rolledBack)}`)
  t.deepEqual(await linkNames(ns), ['lo'])
  t.deepEqual(await lab.guestPorts(), [])
  t.deepEqual(pidsMentioning(lab.id), [], 'no client or supervisor')
})

withLabOvs('a lease over an OVS VLAN: dnsmasq and the client on access ports tagged 10 of a userspace-datapath bridge; the lease then carries TCP, UDP and ping both ways', async (t) => {
  const net = `198.18.${reserveOctet(t)}`
  const id = uniq()
  t.teardown(() => sweepHost(id))
  const br = `${id}o`
  t.teardown(async () => void (await shQuiet('ovs-vsctl', ['--timeout=10', '--if-exists', 'del-br', br])))
  await sh('ovs-vsctl', ['--timeout=10', 'add-br', br, '--', 'set', 'bridge', br, 'datapath_type=netdev'])
  // the server is a guest of plumb's too, on the same VLAN
  const srv = await makeNetns(t, { name: `${id}s`, loUp: true })
  const rs = await plumb('vlan', `netns:${srv}`, br, '10', `${net}.1/24`, '-i', 'srv0')
  t.is(rs.exitCode, 0, rs.stderr)
  const dns = await startDnsmasq(t, srv, 'srv0', net)
  const ns = await makeNetns(t, { name: `${id}g` })
  t.teardown(async () => void (await plumb('detach', `netns:${ns}`, '--all')))

  const r = await plumb('vlan', `netns:${ns}`, br, '10', 'dhcp', '--dhcp-timeout', '8', '--json')
  t.is(r.exitCode, 0, r.stderr)
  const lease = r.json?.lease as JsonLease | undefined
  t.true(inRange(lease?.address, net), `leased ${lease?.address} in ${net}.100-150`)
  t.truthy((await v4(ns, 'eth1')).find((a) => a.local === lease?.address), 'the kernel has the leased address')
  t.is(dns.count(new RegExp(`DHCPACK\\(srv0\\) ${escapeRe(lease?.address ?? '?')} `)), 1, 'the server acked it')
  await assertTraffic(t, ns, srv, `${net}.1`, 'the leased guest -> the server')
  await assertTraffic(t, srv, ns, lease!.address, 'the server -> the leased guest')

  const d = await plumb('detach', `netns:${ns}`, '--all')
  t.is(d.exitCode, 0, d.stderr)
  t.deepEqual(pidsMentioning(lease!.stateDir), [], 'the client went with its link')
})

withLab('plumb dhcp refuses bad input before anything starts: unknown client, bad timeout, bad hostname, missing interface, --resolv on a netns without a filesystem', async (t) => {
  const lab = await makeHostDhcpLab(t, { server: false })
  const ns = await makeNetns(t, { name: `${lab.id}g` })
  const att = await plumb('attach-veth', `netns:${ns}`, lab.br)
  t.is(att.exitCode, 0, att.stderr)
  const cases: Array<[string[], number, RegExp]> = [
    [['--client', 'pump'], 2, /unknown DHCP client "pump"/],
    [['--timeout', '0'], 2, /--timeout/],
    [['--hostname', 'bad_name!'], 2, /not a valid hostname/],
    [['--resolv'], 2, /--resolv needs a guest with its own filesystem/],
  ]
  for (const [extra, code, re] of cases) {
    const r = await plumb('dhcp', `netns:${ns}`, 'eth1', ...extra)
    t.is(r.exitCode, code, `${extra.join(' ')}: ${r.stderr}`)
    t.regex(r.stderr, re)
  }
  const missing = await plumb('dhcp', `netns:${ns}`, 'eth9')
  t.is(missing.exitCode, 3, missing.stderr)
  t.regex(missing.stderr, /no interface "eth9"/)
  // the link commands' spelling: same refusals, the new veth never left behind
  const r = await plumb('attach-veth', `netns:${ns}`, lab.br, 'dhcp', '-i', 'eth2', '--dhcp-client', 'pump')
  t.is(r.exitCode, 2, r.stderr)
  const r2 = await plumb('attach-veth', `netns:${ns}`, lab.br, 'dhcp', '-i', 'eth2', '--resolv')
  t.is(r2.exitCode, 2, r2.stderr)
  t.regex(r2.stderr, /--resolv needs a guest with its own filesystem/)
  // a DHCP flag beside static addresses would be silently ignored: refused
  const r3 = await plumb('attach-veth', `netns:${ns}`, lab.br, '198.18.0.9/24', '-i', 'eth2', '--hostname', 'web')
  t.is(r3.exitCode, 2, r3.stderr)
  t.regex(r3.stderr, /DHCP options \(hostname\) given without the dhcp IP spec/)
  t.deepEqual(await linkNames(ns), ['eth1', 'lo'])
  t.deepEqual(await v4(ns, 'eth1'), [])
  t.deepEqual(pidsMentioning(lab.id), [])
})

withLab('--dry-run prints the client command and starts nothing', async (t) => {
  const lab = await makeHostDhcpLab(t)
  const ns = await makeNetns(t, { name: `${lab.id}g` })
  const att = await plumb('attach-veth', `netns:${ns}`, lab.br)
  t.is(att.exitCode, 0, att.stderr)
  const r = await plumb('dhcp', `netns:${ns}`, 'eth1', '--client', 'udhcpc', '--dry-run')
  t.is(r.exitCode, 0, r.stderr)
  t.regex(r.stdout, /nsenter --net=\/run\/netns\/\S+ \S*udhcpc .*-i eth1/)
  t.deepEqual(await v4(ns, 'eth1'), [])
  t.is(lab.count(/DHCPDISCOVER/), 0)
  const ls = await plumb('ls', `netns:${ns}`, '--json')
  t.falsy(ls.json?.guests?.[0]?.interfaces?.[0]?.lease)
})

withLab('macvlan and move-dev take the dhcp spec with --dhcp-client/--dhcp-timeout; detach releases and gives the device back', async (t) => {
  const lab = await makeHostDhcpLab(t, { forwardAccept: true })
  const ns = await makeNetns(t, { name: `${lab.id}g` })
  // two "NICs" on the lab's LAN: veth pairs whose far ends are ports of the lab bridge
  const nic = await makeVethPair(t, `${lab.id}n`, `${lab.id}p`)
  const dev = await makeVethPair(t, `${lab.id}m`, `${lab.id}q`)
  await sh('ip', ['link', 'set', nic.b, 'master', lab.br])
  await sh('ip', ['link', 'set', dev.b, 'master', lab.br])

  const mv = await plumb('macvlan', `netns:${ns}`, nic.a, 'dhcp', '-i', 'eth1', '--dhcp-client', 'udhcpc', '--dhcp-timeout', '8', '--json')
  t.is(mv.exitCode, 0, mv.stderr)
  const l1 = mv.json?.lease as JsonLease
  await assertLeased(t, lab, ns, 'eth1', l1)

  const md = await plumb('move-dev', `netns:${ns}`, dev.a, 'dhcp', '-i', 'eth2', '--dhcp-timeout', '8', '--json')
  t.is(md.exitCode, 0, md.stderr)
  const l2 = md.json?.lease as JsonLease
  await assertLeased(t, lab, ns, 'eth2', l2)
  t.not(l1.address, l2.address)

  // run again: the same lease, no second client (a macvlan with or without -i, the moved device)
  for (const argv of [['macvlan', `netns:${ns}`, nic.a, 'dhcp', '-i', 'eth1'], ['macvlan', `netns:${ns}`, nic.a, 'dhcp'], ['move-dev', `netns:${ns}`, dev.a, 'dhcp', '-i', 'eth2']]) {
    const again = await plumb(...argv, '--json')
    t.is(again.exitCode, 0, `${argv.join(' ')}: ${again.stderr}`)
    t.false(again.json?.changed, argv.join(' '))
    t.is(again.json?.lease?.address, argv[0] === 'macvlan' ? l1.address : l2.address, argv.join(' '))
  }
  t.deepEqual(await linkNames(ns), ['eth1', 'eth2', 'lo'])
  t.is(lab.count(/DHCPDISCOVER/), 2, 'no third client asked')

  const det = await plumb('detach', `netns:${ns}`, '--all')
  t.is(det.exitCode, 0, det.stderr)
  await assertReleased(t, lab, l1)
  await assertReleased(t, lab, l2)
  t.deepEqual(await linkNames(ns), ['lo'])
  // the moved device is back on the host, without the lease's address
  const back = await ipJson(['-4', 'addr', 'show', 'dev', dev.a])
  t.deepEqual(back.flatMap((o) => o.addr_info ?? []), [])
})

withLab('gc: a lease whose supervisor and client died is shown as dead by ls and cleaned by gc', async (t) => {
  await holdGcLock(t)
  const lab = await makeHostDhcpLab(t)
  const ns = await makeNetns(t, { name: `${lab.id}g` })
  // a private state root: gc is host-wide, and another test's gc must not collect this lease first
  const root = mkdtempSync('/run/pt-dhcpstate-')
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  const env = { PLUMB_DHCP_STATE_DIR: root }
  const cli = (...args: string[]) => runCli(args, { env })
  const r = await cli('attach-veth', `netns:${ns}`, lab.br, 'dhcp', '--json')
  t.is(r.exitCode, 0, r.stderr)
  const lease = r.json?.lease as JsonLease
  t.true(lease?.stateDir.startsWith(`${root}/`))
  await assertLeased(t, lab, ns, 'eth1', lease)
  // a live lease is not gc's
  const gc0 = await cli('gc', '--dry-run', '--json')
  t.is(gc0.exitCode, 0, gc0.stderr)
  t.false(JSON.stringify(gc0.json?.plan ?? []).includes('DHCP client'), 'gc leaves a live lease alone')

  // killed behind plumb's back (by their own pids): the state dir stays, dead
  process.kill(lease.pid, 'SIGKILL')
  process.kill(lease.clientPid!, 'SIGKILL')
  await waitFor(() => !alive(lease.pid) && !alive(lease.clientPid), { what: 'the kill' })
  t.true(existsSync(lease.stateDir))
  const ls = await cli('ls', `netns:${ns}`, '--json')
  t.like(ls.json?.guests?.[0]?.interfaces?.[0]?.lease, { address: lease.address, alive: false })

  const dry = await cli('gc', '--dry-run')
  t.is(dry.exitCode, 0, dry.stderr)
  t.true(existsSync(lease.stateDir), 'dry-run leaves it')
  const gc = await cli('gc')
  t.is(gc.exitCode, 0, gc.stderr)
  t.regex(gc.stdout, /cleaned the DHCP state of eth1/)
  t.false(existsSync(lease.stateDir), 'gc removed the state dir')
  // the netns is alive: the address of the lease nobody renews goes with its state
  t.deepEqual(await v4(ns, 'eth1'), [])
  const det = await cli('detach', `netns:${ns}`, '--all')
  t.is(det.exitCode, 0, det.stderr)
  t.deepEqual(await linkNames(ns), ['lo'])
})

withLab('attach-veth with dhcp run again is "already" (with or without -i): one interface, one client; without a running client it is exit 4 naming plumb dhcp', async (t) => {
  // it leaves a dead client's state on purpose, which another test's gc would clean first
  await holdGcLock(t)
  const lab = await makeHostDhcpLab(t)
  const ns = await makeNetns(t, { name: uniq('g') })
  const first = await plumb('attach-veth', `netns:${ns}`, lab.br, 'dhcp', '--dhcp-client', 'udhcpc', '--json')
  t.is(first.exitCode, 0, first.stderr)
  const lease = first.json?.lease as JsonLease
  await assertLeased(t, lab, ns, 'eth1', lease)
  for (const named of [[], ['-i', 'eth1']]) {
    const again = await plumb('attach-veth', `netns:${ns}`, lab.br, 'dhcp', '--dhcp-client', 'udhcpc', ...named, '--json')
    t.is(again.exitCode, 0, again.stderr)
    t.false(again.json?.changed, `${named.join(' ')}: nothing changed`)
    t.is(again.json?.lease?.address, lease.address)
    t.regex(again.stdout, /already attached/)
  }
  t.deepEqual(await linkNames(ns), ['eth1', 'lo'], 'no eth2 beside eth1')
  t.is(lab.count(/DHCPDISCOVER/), 1, 'no second client asked')
  t.deepEqual(pidsMentioning(lease.stateDir).sort(), [lease.pid, lease.clientPid].sort(), 'one supervisor and one client')

  // the client gone behind plumb's back: a re-run says how to get one again, and changes nothing
  process.kill(lease.pid, 'SIGKILL')
  process.kill(lease.clientPid!, 'SIGKILL')
  await waitFor(() => !alive(lease.pid) && !alive(lease.clientPid), { what: 'the kill' })
  const dead = await plumb('attach-veth', `netns:${ns}`, lab.br, 'dhcp')
  t.is(dead.exitCode, 4, dead.stderr)
  t.regex(dead.stderr, new RegExp(`eth1 is already attached, but its DHCP client no longer runs\nhint: restart it: plumb dhcp netns:${escapeRe(ns)} eth1`))
  t.deepEqual(await linkNames(ns), ['eth1', 'lo'])
  const restart = await plumb('dhcp', `netns:${ns}`, 'eth1')
  t.is(restart.exitCode, 0, restart.stderr)
  const det = await plumb('detach', `netns:${ns}`, '--all')
  t.is(det.exitCode, 0, det.stderr)

  // an attach without dhcp, then the same attach asking for it with -i: another configuration
  t.is((await plumb('attach-veth', `netns:${ns}`, lab.br, '-i', 'eth1')).exitCode, 0)
  const without = await plumb('attach-veth', `netns:${ns}`, lab.br, 'dhcp', '-i', 'eth1')
  t.is(without.exitCode, 4, without.stderr)
  t.regex(without.stderr, new RegExp(`eth1 is already attached without a DHCP client\nhint: start one on it: plumb dhcp netns:${escapeRe(ns)} eth1`))
  t.is((await plumb('detach', `netns:${ns}`, '--all')).exitCode, 0)
})

withLab('plumb dhcp (client auto, as doctor reports) twice is "already"; --release on nothing is a no-op', async (t) => {
  const lab = await makeHostDhcpLab(t)
  const ns = await makeNetns(t, { name: uniq('g') })
  t.is((await plumb('attach-veth', `netns:${ns}`, lab.br, '-i', 'eth1')).exitCode, 0)
  const rel0 = await plumb('dhcp', `netns:${ns}`, 'eth1', '--release', '--json')
  t.is(rel0.exitCode, 0, rel0.stderr)
  t.false(rel0.json?.changed)
  const first = await plumb('dhcp', `netns:${ns}`, 'eth1', '--json')
  t.is(first.exitCode, 0, first.stderr)
  t.true(first.json?.changed)
  const lease = first.json?.lease as JsonLease
  await assertLeased(t, lab, ns, 'eth1', lease)
  // --client auto picked the first client doctor reports
  const doc = await plumb('doctor', '--json')
  const clients = doc.json?.checks?.find((c: { name: string }) => c.name === 'DHCP clients')
  t.is(lease.client, String(clients?.detail ?? '').split(' ')[0] ?? '', `doctor: ${clients?.detail}`)
  const again = await plumb('dhcp', `netns:${ns}`, 'eth1', '--json')
  t.is(again.exitCode, 0, again.stderr)
  t.false(again.json?.changed)
  t.is(again.json?.lease?.address, lease.address)
  t.is(lab.count(/DHCPDISCOVER/), 1, 'no second client asked')
  const rel = await plumb('dhcp', `netns:${ns}`, 'eth1', '--release', '--json')
  t.is(rel.exitCode, 0, rel.stderr)
  t.true(rel.json?.changed)
  await assertReleased(t, lab, lease)
  t.deepEqual(await v4(ns, 'eth1'), [])
  const det = await plumb('detach', `netns:${ns}`, '--all')
  t.is(det.exitCode, 0, det.stderr)
})

withLab("a dead lease of a deleted ip netns is not the next netns's, though the kernel gives that one its inode: ls shows none, --release finds none, dhcp leases anew", async (t) => {
  await holdGcLock(t)
  const lab = await makeHostDhcpLab(t)
  // a private state root: another test's gc must not collect the dead lease first
  const root = mkdtempSync('/run/pt-dhcpstate-')
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  const cli = (...args: string[]) => runCli(args, { env: { PLUMB_DHCP_STATE_DIR: root } })
  // The kernel gives a freed netns inode to the next netns made by anyone: a concurrent test may
  // take it first (seen once in CI), so the whole set-up is tried again, up to three times; every
  // try leaves a dead lease, each of a deleted netns.
  let old: JsonLease | undefined
  let b: string | undefined
  for (let attempt = 0; attempt < 3 && !b; attempt++) {
    const a = uniq()
    await sh('ip', ['netns', 'add', a])
    t.teardown(async () => void (await shQuiet('ip', ['netns', 'del', a])))
    const ino = statSync(`/run/netns/${a}`).ino
    const r = await cli('attach-veth', `netns:${a}`, lab.br, 'dhcp', '--json')
    t.is(r.exitCode, 0, r.stderr)
    const lease = r.json?.lease as JsonLease
    old = lease
    // its supervisor and client killed behind plumb's back (by their pids): the state stays, dead; then the netns goes
    process.kill(lease.pid, 'SIGKILL')
    process.kill(lease.clientPid!, 'SIGKILL')
    await waitFor(() => !alive(lease.pid) && !alive(lease.clientPid), { what: 'the kill' })
    await sh('ip', ['netns', 'del', a])
    b = await netnsWithInode(t, ino)
  }
  if (!b || !old) return t.fail('in three tries, no new netns was given a deleted one\'s inode again')
  t.true(existsSync(old.stateDir), "a's dead lease is still there, under the key b has too")

  // b's own eth1, without a client
  const att = await cli('attach-veth', `netns:${b}`, lab.br, '-i', 'eth1')
  t.is(att.exitCode, 0, att.stderr)
  const ls = await cli('ls', `netns:${b}`, '--json')
  t.is(ls.exitCode, 0, ls.stderr)
  t.is(ls.json?.guests?.[0]?.interfaces?.[0]?.lease, undefined, `ls shows no lease on ${b}'s eth1`)
  const rel = await cli('dhcp', `netns:${b}`, 'eth1', '--release')
  t.is(rel.exitCode, 0, rel.stderr)
  t.regex(rel.stdout, /nothing to release/)

  const d = await cli('dhcp', `netns:${b}`, 'eth1', '--json')
  t.is(d.exitCode, 0, d.stderr)
  const lease = d.json?.lease as JsonLease
  await assertLeased(t, lab, b, 'eth1', lease)
  t.like((await cli('ls', `netns:${b}`, '--json')).json?.guests?.[0]?.interfaces?.[0]?.lease, { address: lease.address, pid: lease.pid, alive: true })
  const det = await cli('detach', `netns:${b}`, '--all')
  t.is(det.exitCode, 0, det.stderr)
  await assertReleased(t, lab, lease)
})
