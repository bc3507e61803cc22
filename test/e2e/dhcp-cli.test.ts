// DHCP through plumb's commands on real `docker run --net=none` containers, against a real dnsmasq
// on a host bridge: `attach-veth C BR dhcp`, `plumb dhcp`, `ls`, `--release`, `detach`, no server,
// the guest's death, `--mac seed:`, each client, `--resolv`; the host's resolver never touched.

import test from 'ava'
import type { ExecutionContext } from 'ava'
import { spawn } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { PLUMB_BIN, hasBinary, hasDocker, inspectContainer, ipJson, isRoot, makeContainer, processAlive, runCli, sh, testIf, waitFor } from '../helpers/index.js'
import type { CliResult, TestContainer } from '../helpers/index.js'
import { escapeRe, hostHashes, inRange, makeHostDhcpLab, pidsMentioning } from '../integration/ops-dhcp-fixture.js'
import type { HostDhcpLab } from '../integration/ops-dhcp-fixture.js'
import type { Lease } from '../../lib/dhcp/index.js'

const ready = isRoot && hasDocker() && hasBinary('dnsmasq') && hasBinary('nsenter')
const withDocker = testIf(ready && hasBinary('udhcpc'), 'dhcp-cli: needs root, dockerd with plumb-test:busybox, dnsmasq, nsenter and udhcpc')
// timing tests run before the others of this file, not beside them
const withDockerSerial = ready && hasBinary('udhcpc') ? test.serial : test.serial.skip

const plumb = (...args: string[]): Promise<CliResult> => runCli(args)

const hashesBefore = hostHashes()
test.after.always('host /etc/resolv.conf and /etc/hostname are byte-identical after all DHCP tests', (t) => {
  t.deepEqual(hostHashes(), hashesBefore)
})

/** a lease as `--json` prints it: lib/dhcp's Lease */
type JsonLease = Lease

/** IPv4 addresses on ifname in a container, as the kernel has them. */
async function v4(ct: TestContainer, ifname = 'eth1'): Promise<Array<{ local: string; prefixlen: number; valid_life_time: number }>> {
  const objs = await ipJson(['-4', 'addr', 'show', 'dev', ifname], { path: ct.sandboxKey }).catch(() => [])
  return objs.flatMap((o) => o.addr_info ?? [])
}

async function linksIn(ct: TestContainer): Promise<string[]> {
  return (await ipJson(['link', 'show'], { path: ct.sandboxKey })).map((l) => String(l.ifname)).sort()
}

const alive = processAlive

/** The lease as the kernel and the server see it: address with a finite lifetime, the server's ACK. */
async function assertLeased(t: ExecutionContext, lab: HostDhcpLab, ct: TestContainer, lease: JsonLease | undefined): Promise<void> {
  t.truthy(lease, 'a lease in the result')
  if (!lease) return
  t.true(inRange(lease.address, lab.net), `${lease.address} in ${lab.net}.100-150`)
  t.is(lease.prefix, 24)
  t.is(lease.server, `${lab.net}.1`)
  t.is(lease.leaseTime, 120)
  const a = (await v4(ct)).find((x) => x.local === lease.address)
  t.truthy(a, `the kernel has ${lease.address} on eth1 of ${ct.name}`)
  t.true(a !== undefined && a.valid_life_time > 0 && a.valid_life_time <= 120, `finite valid_lft (${a?.valid_life_time})`)
  t.regex(lab.logText(), new RegExp(`DHCPACK\\(pt-srv\\) ${escapeRe(lease.address)} `))
}

/** A released lease: the server logged the DHCPRELEASE; no address, process or state dir is left. */
async function assertReleased(t: ExecutionContext, lab: HostDhcpLab, ct: TestContainer, lease: JsonLease, opts: { linkGone?: boolean } = {}): Promise<void> {
  await waitFor(() => lab.count(new RegExp(`DHCPRELEASE\\(pt-srv\\) ${escapeRe(lease.address)} `)) > 0, { timeout: 10_000, what: `dnsmasq to log the DHCPRELEASE of ${lease.address}` })
  if (!opts.linkGone) t.deepEqual(await v4(ct), [], 'no IPv4 address left on eth1')
  t.false(alive(lease.pid), `supervisor pid ${lease.pid} is gone`)
  t.false(alive(lease.clientPid), `client pid ${lease.clientPid} is gone`)
  t.deepEqual(pidsMentioning(lease.stateDir), [], 'no process mentions the state dir')
  t.false(existsSync(lease.stateDir), `no state dir ${lease.stateDir}`)
  t.deepEqual(stateDirsOf(ct), [], 'nothing of this container under /run/plumb/dhcp')
}

