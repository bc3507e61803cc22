// inspect: a lab's nodes as they are on the host right now: each node's container or netns (and
// whether the lab made it), its interfaces with their addresses, which of them the lab made; and
// its NAT rules (those the lab made, and those the file names).

import { parseMark, ruleKey, ruleLab } from '../parse/index.js'
import type { NatMark } from '../parse/index.js'
import { MARK_LAB, guestOf, isGuestNode, nodeByName } from './names.js'
import { namedByFile } from './nat.js'
import { observe, readGuest } from './observe.js'
import type { GuestState } from './observe.js'
import { addressesOn } from './plan.js'
import type { Lab, NodeKind } from './types.js'

export interface InspectInterface {
  name: string
  kind?: string
  up: boolean
  mac?: string
  mtu: number
  addresses: string[]
  /** the lab made it (its mark names the lab) */
  lab: boolean
  /** plumb's op that made it, when plumb did */
  op?: string
}

export interface InspectNode {
  name: string
  kind: NodeKind
  /** the container, netns or bridge name on the host */
  runtime: string
  state: 'running' | 'stopped' | 'absent' | 'present'
  /** the lab made it (deploy started or created it; destroy removes it) */
  ours: boolean
  guest?: string
  interfaces: InspectInterface[]
  /** bridges: their ports */
  ports?: string[]
}

/** A firewall rule of plumb's NAT ops (expose, masquerade, isolate, an allowed pair). */
export interface InspectNat {
  op: NatMark['op']
  /** what it does, as `plumb ls` says it */
  rule: string
  /** its mark names this lab: deploy made it, destroy removes it */
  lab: boolean
  /** the file's `nat:` names it (one that the lab made and the file no longer names goes at the next deploy) */
  inFile: boolean
}

export interface InspectResult {
  lab: string
  file: string
  nodes: InspectNode[]
  /** the lab's NAT rules and those the file names, as the firewall has them */
  nat: InspectNat[]
}

function natRule(m: NatMark): string {
  switch (m.op) {
    case 'expose':
      return `${m.hostIp || '0.0.0.0'}:${m.hostPort}/${m.proto} -> ${m.guest} ${m.to}`
    case 'masquerade':
      return `${m.src} out ${m.out ?? 'any other interface'}`
    case 'isolate':
      return `bridge ${m.bridge}`
    case 'allow':
      return `${m.a},${m.b} on bridge ${m.bridge}`
  }
}

/** The NAT rules in the firewall that are the lab's or that its file names, one per rule key. */
async function natOf(lab: Lab): Promise<InspectNat[]> {
  const { readMarks } = await import('../ops/firewall.js')
  const named = namedByFile(lab, nodeByName(lab))
  const out = new Map<string, InspectNat>()
  for (const m of (await readMarks(['iptables'])).marks) {
    if (m.op === 'bridge' || out.has(ruleKey(m))) continue
    const ours = ruleLab(m) === lab.name
    const inFile = named(m)
    if (ours || inFile) out.set(ruleKey(m), { op: m.op, rule: natRule(m), lab: ours, inFile })
  }
  return [...out.values()]
}

function interfaces(lab: string, st: GuestState): InspectInterface[] {
  return st.links
    .filter((l) => l.name !== 'lo')
    .map((l) => {
      const m = parseMark(l.alias)
      return {
        name: l.name,
        ...(l.kind ? { kind: l.kind } : {}),
        up: l.up,
        ...(l.mac ? { mac: l.mac } : {}),
        mtu: l.mtu,
        addresses: addressesOn(st.addrs, l.index),
        lab: m?.extra?.[MARK_LAB] === lab,
        ...(m ? { op: m.op } : {}),
      }
    })
}

export async function inspect(lab: Lab): Promise<InspectResult> {
  const seen = await observe(lab, { strict: false })
  const nodes: InspectNode[] = []
  for (const n of lab.nodes) {
    const o = seen.nodes.get(n.name)!
    const base = { name: n.name, kind: n.kind, runtime: n.runtime, ours: o.ours }
    if (isGuestNode(n)) {
      // A node the lab did not make (built by hand) is shown all the same: inspect is for grading too.
      const st = o.state ?? (o.exists && n.kind === 'netns' ? await readGuest({ kind: 'netns', name: n.runtime }, guestOf(n)) : undefined)
      const state = n.kind === 'linux' ? (!o.exists ? 'absent' : o.container?.running ? 'running' : 'stopped') : o.exists ? 'present' : 'absent'
      nodes.push({ ...base, state, guest: guestOf(n), interfaces: st ? interfaces(lab.name, st) : [] })
    } else if (n.kind === 'bridge') {
      const br = o.hostLink
      nodes.push({
        ...base,
        state: br ? 'present' : 'absent',
        interfaces: br ? [{ name: br.name, kind: 'bridge', up: br.up, ...(br.mac ? { mac: br.mac } : {}), mtu: br.mtu, addresses: addressesOn(seen.hostAddrs, br.index), lab: o.ours, op: 'lab' }] : [],
        ports: br ? seen.hostLinks.filter((l) => l.master === br.index).map((l) => l.name) : [],
      })
    } else {
      const ports = o.exists ? await (await import('../ovs/index.js')).listBridgePorts(n.runtime) : []
      nodes.push({ ...base, state: o.exists ? 'present' : 'absent', interfaces: [], ports })
    }
  }
  return { lab: lab.name, file: lab.file, nodes, nat: await natOf(lab) }
}

export function formatInspect(r: InspectResult): string {
  const out = [`lab ${r.lab} (${r.file})`]
  for (const n of r.nodes) {
    out.push(`${n.name.padEnd(12)} ${n.kind.padEnd(10)} ${n.runtime} ${n.state}${n.ours ? ' (made by the lab)' : n.state === 'absent' ? '' : ' (not made by the lab)'}`)
    for (const i of n.interfaces) {
      out.push(`  ${i.name.padEnd(10)} ${(i.kind ?? '').padEnd(8)} ${i.up ? 'up  ' : 'down'} mtu ${i.mtu}${i.mac ? ` ${i.mac}` : ''}${i.lab ? ' [lab]' : i.op ? ` [plumb ${i.op}]` : ''}`)
      for (const a of i.addresses) out.push(`             inet ${a}`)
    }
    if (n.ports) out.push(`  ports: ${n.ports.join(' ') || '-'}`)
  }
  if (r.nat.length) out.push('nat')
  for (const x of r.nat) {
    const whose = x.lab ? (x.inFile ? '[lab]' : '[lab; no longer in the file: the next deploy removes it]') : '[in the file; not made by the lab]'
    out.push(`  ${x.op.padEnd(10)} ${x.rule} ${whose}`)
  }
  return out.join('\n')
}
