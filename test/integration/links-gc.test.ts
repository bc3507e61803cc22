// gc on `ip netns` guests that died: stale OVS port rows, empty plumb bridges and their firewall
// rules, host ends of guests that can no longer be named, moved devices the kernel handed back;
// and what gc must leave alone. gc is host-wide, so these tests run one at a time.

import test from 'ava'
import { readFileSync, readdirSync } from 'node:fs'
import { cmdlineOf, getLink, hasOvs, holdGcLock, isRoot, pidsWithOpen, sh, shQuiet, spawnIn, NETNS_TEARDOWN_MS, waitFor } from '../helpers/index.js'
import { firewallRules, fixture, forwardDropActive, plumb, removeFirewallRules } from './ops-fixture.js'
import { ovsBridgeName, ovsPortsOf } from './links-fixture.js'
import { BRIDGE_LOCK, acquireBridgeLock } from '../../lib/ops/bridge-lock.js'
import { withFirewallLock } from '../../lib/ops/firewall.js'
import { FIREWALL_LOCK } from '../../lib/firewall/index.js'
import { PlumbError } from '../../lib/errors.js'

// serial: gc is host-wide, two of these at once would collect each other's leftovers
const serialIf = (cond: boolean, reason: string) => {
  if (!cond) console.error(`skipping: ${reason}`)
  return cond ? test.serial : test.serial.skip
}
const asRoot = serialIf(isRoot, 'links-gc: needs root (ip netns, links)')
const withOvs = serialIf(isRoot && hasOvs(), 'links-gc: needs root and a running Open vSwitch')

withOvs('a guest that had an OVS port and a bridge port dies: gc removes the stale OVS row, the empty plumb bridge and its firewall rule; a second gc finds nothing of it', async (t) => {
  await holdGcLock(t)
  const f = await fixture(t)
  const br = ovsBridgeName(t, f)
  await sh('ovs-vsctl', ['--timeout=10', 'add-br', br, '--', 'set', 'bridge', br, 'datapath_type=netdev'])
  // what gc must not touch: a foreign port row whose device is missing too, a foreign empty bridge
  const foreignPort = `${f.id}z`
  await sh('ovs-vsctl', ['--timeout=10', 'add-port', br, foreignPort])
  const foreignBr = `${f.id}y`
  await sh('ip', ['link', 'add', foreignBr, 'type', 'bridge'])
  t.teardown(async () => void (await shQuiet('ip', ['link', 'del', foreignBr])))

  const onOvs = await plumb('ovs-port', f.guest, br, f.v4(10), '--tag', '10')
  t.is(onOvs.exitCode, 0, onOvs.stderr)
  const onBridge = await plumb('attach-veth', f.guest, f.br, f.v4(11))
  t.is(onBridge.exitCode, 0, onBridge.stderr)
  const drop = await forwardDropActive()
  if (drop) t.is((await firewallRules('iptables', f.br)).length, 1)
  const [port] = (await ovsPortsOf(f.id)).filter((p) => p.externalIds['plumb-owner'] === 'plumb')
  t.truthy(port)

  // the guest dies: its veth ends, and with them the host ends, go; the OVS row and the bridge stay
  await sh('ip', ['netns', 'del', f.ns])
  await waitFor(async () => (await getLink(port!.name)) === undefined, { what: 'the host end to vanish with the netns', timeout: NETNS_TEARDOWN_MS })
  t.truthy(await getLink(f.br), 'the plumb bridge is left empty')
  t.true((await ovsPortsOf(f.id)).some((p) => p.name === port!.name), 'the OVS row is stale, not gone')

  const dry = await plumb('gc', '--dry-run')
  t.is(dry.exitCode, 0, dry.stderr)
  t.regex(dry.stdout, new RegExp(`del-port ${port!.name}`))
  t.regex(dry.stdout, new RegExp(`ip link del ${f.br}`))
  t.truthy(await getLink(f.br), 'dry-run changed nothing')

  const r = await plumb('gc', '--json')
  t.is(r.exitCode, 0, r.stderr)
  t.true(r.json.changed)
  t.deepEqual((await ovsPortsOf(f.id)).map((p) => p.name), [foreignPort], "only the foreign row is left")
  t.is(await getLink(f.br), undefined, 'the empty plumb bridge is gone')
  t.deepEqual(await firewallRules('iptables', f.br), [])
  t.deepEqual(await firewallRules('ip6tables', f.br), [])
  t.truthy(await getLink(foreignBr), "a bridge plumb did not make stays, empty or not")

  const again = await plumb('gc', '--json')
  t.is(again.exitCode, 0, again.stderr)
  t.false(JSON.stringify(again.json.plan).includes(f.id), 'nothing of this test left to collect')
})