/** State dirs of a container under /run/plumb/dhcp (they are named after its id). */
function stateDirsOf(ct: TestContainer): string[] {
  const root = '/run/plumb/dhcp'
  return existsSync(root) ? readdirSync(root).filter((n) => n.startsWith(ct.id)) : []
}

withDocker('attach-veth C BR dhcp: two containers get distinct leases in range; ls shows them; dhcp again is "already"; --release and detach --all give them back', async (t) => {
  const lab = await makeHostDhcpLab(t)
  const [a, b] = await Promise.all([makeContainer(t, { name: `${lab.id}a` }), makeContainer(t, { name: `${lab.id}c` })])
  const [ra, rb] = await Promise.all([plumb('attach-veth', a.name, lab.br, 'dhcp', '--dhcp-timeout', '8', '--json'), plumb('attach-veth', b.name, lab.br, 'dhcp', '--dhcp-timeout', '8', '--json')])
  t.is(ra.exitCode, 0, ra.stderr)
  t.is(rb.exitCode, 0, rb.stderr)
  const la = ra.json?.lease as JsonLease
  const lb = rb.json?.lease as JsonLease
  await assertLeased(t, lab, a, la)
  await assertLeased(t, lab, b, lb)
  t.not(la.address, lb.address, 'distinct leases')
  t.deepEqual(ra.json.ips, [{ address: `${la.address}/24`, gateway: `${lab.net}.1`, interface: 1 }])
  t.is(ra.json.interfaces[1]?.name, 'eth1')

  // ls: the lease beside the interface, with its server, lifetime, expiry, client and pid
  const ls = await plumb('ls', a.name, '--json')
  t.is(ls.exitCode, 0, ls.stderr)
  const iface = ls.json?.guests?.[0]?.interfaces?.find((i: { name: string }) => i.name === 'eth1')
  t.truthy(iface?.lease, `ls shows the lease: ${ls.stdout}`)
  t.like(iface?.lease, { address: la.address, server: `${lab.net}.1`, leaseTime: 120, expiresAt: la.expiresAt, client: la.client, pid: la.pid, alive: true })
  t.true(Date.parse(iface.lease.expiresAt) > Date.now(), 'expiry in the future')
  t.deepEqual(iface.addresses, [`${la.address}/24`])
  const human = await plumb('ls', a.name)
  t.regex(human.stdout, new RegExp(`dhcp ${escapeRe(la.address)} from ${escapeRe(lab.net)}\\.1 lease 120s expires \\S+ \\(${la.client} pid ${la.pid}\\)`))

  // idempotent: the running client is kept
  const again = await plumb('dhcp', a.name, 'eth1')
  t.is(again.exitCode, 0, again.stderr)
  t.regex(again.stdout, /already/)
  t.true(alive(la.pid) && alive(la.clientPid), 'the same client still runs')
  t.is((await v4(a)).filter((x) => x.local === la.address).length, 1)

  // --release: DHCPRELEASE, client stopped, address removed, the link stays
  const rel = await plumb('dhcp', a.name, 'eth1', '--release')
  t.is(rel.exitCode, 0, rel.stderr)
  await assertReleased(t, lab, a, la)
  t.deepEqual(await linksIn(a), ['eth1', 'lo'])
  const rel2 = await plumb('dhcp', a.name, 'eth1', '--release')
  t.is(rel2.exitCode, 0, rel2.stderr)
  t.regex(rel2.stdout, /nothing to release/)

  // detach --all: releases too, and removes the link
  const det = await plumb('detach', b.name, '--all')
  t.is(det.exitCode, 0, det.stderr)
  await assertReleased(t, lab, b, lb, { linkGone: true })
  t.deepEqual(await linksIn(b), ['lo'])
  t.deepEqual(hostHashes(), hashesBefore)
})

/**
 * The CLI with -v, each stderr line stamped with when it arrived: how long the DHCP wait, its
 * cleanup and the rollback took is measured from the last step line before the client started,
 * so the machine's load on node's start-up and the guest lookup does not count against plumb.
 */
