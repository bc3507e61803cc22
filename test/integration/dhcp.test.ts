// lib/dhcp against a real dnsmasq on a throwaway bridge: leases, release, timeouts, the guest's
// death, --resolv into a real container, and the host's own files left untouched. Root only.

import type { ExecutionContext } from 'ava'
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { PlumbError } from '../../lib/errors.js'
import { netnsAt } from '../../lib/guest/nsfile.js'
import { listLeases, startDhcp, stopDhcp, statePaths } from '../../lib/dhcp/index.js'
import type { Lease } from '../../lib/dhcp/index.js'
import { hasBinary, hasDocker, holdGcLock, isRoot, makeContainer, processAlive, sh, shQuiet, testIf, waitFor } from '../helpers/index.js'
import { defaultRoute, hostHashes, makeDhcpLab, pidsMentioning, v4Addrs } from './dhcp-lab.js'

const ready = isRoot && hasBinary('dnsmasq') && hasBinary('nsenter')
const withUdhcpc = testIf(ready && hasBinary('udhcpc'), 'dhcp integration: needs root, dnsmasq, nsenter and udhcpc')
const withDhclient = testIf(ready && hasBinary('dhclient'), 'dhcp integration: needs root, dnsmasq, nsenter and dhclient (isc-dhcp-client)')
const withDocker = testIf(ready && hasBinary('udhcpc') && hasDocker(), 'dhcp --resolv: needs root, dnsmasq, udhcpc and dockerd with plumb-test:busybox')

const key = () => `pt${randomBytes(4).toString('hex')}`

/** Stop the client in teardown too, so a failed assertion never leaves one running. */
function stopLater(t: ExecutionContext, stateKey: string, ifname: string) {
  t.teardown(async () => {
    await stopDhcp({ stateKey, ifname, release: false })
  })
}

function inRange(t: ExecutionContext, lease: Lease, net: string) {
  const last = Number(lease.address.split('.')[3])
  t.true(lease.address.startsWith(`${net}.`) && last >= 100 && last <= 150, `lease ${lease.address} in ${net}.100-150`)
}

