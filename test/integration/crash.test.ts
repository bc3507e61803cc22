// Killed at every step: attach-veth (static and dhcp), dhcp, macvlan, p2p-link, ovs-port (a new bridge
// and an existing one), detach --all, expose, masquerade, vxlan, isolate, set-ip, sysctl, names, move-dev, lab
// deploy (netns nodes; a container node; an OVS bridge node and a VXLAN link) and destroy, replay,
// and gc run under killat (test/helpers/killat.c), which SIGKILLs plumb on entry to its K-th call
// that changes something (every netlink request that is not a read, every write to a file, a
// socket or a child, every rename and unlink, every process it starts), before the kernel runs
// it, for K = 1, 2, ... until a run gets through. After each kill, both ways out must work: the
// same command run again converges to exactly the state a clean run makes (no eth2 beside a
// half-made eth1), and gc removes what the killed run made. Either way `detach --all` then
// leaves everything as it was before (after gc, when gc alone has not already).

import test from 'ava'
import type { ExecutionContext } from 'ava'
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { execa } from 'execa'
import { join } from 'node:path'
import { isDeepStrictEqual } from 'node:util'
import { LAUNCHER, TEST_IMAGE, UNCOVERED_ENV, canBuildKillAt, killAt, runCli, forgetRecordsNamed, getLink, hasBinary, journalEntriesFor, hasDocker, hasOvs, inspectContainer, makeContainer, ipJson, isRoot, makeNetns, makeOvsBridge, holdGcLock, processAlive, sh, shQuiet, isolatedPorts, NETNS_TEARDOWN_MS, waitFor } from '../helpers/index.js'
import { heldPid } from '../../lib/ops/journal.js'
import { addrsOf, defaultRoutes, fixture, forwardDropActive, guestLinks, hostView } from './ops-fixture.js'
import type { CliResult } from '../helpers/index.js'
import type { Fixture } from './ops-fixture.js'
import { nicWithFarEnd, ovsBridgeName, ovsBridgesOf, ovsPortsOf, worldView } from './links-fixture.js'
import { inRange, makeHostDhcpLab, pidsMentioning } from './ops-dhcp-fixture.js'
import { labContainers } from '../e2e/lab-fixture.js'
import { dhcpStateDir } from '../../lib/config.js'
import { encodeKey } from '../../lib/paths.js'

const canKill = isRoot && canBuildKillAt
const rootTest = canKill ? test : test.skip
const ovsTest = canKill && hasOvs() ? test : test.skip

/** Past this many kill points a command is looping, not working. */
const MAX_K = 120

/**
 * Every run here, killed or not, is the command as users run it (the launcher, node from the ops
 * blob), not the code cache's path the other files' runs take for coverage: what is killed is
 * what users run, and each kill point costs ~5 runs (the kill, the rerun, the kill again, gc,
 * detach), which from the launcher take half the time. The suite's crash cases run thousands;
 * the lines they reach are covered by the other files. A killed process writes no coverage, and
 * one from the blob would write only counts of whole functions (its code has no block counters).
 */
const plumb = (...args: string[]): Promise<CliResult> => runCli(args, { launcher: true })

/** Run plumb under killat, killed on entry to its K-th call that changes something; resolves to the exit code and what the call was. */
async function runKilledAt(k: number, args: string[]): Promise<{ code: number; at: string }> {
  const res = await execa(killAt(), [String(k), LAUNCHER, ...args], {
    reject: false,
    timeout: 60_000,
    stdin: 'ignore',
    env: UNCOVERED_ENV,
    extendEnv: false,
  })
  const at = /^killat: (K=.*)$/m.exec(String(res.stderr))?.[1] ?? `K=${k}`
  return { code: res.exitCode ?? (res.signal === 'SIGKILL' ? 137 : -1), at }
}

interface Case {
  /** the command under test */
  args: string[]
  /** guests (ip netns names) it works on */
  guests: string[]
  /** a host-wide op: its journal entries name the host */
  hostWide?: true
  ovs?: boolean
  /** asserts the state a clean run of `args` makes, read from the kernel and OVS */
  intended(t: ExecutionContext): Promise<void>
  /** what must be as it was before after the undo (default: worldView of the guests, the host's links, addresses, routes and bridge rules) */
  view?: () => Promise<unknown>
  /** undoes the intended state (default: detach --all on each guest) */
  undo?: (t: ExecutionContext) => Promise<void>
  /** whether any of the command's own work is there (default: a plumb-marked link in a guest) */
  present?: () => Promise<boolean>
  /** the command's work carries no mark gc could go by: gc must leave a live guest's state exactly as the kill left it */
  keptByGc?: boolean
  /** the second way out instead of gc (a lab's: its destroy), after which nothing of it is left */
  cleanup?: string[]
  /** the netns (paths) the rerun must have finished every killed run's journal entry of (default: `guests`) */
  rerunGuests?: () => Promise<string[]>
}

/** A journal file (`<pid>-<seq>.json.recovering.<pid>`) a live recoverer holds. */
function heldByLive(file: string): boolean {
  const holder = heldPid(file)
  return holder !== undefined && processAlive(holder)
}

/**
 * For K = 1.. until the command gets through: kill it at K, then (a) rerun it and check the
 * intended state, tear down with detach, check the world is as before; (b) kill it at K again,
 * gc, check that what is left is either nothing of its own (the world as before: done) or the
 * whole intended state (a kill after the commit, while printing), detach, check the world.
 * Returns the number of kill points.
 */
