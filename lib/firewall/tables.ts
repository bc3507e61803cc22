// iptables-save (or `iptables -S`) text as data: the chains of each table and their rules, with
// plumb's marks read from the rules' comments (pure).

import { parseRuleMark } from '../parse/index.js'
import type { RuleMark } from '../parse/index.js'

export type Binary = 'iptables' | 'ip6tables'
export type Table = 'filter' | 'nat'

export interface SavedRule {
  table: Table
  chain: string
  /** the rule as iptables-save prints it after `-A CHAIN ` (quoting included): what `-D CHAIN` takes back */
  spec: string
  /** the `--comment` text, unquoted */
  comment?: string
  /** plumb's mark, when the comment is one */
  mark?: RuleMark
  /** the `-j TARGET` */
  target?: string
}

export interface TableState {
  /** chain -> policy ('-' for a user chain) */
  chains: Map<string, string>
  rules: SavedRule[]
}

export type Tables = Partial<Record<Table, TableState>>

const COMMENT = /(?:^|\s)--comment\s+(?:"((?:[^"\\]|\\.)*)"|(\S+))/

/**
 * One rule of iptables-save's. Words are compared as strings and the comment's expression runs
 * only on a rule that has one (most of Docker's have none): a one-shot run from the start-up
 * snapshot, where V8 has no compiler (--jitless) and compiles each regular expression it uses
 * anew, spent ~0.7 ms parsing Docker's 30-odd rules with them.
 */
function ruleOf(table: Table, chain: string, spec: string): SavedRule {
  const r: SavedRule = { table, chain, spec }
  if (spec.includes('--comment')) {
    const c = COMMENT.exec(spec)
    if (c) {
      r.comment = c[1] !== undefined ? c[1].replace(/\\(.)/g, '$1') : c[2]!
      const mark = parseRuleMark(r.comment)
      if (mark) r.mark = mark
    }
  }
  const target = wordAfter(spec.split(' '), '-j')
  if (target !== undefined) r.target = target
  return r
}

/** The word after the first `flag` among `words` (empty ones, from runs of spaces, skipped). */
function wordAfter(words: string[], flag: string): string | undefined {
  const i = words.indexOf(flag)
  if (i === -1) return undefined
  for (let k = i + 1; k < words.length; k++) if (words[k]) return words[k]
  return undefined
}

/**
 * Parse iptables-save output (every table it holds), or `iptables -S` output (one table, named
 * by `table`): `*table`, `:CHAIN POLICY [p:b]`, `-P CHAIN POLICY`, `-N CHAIN`, `-A CHAIN RULE`.
 */
export function parseSave(text: string, table: Table = 'filter'): Tables {
  const tables: Tables = {}
  let current: TableState | undefined
  let name: string | undefined = table
  const state = (): TableState | undefined => {
    if (name !== 'filter' && name !== 'nat') return undefined // mangle, raw, security: not plumb's business
    current ??= tables[name] ??= { chains: new Map(), rules: [] }
    return current
  }
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    if (line.startsWith('*')) {
      name = line.slice(1)
      current = undefined
      continue
    }
    if (line === 'COMMIT') continue
    const s = state()
    if (!s) continue
    if (line.startsWith(':')) {
      const [chain, policy = '-'] = line.slice(1).split(/\s+/)
      if (chain) s.chains.set(chain, policy)
    } else if (line.startsWith('-P ')) {
      const [, chain, policy = '-'] = line.split(/\s+/)
      if (chain) s.chains.set(chain, policy)
    } else if (line.startsWith('-N ')) {
      const chain = line.split(/\s+/)[1]
      if (chain) s.chains.set(chain, '-')
    } else if (line.startsWith('-A ')) {
      const rest = line.slice(3)
      const sp = rest.indexOf(' ')
      const chain = sp === -1 ? rest : rest.slice(0, sp)
      s.rules.push(ruleOf(name as Table, chain, sp === -1 ? '' : rest.slice(sp + 1)))
    }
  }
  return tables
}

/**
 * Tables as the firewall cache's JSON holds them (lib/firewall/index.ts): a one-shot command
 * then reads what an earlier one parsed with one JSON.parse, not iptables-save's text again
 * (~0.3 ms of Docker's 30-odd rules under --jitless). Chains as [name, policy] pairs, in order.
 */
