// gc: remove plumb's leftovers whose guest is gone: stale OVS port rows, orphaned host ends,
// DHCP clients, firewall rules and empty plumb bridges. Touches only what carries plumb's mark,
// and keeps (and says so) whatever it cannot tell is a leftover: an engine or OVS that does not
// answer means "don't know", never "gone".

import { readFileSync, readdirSync, rmSync, rmdirSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { closeFd, openHandleIn, openHostHandle, openNetnsFd } from '../kernel/index.js'
import type { LinkInfo } from '../kernel/types.js'
import { parseGuestRef, parseMark, removeHosts, ruleDevice, ruleGuests, ruleKey, stripResolv } from '../parse/index.js'
import { containerFate, guestProbe } from '../guest/index.js'
import type { ContainerFate, EngineName } from '../guest/index.js'
import { forgetContainer, listStoredRecords } from '../watch/store.js'
import { PlumbError, asPlumbError } from '../errors.js'
import { ignoreGone } from './guest-config.js'
import { emptyResult } from './result.js'
import type { OpResult } from './result.js'
import { runTx } from './tx.js'
import { sameNs, selfIdentity } from './journal.js'
import { cookieOf } from './context.js'
import { acquireBridgeLock, removeLockFile } from './bridge-lock.js'
import { dropEmptyChains, readMarks, removeRulesPicked } from './firewall.js'
import { RECORDS_DIR, listRecords, lockGuestRecord, lockPathOf, readRecord, recordNs, removeRecord } from './guest-record.js'
import { RUN_DIR } from '../paths.js'
import { recordsDir } from '../config.js'
import { removeDeadTemps } from '../write-file.js'
import { aliveElsewhere, aliveReason } from './liveness.js'
import type { AliveElsewhere, LiveNetns } from './liveness.js'
import type { GuestRecord } from './guest-record.js'
import { isDisposableBridge } from './bridge.js'
import { returnMovedDevice } from './teardown.js'

export interface GcOptions {
  dryRun?: boolean
  log?: (line: string) => void
}

/** Something of plumb's that gc left in place, and why (`result.kept`). */
export interface GcKept {
  /** the interface, OVS port row or bridge */
  name: string
  what: 'host end' | 'OVS port' | 'OVS port rows' | 'DHCP clients' | 'record' | 'replay record' | 'bridge' | 'firewall rules'
  guest?: string
  /** gc could not find out whether it is a leftover (an engine or OVS did not answer) */
  unknown?: true
  reason: string
}

/** 'there' with `why`: its engine has no such container, but a process is in its netns (./liveness.ts) */
type Fate = { state: 'there'; dev: number; ino: number; cookie?: number; why?: string } | { state: 'gone'; reason: string } | { state: 'unknown'; reason: string; error: PlumbError }

/**
 * The fate of each guest label, asked once per gc run; a found guest's netns is closed at once. A
 * container its engine does not have is gone only while nothing proves it alive elsewhere (see
 * ./liveness.ts: another daemon's, or renamed).
 */
function guestFates(alive: AliveElsewhere): (label: string | undefined) => Promise<Fate> {
  const probe = guestProbe()
  const cache = new Map<string, Promise<Fate>>()
  const ask = async (label: string | undefined): Promise<Fate> => {
    if (!label) return { state: 'gone', reason: 'its mark names no guest' }
    let ref
    try {
      ref = parseGuestRef(label, { allowHostWord: true })
    } catch (err) {
      return { state: 'unknown', reason: `its mark names a guest plumb cannot read ("${label}")`, error: asPlumbError(err) }
    }
    const s = await probe(ref)
    if (s.state === 'gone' && ref.kind === 'container') return stillAlive(label, s, await alive(label))
    if (s.state !== 'found') return s
    const cookie = cookieOf(s.netns)
    s.netns.close()
    return { state: 'there', dev: s.netns.dev, ino: s.netns.ino, ...(cookie === undefined ? {} : { cookie }) }
  }
  return (label) => {
    const key = label ?? ''
    if (!cache.has(key)) cache.set(key, ask(label))
    return cache.get(key)!
  }
}

/** An engine's "no such container" against a process still in the netns of what plumb made for it. */
function stillAlive<T extends { state: 'gone'; reason: string }>(label: string, gone: T, live: LiveNetns | undefined): T | Extract<Fate, { state: 'there' }> {
  if (live === undefined) return gone
  return { state: 'there', dev: live.dev, ino: live.ino, why: aliveReason(gone.reason, label, live) }
}

function keptFor(name: string, what: GcKept['what'], guest: string | undefined, f: Exclude<Fate, { state: 'gone' }>): GcKept {
  if (f.state === 'there') return { name, what, ...(guest ? { guest } : {}), reason: f.why ? `its guest ${guest} is there: ${f.why}` : `its guest ${guest} is there` }
  return { name, what, ...(guest ? { guest } : {}), unknown: true, reason: `cannot tell whether its guest ${guest ?? '?'} is gone: ${f.reason}` }
}

type OvsModule = typeof import('../ovs/index.js')
type PortInfo = Awaited<ReturnType<OvsModule['listPlumbPorts']>>[number]

/** plumb's OVS port rows; none when OVS is not on this host; `unknown` when OVS could not be asked (or cannot act). */
async function readPlumbPorts(): Promise<{ ovs: OvsModule; ports: PortInfo[]; unknown?: PlumbError }> {
  const ovs = await import('../ovs/index.js')
  try {
    const ports = await ovs.listPlumbPorts()
    if (ports.length === 0) return { ovs, ports }
    // Removing a row waits for ovs-vswitchd to apply it: without one running, gc could only fail half-way.
    const up = await ovs.ovsAvailable()
    if (!up.ok) return { ovs, ports: [], unknown: new PlumbError('UNSUPPORTED', `Open vSwitch cannot change its ports now: ${up.reason ?? 'ovs-vswitchd does not answer'}`, { hint: ovs.START_HINT }) }
    return { ovs, ports }
  } catch (err) {
    if (ovs.ovsNotHere(err)) return { ovs, ports: [] }
    return { ovs, ports: [], unknown: asPlumbError(err) }
  }
}

/**
 * The link names of the netns ovs-vswitchd runs in, read after the port rows: there a port's
 * interface missing means gone. A gc run in another netns (taking it for its host) sees none of
 * them, and went on to delete every plumb port row on the machine. Cannot tell: the error.
 */
async function switchLinkNames(ovs: OvsModule, links: LinkInfo[]): Promise<Set<string> | PlumbError> {
  const at = ovs.vswitchdNetns()
  if ('reason' in at) return new PlumbError('UNSUPPORTED', `cannot tell which network namespace Open vSwitch's interfaces are in: ${at.reason}`, { hint: ovs.START_HINT })
  let fd: number | undefined
  try {
    fd = openNetnsFd(at.path)
    const theirs = statSync(`/proc/self/fd/${fd}`)
    const mine = selfIdentity().hostNs
    if (theirs.dev === mine.dev && theirs.ino === mine.ino) return new Set(links.map((l) => l.name))
    const h = openHandleIn(fd, `ovs-vswitchd's netns (${at.path})`)
    try {
      return new Set((await h.getLinks()).map((l) => l.name))
    } finally {
      h.close()
    }
  } catch (err) {
    return asPlumbError(err)
  } finally {
    if (fd !== undefined) closeFd(fd)
  }
}

/** A process whose argv names the lease's state dir (the supervisor gets it as $1): a recycled pid never does. */
function mentions(pid: number, dir: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').some((a) => a === dir || a.startsWith(`${dir}/`))
  } catch {
    return false
  }
}