async function killEverywhere(t: ExecutionContext, f: Fixture, c: Case): Promise<number> {
  const view = c.view ?? (() => worldView(f.id, c.guests, { ovs: c.ovs ?? false }))
  const before = await view()
  // The world as before; when it is not, the test's log says what plumb's chain held then and
  // whether a second look sees the same (CI saw a bridge's rule twice once, on 2026-12-03; the
  // cause was not found).
  const asBefore = async (what: string): Promise<void> => {
    const now = await view()
    if (!isDeepStrictEqual(now, before)) {
      const chain = (await shQuiet('sh', ['-c', 'iptables -w -S PLUMB-FORWARD; ip6tables -w -S PLUMB-FORWARD'])).stdout
      t.log(`${what}: PLUMB-FORWARD now:\n${chain.trim()}\na second look ${isDeepStrictEqual(await view(), now) ? 'sees the same' : 'differs'}`)
    }
    t.deepEqual(now, before, what)
  }
  const detachAll = async (): Promise<void> => {
    if (c.undo) return c.undo(t)
    for (const g of c.guests) {
      const r = await plumb('detach', `netns:${g}`, '--all')
      t.is(r.exitCode, 0, r.stderr)
    }
  }
  const present =
    c.present ??
    (async (): Promise<boolean> => {
      for (const g of c.guests) for (const [, l] of await guestLinks(g)) if (String(l.ifalias ?? '').startsWith('plumb:')) return true
      return false
    })
  for (let k = 1; k <= MAX_K; k++) {
    const killed = await runKilledAt(k, c.args)
    if (killed.code === 0) {
      await c.intended(t)
      await detachAll()
      await asBefore(`clean run then detach`)
      return k - 1
    }
    t.is(killed.code, 137, `K=${k}: killed`)
    // from here on the messages say where the run was killed (K=3: rename, K=4: sendmsg netlink type 16 ...)
    let K = killed.at

    // (a) the rerun converges
    const again = await plumb(...c.args)
    t.is(again.exitCode, 0, `${K}: rerun: ${again.stderr}`)
    await c.intended(t)
    t.deepEqual(journalEntriesFor(c.rerunGuests ? await c.rerunGuests() : c.guests, c.hostWide ? c.args[0] : undefined), [], `${K}: the rerun finished the killed run's journal entry`)
    await detachAll()
    await asBefore(`${K}: rerun then detach leaves the world as it was`)

    // (b) gc removes the remains. The same command may make fewer calls this time (a bridge a
    // busy bridge lock left for gc is there already, so no "created" line): a run that gets
    // through must have made exactly the intended state, and there is nothing for gc at this K.
    const again2 = await runKilledAt(k, c.args)
    if (again2.code === 0) {
      await c.intended(t)
      await detachAll()
      await asBefore(`${K}: a second run that got through, then detach, leaves the world as it was`)
      continue
    }
    t.is(again2.code, 137, `K=${k}: killed again`)
    K = again2.at
    // What a live guest keeps through gc (addresses, sysctls, name edits carry no mark): exactly as the kill left it.
    const killedState = c.keptByGc ? await view() : undefined
    const cleanup = c.cleanup ?? ['gc']
    const gc = await plumb(...cleanup)
    t.is(gc.exitCode, 0, `${K}: ${cleanup.join(' ')}: ${gc.stderr}`)
    // Another plumb may be finishing it right now (a lab deploy of a case beside this one finishes
    // the host's entries, a host-wide op's among them): then it is that one's to finish. That one
    // may be killed at its own K while it holds the entry (CI saw a lab deploy's): the entry then
    // waits under the dead recoverer's name for the next gc, which is run again for it. An entry
    // gc itself left (under its own name, not a recoverer's) is not retried: that is a failure.
    const left = (): string[] => journalEntriesFor(c.guests, c.hostWide ? c.args[0] : undefined)
    for (let tries = 0; tries < 5; tries++) {
      await waitFor(() => left().every((f) => !heldByLive(f)), { what: 'another plumb finishing the entry', timeout: 30_000 }).catch(() => undefined)
      const now = left()
      if (now.length === 0 || !now.every((f) => heldPid(f) !== undefined && !heldByLive(f))) break
      const more = await plumb(...cleanup)
      t.is(more.exitCode, 0, `${K}: ${cleanup.join(' ')} after a killed recoverer: ${more.stderr}`)
    }
    t.deepEqual(left(), [], `${K}: gc (or another plumb finishing it meanwhile) finished the killed run's journal entry`)
    if (killedState !== undefined) t.deepEqual(await view(), killedState, `${K}: gc left the live guest as the kill left it`)
    // A kill after the commit (the result being printed) left a whole, marked attach of a live
    // guest: gc keeps that, and it must be exactly the intended state.
    if (await present()) await c.intended(t)
    // gc alone put everything back (most kill points): the undo would be a run with nothing to do
    else if (!c.keptByGc && isDeepStrictEqual(await view(), before)) continue
    await detachAll()
    await asBefore(`${K}: gc then detach leaves the world as it was (gc said: ${gc.stdout} ${gc.stderr})`)
  }
  t.fail(`the command was still killed at K=${MAX_K}`)
  return MAX_K
}

/**
 * A kill-everywhere case as a test, on a fresh fixture, with the case `make` sets up; the command
 * must have at least `minPoints` kill points. Every case holds the suite's gc lock (gc collects
 * host-wide: other tests' deliberate leftovers too), all but two as one group (holdGcLock's
 * `together`), side by side: each checks only its own fixture's things, and another case's gc
 * finishing its killed run, or its rerun beside another's gc, is concurrency plumb must get
 * right anyway (run so, they found a recoverer undoing an entry as the listing had read it while
 * its writer was still alive, and an attach trusting a stale firewall read). `alone`: detach's
 * case, whose world holds an empty plumb bridge any gc collects, and gc's own, which makes the
 * stale things it is to collect.
 */
function crashCase(title: string, opts: { gate?: typeof rootTest; timeout?: number; minPoints: number; alone?: true }, make: (t: ExecutionContext, f: Fixture) => Promise<Case>): void {
  ;(opts.gate ?? rootTest)(title, async (t) => {
    // together, a case's time is the group's: the cases share two CPUs with the rest of the suite
    const timeout = opts.alone ? (opts.timeout ?? 600_000) : Math.max(opts.timeout ?? 0, 1_200_000)
    await holdGcLock(t, opts.alone ? { timeout } : { timeout, together: 'crash' })
    const f = await fixture(t)
    const points = await killEverywhere(t, f, await make(t, f))
    t.log(`${points} kill points`)
    t.true(points >= opts.minPoints, `${points} kill points, fewer than ${opts.minPoints}: is the command still under test?`)
  })
}

/** Only plumb's interface(s) in the guest, besides lo: no eth2 beside eth1. */
async function onlyLinks(t: ExecutionContext, ns: string, want: string[]): Promise<Map<string, Record<string, any>>> {
  const links = await guestLinks(ns)
  t.deepEqual([...links.keys()].filter((n) => n !== 'lo').sort(), want.sort(), `links of ${ns}`)
  return links
}

crashCase('attach-veth killed at every step: a rerun converges, gc removes the remains', { minPoints: 5 }, async (t, f) => {
  const ip = f.v4(2)
  const fwExpected = await forwardDropActive()
  return {
    args: ['attach-veth', f.guest, f.br, `${ip}@${f.gw4}`],
    guests: [f.ns],
    async intended(t) {
      const links = await onlyLinks(t, f.ns, ['eth1'])
      const eth1 = links.get('eth1')!
      t.is(eth1.linkinfo?.info_kind, 'veth')
      t.regex(String(eth1.ifalias), /^plumb:1 role=guest op=attach-veth /)
      t.deepEqual(await addrsOf('eth1', f.ns), [ip])
      t.deepEqual((await defaultRoutes(f.ns)).map((r) => [r.gateway, r.dev]), [[f.gw4, 'eth1']])
      const host = await hostView(f.id)
      const br = host.links.find((l) => l.ifname === f.br)
      t.truthy(br, 'the bridge exists')
      t.regex(String(br!.ifalias), /^plumb:1 role=bridge /)
      const ports = host.links.filter((l) => l.master === f.br)
      t.is(ports.length, 1, 'one port on the bridge')
      t.regex(String(ports[0]!.ifalias), /^plumb:1 role=host op=attach-veth /)
      t.is(host.rules.filter((r) => r.startsWith('-A ') && r.includes(`plumb:${f.br}`) && !r.includes('ip6')).length > 0, fwExpected, 'the FORWARD ACCEPT rule iff FORWARD DROP')
    },
  }
})