async function timedCli(args: string[]): Promise<{ exitCode: number; stderr: string; total: number; afterLastStep: number }> {
  const t0 = Date.now()
  const child = spawn(process.execPath, [PLUMB_BIN, ...args, '-v'], { stdio: ['ignore', 'pipe', 'pipe'] })
  const lines: Array<{ at: number; line: string }> = []
  createInterface({ input: child.stderr }).on('line', (line) => lines.push({ at: Date.now(), line }))
  child.stdout.resume()
  const exitCode = await new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? -1)))
  const end = Date.now()
  const steps = lines.filter((l) => l.line.startsWith('+ ') && !l.line.startsWith('+ rollback:'))
  return { exitCode, stderr: lines.map((l) => l.line).join('\n'), total: end - t0, afterLastStep: end - (steps.at(-1)?.at ?? t0) }
}

withDockerSerial('no DHCP server: attach-veth C BR dhcp --dhcp-timeout 2 exits 1 soon after the timeout and rolls the veth back', async (t) => {
  const lab = await makeHostDhcpLab(t, { server: false })
  const ct = await makeContainer(t, { name: `${lab.id}a` })
  const r = await timedCli(['attach-veth', ct.name, lab.br, 'dhcp', '--dhcp-timeout', '2'])
  t.log(`exit after ${r.total} ms, ${r.afterLastStep} ms after the step before the DHCP client`)
  t.is(r.exitCode, 1, r.stderr)
  // Bounded, not hanging: the timeout plus cleanup and rollback (a second of slack for a CI machine
  // running four test files at once on two cores).
  t.true(r.afterLastStep < 4000, `the DHCP wait, its cleanup and the rollback took ${r.afterLastStep} ms`)
  t.true(r.afterLastStep >= 2000, 'it did wait the whole timeout')
  t.regex(r.stderr, /^plumb: no DHCP offer on eth1 within 2 s$/m)
  t.regex(r.stderr, /^hint: .*DHCP server/m)
  t.deepEqual(await linksIn(ct), ['lo'], 'the guest has only lo')
  t.deepEqual(await lab.guestPorts(), [], 'no host end left on the bridge')
  t.deepEqual(stateDirsOf(ct), [], 'no DHCP state dir')
  t.deepEqual(pidsMentioning(`/run/plumb/dhcp/${ct.id}`), [], 'no supervisor or client process (the shim names the container id too)')
  t.deepEqual(hostHashes(), hashesBefore)
})

withDocker('the container is removed: its DHCP client exits by itself within a few seconds', async (t) => {
  const lab = await makeHostDhcpLab(t)
  const ct = await makeContainer(t, { name: `${lab.id}a` })
  const r = await plumb('attach-veth', ct.name, lab.br, 'dhcp', '--json')
  t.is(r.exitCode, 0, r.stderr)
  const lease = r.json?.lease as JsonLease
  await assertLeased(t, lab, ct, lease)
  t.true(alive(lease.pid) && alive(lease.clientPid))

  await sh('docker', ['rm', '-f', ct.name])
  const t0 = Date.now()
  await waitFor(() => !alive(lease.pid) && !alive(lease.clientPid) && !existsSync(lease.stateDir), { timeout: 5000, what: 'supervisor and client to exit after docker rm' })
  t.log(`client gone ${Date.now() - t0} ms after docker rm`)
  t.deepEqual(pidsMentioning(lease.stateDir), [])
  // gc finds nothing of it left to clean
  const ls = await plumb('ls', '--json')
  t.is(ls.exitCode, 0, ls.stderr)
  t.false(JSON.stringify(ls.json).includes(ct.id), 'ls knows nothing of the removed container')
})

withDocker('--mac seed:STRING: the same lease after detach + re-attach, and after a container restart', async (t) => {
  const lab = await makeHostDhcpLab(t)
  const ct = await makeContainer(t, { name: `${lab.id}a` })
  const seed = `seed:${lab.id}`
  const first = await plumb('attach-veth', ct.name, lab.br, 'dhcp', '--mac', seed, '--json')
  t.is(first.exitCode, 0, first.stderr)
  const l1 = first.json?.lease as JsonLease
  await assertLeased(t, lab, ct, l1)

  const det = await plumb('detach', ct.name, 'eth1')
  t.is(det.exitCode, 0, det.stderr)
  await assertReleased(t, lab, ct, l1, { linkGone: true })
  const second = await plumb('attach-veth', ct.name, lab.br, 'dhcp', '--mac', seed, '--json')
  t.is(second.exitCode, 0, second.stderr)
  const l2 = second.json?.lease as JsonLease
  t.is(l2?.address, l1.address, 'same address after detach and re-attach')

  // a restart gives the container a new netns: the old client goes with the old one
  await sh('docker', ['restart', '-t', '0', ct.name])
  await waitFor(() => !alive(l2.pid) && !alive(l2.clientPid) && !existsSync(l2.stateDir), { timeout: 5000, what: 'the old client to exit after the restart' })
  const third = await plumb('attach-veth', ct.name, lab.br, 'dhcp', '--mac', seed, '--json')
  t.is(third.exitCode, 0, third.stderr)
  const l3 = third.json?.lease as JsonLease
  t.is(l3?.address, l1.address, 'same address after a restart')
  const restarted = await inspectContainer(ct.name)
  await assertLeased(t, lab, restarted, l3)
  const det2 = await plumb('detach', ct.name, '--all')
  t.is(det2.exitCode, 0, det2.stderr)
  await assertReleased(t, lab, restarted, l3, { linkGone: true })
})

