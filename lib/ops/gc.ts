// gc: remove plumb's leftovers whose guest is gone: stale OVS port rows, orphaned host ends,
// DHCP clients, firewall rules and empty plumb bridges. Touches only what carries plumb's mark.

import { readFileSync, rmSync, rmdirSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { openHostHandle } from '../kernel/index.js'
import type { LinkInfo } from '../kernel/types.js'
import { parseGuestRef, parseMark, removeHosts, stripResolv } from '../parse/index.js'
import { resolveGuest } from '../guest/index.js'
import { ignoreGone } from './guest-config.js'
import { emptyResult } from './result.js'
import type { OpResult } from './result.js'
import { runTx } from './tx.js'
import { acquireBridgeLock } from './bridge-lock.js'
import { listRecords, removeRecord } from './guest-record.js'
import type { GuestRecord } from './guest-record.js'

export interface GcOptions {
  dryRun?: boolean
  log?: (line: string) => void
}

async function guestAlive(label: string | undefined): Promise<boolean> {
  if (!label) return false
  try {
    const netns = await resolveGuest(parseGuestRef(label, { allowHostWord: true }), { allowHost: true })
    netns.close()
    return true
  } catch (err) {
    // Only "not found" (no such container, not running, no such netns or pid) means gone: an
    // engine that did not answer in time says nothing, and gc must not delete a live guest's link.
    return (err as { code?: string }).code !== 'NOT_FOUND'
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

/** Records whose guest is gone (not found, or a new netns under the same name); "could not ask" keeps them. */
async function staleRecords(): Promise<GuestRecord[]> {
  const out: GuestRecord[] = []
  for (const r of listRecords()) {
    try {
      const netns = await resolveGuest(parseGuestRef(r.guest, { allowHostWord: true }), { allowHost: true })
      const same = netns.ino === r.netnsIno && netns.dev === r.netnsDev
      netns.close()
      if (!same) out.push(r)
    } catch (err) {
      if ((err as { code?: string }).code === 'NOT_FOUND') out.push(r)
    }
  }
  return out
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
  const hostNs = openHostHandle()
  try {
    // First what killed plumbs left half-made (their journal entries): after that, everything
    // plumb made carries its mark, and the rest of gc goes by marks.
    const { recoverInterrupted } = await import('./recover.js')
    const recovered = await recoverInterrupted({ hostNs, ...(opts.dryRun ? { dryRun: true } : {}) })
    for (const line of recovered.undone) result.plan.push(line)
    if (recovered.undone.length) result.messages.push(`finished ${recovered.undone.length} step(s) of interrupted plumb runs`)
    for (const k of recovered.kept) result.messages.push(`kept an interrupted plumb run's journal entry: ${k}`)
    // OVS ports first, host links second: ovs-port creates the veth before it adds the port, so
    // a port listed here whose interface is missing from the links read after it is really gone,
    // not one a concurrent plumb is making right now.
    let ovs: typeof import('../ovs/index.js') | undefined
    let plumbPorts: Awaited<ReturnType<typeof import('../ovs/index.js')['listPlumbPorts']>> = []
    try {
      ovs = await import('../ovs/index.js')
      if ((await ovs.ovsAvailable()).ok) plumbPorts = await ovs.listPlumbPorts()
      else ovs = undefined
    } catch {
      ovs = undefined
    }
    const links = await hostNs.getLinks()
    const alive = new Map<string, boolean>()
    const isAlive = async (label: string | undefined): Promise<boolean> => {
      const key = label ?? ''
      if (!alive.has(key)) alive.set(key, await guestAlive(label))
      return alive.get(key)!
    }
    const deadHostEnds: LinkInfo[] = []
    const returned: LinkInfo[] = []
    const detachedPorts: LinkInfo[] = []
    for (const l of links) {
      const m = parseMark(l.alias)
      if (!m) continue
      if (m.role === 'host' && !(await isAlive(m.guest))) deadHostEnds.push(l)
      // A moved device whose guest died comes back to the host (maybe renamed): give it its name back.
      if (m.role === 'moved') returned.push(l)
      // A VXLAN port whose bridge was deleted under it joins nothing any more.
      if (m.role === 'port' && m.op === 'vxlan' && !links.some((b) => b.index === l.master && b.name === m.bridge)) detachedPorts.push(l)
    }
    const stalePorts: Array<{ name: string; bridge: string }> = []
    const names = new Set(links.map((l) => l.name))
    for (const p of plumbPorts) {
      if (!names.has(p.name) || !(await isAlive(p.externalIds['plumb-guest']))) stalePorts.push(p)
    }
    let leases: Array<{ stateKey: string; ifname: string; alive?: boolean }> = []
    let dhcpMod: typeof import('../dhcp/index.js') | undefined
    try {
      dhcpMod = await import('../dhcp/index.js')
      leases = (await dhcpMod.listLeases()).filter(unsupervised)
    } catch {
      dhcpMod = undefined
    }

    const deadRecords = await staleRecords()

    return await runTx(opts, async (tx) => {
      for (const r of deadRecords) {
        await tx.step(`# forget the record of ${r.guest} (its sysctls and name edits went with it)${r.names ? ' and clean the files plumb left on the host' : ''}`, async () => {
          cleanNamesFiles(r)
          removeRecord(r.key)
        })
        result.messages.push(`removed the record of ${r.guest}: the guest is gone`)
      }
      for (const l of deadHostEnds) {
        await tx.step(`ip link del ${l.name}`, () => ignoreGone(hostNs.delLink(l.index)))
        result.messages.push(`removed ${l.name}: its guest ${parseMark(l.alias)!.guest} is gone`)
      }
      for (const l of returned) {
        const m = parseMark(l.alias)!
        const orig = m.extra?.orig ?? l.name
        const taken = orig !== l.name && links.some((x) => x.name === orig)
        await tx.step(`ip link set ${l.name}${taken ? '' : ` name ${orig}`} alias '${m.extra?.alias ?? ''}'${m.extra?.up === '1' ? ' up' : ''}`, () =>
          hostNs.setLink(l.index, { ...(taken ? {} : { name: orig }), alias: m.extra?.alias ?? '', ...(m.extra?.up === '1' ? { up: true } : {}) }),
        )
        result.messages.push(`gave ${orig} back to the host (its guest ${m.guest} is gone)`)
      }
      for (const l of detachedPorts) {
        await tx.step(`ip link del ${l.name}`, () => ignoreGone(hostNs.delLink(l.index)))
        result.messages.push(`removed ${l.name}: its bridge ${parseMark(l.alias)!.bridge} is gone`)
      }
      for (const p of stalePorts) {
        await tx.step(`ovs-vsctl --if-exists del-port ${p.name}`, () => ovs!.delPort(p.name))
        result.messages.push(`removed stale OVS port ${p.name}`)
      }
      // Only bridges that just lost a stale port: a plumb OVS bridge seen empty for another reason
      // may be one a concurrent ovs-port --create-bridge is about to give its first port.
      for (const bridge of new Set(stalePorts.map((p) => p.bridge).filter(Boolean))) {
        await tx.step(`# ovs-vsctl del-br ${bridge} if plumb made it and it has no port left`, async () => {
          if (await ovs!.deleteBridgeIfEmptyAndOurs(bridge)) result.messages.push(`deleted empty plumb OVS bridge ${bridge}`)
        })
      }
      for (const l of leases) {
        await tx.step(`# stop the DHCP client of ${l.stateKey} ${l.ifname}`, () => dhcpMod!.stopDhcp({ stateKey: l.stateKey, ifname: l.ifname, release: false }))
        result.messages.push(`cleaned the DHCP state of ${l.ifname} (${l.stateKey})`)
      }
      // Bridges and firewall rules left without any plumb port.
      // Rules before links: attach-veth inserts its rule after its port exists, so a rule seen here
      // has its port in the links read next unless the port is really gone.
      const fw = await import('../firewall/index.js')
      const ruleBridges = new Set((await fw.listRuleBridges()).map((r) => r.bridge))
      // No attach-veth is between finding a bridge and giving it a port while gc holds this.
      const lock = await acquireBridgeLock('exclusive', { dryRun: tx.dryRun })
      try {
        const after = tx.dryRun ? links.filter((l) => !deadHostEnds.includes(l)) : await hostNs.getLinks()
        // A bridge is empty only if it was empty in the first read too (but for the dead host ends
        // just removed): belt and braces beside the lock, which an attach-veth holds from finding
        // or creating the bridge until its port exists.
        const emptyAtStart = (name: string): boolean => {
          const first = links.find((l) => l.name === name)
          return first !== undefined && !links.some((l) => l.master === first.index && !deadHostEnds.includes(l))
        }
        const plumbBridges = after.filter((l) => parseMark(l.alias)?.role === 'bridge')
        for (const name of new Set([...ruleBridges, ...plumbBridges.map((b) => b.name)])) {
          const br = after.find((l) => l.name === name)
          const ports = br ? after.filter((l) => l.master === br.index) : []
          if (ports.some((p) => parseMark(p.alias)?.role === 'host')) continue
          const deleteBridge = br !== undefined && ports.length === 0 && emptyAtStart(name) && parseMark(br.alias)?.role === 'bridge'
          // A rule goes with its bridge: when the bridge is gone, or gc deletes it now. The rule of a
          // bridge that still exists stays (detach removes it with the last port): an attach-veth
          // that found it in place may be about to add its port.
          if (ruleBridges.has(name) && (!br || deleteBridge)) {
            await tx.step(`# remove plumb's firewall rules for ${name}`, () => fw.removeRules(name))
            result.messages.push(`removed the firewall rule of bridge ${name}`)
          }
          if (br && deleteBridge) {
            await tx.step(`ip link del ${name}`, () => ignoreGone(hostNs.delLink(br.index)))
            result.messages.push(`deleted empty plumb bridge ${name}`)
          }
        }
      } finally {
        lock.release()
      }
      result.changed = tx.lines.length > 0 || recovered.undone.length > 0
      result.plan = [...result.plan, ...tx.lines]
      if (!result.changed) result.messages.push('nothing to collect: no leftovers of plumb on this host')
      return result
    })
  } finally {
    hostNs.close()
  }
}