crashCase('macvlan killed at every step: a rerun converges, gc removes the remains', { minPoints: 3 }, async (t, f) => {
  const { nic } = await nicWithFarEnd(t, f)
  const ip = f.v4(3)
  return {
    args: ['macvlan', f.guest, nic, ip, '--mode', 'bridge'],
    guests: [f.ns],
    async intended(t) {
      const eth1 = (await onlyLinks(t, f.ns, ['eth1'])).get('eth1')!
      t.is(eth1.linkinfo?.info_kind, 'macvlan')
      t.regex(String(eth1.ifalias), /^plumb:1 role=guest op=macvlan /)
      t.deepEqual(await addrsOf('eth1', f.ns), [ip])
    },
  }
})

crashCase('p2p-link killed at every step: a rerun converges, gc removes the remains', { minPoints: 3 }, async (t, f) => {
  const b = await makeNetns(t, { name: `${f.id}b2` })
  const ipA = `198.18.${f.octet}.0/31`
  const ipB = `198.18.${f.octet}.1/31`
  return {
    args: ['p2p-link', f.guest, `netns:${b}`, '--ip-a', ipA, '--ip-b', ipB],
    guests: [f.ns, b],
    async intended(t) {
      for (const [ns, ip] of [
        [f.ns, ipA],
        [b, ipB],
      ] as const) {
        const eth1 = (await onlyLinks(t, ns, ['eth1'])).get('eth1')!
        t.is(eth1.linkinfo?.info_kind, 'veth')
        t.regex(String(eth1.ifalias), /^plumb:1 role=guest op=p2p-link /)
        t.deepEqual(await addrsOf('eth1', ns), [ip])
      }
    },
  }
})

/** ovs-port on bridge `br` with VLAN `tag` (`extra`: more of its flags). */
function ovsPortCase(f: Fixture, br: string, ip: string, tag: number, extra: string[]): Case {
  return {
    args: ['ovs-port', f.guest, br, ip, '--tag', String(tag), ...extra],
    guests: [f.ns],
    ovs: true,
    async intended(t) {
      const eth1 = (await onlyLinks(t, f.ns, ['eth1'])).get('eth1')!
      t.regex(String(eth1.ifalias), /^plumb:1 role=guest op=ovs-port /)
      t.deepEqual(await addrsOf('eth1', f.ns), [ip])
      t.deepEqual(await ovsBridgesOf(f.id), [br], 'the one bridge')
      const ports = await ovsPortsOf(f.id)
      t.is(ports.length, 1, 'one OVS port')
      t.is(ports[0]!.bridge, br)
      t.is(ports[0]!.tag, tag)
      t.is(ports[0]!.externalIds['plumb-owner'], 'plumb')
    },
  }
}

crashCase('ovs-port --create-bridge killed at every step: a rerun converges, gc removes the remains', { gate: ovsTest, timeout: 900_000, minPoints: 5 }, async (t, f) =>
  ovsPortCase(f, ovsBridgeName(t, f), f.v4(4), 10, ['--create-bridge']),
)

crashCase('ovs-port on an OVS bridge that exists killed at every step: a rerun converges, gc removes the remains, the bridge stays', { gate: ovsTest, timeout: 900_000, minPoints: 5 }, async (t, f) =>
  ovsPortCase(f, await makeOvsBridge(t, `${f.id}p`), f.v4(5), 20, []),
)

const dhcpTest = canKill && hasBinary('dnsmasq') && hasBinary('udhcpc') && hasBinary('nsenter') ? test : test.skip

/** The DHCP state dirs of guest `ns` (ip netns name: its state key is its netns inode) and the processes that name any of them (supervisor, client). */
function dhcpRemains(ns: string): { dirs: string[]; pids: number[] } {
  const key = `${encodeKey(`ino:${statSync(`/run/netns/${ns}`).ino}`)}-`
  let dirs: string[] = []
  try {
    dirs = readdirSync(dhcpStateDir()).filter((d) => d.includes(key))
  } catch {
    // no DHCP state at all yet
  }
  return { dirs, pids: pidsMentioning(key) }
}

/**
 * dhcpRemains once its processes have settled: a client that was just stopped, or the hook a
 * release runs, can name the state dir for a moment after the command returned. Without a state
 * dir nothing may stay; what does stay past 5 s is shown by its command line.
 */
async function settledRemains(ns: string): Promise<{ dirs: string[]; procs: string[] }> {
  const cmdline = (pid: number): string => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim()
    } catch {
      return ''
    }
  }
  for (let waited = 0; ; waited += 100) {
    const { dirs, pids } = dhcpRemains(ns)
    if (dirs.length > 0 || pids.length === 0 || waited >= 5000) return { dirs, procs: dirs.length > 0 ? [] : pids.map(cmdline).filter(Boolean) }
    await new Promise((r) => setTimeout(r, 100))
  }
}

/**
 * The one lease of guest `ns` as a clean run leaves it: one address from the server's range on
 * eth1, one state dir, its supervisor alive, and one DHCP client process (by name: the
 * supervisor's forked subshells and the client's hook name the state dir too, for a moment).
 */
async function assertOneLease(t: ExecutionContext, ns: string, net: string): Promise<void> {
  const addrs = await addrsOf('eth1', ns)
  t.is(addrs.length, 1, `one address on eth1: ${addrs.join(' ')}`)
  t.true(inRange(addrs[0]!.split('/')[0]!, net), `${addrs[0]} from the server's range`)
  const { dirs, pids } = dhcpRemains(ns)
  t.is(dirs.length, 1, 'one DHCP state dir')
  const supervisor = Number(readFileSync(join(dhcpStateDir(), dirs[0] ?? '-', 'supervisor.pid'), { encoding: 'utf8', flag: 'r' }).trim())
  t.true(processAlive(supervisor), `the supervisor (pid ${supervisor}) runs`)
  const clients = pids.filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'udhcpc'
    } catch {
      return false
    }
  })
  t.is(clients.length, 1, `one client: ${clients.join(' ')}`)
}

