// A lab's `nat:` (plumb expose, masquerade, isolate): applied through the ops, each rule marked
// with the lab's name (`lab=NAME` in its iptables comment), and reconciled by those marks as the
// lab's links are by theirs: deploy removes the lab's rules the file no longer names, destroy
// every rule of the lab, each through its op's own --del (the sysctls plumb set are put back,
// published ports' conntrack entries and replay records go, ports are un-isolated).

import { PlumbError } from '../errors.js'
import type { NetHandle } from '../kernel/types.js'
import type { OpResult } from '../ops/result.js'
import type { Tx } from '../ops/tx.js'
import { formatMapping, parseMasqueradeSource, parsePortSpecs, ruleKey, ruleLab } from '../parse/index.js'
import type { NatMark, RuleMark } from '../parse/index.js'
import { guestOf, quote } from './names.js'
import type { Lab, LabNat, LabNode } from './types.js'

interface NatOptions {
  log?: (line: string) => void
  /** false: record nothing for replay (--no-persist) */
  persist?: boolean
  /** what changed, for the deploy's messages */
  messages: string[]
}

/** What `plumb masquerade` calls a source: the bridge node's name on the host, or the CIDR as the op reads it. */
function masqueradeSrc(target: string, nodes: Map<string, LabNode>): string {
  const s = parseMasqueradeSource(nodes.get(target)?.runtime ?? target)
  return s.kind === 'bridge' ? s.bridge : s.network.cidr
}

function isolateArgs(i: LabNat['isolate'][number], nodes: Map<string, LabNode>): { bridge: string; allow: string[] } {
  return { bridge: nodes.get(i.bridge)!.runtime, allow: i.allow.map(([a, b]) => `${guestOf(nodes.get(a)!)},${guestOf(nodes.get(b)!)}`) }
}

/**
 * `nat:` after the links and the bridges' addresses: an expose needs its guest's address, isolate
 * its ports, masquerade the bridge's address. Each op runs with the lab's name, which goes into
 * its rules' marks; a rule already in place (by hand, or another lab's) is "already", not the lab's.
 */
export async function applyNat(tx: Tx, lab: Lab, nodes: Map<string, LabNode>, o: NatOptions): Promise<void> {
  const common = { lab: lab.name, ...(o.persist === false ? { persist: false } : {}), ...(o.log ? { log: o.log } : {}) }
  const say = (at: string, r: OpResult | undefined): void => {
    if (r?.changed) o.messages.push(`${at}: ${r.messages.join('; ')}`)
  }
  if (lab.nat.expose.length) {
    const { expose } = await import('../ops/expose.js')
    for (const e of lab.nat.expose) {
      const args = { guest: guestOf(nodes.get(e.node)!), ports: e.ports, ...(e.to ? { to: e.to } : {}) }
      const line = `plumb expose ${args.guest} ${e.ports.map(quote).join(' ')}${e.to ? ` --to ${e.to}` : ''}`
      say(e.at, await tx.step(line, () => expose({ ...common, ...args }), { line: `${line} --del`, run: (r: OpResult) => (r.changed ? expose({ ...args, del: true }) : Promise.resolve()) }))
    }
  }
  if (lab.nat.masquerade.length) {
    const { masquerade } = await import('../ops/masquerade.js')
    for (const m of lab.nat.masquerade) {
      const args = { source: nodes.get(m.target)?.runtime ?? m.target, ...(m.out ? { out: m.out } : {}) }
      const line = `plumb masquerade ${args.source}${m.out ? ` --out ${m.out}` : ''}`
      say(m.at, await tx.step(line, () => masquerade({ ...common, ...args }), { line: `${line} --del`, run: (r: OpResult) => (r.changed ? masquerade({ ...args, del: true }) : Promise.resolve()) }))
    }
  }
  if (lab.nat.isolate.length) {
    const { isolate } = await import('../ops/isolate.js')
    for (const i of lab.nat.isolate) {
      const args = isolateArgs(i, nodes)
      const line = `plumb isolate ${args.bridge}${args.allow.map((a) => ` --allow ${a}`).join('')}`
      say(i.at, await tx.step(line, () => isolate({ ...common, ...args }), { line: `plumb isolate ${args.bridge} --del`, run: (r: OpResult) => (r.changed ? isolate({ bridge: args.bridge, del: true }) : Promise.resolve()) }))
    }
  }
}