for (const [client, maybe] of [['udhcpc', withUdhcpc], ['dhclient', withDhclient]] as const) {
  maybe(`${client}: a lease with a finite lifetime and the default route, host files untouched, then a release that leaves nothing`, async (t) => {
    const before = hostHashes()
    const lab = await makeDhcpLab(t)
    const c = await lab.addClient(t)
    const stateKey = key()
    stopLater(t, stateKey, c.ifname)

    const lease = await startDhcp({ nsPath: c.nsPath, guestLabel: c.ns, stateKey, ifname: c.ifname, client, hostname: 'pt-guest' })
    inRange(t, lease, lab.net)
    t.is(lease.client, client)
    t.is(lease.router, `${lab.net}.1`)
    t.deepEqual(lease.dns, [`${lab.net}.1`])
    t.is(lease.server, `${lab.net}.1`)
    t.is(lease.leaseTime, 120)

    // read back from the kernel: the address with the lease's lifetime, and the default route
    const addrs = await v4Addrs(c.nsPath, c.ifname)
    const a = addrs.find((x) => x.local === lease.address)
    t.truthy(a, `ip addr shows ${lease.address}: ${JSON.stringify(addrs)}`)
    t.is(a?.prefixlen, 24)
    t.true(a!.valid_life_time > 0 && a!.valid_life_time <= 120, `finite valid_lft (${a?.valid_life_time})`)
    t.is(await defaultRoute(c.nsPath), `${lab.net}.1`)
    t.regex(lab.logText(), new RegExp(`DHCPACK\\(pt-br\\) ${lease.address.replace(/\./g, '\\.')} `))
    t.regex(lab.logText(), /pt-guest/, 'the server saw the hostname option')

    // supervised and recorded
    const dir = statePaths(stateKey, c.ifname).dir
    const listed = (await listLeases()).find((l) => l.stateKey === stateKey)
    t.is(listed?.address, lease.address)
    t.true(listed?.alive)
    t.is(listed?.pid, lease.pid)
    t.true(pidsMentioning(dir).includes(lease.pid))
    t.truthy(lease.clientPid && pidsMentioning(dir).includes(lease.clientPid))

    // a killed run's recovery names the netns it worked on: a client started in another is left alone
    const otherNs = { ino: statSync('/proc/self/ns/net').ino }
    const cookie = netnsAt(c.nsPath)?.cookie
    t.not(cookie, undefined)
    // ... or one given its inode later: the same inode, another cookie
    const later = { ino: statSync(c.nsPath).ino, cookie: cookie! + 1 }
    t.deepEqual(await stopDhcp({ stateKey, ifname: c.ifname, release: true, onlyInNetns: [otherNs, later] }), { stopped: false, released: false, steps: [] })
    t.true(listed !== undefined && (await listLeases()).some((l) => l.stateKey === stateKey && l.alive), 'still running')
    const stop = await stopDhcp({ stateKey, ifname: c.ifname, release: true, onlyInNetns: [otherNs, { ino: statSync(c.nsPath).ino, cookie: cookie! }] })
    t.true(stop.stopped)
    t.true(stop.released)
    await waitFor(() => lab.count(new RegExp(`DHCPRELEASE\\(pt-br\\) ${lease.address.replace(/\./g, '\\.')} `)) > 0, { timeout: 10_000, what: 'dnsmasq to log the DHCPRELEASE' })
    t.deepEqual(pidsMentioning(dir), [], 'no supervisor or client left')
    t.false(existsSync(dir), 'state dir removed')
    t.deepEqual(await v4Addrs(c.nsPath, c.ifname), [], 'address gone')
    t.is(await defaultRoute(c.nsPath), undefined, 'default route gone')
    t.deepEqual(hostHashes(), before, 'host /etc/resolv.conf and /etc/hostname unchanged')

    // idempotent
    t.deepEqual(await stopDhcp({ stateKey, ifname: c.ifname, release: true }), { stopped: false, released: false, steps: [] })
  })

  maybe(`${client}: when the guest's netns is deleted, supervisor and client exit by themselves`, async (t) => {
    const lab = await makeDhcpLab(t)
    const c = await lab.addClient(t)
    const stateKey = key()
    stopLater(t, stateKey, c.ifname)
    const lease = await startDhcp({ nsPath: c.nsPath, guestLabel: c.ns, stateKey, ifname: c.ifname, client })
    const dir = statePaths(stateKey, c.ifname).dir
    t.is(pidsMentioning(dir).length >= 2, true)

    await sh('ip', ['netns', 'del', c.ns])
    const t0 = Date.now()
    await waitFor(() => pidsMentioning(dir).length === 0 && !existsSync(dir), { timeout: 5000, what: 'supervisor and client to exit' })
    t.log(`gone ${Date.now() - t0} ms after ip netns del (lease ${lease.address})`)
    t.false(existsSync(dir))
  })
}

withUdhcpc('no DHCP server: rejects within the timeout + 1 s with exit code 1, leaving no process or state dir', async (t) => {
  const before = hostHashes()
  const lab = await makeDhcpLab(t, { server: false })
  const c = await lab.addClient(t)
  const stateKey = key()
  stopLater(t, stateKey, c.ifname)
  const t0 = Date.now()
  const err = await t.throwsAsync(startDhcp({ nsPath: c.nsPath, guestLabel: c.ns, stateKey, ifname: c.ifname, client: 'udhcpc', timeoutSec: 2 }), { instanceOf: PlumbError })
  const took = Date.now() - t0
  t.true(took < 4000, `rejected after ${took} ms`)
  t.is(err?.message, 'no DHCP offer on eth1 within 2 s')
  t.is((err as PlumbError).exitCode, 1)
  t.regex((err as PlumbError).hint ?? '', /DHCP server/)
  const dir = statePaths(stateKey, c.ifname).dir
  t.false(existsSync(dir))
  t.deepEqual(pidsMentioning(dir), [])
  t.deepEqual(await v4Addrs(c.nsPath, c.ifname), [])
  t.deepEqual(hostHashes(), before)
})