/** How long ago `path` was last modified, or undefined when it does not exist. */
function ageMs(path: string): number | undefined {
  try {
    return Date.now() - statSync(path).mtimeMs
  } catch {
    return undefined
  }
}

// A state dir is a leftover only when its supervisor is gone: a live supervisor cleans up after
// its client by itself, and `alive: false` also describes a lease still being started (no
// client.pid yet), which a concurrent gc must not tear down. A dir with no supervisor pid at all
// may be one a plumb has just created: it is a leftover only once it is older than any start.
// A dir with a `stopping` file is one a plumb's stopDhcp (detach, --release, a rollback) is in
// charge of: it stops the supervisor first, so the lease looks unsupervised for the seconds it
// spends sending the DHCPRELEASE; a gc stopping the client (or removing dhclient's lease file)
// then would lose the release. It is a leftover only once the stop has been at it longer than
// any stop takes (a plumb killed mid-stop).
const GRACE_MS = 60_000
function unsupervised(l: { pid: number; stateDir: string; alive: boolean }): boolean {
  if (l.alive) return false
  const stopping = ageMs(join(l.stateDir, 'stopping'))
  if (stopping !== undefined) return stopping > GRACE_MS
  if (l.pid > 0) return !mentions(l.pid, l.stateDir)
  const age = ageMs(l.stateDir)
  return age !== undefined && age > GRACE_MS
}