crashCase('attach-veth with dhcp killed at every step: a rerun converges to one lease and one client, gc and detach leave no client behind', { gate: dhcpTest, timeout: 900_000, minPoints: 5 }, async (t, f) => {
  const lab = await makeHostDhcpLab(t)
  return {
    args: ['attach-veth', f.guest, lab.br, 'dhcp', '--dhcp-client', 'udhcpc'],
    guests: [f.ns],
    view: async () => ({ world: await worldView(f.id, [f.ns]), dhcp: await settledRemains(f.ns) }),
    async intended(t) {
      const eth1 = (await onlyLinks(t, f.ns, ['eth1'])).get('eth1')!
      t.regex(String(eth1.ifalias), /^plumb:1 role=guest op=attach-veth /)
      await assertOneLease(t, f.ns, lab.net)
    },
  }
})

crashCase('dhcp on an interface that exists killed at every step: a rerun converges to one client, gc and --release leave none', { gate: dhcpTest, timeout: 900_000, minPoints: 5 }, async (t, f) => {
  const lab = await makeHostDhcpLab(t)
  const att = await plumb('attach-veth', f.guest, lab.br, '-i', 'eth1')
  t.is(att.exitCode, 0, att.stderr)
  t.teardown(async () => void (await plumb('detach', f.guest, '--all')))
  return {
    args: ['dhcp', f.guest, 'eth1', '--client', 'udhcpc'],
    guests: [f.ns],
    view: async () => ({ world: await worldView(f.id, [f.ns]), dhcp: await settledRemains(f.ns) }),
    async undo(t) {
      const r = await plumb('dhcp', f.guest, 'eth1', '--release')
      t.is(r.exitCode, 0, r.stderr)
    },
    present: async () => dhcpRemains(f.ns).dirs.length > 0,
    async intended(t) {
      await assertOneLease(t, f.ns, lab.net)
    },
  }
})

crashCase('detach --all killed at every step: a rerun converges to nothing of plumb\'s left in the guest', { alone: true, timeout: 900_000, minPoints: 5 }, async (t, f) => {
  const b = await makeNetns(t, { name: `${f.id}b2` })
  const { nic } = await nicWithFarEnd(t, f)
  const net = `198.18.${f.octet}`
  // an attach (addresses, a default route) on a bridge plumb makes, a p2p link to another netns, a macvlan
  const setup = async (t: ExecutionContext): Promise<void> => {
    for (const argv of [
      ['attach-veth', f.guest, f.br, `${net}.10/25@${net}.1`, `2001:db8:${f.octet.toString(16)}::10/64`, '-i', 'eth1'],
      ['p2p-link', f.guest, `netns:${b}`, '--ip-a', `${net}.200/31`, '--ip-b', `${net}.201/31`, '--ifname-a', 'eth2', '--ifname-b', 'eth1'],
      ['macvlan', f.guest, nic, `${net}.130/26`, '-i', 'eth3', '--mode', 'bridge'],
    ]) {
      const r = await plumb(...argv)
      t.is(r.exitCode, 0, `${argv.join(' ')}: ${r.stderr}`)
    }
  }
  await setup(t)
  // by what it is (a re-made one has other MACs and ifindexes)
  const inNs = async (ns: string): Promise<string[]> =>
    (await ipJson(['-d', 'addr', 'show'], ns)).map((l) => `${l.ifname} ${l.linkinfo?.info_kind ?? ''} ${(l.addr_info as Array<{ scope: string; local: string; prefixlen: number }>).filter((a) => a.scope !== 'link').map((a) => `${a.local}/${a.prefixlen}`).sort().join(' ')}`).sort()
  const shape = async (): Promise<unknown> => ({
    guest: await inNs(f.ns),
    routes: await defaultRoutes(f.ns),
    peer: await inNs(b),
    bridge: (await hostView(f.id)).links.some((l) => l.ifname === f.br),
    ports: (await hostView(f.id)).links.filter((l) => l.master === f.br).length,
  })
  return {
    args: ['detach', f.guest, '--all'],
    guests: [f.ns, b],
    view: shape,
    undo: setup,
    // a detach killed half-way leaves whole interfaces of plumb's (marked) that gc keeps in a live guest
    present: async () => false,
    async intended(t) {
      let s = (await shape()) as { bridge: boolean; ports: number }
      if (s.bridge && s.ports === 0) {
        // Killed between the last port and the bridge: the rerun finds nothing of plumb's in the
        // guest to lead it there. An empty bridge plumb made is gc's (as when detach finds the
        // bridge lock taken): gc must remove it, and its firewall rule.
        t.regex(String((await getLink(f.br))?.ifalias), /^plumb:1 role=bridge /, 'the bridge left is plumb-made')
        const gc = await plumb('gc')
        t.is(gc.exitCode, 0, gc.stderr)
        t.deepEqual(await savedRules(`plumb:${f.br}`), [], "gc removed the bridge's rule")
        s = (await shape()) as { bridge: boolean; ports: number }
      }
      t.deepEqual(s, { guest: ['lo  '], routes: [], peer: ['lo  '], bridge: false, ports: 0 })
    },
  }
})

/** A lab of two netns nodes joined directly and one on a Linux bridge node, in a file of its own. */
function smallLab(t: ExecutionContext, f: Fixture): { file: string; nodes: string[]; bridge: string; net: string } {
  const net = `198.18.${f.octet}`
  const dir = mkdtempSync(`/tmp/${f.id}-`)
  const file = join(dir, 'lab.yml')
  const bridge = `${f.id}lb`
  writeFileSync(
    file,
    `name: ${f.id}\nprefix: __lab-name\ntopology:\n  defaults: {kind: netns}\n  nodes:\n    a: {}\n    b: {}\n    ${bridge}: {kind: bridge}\n  links:\n` +
      `    - endpoints: ["a:eth1", "b:eth1"]\n      ips: [${net}.0/31, ${net}.1/31]\n    - endpoints: ["b:eth2", "${bridge}:${f.id}b2"]\n      ips: [${net}.10/24]\n`,
  )
  t.teardown(async () => {
    await plumb('lab', 'destroy', file)
    rmSync(dir, { recursive: true, force: true })
  })
  return { file, nodes: [`${f.id}-a`, `${f.id}-b`], bridge, net }
}

/** Which of a lab's node netns exist. */
async function labNetns(nodes: string[]): Promise<string[]> {
  return (await shQuiet('ip', ['netns', 'list'])).stdout.split('\n').map((l) => l.split(' ')[0]!).filter((n) => nodes.includes(n)).sort()
}

/** The lab's netns nodes there now, and the host's links, addresses, routes and rules of the test. */
async function labView(f: Fixture, nodes: string[]): Promise<unknown> {
  const netns = await labNetns(nodes)
  return { world: await worldView(f.id, netns), netns }
}