asRoot('a host end whose guest can no longer be named (the netns name removed, the netns still held) is removed by gc, and the guest end with it', async (t) => {
  await holdGcLock(t)
  const f = await fixture(t)
  const r = await plumb('attach-veth', f.guest, f.br, f.v4(10), '--json')
  t.is(r.exitCode, 0, r.stderr)
  const hostIf = r.json.interfaces.find((i: { netns: string }) => i.netns === 'host').name as string
  // a process keeps the netns alive after `ip netns del` drops its name
  const holder = spawnIn(t, f.ns, 'sleep', ['600'])
  const held = { pid: await waitFor(() => holder.pid, { what: 'the holder process' }) }
  const nsIno = await sh('stat', ['-L', '-c', '%i', `/run/netns/${f.ns}`])
  await waitFor(async () => (await sh('stat', ['-L', '-c', '%i', `/proc/${held.pid}/ns/net`])) === nsIno, { what: 'the holder inside the netns' })
  await sh('ip', ['netns', 'del', f.ns])
  t.truthy(await getLink(hostIf), 'the host end outlives the name')

  const ls = await plumb('ls', '--json')
  // (another suite's gc, outside this file's lock, may have collected it first: then it is gone)
  t.true(ls.json.orphans.includes(hostIf) || (await getLink(hostIf)) === undefined, 'ls calls it an orphan')

  const g = await plumb('gc')
  t.is(g.exitCode, 0, g.stderr)
  t.is(await getLink(hostIf), undefined, 'gc removed it')
  const inside = (await sh('nsenter', [`--net=/proc/${held.pid}/ns/net`, 'ip', '-o', 'link', 'show'])).split('\n').map((l) => l.split(':')[1]?.trim())
  t.deepEqual(inside, ['lo'], 'the guest end went with it')
  t.is(await getLink(f.br), undefined, 'and the bridge plumb made for it')
})

asRoot('a moved device the kernel handed back to the host (renamed) gets its old name, alias and state back from gc', async (t) => {
  // A veth end dies with its netns (so does its peer): only a physical NIC returns to the init
  // netns when its guest dies, maybe under another name if its own was taken meanwhile. That
  // return is done by hand here, for a veth end, to the name `${id}r`.
  await holdGcLock(t)
  const f = await fixture(t)
  const dev = `${f.id}m`
  const returned = `${f.id}r`
  t.teardown(async () => {
    await shQuiet('ip', ['link', 'del', dev])
    await shQuiet('ip', ['link', 'del', returned])
  })
  await sh('ip', ['link', 'add', dev, 'type', 'veth', 'peer', 'name', `${f.id}n`])
  await sh('ip', ['link', 'set', dev, 'alias', 'pt uplink', 'up'])
  t.is((await plumb('move-dev', f.guest, dev, f.v4(10), '-i', 'eth1')).exitCode, 0)
  await sh('ip', ['-n', f.ns, 'link', 'set', 'eth1', 'down'])
  await sh('ip', ['-n', f.ns, 'link', 'set', 'eth1', 'netns', '1', 'name', returned])
  await sh('ip', ['netns', 'del', f.ns])
  t.regex(String((await getLink(returned))?.ifalias), /role=moved/)

  const g = await plumb('gc')
  t.is(g.exitCode, 0, g.stderr)
  t.regex(g.stdout, new RegExp(`gave ${dev} back`))
  const back = await getLink(dev)
  t.truthy(back)
  t.is(back?.ifalias, 'pt uplink')
  t.true((back?.flags as string[]).includes('UP'))
  t.is(await getLink(returned), undefined)
})