/**
 * The files of a gone guest that outlive it on the host (an ip netns's /etc/netns/NAME; a
 * container's files go with the container, and /proc/PID/root paths with the process): plumb's
 * lines out, the files it created removed.
 */
function cleanNamesFiles(r: GuestRecord): void {
  const n = r.names
  if (!n) return
  const onHost = (p: string): boolean => !p.startsWith('/proc/')
  for (const p of (n.created ?? []).filter(onHost)) rmSync(p, { force: true })
  for (const [file, p] of Object.entries(n.files ?? {})) {
    if (!onHost(p) || n.created?.includes(p) || file === 'hostname') continue
    let text: string
    try {
      text = readFileSync(p, 'utf8')
    } catch {
      continue
    }
    const next = file === 'hosts' ? removeHosts(text) : stripResolv(text)
    if (next !== text) writeFileSync(p, next)
  }
  if (n.createdDir) {
    try {
      rmdirSync(n.createdDir)
    } catch {
      /* not empty: someone else's files are there too */
    }
  }
}

export async function gc(opts: GcOptions = {}): Promise<OpResult> {
  const result = emptyResult('gc', 'host', opts.dryRun ?? false)
  const kept: GcKept[] = []
  const unknownErrors: PlumbError[] = []
  const keep = (k: GcKept, error?: PlumbError): void => {
    kept.push(k)
    if (error) unknownErrors.push(error)
  }
  let journalKept = 0
  const hostNs = openHostHandle()
  try {
    // First what killed plumbs left half-made (their journal entries): after that, everything
    // plumb made carries its mark, and the rest of gc goes by marks.
    const { recoverInterrupted } = await import('./recover.js')
    const recovered = await recoverInterrupted({ hostNs, ...(opts.dryRun ? { dryRun: true } : {}) })
    for (const line of recovered.undone) result.plan.push(line)
    if (recovered.undone.length) result.messages.push(`finished ${recovered.undone.length} step(s) of interrupted plumb runs`)
    for (const k of recovered.kept) result.messages.push(`kept an interrupted plumb run's journal entry: ${k}`)
    journalKept = recovered.kept.length
    if (!opts.dryRun) sweepTemps()
    const alive = aliveElsewhere(hostNs)
    const fate = guestFates(alive)
    // OVS ports first, host links second: ovs-port creates the veth before it adds the port, so
    // a port listed here whose interface is missing from the links read after it is really gone,
    // not one a concurrent plumb is making right now.
    const { ovs, ports: plumbPorts, unknown: ovsUnknown } = await readPlumbPorts()
    if (ovsUnknown) keep({ name: 'Open vSwitch', what: 'OVS port rows', unknown: true, reason: `not examined: ${ovsUnknown.message}` }, ovsUnknown)
    const links = await hostNs.getLinks()
    const deadHostEnds: Array<{ link: LinkInfo; guest?: string; reason: string }> = []
    const returned: LinkInfo[] = []
    const detachedPorts: LinkInfo[] = []
    for (const l of links) {
      const m = parseMark(l.alias)
      if (!m) continue
      if (m.role === 'host') {
        const f = await fate(m.guest)
        if (f.state === 'gone') deadHostEnds.push({ link: l, ...(m.guest ? { guest: m.guest } : {}), reason: f.reason })
        else keep(keptFor(l.name, 'host end', m.guest, f), f.state === 'unknown' ? f.error : undefined)
      }
      // A moved device whose guest died comes back to the host (maybe renamed): give it its name back.
      if (m.role === 'moved') returned.push(l)
      // A VXLAN port whose bridge was deleted under it joins nothing any more.
      if (m.role === 'port' && m.op === 'vxlan' && !links.some((b) => b.index === l.master && b.name === m.bridge)) detachedPorts.push(l)
    }
    const stalePorts: Array<{ port: PortInfo; name: string; bridge: string; why: string }> = []
    const names = plumbPorts.length ? await switchLinkNames(ovs, links) : new Set<string>()
    for (const p of plumbPorts) {
      const guest = p.externalIds['plumb-guest']
      if (names instanceof Set && !names.has(p.name)) {
        stalePorts.push({ port: p, name: p.name, bridge: p.bridge, why: `its interface ${p.name} is gone` })
        continue
      }
      const f = await fate(guest)
      if (f.state === 'gone') stalePorts.push({ port: p, name: p.name, bridge: p.bridge, why: `its guest ${guest} is gone` })
      else if (!(names instanceof Set)) keep({ name: p.name, what: 'OVS port', ...(guest ? { guest } : {}), unknown: true, reason: `cannot tell whether its interface is gone: ${names.message}` }, names)
      else keep(keptFor(p.name, 'OVS port', guest, f), f.state === 'unknown' ? f.error : undefined)
    }
    let leases: Array<{ stateKey: string; ifname: string; alive?: boolean }> = []
    let dhcpMod: typeof import('../dhcp/index.js') | undefined
    try {
      dhcpMod = await import('../dhcp/index.js')
      leases = (await dhcpMod.listLeases()).filter(unsupervised)
    } catch (err) {
      dhcpMod = undefined
      const e = asPlumbError(err)
      keep({ name: 'DHCP state', what: 'DHCP clients', unknown: true, reason: `not examined: ${e.message}` }, e)
    }

    // Records whose guest is gone, or is a new netns under the same name; "don't know" keeps them.
    const deadRecords: Array<{ record: GuestRecord; why: string }> = []
    for (const r of listRecords()) {
      const f = await fate(r.guest)
      if (f.state === 'gone') deadRecords.push({ record: r, why: 'the guest is gone' })
      else if (f.state === 'there' && !sameNs(f, recordNs(r))) deadRecords.push({ record: r, why: `${r.guest} is another netns now` })
      else if (f.state === 'unknown') keep(keptFor(r.key, 'record', r.guest, f), f.error)
    }

    const goneContainers = await removedContainers(keep, alive)

    await runTx(opts, async (tx) => {
      for (const g of goneContainers) {
        await tx.step(`# forget the replay record of ${g.label} (and p2p links to it in other records)`, () => forgetContainer(g.engine, g.id))
        result.messages.push(`forgot the replay record of ${g.label}: the container no longer exists`)
      }
      for (const { record: r, why } of deadRecords) {
        // Under the guest's lock: an op on a new netns under the same key may be writing its own record.
        await lockGuestRecord(tx, { key: r.key, label: r.guest })
        await tx.step(`# forget the record of ${r.guest} (its sysctls and name edits went with it)${r.names ? ' and clean the files plumb left on the host' : ''}`, async () => {
          // still the dead netns's record (readRecord matches the netns identity), not a new one's
          if (!readRecord({ key: r.key, ...recordNs(r) })) return
          cleanNamesFiles(r)
          removeRecord(r.key)
          // held by this gc: a waiter finds the file it locked gone from the path and takes a new one
          rmSync(lockPathOf(r.key), { force: true })
        })
        result.messages.push(`removed the record of ${r.guest}: ${why}`)
      }
      for (const { link: l, guest, reason } of deadHostEnds) {
        await tx.step(`ip link del ${l.name}`, () => ignoreGone(hostNs.delLink(l.index)))
        result.messages.push(`removed ${l.name}: its guest ${guest ?? '?'} is gone (${reason})`)
      }
      for (const l of returned) await returnMovedDevice(tx, hostNs, l, parseMark(l.alias)!, links, result)
      for (const l of detachedPorts) {
        await tx.step(`ip link del ${l.name}`, () => ignoreGone(hostNs.delLink(l.index)))
        result.messages.push(`removed ${l.name}: its bridge ${parseMark(l.alias)!.bridge} is gone`)
      }
      for (const p of stalePorts) {
        await tx.step(`ovs-vsctl --if-exists del-port ${p.name}`, () => ovs.delPortRow(p.port))
        result.messages.push(`removed stale OVS port ${p.name}: ${p.why}`)
      }
      // Only bridges that just lost a stale port: a plumb OVS bridge seen empty for another reason
      // may be one a concurrent ovs-port --create-bridge is about to give its first port.
      for (const bridge of new Set(stalePorts.map((p) => p.bridge).filter(Boolean))) {
        await tx.step(`# ovs-vsctl del-br ${bridge} if plumb made it and it has no port left`, async () => {
          if (await ovs.deleteBridgeIfEmptyAndOurs(bridge)) result.messages.push(`deleted empty plumb OVS bridge ${bridge}`)
        })
      }
      for (const l of leases) {
        await tx.step(`# stop the DHCP client of ${l.stateKey} ${l.ifname}`, () => dhcpMod!.stopDhcp({ stateKey: l.stateKey, ifname: l.ifname, release: false }))
        result.messages.push(`cleaned the DHCP state of ${l.ifname} (${l.stateKey})`)
      }
      // Bridges and firewall rules left without any plumb port, and rules whose guest is gone.
      // Rules before links: attach-veth adds its rule after its port exists, so a rule seen here
      // has its port in the links read next unless the port is really gone.
      const { marks } = await readMarks()
      const ruleBridges = new Set(marks.flatMap((m) => (m.op === 'bridge' || m.op === 'isolate' || m.op === 'allow' || (m.op === 'masquerade' && m.bridge) ? [m.bridge!] : [])))
      const deadGuests = new Map<string, string>()
      for (const g of new Set(marks.flatMap(ruleGuests))) {
        const f = await fate(g)
        if (f.state === 'gone') deadGuests.set(g, f.reason)
        else if (f.state === 'unknown') keep(keptFor(`the rules of ${g}`, 'firewall rules', g, f), f.error)
      }
      // No attach-veth is between finding a bridge and giving it a port while gc holds this.
      const lock = await acquireBridgeLock('exclusive', { dryRun: tx.dryRun })
      try {
        const removed = new Set(deadHostEnds.map((d) => d.link.index))
        const after = tx.dryRun ? links.filter((l) => !removed.has(l.index)) : await hostNs.getLinks()
        // A bridge is empty only if it was empty in the first read too (but for the dead host ends
        // just removed): belt and braces beside the lock, which an attach-veth holds from finding
        // or creating the bridge until its port exists.
        const emptyAtStart = (name: string): boolean => {
          const first = links.find((l) => l.name === name)
          return first !== undefined && !links.some((l) => l.master === first.index && !removed.has(l.index))
        }
        const unknownEnds = new Set(kept.filter((k) => k.unknown && k.what === 'host end').map((k) => k.name))
        const deleting: LinkInfo[] = []
        // A rule goes with its bridge (or host interface): when it is gone, or gc deletes it now.
        const gone = new Set(marks.map(ruleDevice).filter((d): d is string => d !== undefined && !after.some((l) => l.name === d)))
        const plumbBridges = after.filter((l) => isDisposableBridge(l.alias))
        for (const name of new Set([...ruleBridges, ...plumbBridges.map((b) => b.name)])) {
          const br = after.find((l) => l.name === name)
          const ports = br ? after.filter((l) => l.master === br.index) : []
          const hostEnds = ports.filter((p) => parseMark(p.alias)?.role === 'host')
          if (hostEnds.length > 0) {
            // kept for its ports: as unknown as they are, when all of them are
            keep({ name, what: 'bridge', reason: `it still has plumb's ports ${hostEnds.map((p) => p.name).join(' ')}`, ...(hostEnds.every((p) => unknownEnds.has(p.name)) ? { unknown: true as const } : {}) })
            continue
          }
          if (br !== undefined && ports.length === 0 && emptyAtStart(name) && isDisposableBridge(br.alias)) {
            deleting.push(br)
            gone.add(name)
          }
        }
        // The rule of a bridge that still exists stays (detach removes it with the last port):
        // an attach-veth that found it in place may be about to add its port. And a device found
        // missing above is looked for again under the firewall lock, right before the batch: a
        // lab deploy makes its bridge, and then its rule, without the bridge lock, and the rule
        // of a bridge made again since is that deploy's (every plumb adds a device's rule only
        // once the device exists, and under this lock). One missing now is no live op's.
        const done = await removeRulesPicked(tx, hostNs, async () => {
          const now = tx.dryRun ? after : await hostNs.getLinks()
          const missing = (dev: string): boolean => deleting.some((b) => b.name === dev) || !now.some((l) => l.name === dev)
          return (m) => {
            const dev = ruleDevice(m)
            return (dev !== undefined && gone.has(dev) && missing(dev)) || ruleGuests(m).some((g) => deadGuests.has(g))
          }
        })
        for (const key of new Set(done.removed.map(ruleKey))) {
          const m = done.removed.find((x) => ruleKey(x) === key)!
          const dead = ruleGuests(m).find((g) => deadGuests.has(g))
          result.messages.push(`removed plumb's ${m.op === 'bridge' ? 'ACCEPT' : m.op} rule ${key}: ${dead ? `its guest ${dead} is gone (${deadGuests.get(dead)})` : `${ruleDevice(m)} is gone`}`)
        }
        for (const br of deleting) {
          await tx.step(`ip link del ${br.name}`, () => ignoreGone(hostNs.delLink(br.index)))
          result.messages.push(`deleted empty plumb bridge ${br.name}`)
        }
      } finally {
        lock.release()
      }
      // Not under the bridge lock: no attach waits on it (an attach adds its rule under the firewall lock alone).
      for (const c of await dropEmptyChains(tx)) result.messages.push(`deleted plumb's empty chain ${c}`)
      result.changed = tx.lines.length > 0 || recovered.undone.length > 0
      result.plan = [...result.plan, ...tx.lines]
      return result
    })
  } finally {
    hostNs.close()
  }
  return explainKept(result, kept, unknownErrors, journalKept > 0)
}