crashCase('lab deploy killed at every step: a rerun converges, destroy removes the remains', { timeout: 900_000, minPoints: 5 }, async (t, f) => {
  const lab = smallLab(t, f)
  const destroy = ['lab', 'destroy', lab.file]
  return {
    args: ['lab', 'deploy', lab.file],
    guests: [],
    view: () => labView(f, lab.nodes),
    async undo(t) {
      const r = await plumb(...destroy)
      t.is(r.exitCode, 0, r.stderr)
    },
    cleanup: destroy,
    present: async () => (await labNetns(lab.nodes)).length > 0,
    async intended(t) {
      t.deepEqual(await labNetns(lab.nodes), lab.nodes)
      t.deepEqual(await addrsOf('eth1', lab.nodes[0]!), [`${lab.net}.0/31`])
      t.deepEqual(await addrsOf('eth1', lab.nodes[1]!), [`${lab.net}.1/31`])
      t.deepEqual(await addrsOf('eth2', lab.nodes[1]!), [`${lab.net}.10/24`])
      const host = await hostView(f.id)
      t.truthy(host.links.find((l) => l.ifname === lab.bridge), 'the bridge node')
      t.is(host.links.filter((l) => l.master === lab.bridge).length, 1, 'one port on it')
    },
  }
})

crashCase('lab destroy killed at every step: a rerun converges to nothing left, and deploy then makes it whole again', { timeout: 900_000, minPoints: 3 }, async (t, f) => {
  const lab = smallLab(t, f)
  const deploy = async (t: ExecutionContext): Promise<void> => {
    const r = await plumb('lab', 'deploy', lab.file)
    t.is(r.exitCode, 0, r.stderr)
  }
  await deploy(t)
  // A deploy after the destroy makes the lab anew (other MACs and ifindexes): compared by what the lab says.
  const shape = async (): Promise<unknown> => {
    const netns = await labNetns(lab.nodes)
    const host = await hostView(f.id)
    return {
      netns,
      addrs: await Promise.all(netns.map(async (ns) => [ns, ...(await Promise.all(['eth1', 'eth2'].map((i) => addrsOf(i, ns).catch(() => [] as string[]))))])),
      bridge: host.links.some((l) => l.ifname === lab.bridge),
      ports: host.links.filter((l) => l.master === lab.bridge).map((l) => l.ifname),
      rules: host.rules,
    }
  }
  return {
    args: ['lab', 'destroy', lab.file],
    guests: [],
    view: shape,
    undo: deploy,
    cleanup: ['lab', 'destroy', lab.file],
    // after either way out nothing of the lab is left: the undo (a deploy) makes it whole again
    present: async () => false,
    async intended(t) {
      t.deepEqual(await labNetns(lab.nodes), [])
      const host = await hostView(f.id)
      t.falsy(host.links.find((l) => l.ifname === lab.bridge), 'no bridge node')
      t.deepEqual(host.rules, [], "no firewall rule of the lab's bridge")
    },
  }
})

const dockerTest = canKill && hasDocker() ? test : test.skip

crashCase('lab deploy with a container node killed at every step: a rerun converges, destroy removes the remains', { gate: dockerTest, timeout: 1_200_000, minPoints: 5 }, async (t, f) => {
  const net = `198.18.${f.octet}`
  const dir = mkdtempSync(`/tmp/${f.id}-`)
  const file = join(dir, 'lab.yml')
  const bridge = `${f.id}lb`
  // a container and a netns joined directly, the container on a bridge node too
  writeFileSync(
    file,
    `name: ${f.id}\nprefix: __lab-name\ntopology:\n  defaults: {kind: netns}\n  kinds:\n    linux: {image: ${TEST_IMAGE}, cmd: sleep 1000000}\n  nodes:\n    c: {kind: linux}\n    n: {}\n    ${bridge}: {kind: bridge}\n  links:\n` +
      `    - endpoints: ["c:eth1", "n:eth1"]\n      ips: [${net}.0/31, ${net}.1/31]\n    - endpoints: ["c:eth2", "${bridge}:${f.id}c2"]\n      ips: [${net}.10/24]\n`,
  )
  const container = `${f.id}-c`
  t.teardown(async () => {
    await plumb('lab', 'destroy', file)
    await shQuiet('docker', ['rm', '-f', '-v', container])
    forgetRecordsNamed(container)
    rmSync(dir, { recursive: true, force: true })
  })
  // what is there of the lab: its containers (running or not), its netns, and the host's side
  const view = async (): Promise<unknown> => ({ containers: [...(await labContainers(f.id))].map(([name, c]) => `${name} ${c.running ? 'running' : 'stopped'}`).sort(), ...((await labView(f, [`${f.id}-n`])) as object) })
  const destroy = ['lab', 'destroy', file]
  return {
    args: ['lab', 'deploy', file],
    guests: [],
    view,
    async undo(t) {
      const r = await plumb(...destroy)
      t.is(r.exitCode, 0, r.stderr)
    },
    cleanup: destroy,
    // the lab's two guests: the container's netns and the ip netns
    rerunGuests: async () => [`/proc/${(await inspectContainer(container)).pid}/ns/net`, `${f.id}-n`],
    present: async () => {
      const v = (await view()) as { containers: string[]; netns: string[] }
      return v.containers.length + v.netns.length > 0
    },
    async intended(t) {
      const v = (await view()) as { containers: string[]; netns: string[] }
      t.deepEqual(v.containers, [`${container} running`], 'one container, running')
      t.deepEqual(v.netns, [`${f.id}-n`])
      const inC = { container }
      const addrs = async (ifname: string): Promise<string[]> =>
        (await ipJson(['addr', 'show', 'dev', ifname], inC)).flatMap((o) => (o.addr_info as Array<{ scope: string; local: string; prefixlen: number }>).filter((a) => a.scope !== 'link').map((a) => `${a.local}/${a.prefixlen}`))
      t.deepEqual(await addrs('eth1'), [`${net}.0/31`])
      t.deepEqual(await addrs('eth2'), [`${net}.10/24`])
      t.deepEqual(
        (await ipJson(['link', 'show'], inC)).map((l) => l.ifname).sort(),
        ['eth1', 'eth2', 'lo'],
        'no half-made third interface in the container',
      )
      t.deepEqual(await addrsOf('eth1', `${f.id}-n`), [`${net}.1/31`])
      const host = await hostView(f.id)
      t.truthy(host.links.find((l) => l.ifname === bridge), 'the bridge node')
      t.is(host.links.filter((l) => l.master === bridge).length, 1, 'one port on it')
    },
  }
})