for (const client of ['udhcpc', 'dhclient', 'dhcpcd'] as const) {
  const pkg = { udhcpc: 'udhcpc', dhclient: 'isc-dhcp-client', dhcpcd: 'dhcpcd-base' }[client]
  if (hasBinary(client)) {
    withDocker(`plumb dhcp C eth1 --client ${client} --hostname: a lease from ${client}, released by detach`, async (t) => {
      const lab = await makeHostDhcpLab(t)
      const ct = await makeContainer(t, { name: `${lab.id}a` })
      const att = await plumb('attach-veth', ct.name, lab.br)
      t.is(att.exitCode, 0, att.stderr)
      const r = await plumb('dhcp', ct.name, 'eth1', '--client', client, '--hostname', `${lab.id}h`, '--timeout', '8', '--json')
      t.is(r.exitCode, 0, r.stderr)
      const lease = r.json?.lease as JsonLease
      t.is(lease?.client, client)
      await assertLeased(t, lab, ct, lease)
      t.regex(lab.logText(), new RegExp(`${escapeRe(lab.id)}h`), 'the server saw the hostname')
      const det = await plumb('detach', ct.name, 'eth1')
      t.is(det.exitCode, 0, det.stderr)
      await assertReleased(t, lab, ct, lease, { linkGone: true })
      t.deepEqual(hostHashes(), hashesBefore)
    })
  } else {
    withDocker(`--client ${client} where it is not installed: exit 5 naming the Debian package ${pkg}, nothing left`, async (t) => {
      const lab = await makeHostDhcpLab(t, { server: false })
      const ct = await makeContainer(t, { name: `${lab.id}a` })
      const att = await plumb('attach-veth', ct.name, lab.br)
      t.is(att.exitCode, 0, att.stderr)
      const r = await plumb('dhcp', ct.name, 'eth1', '--client', client)
      t.is(r.exitCode, 5, r.stderr)
      t.true(r.stderr.includes(pkg), r.stderr)
      t.deepEqual(stateDirsOf(ct), [])
      // the dhcp spec of a link command: the same exit, and the new veth rolled back
      const r2 = await plumb('attach-veth', ct.name, lab.br, 'dhcp', '-i', 'eth2', '--dhcp-client', client)
      t.is(r2.exitCode, 5, r2.stderr)
      t.true(r2.stderr.includes(pkg), r2.stderr)
      t.deepEqual(await linksIn(ct), ['eth1', 'lo'])
    })
  }
}

withDocker("--resolv writes the offered DNS server into the container's /etc/resolv.conf, never the host's", async (t) => {
  const lab = await makeHostDhcpLab(t)
  const ct = await makeContainer(t, { name: `${lab.id}a` })
  const r = await plumb('attach-veth', ct.name, lab.br, 'dhcp', '--resolv', '--hostname', `${lab.id}h`, '--json')
  t.is(r.exitCode, 0, r.stderr)
  const lease = r.json?.lease as JsonLease
  await assertLeased(t, lab, ct, lease)
  t.deepEqual(lease.dns, [`${lab.net}.1`])
  const resolv = await sh('docker', ['exec', ct.name, 'cat', '/etc/resolv.conf'])
  t.regex(resolv, new RegExp(`^nameserver ${escapeRe(lab.net)}\\.1$`, 'm'))
  t.regex(lab.logText(), new RegExp(`${escapeRe(lab.id)}h`), 'the server saw the hostname')
  t.deepEqual(hostHashes(), hashesBefore, 'host files unchanged')
  const det = await plumb('detach', ct.name, '--all')
  t.is(det.exitCode, 0, det.stderr)
  await assertReleased(t, lab, ct, lease, { linkGone: true })
  t.deepEqual(hostHashes(), hashesBefore)
})
