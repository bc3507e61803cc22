// lib/dhcp without root: state-dir keys, the argv built for each client, plumb's hook script run
// with each client's environment against a fake `ip`/`nsenter`, and the supervisor's watch loop.

import test from 'ava'
import { spawn, spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { configure } from '../../lib/config.js'
import { PlumbError } from '../../lib/errors.js'
import { SUPERVISOR_SCRIPT, clientArgv, dhclientConf, dhcpArgv, hookScript, listLeases, resolveClient, startDhcp, stateDirName, statePaths, undoLines } from '../../lib/dhcp/index.js'
import { which } from '../../lib/dhcp/clients.js'
import { childrenOf, cmdlineOf, processAlive } from '../helpers/process.js'
import { testIf, waitFor } from '../helpers/env.js'

const work = mkdtempSync(join(tmpdir(), 'pt-dhcp-unit-'))
const stateDir = join(work, 'state')
configure({ dhcpStateDir: stateDir }) // unit tests run without root: not /run/plumb
test.after.always(() => rmSync(work, { recursive: true, force: true }))

let seq = 0
const freshDir = (name: string) => {
  const d = join(work, `${name}-${++seq}`)
  mkdirSync(d, { recursive: true })
  return d
}

test('state dir names: two guests or two interfaces never collide, and the key is escaped', (t) => {
  t.not(stateDirName('a-b', 'c'), stateDirName('a', 'b-c'))
  t.not(stateDirName('ino:1', 'eth1'), stateDirName('ino:1', 'eth2'))
  t.not(stateDirName('ino:1', 'eth1'), stateDirName('ino:2', 'eth1'))
  t.is(stateDirName('ino:4026532', 'eth1'), 'ino:4026532-eth1')
  t.is(stateDirName('../x', 'eth1'), '..%2fx-eth1')
  t.true(statePaths('ino:1', 'eth1').dir.startsWith(`${stateDir}/`))
})

test('udhcpc argv: foreground, plumb\'s hook in the state dir (never default.script), option 121, hostname', (t) => {
  const p = statePaths('ino:9', 'eth1')
  const argv = clientArgv({ kind: 'udhcpc', argv0: ['/usr/sbin/udhcpc'] }, { nsPath: '/run/netns/x', stateKey: 'ino:9', ifname: 'eth1', hostname: 'web' })
  t.deepEqual(argv.slice(0, 6), ['/usr/sbin/udhcpc', '-f', '-i', 'eth1', '-s', p.hook])
  t.true(argv.includes('staticroutes'))
  t.is(argv[argv.indexOf('-x') + 1], 'hostname:web')
  t.false(argv.join(' ').includes('default.script'))
})

test('dhclient argv: private conf, lease and pid files in the state dir, plumb\'s hook', (t) => {
  const p = statePaths('ino:9', 'eth1')
  const argv = clientArgv({ kind: 'dhclient', argv0: ['/usr/sbin/dhclient'] }, { nsPath: '/run/netns/x', stateKey: 'ino:9', ifname: 'eth1' })
  const opt = (o: string) => argv[argv.indexOf(o) + 1]
  t.is(opt('-cf'), p.dhclientConf)
  t.is(opt('-lf'), p.leaseFile)
  t.is(opt('-pf'), p.clientPidFile)
  t.is(opt('-sf'), p.hook)
  t.true(argv.includes('-d'))
  t.is(argv.at(-1), 'eth1')
  t.false(argv.join(' ').includes('dhclient-script'))
  t.regex(dhclientConf('web'), /send host-name "web";/)
  t.regex(dhclientConf(), /rfc3442-classless-static-routes code 121/)
})

test('dhcpArgv renders the nsenter command for --dry-run, synchronously', (t) => {
  const argv = dhcpArgv({ nsPath: '/proc/42/ns/net', stateKey: 'abc', ifname: 'eth1' })
  t.regex(argv[0]!, /nsenter$/)
  t.is(argv[1], '--net=/proc/42/ns/net')
  t.true(argv.includes('-i') || argv.includes('eth1'))
})

test('an unknown client name is a usage error (exit 2) from the library functions too, not an argv with holes', async (t) => {
  for (const call of [
    () => dhcpArgv({ nsPath: '/proc/42/ns/net', stateKey: 'abc', ifname: 'eth1', client: 'pump' as never }),
    () => clientArgv({ kind: 'pump' as never, argv0: ['pump'] }, { nsPath: '/proc/42/ns/net', stateKey: 'abc', ifname: 'eth1' }),
  ]) {
    const err = t.throws(call, { instanceOf: PlumbError })
    t.is((err as PlumbError).exitCode, 2)
    t.regex((err as PlumbError).message, /unknown DHCP client "pump"/)
  }
  const started = await startDhcp({ nsPath: '/proc/self/ns/net', guestLabel: 'pid:1', stateKey: 'pt-unknown-client', ifname: 'eth1', client: 'pump' as never }).catch((e: unknown) => e)
  t.true(started instanceof PlumbError && started.exitCode === 2, String(started))
})

testIf(!which('dhcpcd'), 'a missing DHCP client: dhcpcd is installed here, so its absence cannot be checked')('a requested client that is missing is UNSUPPORTED (exit 5) naming the Debian package', (t) => {
  const err = t.throws(() => resolveClient('dhcpcd'), { instanceOf: PlumbError })
  t.is((err as PlumbError).exitCode, 5)
  t.regex((err as PlumbError).hint ?? '', /dhcpcd-base/)
})

// ---- the hook, run as each client runs it, against fake `ip` and `nsenter` --------------------

function fakeBin() {
  const bin = freshDir('bin')
  const calls = join(bin, 'calls')
  writeFileSync(join(bin, 'ip'), `#!/bin/sh\necho "ip $*" >>${JSON.stringify(calls)}\n`)
  writeFileSync(join(bin, 'nsenter'), `#!/bin/sh\necho "nsenter $*" >>${JSON.stringify(calls)}\ncat >${JSON.stringify(join(bin, 'resolv'))}\n`)
  chmodSync(join(bin, 'ip'), 0o755)
  chmodSync(join(bin, 'nsenter'), 0o755)
  return { bin, calls: () => (existsSync(calls) ? readFileSync(calls, 'utf8').trim().split('\n') : []), resolv: () => readFileSync(join(bin, 'resolv'), 'utf8'), reset: () => rmSync(calls, { force: true }) }
}

function runHook(hook: string, bin: string, env: Record<string, string>, args: string[] = []) {
  return spawnSync('/bin/sh', [hook, ...args], { env: { PATH: `${bin}:/usr/bin:/bin`, ...env }, encoding: 'utf8' })
}

test('hook (udhcpc): bound applies address with the lease lifetime and default route, renew drops what changed, deconfig removes it all', (t) => {
  const fake = fakeBin()
  const d = freshDir('state')
  const mnt = join(d, 'fake-mnt')
  writeFileSync(mnt, '')
  const hook = join(d, 'hook')
  writeFileSync(hook, hookScript({ stateDir: d, ifname: 'eth1', client: 'udhcpc', mntNsPath: mnt, mntNsIno: statSync(mnt).ino }))

  const env = { interface: 'eth1', ip: '198.19.5.120', mask: '24', subnet: '255.255.255.0', router: '198.19.5.1 198.19.5.2', dns: '198.19.5.1 198.19.5.3', serverid: '198.19.5.1', lease: '120', domain: 'lab.test' }
  t.is(runHook(hook, fake.bin, env, ['bound']).status, 0)
  t.deepEqual(fake.calls().filter((c) => c.startsWith('ip ')), [
    'ip link set dev eth1 up',
    'ip addr replace 198.19.5.120/24 dev eth1 valid_lft 120 preferred_lft 120',
    'ip route replace default via 198.19.5.1 dev eth1 proto dhcp',
  ])
  const lease = JSON.parse(readFileSync(join(d, 'lease.json'), 'utf8'))
  t.like(lease, { event: 'bound', address: '198.19.5.120', prefix: 24, router: '198.19.5.1', dns: ['198.19.5.1', '198.19.5.3'], server: '198.19.5.1', leaseTime: 120 })
  t.true(Math.abs(lease.obtainedAt - Date.now() / 1000) < 5)
  // resolv goes through the guest's mount namespace, never a host path
  t.true(fake.calls().some((c) => c === `nsenter --mount=${mnt} sh -c cat > /etc/resolv.conf`))
  t.regex(fake.resolv(), /^search lab\.test$/m)
  t.regex(fake.resolv(), /^nameserver 198\.19\.5\.3$/m)

  // a renewal with classless routes: option 121 wins over the router option (RFC 3442), the old default goes
  fake.reset()
  t.is(runHook(hook, fake.bin, { ...env, staticroutes: '198.18.7.0/24 198.19.5.9 0.0.0.0/0 198.19.5.1' }, ['renew']).status, 0)
  const calls = fake.calls().filter((c) => c.startsWith('ip '))
  t.true(calls.includes('ip route del default via 198.19.5.1 dev eth1'))
  t.true(calls.includes('ip route replace 198.18.7.0/24 via 198.19.5.9 dev eth1 proto dhcp'))
  t.true(calls.includes('ip route replace 0.0.0.0/0 via 198.19.5.1 dev eth1 proto dhcp'))
  t.false(calls.some((c) => c.startsWith('ip addr del')), 'same address: kept, only its lifetime replaced')
  t.deepEqual(undoLines(readFileSync(join(d, 'applied'), 'utf8'), 'eth1'), [
    'route del 198.18.7.0/24 via 198.19.5.9 dev eth1',
    'route del 0.0.0.0/0 via 198.19.5.1 dev eth1',
    'addr del 198.19.5.120/24 dev eth1',
  ])

  fake.reset()
  t.is(runHook(hook, fake.bin, { interface: 'eth1' }, ['deconfig']).status, 0)
  t.deepEqual(fake.calls(), ['ip route del 198.18.7.0/24 via 198.19.5.9 dev eth1', 'ip route del 0.0.0.0/0 via 198.19.5.1 dev eth1', 'ip addr del 198.19.5.120/24 dev eth1'])
  t.false(existsSync(join(d, 'lease.json')))
  t.false(existsSync(join(d, 'applied')))
})

test('hook (udhcpc): a garbage address is ignored, and resolv is skipped when the mount ns inode changed', (t) => {
  const fake = fakeBin()
  const d = freshDir('state')
  const hook = join(d, 'hook')
  writeFileSync(hook, hookScript({ stateDir: d, ifname: 'eth1', client: 'udhcpc', mntNsPath: '/proc/self/ns/mnt', mntNsIno: 1 }))
  t.is(runHook(hook, fake.bin, { ip: '1.2.3.4;reboot', mask: '24', lease: '60' }, ['bound']).status, 0)
  t.deepEqual(fake.calls(), [])
  t.false(existsSync(join(d, 'lease.json')))
  t.is(runHook(hook, fake.bin, { ip: '198.19.5.120', mask: '24', lease: '60', dns: '198.19.5.1' }, ['bound']).status, 0)
  t.false(fake.calls().some((c) => c.startsWith('nsenter')), 'no resolv write into a mount ns that is not the guest\'s any more')
  t.regex(readFileSync(join(d, 'log'), 'utf8'), /no longer the guest's mount namespace/)
})

test('hook (dhclient): PREINIT brings the link up, BOUND applies RFC 3442 routes and the mask as a prefix, TIMEOUT refuses old leases, RELEASE undoes', (t) => {
  const fake = fakeBin()
  const d = freshDir('state')
  const hook = join(d, 'hook')
  writeFileSync(hook, hookScript({ stateDir: d, ifname: 'eth1', client: 'dhclient' }))
  t.is(runHook(hook, fake.bin, { reason: 'PREINIT', interface: 'eth1' }).status, 0)
  t.deepEqual(fake.calls(), ['ip link set dev eth1 up'])
  fake.reset()
  const env = {
    reason: 'BOUND',
    interface: 'eth1',
    new_ip_address: '198.19.6.101',
    new_subnet_mask: '255.255.254.0',
    new_routers: '198.19.6.1',
    new_domain_name_servers: '198.19.6.1',
    new_dhcp_server_identifier: '198.19.6.1',
    new_dhcp_lease_time: '4294967295',
    new_rfc3442_classless_static_routes: '24 198 18 9 198 19 6 2 0 198 19 6 1',
  }
  t.is(runHook(hook, fake.bin, env).status, 0)
  t.deepEqual(fake.calls(), [
    'ip link set dev eth1 up',
    'ip addr replace 198.19.6.101/23 dev eth1 valid_lft forever preferred_lft forever',
    'ip route replace 198.18.9.0/24 via 198.19.6.2 dev eth1 proto dhcp',
    'ip route replace 0.0.0.0/0 via 198.19.6.1 dev eth1 proto dhcp',
  ])
  t.is(runHook(hook, fake.bin, { reason: 'TIMEOUT', interface: 'eth1' }).status, 1)
  fake.reset()
  t.is(runHook(hook, fake.bin, { reason: 'RELEASE', interface: 'eth1' }).status, 0)
  t.deepEqual(fake.calls(), ['ip route del 198.18.9.0/24 via 198.19.6.2 dev eth1', 'ip route del 0.0.0.0/0 via 198.19.6.1 dev eth1', 'ip addr del 198.19.6.101/23 dev eth1'])
  t.regex(readFileSync(join(d, 'events'), 'utf8'), /PREINIT[\s\S]*BOUND 198\.19\.6\.101[\s\S]*TIMEOUT[\s\S]*RELEASE/)
})

test('hook: a removed state dir means the lease was stopped: the hook does nothing', (t) => {
  const fake = fakeBin()
  const d = freshDir('state')
  const hook = join(work, `hook-orphan-${++seq}`)
  writeFileSync(hook, hookScript({ stateDir: join(d, 'gone'), ifname: 'eth1', client: 'udhcpc' }))
  t.is(runHook(hook, fake.bin, { ip: '198.19.5.120', mask: '24', lease: '60' }, ['bound']).status, 0)
  t.deepEqual(fake.calls(), [])
})

// ---- the supervisor's watch loop, with a fake client and a file standing in for the netns ------

function startSupervisor(d: string, watchPath: string, clientScript = 'while :; do sleep 0.2; done') {
  writeFileSync(join(d, 'supervise.sh'), SUPERVISOR_SCRIPT)
  // the fake client mentions the state dir in its argv, as the real ones do (their hook path)
  const child = spawn('/bin/sh', [join(d, 'supervise.sh'), d, '', '', watchPath, String(statSync(watchPath).ino), '/bin/sh', '-c', clientScript, join(d, 'hook')], { detached: true, stdio: 'ignore' })
  child.unref()
  return child
}

// Registered before the test waits on anything: a wait that times out must not leave the fake client
// behind. The supervisor is a session leader (detached), and the client runs in its process group.
function reapGroup(t: { teardown(fn: () => void): void }, sup: ReturnType<typeof spawn>) {
  t.teardown(() => {
    try {
      process.kill(-sup.pid!, 'SIGKILL')
    } catch {
      // group already gone
    }
  })
}

const alive = processAlive

test('supervisor: when the watched netns file goes away it stops the client and removes the state dir', async (t) => {
  const d = freshDir('sup')
  const watched = join(work, `netns-${++seq}`)
  writeFileSync(watched, '')
  const sup = startSupervisor(d, watched)
  reapGroup(t, sup)
  await waitFor(() => existsSync(join(d, 'client.pid')), { timeout: 15000, what: 'the supervisor to start the client' })
  const clientPid = Number(readFileSync(join(d, 'client.pid'), 'utf8'))
  t.true(alive(clientPid))
  // each round of the watch loop checks the guest, then sleeps in a `sleep 1` child: two of them
  // mean the supervisor looked at least twice and found the guest there
  const rounds = new Set<number>()
  await waitFor(
    () => {
      for (const pid of childrenOf(sup.pid!)) if (cmdlineOf(pid) === 'sleep 1') rounds.add(pid)
      return rounds.size >= 2
    },
    { timeout: 15000, interval: 20, what: "two rounds of the supervisor's watch loop" },
  )
  t.true(alive(clientPid), 'guest still there: client keeps running')
  rmSync(watched)
  await waitFor(() => !existsSync(d) && !alive(clientPid) && !alive(sup.pid!), { timeout: 15000, what: 'client, supervisor and state dir to go' })
  t.false(existsSync(d), 'client, supervisor and state dir gone within a few seconds')
})

test('supervisor: a client that exits by itself takes the supervisor and the state dir with it', async (t) => {
  const d = freshDir('sup')
  const watched = join(work, `netns-${++seq}`)
  writeFileSync(watched, '')
  const sup = startSupervisor(d, watched, 'sleep 0.3')
  reapGroup(t, sup)
  await waitFor(() => !existsSync(d) && !alive(sup.pid!), { timeout: 15000, what: 'the supervisor and the state dir to go' })
  t.false(alive(sup.pid!))
  t.false(existsSync(d))
})

test('supervisor: a `stopping` file makes it step aside without touching the client (stopDhcp is in charge)', async (t) => {
  const d = freshDir('sup')
  const watched = join(work, `netns-${++seq}`)
  writeFileSync(watched, '')
  const sup = startSupervisor(d, watched)
  reapGroup(t, sup)
  await waitFor(() => existsSync(join(d, 'client.pid')), { timeout: 15000, what: 'the supervisor to start the client' })
  const clientPid = Number(readFileSync(join(d, 'client.pid'), 'utf8'))
  writeFileSync(join(d, 'stopping'), '')
  process.kill(sup.pid!, 'SIGTERM')
  // promptly: its sleep is interruptible
  await waitFor(() => !alive(sup.pid!), { timeout: 10000, what: 'the supervisor to exit on TERM' })
  t.true(alive(clientPid), 'client left for stopDhcp to release')
  t.true(existsSync(d), 'state dir left for stopDhcp')
})

test('listLeases reads state dirs: lease fields, alive only when supervisor and client run', async (t) => {
  const p = statePaths('ino:777', 'eth1')
  mkdirSync(p.dir, { recursive: true })
  writeFileSync(p.meta, JSON.stringify({ stateKey: 'ino:777', ifname: 'eth1', guestLabel: 'netns:x', nsPath: '/run/netns/x', netnsIno: 1, client: 'udhcpc', argv: [], nsenter: 'nsenter', watch: {}, startedAt: new Date().toISOString() }))
  writeFileSync(p.lease, JSON.stringify({ event: 'bound', address: '198.19.5.120', prefix: 24, router: '198.19.5.1', dns: ['198.19.5.1'], server: '198.19.5.1', leaseTime: 120, obtainedAt: 1_700_000_000 }))
  writeFileSync(p.supervisorPid, '999999\n')
  const l = (await listLeases()).find((x) => x.stateKey === 'ino:777')
  t.like(l, { ifname: 'eth1', address: '198.19.5.120', prefix: 24, server: '198.19.5.1', leaseTime: 120, client: 'udhcpc', pid: 999999, alive: false, guestLabel: 'netns:x' })
  t.is(l?.expiresAt, new Date((1_700_000_000 + 120) * 1000).toISOString())
})