asRoot('move-dev of a veth end, then the guest dies: the kernel destroys the pair, gc has nothing of it to give back', async (t) => {
  await holdGcLock(t)
  const f = await fixture(t)
  const dev = `${f.id}m`
  t.teardown(async () => void (await shQuiet('ip', ['link', 'del', dev])))
  await sh('ip', ['link', 'add', dev, 'type', 'veth', 'peer', 'name', `${f.id}n`])
  t.is((await plumb('move-dev', f.guest, dev)).exitCode, 0)
  await sh('ip', ['netns', 'del', f.ns])
  await waitFor(async () => (await getLink(`${f.id}n`)) === undefined, { what: 'the veth pair to die with the netns', timeout: NETNS_TEARDOWN_MS })
  const g = await plumb('gc', '--json')
  t.is(g.exitCode, 0, g.stderr)
  t.false(JSON.stringify(g.json).includes(f.id))
  t.is(await getLink(dev), undefined)
})

asRoot('gc waits for an attach that holds the bridge lock: an empty plumb bridge is deleted only once the lock is let go', async (t) => {
  await holdGcLock(t)
  const f = await fixture(t)
  // an empty bridge with plumb's mark: what an attach-veth has just created, before its port
  await sh('ip', ['link', 'add', f.br, 'type', 'bridge'])
  await sh('ip', ['link', 'set', f.br, 'alias', `plumb:1 role=bridge op=attach-veth br=${f.br}`])
  const lock = await acquireBridgeLock('shared')
  t.teardown(() => lock.release())
  let settled = false
  const collecting = plumb('gc', '--json').finally(() => (settled = true))
  // gc has the lock file open: it stands at the lock, which our shared hold keeps it from taking
  await waitFor(() => pidsWithOpen(BRIDGE_LOCK).some((pid) => / gc --json/.test(cmdlineOf(pid))), { timeout: 10_000, what: 'gc to reach the bridge lock' })
  t.false(settled, 'gc waits while an attach holds the lock')
  t.truthy(await getLink(f.br), 'the bridge is still there')
  lock.release()
  const r = await collecting
  t.is(r.exitCode, 0, r.stderr)
  t.is(await getLink(f.br), undefined, 'then gc deletes it')
})

/** `pid` has no child process (the programs it ran are done). */
function childless(pid: number): boolean {
  try {
    return readdirSync(`/proc/${pid}/task`).every((tid) => readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim() === '')
  } catch {
    return false
  }
}

asRoot("an attach to a bridge that does not exist yet, which found a leftover rule of that bridge's name, adds its own when gc removed that leftover while the attach waited for the bridge lock", async (t) => {
  await holdGcLock(t)
  if (!(await forwardDropActive())) return t.pass('no FORWARD DROP here: plumb adds no rule at all')
  const f = await fixture(t)
  // the leftover: an attach's rule whose port and bridge went without plumb (a killed run's, say)
  t.is((await plumb('attach-veth', f.guest, f.br, f.v4(2))).exitCode, 0)
  await sh('ip', ['-n', f.ns, 'link', 'del', 'eth1'])
  await sh('ip', ['link', 'del', f.br])
  t.is((await firewallRules('iptables', f.br)).length, 1, 'the leftover rule')
  // gc's part: it holds the bridge lock, sees no bridge of that name, removes its rule
  const lock = await acquireBridgeLock('exclusive')
  t.teardown(() => lock.release())
  let settled = false
  const attach = plumb('attach-veth', f.guest, f.br, f.v4(2)).finally(() => (settled = true))
  const attacher = (): number | undefined => pidsWithOpen(BRIDGE_LOCK).find((pid) => cmdlineOf(pid).includes(` attach-veth ${f.guest} `))
  // waiting for the lock, its early read of the firewall (an iptables-save) done
  await waitFor(() => attacher() !== undefined && childless(attacher()!), { timeout: 10_000, what: 'the attach to wait for the bridge lock' })
  t.false(settled)
  await removeFirewallRules(f.br)
  lock.release()
  const r = await attach
  t.is(r.exitCode, 0, r.stderr)
  t.is((await firewallRules('iptables', f.br)).length, 1, `the attach's own rule: ${r.stdout}`)
  t.is((await plumb('detach', f.guest, '--all')).exitCode, 0)
  t.deepEqual(await firewallRules('iptables', f.br), [], 'and detach removes it with the bridge')
})