crashCase('lab deploy with an OVS bridge node and a VXLAN link killed at every step: a rerun converges, destroy removes the remains', { gate: ovsTest, timeout: 1_200_000, minPoints: 5 }, async (t, f) => {
  const net = `198.18.${f.octet}`
  // the underlay: a veth standing in for a NIC, the other "host" behind it
  const local = `${net}.250`
  const remote = `${net}.251`
  const { nic } = await nicWithFarEnd(t, f, `${remote}/24`)
  await sh('ip', ['addr', 'add', `${local}/24`, 'dev', nic])
  const dir = mkdtempSync(`/tmp/${f.id}-`)
  const file = join(dir, 'lab.yml')
  const ovsBr = `${f.id}o`
  const linuxBr = `${f.id}l`
  const vni = 4000 + f.octet
  // a netns on VLAN 10 of an OVS bridge node, and on a Linux bridge node that a VXLAN joins to the other host
  writeFileSync(
    file,
    `name: ${f.id}\nprefix: __lab-name\ntopology:\n  defaults: {kind: netns}\n  nodes:\n    a: {}\n    ${ovsBr}: {kind: ovs-bridge}\n    ${linuxBr}: {kind: bridge}\n  links:\n` +
      `    - type: veth\n      endpoints: [{node: a, interface: eth1, ips: [${net}.1/25]}, {node: ${ovsBr}, interface: ${f.id}a1, vlan: 10}]\n` +
      `    - endpoints: ["a:eth2", "${linuxBr}:${f.id}a2"]\n      ips: [${net}.129/26]\n` +
      `    - type: vxlan\n      endpoint: {node: ${linuxBr}}\n      vni: ${vni}\n      remote: ${remote}\n      local: ${local}\n      udp-port: 4789\n`,
  )
  t.teardown(async () => {
    await plumb('lab', 'destroy', file)
    rmSync(dir, { recursive: true, force: true })
  })
  const node = `${f.id}-a`
  const view = async (): Promise<unknown> => ({ ...((await labView(f, [node])) as object), ovs: { ports: await ovsPortsOf(f.id), bridges: await ovsBridgesOf(f.id) } })
  const vxlanPorts = async (): Promise<Array<Record<string, any>>> => (await ipJson(['-d', 'link', 'show'])).filter((l) => l.master === linuxBr && l.linkinfo?.info_kind === 'vxlan')
  const destroy = ['lab', 'destroy', file]
  return {
    args: ['lab', 'deploy', file],
    guests: [],
    ovs: true,
    view,
    async undo(t) {
      const r = await plumb(...destroy)
      t.is(r.exitCode, 0, r.stderr)
    },
    cleanup: destroy,
    rerunGuests: async () => [node],
    present: async () => (await labNetns([node])).length > 0 || (await ovsBridgesOf(f.id)).length > 0 || (await vxlanPorts()).length > 0,
    async intended(t) {
      t.deepEqual(await labNetns([node]), [node])
      t.deepEqual(await addrsOf('eth1', node), [`${net}.1/25`])
      t.deepEqual(await addrsOf('eth2', node), [`${net}.129/26`])
      t.deepEqual(
        (await ipJson(['link', 'show'], node)).map((l) => l.ifname).sort(),
        ['eth1', 'eth2', 'lo'],
        'no half-made third interface in the node',
      )
      const rows = (await ovsPortsOf(f.id)).filter((p) => p.bridge === ovsBr)
      t.deepEqual(
        rows.map((p) => [p.name, p.tag, p.externalIds['plumb-owner']]),
        [[`${f.id}a1`, 10, 'plumb']],
        'one access port on VLAN 10 of the OVS bridge node',
      )
      const host = await hostView(f.id)
      t.deepEqual(host.links.filter((l) => l.master === linuxBr).map((l) => l.ifname).length, 2, "the node's port and the VXLAN port on the Linux bridge node")
      const vx = await vxlanPorts()
      t.is(vx.length, 1, 'one VXLAN port')
      t.is(vx[0]!.linkinfo.info_data.id, vni)
      const fdb = JSON.parse(await sh('bridge', ['-j', 'fdb', 'show', 'dev', vx[0]!.ifname])) as Array<{ mac: string; dst?: string }>
      t.deepEqual(fdb.filter((e) => e.mac === '00:00:00:00:00:00').map((e) => e.dst), [remote], 'one flood entry, to the remote')
    },
  }
})

crashCase('replay of a restarted container killed at every step: a rerun converges, gc finishes the killed run', { gate: dockerTest, timeout: 1_200_000, minPoints: 5 }, async (t, f) => {
  const c = await makeContainer(t)
  // recorded: an attach to a bridge, then a second address on it
  for (const argv of [['attach-veth', c.name, f.br, f.v4(10)], ['set-ip', c.name, 'eth1', f.v4(11)]]) {
    const r = await plumb(...argv)
    t.is(r.exitCode, 0, r.stderr)
  }
  const ports = async (): Promise<string[]> => (await hostView(f.id)).links.filter((l) => l.master === f.br).map((l) => String(l.ifname))
  const inC = async (): Promise<string[]> =>
    (await ipJson(['addr', 'show'], { container: c.name })).map((l) => `${l.ifname} ${(l.addr_info as Array<{ scope: string; local: string; prefixlen: number }>).filter((a) => a.scope !== 'link').map((a) => `${a.local}/${a.prefixlen}`).sort().join(' ')}`).sort()
  // A restart takes the interfaces with the old netns (the host end goes with it, a moment later); the record stays.
  const restart = async (): Promise<void> => {
    await sh('docker', ['restart', '-t', '0', c.name])
    await waitFor(async () => (await ports()).length === 0, { what: 'the old host end to go with the old netns', timeout: NETNS_TEARDOWN_MS })
  }
  await restart()
  const view = async (): Promise<unknown> => ({ ports: await ports(), container: await inC() })
  return {
    args: ['replay', c.name],
    guests: [],
    view,
    undo: async () => restart(),
    rerunGuests: async () => [`/proc/${(await inspectContainer(c.name)).pid}/ns/net`],
    // a replay is one op per entry: the attach committed before a kill in the set-ip is whole and
    // kept (a live guest's marked link), so gc's remains are not all or nothing: the undo restarts
    present: async () => false,
    async intended(t) {
      t.deepEqual(await inC(), [`eth1 ${[f.v4(10), f.v4(11)].sort().join(' ')}`, 'lo 127.0.0.1/8'])
      t.is((await ports()).length, 1, 'one port on the bridge')
    },
  }
})