export type StoredTables = Partial<Record<Table, { chains: Array<[string, string]>; rules: SavedRule[] }>>

export function tablesToJson(tables: Tables): StoredTables {
  const out: StoredTables = {}
  for (const name of ['filter', 'nat'] as const) {
    const t = tables[name]
    if (t) out[name] = { chains: [...t.chains], rules: t.rules }
  }
  return out
}

/** The inverse of tablesToJson; what is not its shape (a file torn or edited by hand) throws. */
export function tablesFromJson(stored: unknown): Tables {
  if (typeof stored !== 'object' || stored === null) throw new Error('stored tables: not an object')
  const out: Tables = {}
  for (const name of ['filter', 'nat'] as const) {
    const t = (stored as StoredTables)[name]
    if (t === undefined) continue
    if (!Array.isArray(t.chains) || !Array.isArray(t.rules)) throw new Error(`stored tables: ${name} has no chains or rules`)
    for (const r of t.rules) if (typeof r?.chain !== 'string' || typeof r.spec !== 'string' || r.table !== name) throw new Error(`stored tables: a rule of ${name} is not one`)
    out[name] = { chains: new Map(t.chains), rules: t.rules }
  }
  return out
}

/** Every rule that carries one of plumb's marks, in any chain of any table. */
export function plumbRules(tables: Tables): Array<SavedRule & { mark: RuleMark }> {
  const out: Array<SavedRule & { mark: RuleMark }> = []
  for (const t of [tables.filter, tables.nat]) for (const r of t?.rules ?? []) if (r.mark) out.push(r as SavedRule & { mark: RuleMark })
  return out
}

/** The FORWARD policy is DROP (Docker's, or the admin's). */
export const forwardDrops = (tables: Tables): boolean => tables.filter?.chains.get('FORWARD') === 'DROP'

/** Docker's chains are there: rules that must override its FORWARD DROP go into DOCKER-USER. */
export const hasDockerUser = (tables: Tables): boolean => tables.filter?.chains.has('DOCKER-USER') ?? false

/** `flag value` as two words of `spec` (no expression made per rule and bridge: see ruleOf). */
const wordIn = (spec: string, flag: string, value: string): boolean => {
  const words = spec.split(' ')
  for (let i = 0; i + 1 < words.length; i++) if (words[i] === flag && words[i + 1] === value) return true
  return false
}

/**
 * A bridge Docker made (docker0, a user network's br-…): Docker's filter rules name it (its
 * isolation stages, and `-A FORWARD -o BR -j DOCKER`). Its forwarding is Docker's policy
 * (--icc, enable_icc=false, --internal): plumb must not add to it.
 */
export function isDockerBridge(tables: Tables, bridge: string): boolean {
  return (tables.filter?.rules ?? []).some(
    (r) =>
      (r.chain.startsWith('DOCKER-ISOLATION') && (wordIn(r.spec, '-i', bridge) || wordIn(r.spec, '-o', bridge))) ||
      (r.chain === 'FORWARD' && r.target === 'DOCKER' && wordIn(r.spec, '-o', bridge)),
  )
}

/** One host port Docker publishes: its nat DOCKER chain's DNAT (`-p`). */
export interface DockerPublish {
  proto: 'tcp' | 'udp'
  /** '' for every address */
  hostIp: string
  hostPort: number
  /** where it goes: ADDR:PORT */
  to: string
  spec: string
}

/** The ports Docker publishes, read from its nat DOCKER chain. */
export function dockerPublishes(tables: Tables): DockerPublish[] {
  const out: DockerPublish[] = []
  for (const r of tables.nat?.rules ?? []) {
    if (r.chain !== 'DOCKER' || r.target !== 'DNAT') continue
    const proto = /(?:^|\s)-p (tcp|udp)(\s|$)/.exec(r.spec)?.[1] as 'tcp' | 'udp' | undefined
    const port = /(?:^|\s)--dport (\d+)(\s|$)/.exec(r.spec)?.[1]
    const to = /--to-destination (\S+)/.exec(r.spec)?.[1]
    if (!proto || !port || !to) continue
    const ip = /(?:^|\s)-d (\d+\.\d+\.\d+\.\d+)(?:\/32)?(\s|$)/.exec(r.spec)?.[1] ?? ''
    out.push({ proto, hostIp: ip, hostPort: Number(port), to, spec: `-A DOCKER ${r.spec}` })
  }
  return out
}