/** The rules a lab's `nat:` made, one mark per rule key (an expose's four rules are one), from all of plumb's marks. */
export function labNatMarks(marks: RuleMark[], lab: string): NatMark[] {
  const byKey = new Map<string, NatMark>()
  for (const m of marks) if (m.op !== 'bridge' && ruleLab(m) === lab && !byKey.has(ruleKey(m))) byKey.set(ruleKey(m), m)
  return [...byKey.values()]
}

const guestPort = (m: Extract<NatMark, { op: 'expose' }>): number => Number(m.to.slice(m.to.lastIndexOf(':') + 1))

/**
 * Whether the file's `nat:` names the rule a mark stands for, as its op would find it: an expose by
 * guest, protocol, host address, host port (or, for a PORTSPEC without one, a port plumb chose)
 * and guest port (and the guest address, with `to:`); a masquerade by source and --out; an
 * isolation by bridge; an allowed pair by bridge and the two guests, either way round.
 */
export function namedByFile(lab: Lab, nodes: Map<string, LabNode>): (m: NatMark) => boolean {
  const bridge = (name: string): string => nodes.get(name)!.runtime
  const guest = (name: string): string => guestOf(nodes.get(name)!)
  const exposes = lab.nat.expose.map((e) => ({ guest: guest(e.node), to: e.to, mappings: parsePortSpecs(e.ports) }))
  const masquerades = lab.nat.masquerade.map((x) => ({ src: masqueradeSrc(x.target, nodes), out: x.out }))
  return (m) => {
    switch (m.op) {
      case 'expose':
        return exposes.some(
          (e) =>
            e.guest === m.guest &&
            (e.to === undefined || m.to === `${e.to}:${guestPort(m)}`) &&
            e.mappings.some((p) => p.proto === m.proto && (p.hostIp ?? '') === m.hostIp && p.port === guestPort(m) && (p.hostPort === undefined ? m.auto : p.hostPort === m.hostPort)),
        )
      case 'masquerade':
        return masquerades.some((x) => x.src === m.src && x.out === m.out)
      case 'isolate':
        return lab.nat.isolate.some((i) => bridge(i.bridge) === m.bridge)
      case 'allow':
        return lab.nat.isolate.some((i) => bridge(i.bridge) === m.bridge && i.allow.some(([a, b]) => [guest(a), guest(b)].sort().join(',') === [m.a, m.b].sort().join(',')))
    }
  }
}

/** One op call that takes some of the lab's rules away, and the call that would put them back. */
interface Removal {
  line: string
  run: () => Promise<OpResult>
  undo: { line: string; run: () => Promise<unknown> }
  /** the rule keys it removes (for the fallback below) */
  keys: Set<string>
}