crashCase('gc killed at every step: a rerun converges (a dead guest\'s stale OVS row, empty plumb bridge and firewall rule gone)', { alone: true, gate: ovsTest, timeout: 900_000, minPoints: 3 }, async (t, f) => {
  const br = await makeOvsBridge(t, `${f.id}o`)
  let n = 0
  // A guest with a port on the OVS bridge and one on a plumb-made Linux bridge, then dead.
  const leftovers = async (t: ExecutionContext): Promise<void> => {
    const ns = await makeNetns(t, { name: `${f.id}g${n++}` })
    for (const argv of [['ovs-port', `netns:${ns}`, br, f.v4(10), '--tag', '10'], ['attach-veth', `netns:${ns}`, f.br, f.v4(11)]]) {
      const r = await plumb(...argv)
      t.is(r.exitCode, 0, r.stderr)
    }
    await sh('ip', ['netns', 'del', ns])
    await waitFor(async () => !(await hostView(f.id)).links.some((l) => l.master === f.br), { what: 'the bridge port to vanish with the netns', timeout: NETNS_TEARDOWN_MS })
  }
  const fwExpected = await forwardDropActive()
  // what gc is to remove, by what it is (a re-made one has other MACs and ifindexes)
  const shape = async (): Promise<unknown> => ({
    bridge: (await hostView(f.id)).links.some((l) => l.ifname === f.br),
    rules: (await savedRules(`plumb:${f.br}`)).length > 0,
    rows: (await ovsPortsOf(f.id)).filter((p) => p.externalIds['plumb-owner'] === 'plumb').length,
  })
  await leftovers(t)
  t.deepEqual(await shape(), { bridge: true, rules: fwExpected, rows: 1 }, 'the leftovers')
  return {
    args: ['gc'],
    guests: [],
    ovs: true,
    view: shape,
    undo: leftovers,
    present: async () => false,
    async intended(t) {
      t.deepEqual(await shape(), { bridge: false, rules: false, rows: 0 })
    },
  }
})

/** The host's iptables-save lines that mention `needle` (both tables; no counters), in order. */
async function savedRules(needle: string): Promise<string[]> {
  return (await shQuiet('iptables-save')).stdout.split('\n').filter((l) => l.startsWith('-A ') && l.includes(needle))
}

crashCase('expose killed at every step: a rerun converges, gc removes the remains', { minPoints: 2 }, async (t, f) => {
  // a guest on a bridge with the gateway's address: what a published port is for
  const att = await plumb('attach-veth', f.guest, f.br, `${f.v4(6)}@${f.gw4}`)
  t.is(att.exitCode, 0, att.stderr)
  await sh('ip', ['addr', 'add', `${f.gw4}/24`, 'dev', f.br])
  const guestIp = f.v4(6).split('/')[0]!
  const tcp = 30000 + f.octet * 2
  const udp = tcp + 1
  const ports = [`${tcp}:80`, `${udp}:53/udp`]
  const mine = (): Promise<string[]> => savedRules(`guest=${f.guest} `)
  const routeLocalnet = (): string => readFileSync(`/proc/sys/net/ipv4/conf/${f.br}/route_localnet`, 'utf8').trim()
  return {
    args: ['expose', f.guest, ...ports],
    guests: [f.ns],
    view: async () => ({ rules: await mine(), routeLocalnet: routeLocalnet(), world: await worldView(f.id, [f.ns]) }),
    async intended(t) {
      const rules = await mine()
      t.is(rules.filter((l) => l.includes(`--dport ${tcp} `) && l.includes(`-j DNAT --to-destination ${guestIp}:80`)).length, 1, 'one DNAT for the TCP port')
      t.is(rules.filter((l) => l.includes(`--dport ${udp} `) && l.includes(`-j DNAT --to-destination ${guestIp}:53`)).length, 1, 'one DNAT for the UDP port')
      t.is(rules.filter((l) => l.includes('-A PLUMB-FORWARD ')).length, 2, 'a FORWARD accept for each')
      t.is(routeLocalnet(), '1', 'route_localnet on the bridge (127.0.0.1 reaches the port)')
    },
    async undo(t) {
      const r = await plumb('expose', f.guest, ...ports, '--del')
      t.is(r.exitCode, 0, r.stderr)
    },
    present: async () => (await mine()).length > 0,
  }
})

crashCase('masquerade killed at every step: a rerun converges, gc removes the remains', { minPoints: 2 }, async (t, f) => {
  const cidr = `198.18.${f.octet}.0/24`
  const mine = (): Promise<string[]> => savedRules(`src=${cidr}"`)
  return {
    args: ['masquerade', cidr],
    hostWide: true,
    guests: [],
    view: async () => ({ rules: await mine(), ipForward: readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim() }),
    async intended(t) {
      const rules = await mine()
      t.is(rules.filter((l) => l.startsWith(`-A PLUMB-POSTROUTING -s ${cidr} `) && l.endsWith('-j MASQUERADE')).length, 1, 'one MASQUERADE')
      t.true(rules.filter((l) => l.startsWith('-A PLUMB-FORWARD ')).length >= 2, 'forwarding out and back')
      t.is(readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim(), '1')
    },
    async undo(t) {
      const r = await plumb('masquerade', cidr, '--del')
      t.is(r.exitCode, 0, r.stderr)
    },
    present: async () => (await mine()).length > 0,
  }
})

crashCase('vxlan killed at every step: a rerun converges, gc removes the remains', { minPoints: 2 }, async (t, f) => {
  // the underlay: a veth standing in for a NIC, the other "host" behind it
  const local = `198.18.${f.octet}.250`
  const remote = `198.18.${f.octet}.251`
  const { nic } = await nicWithFarEnd(t, f, `${remote}/24`)
  await sh('ip', ['addr', 'add', `${local}/24`, 'dev', nic])
  await sh('ip', ['link', 'add', f.br, 'type', 'bridge'])
  await sh('ip', ['link', 'set', f.br, 'up'])
  const vni = String(4000 + f.octet)
  const ports = async (): Promise<Array<Record<string, any>>> => (await ipJson(['-d', 'link', 'show'])).filter((l) => l.master === f.br && l.linkinfo?.info_kind === 'vxlan')
  return {
    args: ['vxlan', f.br, '--vni', vni, '--remote', remote, '--dev', nic],
    hostWide: true,
    guests: [],
    async intended(t) {
      const vx = await ports()
      t.is(vx.length, 1, 'one VXLAN port on the bridge')
      const d = vx[0]!.linkinfo.info_data
      t.is(d.id, Number(vni))
      t.is(d.port, 4789)
      t.is(d.learning, false)
      t.regex(String(vx[0]!.ifalias), /^plumb:1 role=port /)
      const fdb = JSON.parse(await sh('bridge', ['-j', 'fdb', 'show', 'dev', vx[0]!.ifname])) as Array<{ mac: string; dst?: string }>
      t.deepEqual(fdb.filter((e) => e.mac === '00:00:00:00:00:00').map((e) => e.dst), [remote], 'one flood entry, to the remote')
    },
    async undo(t) {
      const r = await plumb('vxlan', f.br, '--vni', vni, '--del')
      t.is(r.exitCode, 0, r.stderr)
    },
    present: async () => (await ports()).length > 0,
  }
})

