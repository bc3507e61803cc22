// isolate: Docker's --icc=false for one Linux bridge. plumb's guest ports on it become isolated
// bridge ports (IFLA_BRPORT_ISOLATED: the kernel forwards nothing between two isolated ports,
// whatever the firewall says), and so does every port attach-veth adds later (it reads the
// isolate rule below). The bridge itself (the host) and ports plumb did not make stay reachable.
//
// The record is a rule in PLUMB-FORWARD that DROPs routed traffic from the bridge back into it
// (`! --physdev-is-bridged`: bridged frames are the kernel's business), so a guest that routes
// through the host cannot get round the isolation. `--allow A,B` lets one pair talk, through
// the host: the host answers ARP on the bridge for its subnet (proxy_arp_pvlan, RFC 3069), and
// an ACCEPT for the pair's addresses comes before the DROP.

import { PlumbError, conflict, notFound } from '../errors.js'
import { isDockerBridge, plumbRules } from '../firewall/index.js'
import type { NewRule, Tables } from '../firewall/index.js'
import { openHandleIn } from '../kernel/index.js'
import type { LinkInfo, NetHandle } from '../kernel/types.js'
import { parseGuestPair, parseGuestRef, parseMark, ruleKey, validateIfname } from '../parse/index.js'
import type { GuestRef, RuleMark } from '../parse/index.js'
import { resolveGuest } from '../guest/index.js'
import { acquireBridgeLock } from './bridge-lock.js'
import { ipIn, journalFor, labField, withGuest } from './context.js'
import type { CommonOptions } from './context.js'
import { editRules, sayRemoved, withIpv4Tables } from './firewall.js'
import { emptyResult } from './result.js'
import type { OpResult } from './result.js'
import { runTx } from './tx.js'
import type { Tx } from './tx.js'

export interface IsolateOptions extends CommonOptions {
  bridge: string
  /** pairs that may still talk, `A,B` (Docker's --link); with `del`, only these pairs go */
  allow?: string[]
  /** lift the isolation (with `allow`: remove only those pairs) */
  del?: boolean
}

export interface ValidatedIsolate {
  bridge: string
  pairs: Array<[GuestRef, GuestRef]>
  del: boolean
}

export function validateIsolate(o: IsolateOptions): ValidatedIsolate {
  return { bridge: validateIfname(o.bridge, 'bridge name'), pairs: (o.allow ?? []).map(parseGuestPair), del: o.del ?? false }
}

type AllowMark = Extract<RuleMark, { op: 'allow' }>

interface Member {
  label: string
  /** its IPv4 addresses on plumb's interfaces on the bridge */
  addrs: string[]
}

export async function isolate(opts: IsolateOptions): Promise<OpResult> {
  const v = validateIsolate(opts)
  // Host-wide, like vxlan: the host is the guest the journal and recovery go by, so a rerun
  // after a kill first undoes the killed run (else a later gc would undo the rerun's same rules).
  return withGuest({ kind: 'host' }, { ...opts, allowHost: true }, async ({ netns, hostNs }) => {
    const br = await hostNs.getLink(v.bridge)
    if (!br) throw notFound(`no bridge "${v.bridge}" on this host`, 'attach guests to it first: plumb attach-veth GUEST BRIDGE ADDR/PREFIX')
    if (br.kind !== 'bridge') {
      throw conflict(`"${v.bridge}" is ${br.kind ? `a ${br.kind} interface` : 'a network interface'}, not a Linux bridge`, 'isolate works on Linux bridges (bridge port isolation); on Open vSwitch use OpenFlow rules or separate VLANs')
    }
    const pairs = await Promise.all(v.pairs.map(async ([a, b]) => [await member(a, v.bridge, opts.allowHost ?? false), await member(b, v.bridge, opts.allowHost ?? false)] as const))
    const result = emptyResult('isolate', 'host', opts.dryRun ?? false)
    // An attach-veth reads whether the bridge is isolated, and makes and marks its port, holding
    // the bridge lock shared. Held exclusive here from reading the ports to the rule: a port made
    // before is among those isolated (or let go) here, one made after reads the rule.
    const lock = await acquireBridgeLock('exclusive', { dryRun: opts.dryRun ?? false })
    try {
      return await runTx({ ...opts, journal: journalFor('isolate', netns) }, async (tx) => {
        await withIpv4Tables(tx.dryRun, async (tables) => {
          if (isDockerBridge(tables, v.bridge)) {
            throw conflict(`${v.bridge} is Docker's bridge: its isolation is Docker's --icc setting`, 'create the network with -o com.docker.network.bridge.enable_icc=false, or isolate a bridge of your own')
          }
          const marks = plumbRules(tables).map((r) => r.mark)
          const isolated = marks.some((m) => m.op === 'isolate' && m.bridge === v.bridge)
          if (v.del) await lift(tx, hostNs, br, tables, marks, pairs, result)
          else await impose(tx, hostNs, br, tables, marks, isolated, pairs, result, labField(opts))
        })
        result.plan = tx.lines
        return result
      })
    } finally {
      lock.release()
    }
  })
}