async function removals(lab: string, marks: NatMark[], all: RuleMark[]): Promise<Removal[]> {
  const out: Removal[] = []
  const [{ expose }, { masquerade }, { isolate }] = await Promise.all([import('../ops/expose.js'), import('../ops/masquerade.js'), import('../ops/isolate.js')])
  const pair = (m: Extract<RuleMark, { op: 'allow' }>): string => `${m.a},${m.b}`
  // An isolation lifted takes every allowed pair of its bridge with it (isolate --del); its undo
  // isolates the bridge again with the lab's mark, then lets each pair through again under its own.
  const lifted = new Set<string>()
  for (const m of marks) {
    if (m.op !== 'isolate') continue
    lifted.add(m.bridge)
    const pairs = all.filter((x): x is Extract<RuleMark, { op: 'allow' }> => x.op === 'allow' && x.bridge === m.bridge)
    const byLab = new Map<string | undefined, string[]>([[lab, []]])
    for (const p of pairs) if (!byLab.get(p.lab)?.includes(pair(p))) byLab.set(p.lab, [...(byLab.get(p.lab) ?? []), pair(p)])
    out.push({
      line: `plumb isolate ${m.bridge} --del`,
      run: () => isolate({ bridge: m.bridge, del: true }),
      undo: {
        line: `plumb isolate ${m.bridge}${byLab.get(lab)!.map((p) => ` --allow ${p}`).join('')}`,
        run: async () => {
          for (const [owner, allow] of byLab) if (owner === lab || allow.length) await isolate({ bridge: m.bridge, allow, ...(owner !== undefined ? { lab: owner } : {}) })
        },
      },
      keys: new Set([ruleKey(m), ...pairs.filter((p) => p.lab === lab).map(ruleKey)]),
    })
  }
  const allows = new Map<string, Array<Extract<NatMark, { op: 'allow' }>>>()
  for (const m of marks) if (m.op === 'allow' && !lifted.has(m.bridge)) allows.set(m.bridge, [...(allows.get(m.bridge) ?? []), m])
  for (const [bridge, ms] of allows) {
    const allow = ms.map(pair)
    out.push({
      line: `plumb isolate ${bridge}${allow.map((p) => ` --allow ${p}`).join('')} --del`,
      run: () => isolate({ bridge, allow, del: true }),
      undo: { line: `plumb isolate ${bridge}${allow.map((p) => ` --allow ${p}`).join('')}`, run: () => isolate({ bridge, allow, lab }) },
      keys: new Set(ms.map(ruleKey)),
    })
  }
  for (const m of marks) {
    if (m.op !== 'masquerade') continue
    const args = { source: m.src, ...(m.out ? { out: m.out } : {}) }
    const line = `plumb masquerade ${m.src}${m.out ? ` --out ${m.out}` : ''}`
    out.push({ line: `${line} --del`, run: () => masquerade({ ...args, del: true }), undo: { line, run: () => masquerade({ ...args, lab }) }, keys: new Set([ruleKey(m)]) })
  }
  // A guest's published ports in one call per guest address; each by its host port, a chosen one too.
  const exposes = new Map<string, Array<Extract<NatMark, { op: 'expose' }>>>()
  for (const m of marks) if (m.op === 'expose') exposes.set(`${m.guest} ${m.to.slice(0, m.to.lastIndexOf(':'))}`, [...(exposes.get(`${m.guest} ${m.to.slice(0, m.to.lastIndexOf(':'))}`) ?? []), m])
  for (const ms of exposes.values()) {
    const guest = ms[0]!.guest
    const to = ms[0]!.to.slice(0, ms[0]!.to.lastIndexOf(':'))
    const ports = ms.map((m) => formatMapping({ proto: m.proto, ...(m.hostIp ? { hostIp: m.hostIp } : {}), hostPort: m.hostPort, port: guestPort(m) }))
    const line = `plumb expose ${guest} ${ports.join(' ')}`
    out.push({
      line: `${line} --del`,
      run: () => expose({ guest, ports, del: true }),
      undo: { line: `${line} --to ${to}`, run: () => expose({ guest, ports, to, lab }) },
      keys: new Set(ms.map(ruleKey)),
    })
  }
  return out
}

export interface RemoveNatOptions {
  /** deploy: each removal's undo is registered (a later failure puts the rules back); destroy: none */
  undo: boolean
  /** what changed, for the messages */
  messages: string[]
  /** said after each removal's messages */
  why: string
}

/**
 * Remove these rules of the lab (`marks`, from labNatMarks; `all`: every plumb mark read with
 * them) through their ops' --del, as steps of `tx`. A removal whose op cannot name what it would
 * undo any more (a guest, bridge or --out interface gone: exit 3) removes the rules by their marks
 * instead, as gc would (the sysctls they hold are put back all the same). Returns whether
 * anything changed (in a dry run: whether there is anything to remove).
 */
export async function removeLabNat(tx: Tx, hostNs: NetHandle, lab: string, marks: NatMark[], all: RuleMark[], o: RemoveNatOptions): Promise<boolean> {
  if (marks.length === 0) return false
  let changed = tx.dryRun
  for (const r of await removals(lab, marks, all)) {
    let res: OpResult | undefined
    try {
      res = await tx.step(r.line, r.run, o.undo ? { line: r.undo.line, run: (done: OpResult) => (done.changed ? r.undo.run() : Promise.resolve()) } : undefined)
    } catch (err) {
      if (!(err instanceof PlumbError && err.code === 'NOT_FOUND')) throw err
      const { removeRules, sayRemoved } = await import('../ops/firewall.js')
      const done = await removeRules(tx, hostNs, (m) => ruleLab(m) === lab && r.keys.has(ruleKey(m)))
      const said = { messages: [] as string[] }
      sayRemoved(done.removed, said)
      if (done.removed.length) o.messages.push(`${said.messages.join('; ')} (${err.message}; ${o.why})`)
      changed ||= done.removed.length > 0
      continue
    }
    if (res?.changed) {
      o.messages.push(`${res.messages.join('; ')} (${o.why})`)
      changed = true
    }
  }
  return changed
}