crashCase('isolate killed at every step: a rerun converges, gc removes the remains', { minPoints: 2 }, async (t, f) => {
  const b = await makeNetns(t, { name: `${f.id}i2` })
  for (const [guest, h] of [
    [f.guest, 7],
    [`netns:${b}`, 8],
  ] as const) {
    const r = await plumb('attach-veth', guest, f.br, f.v4(h))
    t.is(r.exitCode, 0, r.stderr)
  }
  const mine = async (): Promise<string[]> => (await savedRules(`br=${f.br}`)).filter((l) => l.includes(`br=${f.br} `) || l.includes(`br=${f.br}"`))
  const isolated = (): Promise<boolean[]> => isolatedPorts(f.br)
  return {
    args: ['isolate', f.br],
    hostWide: true,
    guests: [f.ns, b],
    view: async () => ({ rules: await mine(), world: await worldView(f.id, [f.ns, b]) }),
    async intended(t) {
      t.deepEqual(await isolated(), [true, true], 'both guest ports isolated')
      t.is((await mine()).filter((l) => l.includes('plumb:isolate ') && l.endsWith('-j DROP')).length, 1, "the routed DROP between the bridge's guests")
    },
    async undo(t) {
      const r = await plumb('isolate', f.br, '--del')
      t.is(r.exitCode, 0, r.stderr)
    },
    present: async () => (await mine()).length > 0 || (await isolated()).some(Boolean),
  }
})

crashCase('sysctl killed at every step: a rerun converges, gc leaves what a live guest has as it is, --del puts every value back', { minPoints: 2 }, async (t, f) => {
  const keys: Array<[string, string]> = [
    ['net.ipv4.icmp_echo_ignore_all', '1'],
    ['net.ipv4.tcp_ecn', '1'],
    ['net.ipv4.conf.lo.arp_ignore', '1'],
  ]
  const values = (): Promise<string[]> => Promise.all(keys.map(async ([k]) => (await sh('ip', ['netns', 'exec', f.ns, 'sysctl', '-n', k])).trim()))
  return {
    args: ['sysctl', f.guest, ...keys.map(([k, v]) => `${k}=${v}`)],
    guests: [f.ns],
    view: values,
    async intended(t) {
      t.deepEqual(await values(), keys.map(([, v]) => v))
    },
    async undo(t) {
      const r = await plumb('sysctl', f.guest, '--del')
      t.is(r.exitCode, 0, r.stderr)
    },
    // gc never undoes a live guest's sysctls: what a killed run set is finished by the rerun or put back by --del
    present: async () => false,
    keptByGc: true,
  }
})

crashCase('names killed at every step: a rerun converges, --del leaves the files as they were', { minPoints: 2 }, async (t, f) => {
  const dir = `/etc/netns/${f.ns}`
  t.teardown(async () => {
    await shQuiet('rm', ['-rf', dir])
  })
  const files = async (): Promise<Record<string, string>> => {
    const out: Record<string, string> = {}
    for (const n of ['hosts', 'resolv.conf']) {
      const r = await shQuiet('cat', [`${dir}/${n}`])
      out[n] = r.exitCode === 0 ? r.stdout : '(none)'
    }
    return out
  }
  return {
    args: ['names', f.guest, '--add-host', `pt-db:198.18.${f.octet}.5`, '--dns', `198.18.${f.octet}.53`],
    guests: [f.ns],
    view: files,
    async intended(t) {
      const now = await files()
      t.regex(now.hosts!, new RegExp(`^198\\.18\\.${f.octet}\\.5\\tpt-db\\t# plumb$`, 'm'))
      // as a clean run makes it: a copy of the host's own file (what the guest saw before) plus plumb's line
      for (const line of readFileSync('/etc/hosts', 'utf8').split('\n').filter((l) => l.trim() && !l.startsWith('#'))) t.true(now.hosts!.split('\n').includes(line), `the guest's hosts keeps the host's line "${line}"`)
      t.regex(now['resolv.conf']!, new RegExp(`^nameserver 198\\.18\\.${f.octet}\\.53$`, 'm'))
    },
    async undo(t) {
      const r = await plumb('names', f.guest, '--del')
      t.is(r.exitCode, 0, r.stderr)
    },
    present: async () => false,
    keptByGc: true,
  }
})

crashCase('move-dev killed at every step: a rerun converges, gc gives the device back', { minPoints: 2 }, async (t, f) => {
  // a veth standing in for a NIC; the far end keeps it from being a plain veth pair of the host
  const { nic } = await nicWithFarEnd(t, f)
  const ip = f.v4(9)
  return {
    args: ['move-dev', f.guest, nic, ip, '-i', 'eth1'],
    guests: [f.ns],
    async intended(t) {
      const eth1 = (await onlyLinks(t, f.ns, ['eth1'])).get('eth1')!
      t.is(eth1.linkinfo?.info_kind, 'veth')
      t.regex(String(eth1.ifalias), /^plumb:1 role=moved op=move-dev /)
      t.deepEqual(await addrsOf('eth1', f.ns), [ip])
      t.deepEqual((await ipJson(['link', 'show'])).filter((l) => l.ifname === nic), [], 'gone from the host')
    },
  }
})

crashCase('set-ip killed at every step: a rerun converges, --del leaves the interface as it was', { minPoints: 2 }, async (t, f) => {
  const att = await plumb('attach-veth', f.guest, f.br)
  t.is(att.exitCode, 0, att.stderr)
  const v4 = f.v4(10)
  const v6 = f.v6(0x10)
  const route = `198.19.${f.octet}.0/24@${f.gw4}`
  const args = [v4, `${v6}`, '--route', route]
  return {
    args: ['set-ip', f.guest, 'eth1', ...args],
    guests: [f.ns],
    async intended(t) {
      t.deepEqual((await addrsOf('eth1', f.ns)).sort(), [v4, v6].sort())
      const routes = await ipJson(['-4', 'route', 'show', `198.19.${f.octet}.0/24`], f.ns)
      t.deepEqual(routes.map((r) => [r.gateway, r.dev]), [[f.gw4, 'eth1']])
    },
    async undo(t) {
      const r = await plumb('set-ip', f.guest, 'eth1', ...args, '--del')
      t.is(r.exitCode, 0, r.stderr)
    },
    // gc leaves a live guest's addresses: the rerun finishes what a killed run began, --del removes it
    present: async () => false,
    keptByGc: true,
  }
})