withDhclient('dhclient: no DHCP server also rejects in time and cleans up', async (t) => {
  const lab = await makeDhcpLab(t, { server: false })
  const c = await lab.addClient(t)
  const stateKey = key()
  stopLater(t, stateKey, c.ifname)
  const t0 = Date.now()
  await t.throwsAsync(startDhcp({ nsPath: c.nsPath, guestLabel: c.ns, stateKey, ifname: c.ifname, client: 'dhclient', timeoutSec: 2 }), { message: 'no DHCP offer on eth1 within 2 s' })
  t.true(Date.now() - t0 < 4000)
  const dir = statePaths(stateKey, c.ifname).dir
  t.false(existsSync(dir))
  t.deepEqual(pidsMentioning(dir), [])
})

withUdhcpc("a dead client's netns file unmounted since (a restarted container's old SandboxKey stays as an empty file): the next start takes it for a leftover, without an error", async (t) => {
  const lab = await makeDhcpLab(t)
  const c = await lab.addClient(t)
  const stateKey = key()
  stopLater(t, stateKey, c.ifname)
  // the netns bind-mounted on a path of its own, as Docker mounts a container's at its SandboxKey
  const sandboxKey = `/run/${stateKey}-sandbox`
  writeFileSync(sandboxKey, '')
  t.teardown(async () => {
    await shQuiet('umount', [sandboxKey])
    rmSync(sandboxKey, { force: true })
  })
  await sh('mount', ['--bind', c.nsPath, sandboxKey])
  const first = await startDhcp({ nsPath: sandboxKey, guestLabel: c.ns, stateKey, ifname: c.ifname, client: 'udhcpc' })
  // supervisor and client killed by their pids, then the mount goes: the path is a plain file now
  process.kill(first.pid, 'SIGKILL')
  process.kill(first.clientPid!, 'SIGKILL')
  await waitFor(() => !processAlive(first.pid) && !processAlive(first.clientPid), { what: 'the kill' })
  await sh('umount', [sandboxKey])
  const lease = await startDhcp({ nsPath: c.nsPath, guestLabel: c.ns, stateKey, ifname: c.ifname, client: 'udhcpc' })
  inRange(t, lease, lab.net)
  t.true(processAlive(lease.pid) && processAlive(lease.clientPid), 'a new supervisor and client run')
  t.not(lease.pid, first.pid)
})

withUdhcpc('two interfaces of one guest and two guests get separate clients and state dirs', async (t) => {
  const lab = await makeDhcpLab(t)
  const c1 = await lab.addClient(t)
  const c2 = await lab.addClient(t)
  const k1 = key()
  const k2 = key()
  stopLater(t, k1, 'eth1')
  stopLater(t, k2, 'eth1')
  const [l1, l2] = await Promise.all([
    startDhcp({ nsPath: c1.nsPath, guestLabel: c1.ns, stateKey: k1, ifname: 'eth1', client: 'udhcpc' }),
    startDhcp({ nsPath: c2.nsPath, guestLabel: c2.ns, stateKey: k2, ifname: 'eth1', client: 'udhcpc' }),
  ])
  t.not(l1.address, l2.address)
  t.not(l1.stateDir, l2.stateDir)
  // a second start for the same guest+interface is a conflict, not a second client
  const err = await t.throwsAsync(startDhcp({ nsPath: c1.nsPath, guestLabel: c1.ns, stateKey: k1, ifname: 'eth1', client: 'udhcpc' }), { instanceOf: PlumbError })
  t.is((err as PlumbError).code, 'CONFLICT')
  t.is((await listLeases()).filter((l) => l.stateKey === k1 || l.stateKey === k2).length, 2)
})