/**
 * The containers with a replay record (lib/watch) that their engine no longer has. A stopped
 * container keeps its record (it may start again); an engine that cannot be asked keeps them
 * all, asked once (a hung engine costs its timeout once, not per record).
 */
async function removedContainers(keep: (k: GcKept, error?: PlumbError) => void, alive: AliveElsewhere): Promise<Array<{ engine: EngineName; id: string; label: string }>> {
  const out: Array<{ engine: EngineName; id: string; label: string }> = []
  const down = new Map<EngineName, Extract<ContainerFate, { state: 'unknown' }>>()
  for (const s of listStoredRecords()) {
    const label = `${s.engine}:${'record' in s ? (s.record.name ?? s.id.slice(0, 12)) : s.id.slice(0, 12)}`
    const f = down.get(s.engine) ?? (await containerFate(s.engine, s.id))
    const there = f.state === 'gone' ? stillAlive(label, f, await alive(label)) : undefined
    if (there?.state === 'there') keep({ name: s.file, what: 'replay record', guest: label, reason: `its container is there: ${there.why}` })
    else if (f.state === 'gone') out.push({ engine: s.engine, id: s.id, label })
    else if (f.state === 'unknown') {
      if (f.error.code === 'UNSUPPORTED') down.set(s.engine, f)
      keep({ name: s.file, what: 'replay record', guest: label, unknown: true, reason: `cannot tell whether container ${label} still exists: ${f.reason}` }, f.error)
    }
  }
  return out
}