asRoot("gc that found a rule's bridge missing keeps the rule when the bridge is there again by the time it removes rules (a lab deploy makes its bridge and rule without the bridge lock)", async (t) => {
  await holdGcLock(t)
  t.true(await forwardDropActive(), "needs Docker's FORWARD DROP (scripts/testbed.sh up): else no bridge has a rule")
  const f = await fixture(t)
  // a rule whose bridge is gone
  t.is((await plumb('attach-veth', f.guest, f.br, f.v4(2))).exitCode, 0)
  await sh('ip', ['-n', f.ns, 'link', 'del', 'eth1'])
  await sh('ip', ['link', 'del', f.br])
  t.is((await firewallRules('iptables', f.br)).length, 1, 'the rule, its bridge gone')
  // gc reads the links (no such bridge), then waits for the firewall lock, which this test holds
  let letGo!: () => void
  const held = new Promise<void>((resolve) => (letGo = resolve))
  let taken!: () => void
  const holding = withFirewallLock(false, async () => {
    taken()
    await held
  })
  await new Promise<void>((resolve) => (taken = resolve))
  t.teardown(() => letGo())
  const collecting = plumb('gc', '--json')
  await waitFor(() => pidsWithOpen(FIREWALL_LOCK).some((pid) => / gc --json/.test(cmdlineOf(pid))), { timeout: 20_000, what: 'gc to reach the firewall lock' })
  // meanwhile a deploy makes the bridge again: the rule is its own now (plumb adds a bridge's
  // rule only once the bridge exists, under the firewall lock)
  await sh('ip', ['link', 'add', f.br, 'type', 'bridge'])
  letGo()
  await holding
  const r = await collecting
  t.is(r.exitCode, 0, r.stderr)
  t.is((await firewallRules('iptables', f.br)).length, 1, `the rule of the bridge that is there again stays: ${r.stdout}`)
})

asRoot('the bridge lock: shared holders coexist, an exclusive one waits for them, and gives up after its timeout', async (t) => {
  const a = await acquireBridgeLock('shared')
  const b = await acquireBridgeLock('shared')
  t.teardown(() => (a.release(), b.release()))
  const e = await t.throwsAsync(acquireBridgeLock('exclusive', { timeoutMs: 100 }), { instanceOf: PlumbError })
  t.regex(e!.message, /bridge lock \/run\/plumb\/bridges\.lock/)
  let got = false
  const ex = acquireBridgeLock('exclusive').then((l) => ((got = true), l))
  a.release()
  // an absence can only be watched for a while: ten of the waiter's 5 ms retries
  await new Promise((r) => setTimeout(r, 50))
  t.false(got, 'one shared holder is left')
  b.release()
  const lock = await ex
  t.true(got)
  t.is((await shQuiet('flock', ['-n', '-s', '/run/plumb/bridges.lock', 'true'])).exitCode, 1, 'another process sees it held')
  lock.release()
  lock.release() // idempotent
  // (a gc of another test may hold it for a moment: a leaked hold would keep it for good)
  t.is((await shQuiet('flock', ['-w', '30', '-s', '/run/plumb/bridges.lock', 'true'])).exitCode, 0, 'and free again')
  t.deepEqual(await acquireBridgeLock('exclusive', { dryRun: true }).then((l) => (l.release(), 'no lock in dry-run')), 'no lock in dry-run')
})