/** A guest of an allowed pair: its label and its IPv4 addresses on the bridge. */
async function member(ref: GuestRef, bridge: string, allowHost: boolean): Promise<Member> {
  const netns = await resolveGuest(ref, { allowHost })
  try {
    const guestNs = openHandleIn(netns.fd, netns.label)
    try {
      const [links, addrs] = await Promise.all([guestNs.getLinks(), guestNs.getAddrs({ family: 4 })])
      const mine = links.filter((l) => {
        const m = parseMark(l.alias)
        return m?.role === 'guest' && m.bridge === bridge
      })
      const found = addrs.filter((a) => mine.some((l) => l.index === a.index)).map((a) => a.address)
      if (found.length === 0) throw notFound(`${netns.label} has no IPv4 address on bridge ${bridge}`, `attach it first: plumb attach-veth ${netns.label} ${bridge} ADDR/PREFIX`)
      return { label: netns.label, addrs: found }
    } finally {
      guestNs.close()
    }
  } finally {
    netns.close()
  }
}

/** plumb's guest ports on the bridge (host ends it marked), with their isolation flag. */
async function guestPorts(hostNs: NetHandle, br: LinkInfo): Promise<LinkInfo[]> {
  return (await hostNs.getLinks()).filter((l) => l.master === br.index && parseMark(l.alias)?.role === 'host')
}

async function setPorts(tx: Tx, hostNs: NetHandle, ports: LinkInfo[], on: boolean): Promise<void> {
  // A kill before the isolate rule (the bridge's mark) is in would leave isolated ports nothing
  // names: journaled, recovery turns them back off.
  if (on) for (const p of ports) tx.intend({ t: 'isolated', name: p.name })
  await tx.batch(
    ports.map((p) => ({
      line: `ip link set ${p.name} type bridge_slave isolated ${on ? 'on' : 'off'}`,
      run: () => hostNs.setPortIsolated(p.index, on),
      undo: { line: `ip link set ${p.name} type bridge_slave isolated ${on ? 'off' : 'on'}`, run: () => hostNs.setPortIsolated(p.index, !on) },
    })),
  )
}

/**
 * Empty the ARP caches of plumb's guests on the bridge: an entry learned before the change (a
 * peer's own MAC, or the host's while it answered for the pair) would keep pointing where the
 * traffic can no longer go, for as long as the guest keeps using it.
 */
async function flushGuests(tx: Tx, hostNs: NetHandle, br: LinkInfo): Promise<void> {
  for (const port of await guestPorts(hostNs, br)) {
    const m = parseMark(port.alias)
    if (!m?.guest || !m.peer) continue
    let netns
    try {
      netns = await resolveGuest(parseGuestRef(m.guest), { allowHost: true })
    } catch (err) {
      if (err instanceof PlumbError && err.code === 'NOT_FOUND') continue // its guest is gone (gc's business)
      throw err
    }
    try {
      const guestNs = openHandleIn(netns.fd, netns.label)
      try {
        const ifname = m.peer
        const link = await guestNs.getLink(ifname)
        if (link) await tx.step(ipIn(netns, `-4 neigh flush dev ${ifname}`), () => guestNs.flushNeighbors(link.index))
      } finally {
        guestNs.close()
      }
    } finally {
      netns.close()
    }
  }
}