withUdhcpc("a supervisor whose client exits removes its state dir only while the dir is its own (not a newer client's made under the same name)", async (t) => {
  // a dead client's state is gc's to clean: no gc of another test may run meanwhile
  await holdGcLock(t)
  const lab = await makeDhcpLab(t)
  const c = await lab.addClient(t)
  const stateKey = key()
  stopLater(t, stateKey, c.ifname)
  const lease = await startDhcp({ nsPath: c.nsPath, guestLabel: c.ns, stateKey, ifname: c.ifname, client: 'udhcpc' })
  const p = statePaths(stateKey, c.ifname)
  t.is(readFileSync(p.supervisorPid, 'utf8').trim(), String(lease.pid), 'the supervisor pid on record')
  // the dir as a newer start for the same lease would have it: another supervisor's pid
  writeFileSync(p.supervisorPid, '999999999\n')
  process.kill(lease.clientPid!, 'SIGKILL')
  await waitFor(() => !processAlive(lease.pid), { timeout: 5000, what: 'the supervisor to see its client gone and exit' })
  t.true(existsSync(p.dir), 'the dir that is not its own is left alone')
  // and its own dir it does remove
  rmSync(p.dir, { recursive: true, force: true })
  const again = await startDhcp({ nsPath: c.nsPath, guestLabel: c.ns, stateKey, ifname: c.ifname, client: 'udhcpc' })
  process.kill(again.clientPid!, 'SIGKILL')
  await waitFor(() => !processAlive(again.pid), { timeout: 5000, what: 'the supervisor to exit' })
  t.false(existsSync(p.dir), 'its own dir goes with it')
})

withDocker('--resolv writes the offered DNS server into the container\'s /etc/resolv.conf, never the host\'s; removing the container stops the client', async (t) => {
  const before = hostHashes()
  const lab = await makeDhcpLab(t)
  const ct = await makeContainer(t)
  await lab.plugPid(ct.pid)
  const stateKey = ct.id
  stopLater(t, stateKey, 'eth1')
  const lease = await startDhcp({
    nsPath: ct.sandboxKey,
    guestLabel: ct.name,
    stateKey,
    ifname: 'eth1',
    client: 'udhcpc',
    resolv: { mntNsPath: `/proc/${ct.pid}/ns/mnt` },
    watch: { pid: ct.pid, path: ct.sandboxKey },
  })
  inRange(t, lease, lab.net)
  const resolv = await sh('docker', ['exec', ct.name, 'cat', '/etc/resolv.conf'])
  t.regex(resolv, new RegExp(`^nameserver ${lab.net.replace(/\./g, '\\.')}\\.1$`, 'm'))
  t.deepEqual(hostHashes(), before, 'host /etc/resolv.conf and /etc/hostname unchanged')
  const inGuest = await sh('docker', ['exec', ct.name, 'ip', '-4', 'addr', 'show', 'eth1'])
  t.true(inGuest.includes(`${lease.address}/24`), inGuest)

  const dir = statePaths(stateKey, 'eth1').dir
  await shQuiet('docker', ['rm', '-f', ct.name])
  await waitFor(() => pidsMentioning(dir).length === 0 && !existsSync(dir), { timeout: 6000, what: 'supervisor and client to exit after docker rm' })
  t.deepEqual(pidsMentioning(dir), [], 'supervisor and client gone with the container')
  t.false(existsSync(dir), 'and their state dir')
})

withUdhcpc('--resolv into a guest that shares the host\'s mount namespace is refused before anything starts', async (t) => {
  const lab = await makeDhcpLab(t)
  const c = await lab.addClient(t)
  const stateKey = key()
  stopLater(t, stateKey, c.ifname)
  const err = await t.throwsAsync(startDhcp({ nsPath: c.nsPath, guestLabel: c.ns, stateKey, ifname: c.ifname, client: 'udhcpc', resolv: { mntNsPath: `/proc/${process.pid}/ns/mnt` } }), { instanceOf: PlumbError })
  t.is((err as PlumbError).code, 'CONFLICT')
  t.false(existsSync(statePaths(stateKey, c.ifname).dir))
})