/**
 * What gc kept goes into the result (`kept`, and a line each: stdout when its guest is there,
 * a warning when gc could not tell). Nothing decided at all (no step, no journal entry kept
 * with its reason, only "don't know"): that is the error, with the code of the first cause
 * (an engine or OVS not running: 5).
 */
function explainKept(result: OpResult, kept: GcKept[], unknownErrors: PlumbError[], keptJournal: boolean): OpResult {
  result.kept = kept
  const unknown = kept.filter((k) => k.unknown)
  const line = (k: GcKept): string => `kept ${k.what === 'OVS port rows' ? "Open vSwitch's port rows" : k.what === 'DHCP clients' ? "plumb's DHCP clients" : `${k.what} ${k.name}`}: ${k.reason}`
  if (unknown.length > 0 && result.plan.length === 0 && unknown.length === kept.length && !keptJournal) {
    const first = unknownErrors[0] ?? new PlumbError('FAILED', 'unknown')
    throw new PlumbError(first.code, `gc could not decide about anything it found, and changed nothing: ${unknown.map(line).join('; ')}`, {
      ...(first.hint ? { hint: first.hint } : {}),
      cause: first,
    })
  }
  if (!result.changed) {
    result.messages.push(unknown.length ? `nothing collected: ${unknown.length} of plumb's things kept because gc could not tell whether they are leftovers` : 'nothing to collect: no leftovers of plumb on this host')
  }
  for (const k of kept) if (!k.unknown) result.messages.push(line(k))
  if (unknown.length) result.warnings = unknown.map(line)
  return result
}

/**
 * Temporary files (`NAME.PID.tmp`) that a killed writer never renamed into place: the firewall
 * read's cache, guest records, container records. The write they belonged to never happened;
 * a live writer's are left alone. And guests' lock files without a record beside them, when
 * nobody holds them (a guest whose edits were all undone, or whose record gc removed).
 */
function sweepTemps(): void {
  try {
    const names = new Set(readdirSync(RECORDS_DIR))
    for (const name of names) {
      if (name.endsWith('.lock') && !names.has(`${name.slice(0, -'.lock'.length)}.json`)) removeLockFile(join(RECORDS_DIR, name))
    }
  } catch {
    // no records dir: nothing of this kind
  }
  for (const dir of [RUN_DIR, RECORDS_DIR, recordsDir()]) removeDeadTemps(dir)
}