async function impose(tx: Tx, hostNs: NetHandle, br: LinkInfo, tables: Tables, marks: RuleMark[], isolated: boolean, pairs: ReadonlyArray<readonly [Member, Member]>, result: OpResult, lab: { lab?: string }): Promise<void> {
  const bridge = br.name
  const add: NewRule[] = []
  if (!isolated) {
    add.push({
      table: 'filter',
      chain: 'PLUMB-FORWARD',
      match: ['-i', bridge, '-o', bridge, '-m', 'physdev', '!', '--physdev-is-bridged'],
      target: ['-j', 'DROP'],
      mark: { op: 'isolate', bridge, ...lab, rec: {} },
    })
  }
  const have = new Set(marks.filter((m) => m.op === 'allow').map(ruleKey))
  const added: string[] = []
  for (const [a, b] of pairs) {
    const mark: AllowMark = { op: 'allow', bridge, a: a.label, b: b.label, ...lab, rec: {} }
    if (have.has(ruleKey(mark))) continue
    have.add(ruleKey(mark))
    added.push(`${a.label},${b.label}`)
    for (const x of a.addrs) {
      for (const y of b.addrs) {
        for (const [s, d] of [[x, y], [y, x]] as const) add.push({ table: 'filter', chain: 'PLUMB-FORWARD', match: ['-s', `${s}/32`, '-d', `${d}/32`, '-i', bridge, '-o', bridge], target: ['-j', 'ACCEPT'], mark })
      }
    }
  }
  const ports = (await guestPorts(hostNs, br)).filter((p) => !p.isolated)
  if (add.length === 0 && ports.length === 0) {
    result.messages.push(`already isolated: bridge ${bridge}${pairs.length ? ` (pairs ${pairs.map(([a, b]) => `${a.label},${b.label}`).join(' ')} allowed)` : ''}; nothing changed`)
    return
  }
  await setPorts(tx, hostNs, ports, true)
  const done = await editRules(tx, hostNs, new Map([['iptables', tables]]), { add })
  await flushGuests(tx, hostNs, br)
  result.changed = true
  if (!isolated) result.messages.push(`isolated bridge ${bridge}: its guests reach the host and beyond, not each other; guests attached later are isolated too`)
  if (ports.length) result.messages.push(`isolated ports: ${ports.map((p) => p.name).join(', ')}`)
  for (const p of added) result.messages.push(`allowed the pair ${p} (through the host)`)
  for (const s of done.sysctls) result.messages.push(`set ${s}`)
}

async function lift(tx: Tx, hostNs: NetHandle, br: LinkInfo, tables: Tables, marks: RuleMark[], pairs: ReadonlyArray<readonly [Member, Member]>, result: OpResult): Promise<void> {
  const bridge = br.name
  let pick: (m: RuleMark) => boolean
  let ports: LinkInfo[] = []
  if (pairs.length) {
    const keys = new Set(pairs.map(([a, b]) => ruleKey({ op: 'allow', bridge, a: a.label, b: b.label, rec: {} })))
    pick = (m) => m.op === 'allow' && keys.has(ruleKey(m))
  } else {
    pick = (m) => (m.op === 'isolate' || m.op === 'allow') && m.bridge === bridge
    ports = (await guestPorts(hostNs, br)).filter((p) => p.isolated)
  }
  if (!marks.some(pick) && ports.length === 0) {
    result.messages.push(pairs.length ? `nothing to undo: those pairs are not allowed on ${bridge}` : `nothing to undo: bridge ${bridge} is not isolated`)
    return
  }
  const done = await editRules(tx, hostNs, new Map([['iptables', tables]]), { remove: pick })
  await setPorts(tx, hostNs, ports, false)
  if (done.sysctls.length || ports.length) await flushGuests(tx, hostNs, br)
  result.changed = true
  sayRemoved(done.removed, result)
  if (ports.length) result.messages.push(`ports no longer isolated: ${ports.map((p) => p.name).join(', ')}`)
  for (const s of done.sysctls) result.messages.push(`put back ${s}`)
}
