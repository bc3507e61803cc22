// From "these rules in, those out" to the exact commands, for one iptables-restore --noflush batch
// (atomic, one spawn) and for --dry-run's `iptables` lines (pure).
//
// plumb's rules live in its own chains, hooked from the built-in ones: PLUMB-DNAT (nat
// PREROUTING and OUTPUT, local destinations), PLUMB-POSTROUTING (nat POSTROUTING) and
// PLUMB-FORWARD (filter: DOCKER-USER on a Docker host, whose FORWARD is Docker's, else FORWARD).
// A chain exists only while it holds a rule: the first rule creates it with its hooks, the last
// one's removal deletes both, so iptables-save after the last undo is what it was before.

import { formatRuleMark } from '../parse/index.js'
import type { RuleMark } from '../parse/index.js'
import { hasDockerUser } from './tables.js'
import type { Binary, SavedRule, Table, Tables } from './tables.js'

export type PlumbChain = 'PLUMB-FORWARD' | 'PLUMB-DNAT' | 'PLUMB-POSTROUTING'
export const PLUMB_CHAINS: Record<Table, readonly PlumbChain[]> = { filter: ['PLUMB-FORWARD'], nat: ['PLUMB-DNAT', 'PLUMB-POSTROUTING'] }

/** A rule to add: its match and target; the mark goes in between as a comment. */
export interface NewRule {
  table: Table
  chain: PlumbChain
  match: string[]
  target: string[]
  mark: RuleMark
}

export interface Change {
  /** new rules, or saved ones put back as they were (a rollback of their removal) */
  add: Array<NewRule | SavedRule>
  remove: SavedRule[]
}

const specOf = (r: NewRule | SavedRule): string => ('spec' in r ? r.spec : ruleSpec(r))
const isPlumbChain = (c: string): c is PlumbChain => c === 'PLUMB-FORWARD' || c === 'PLUMB-DNAT' || c === 'PLUMB-POSTROUTING'

export type Cmd =
  | { table: Table; kind: 'new-chain'; chain: string }
  | { table: Table; kind: 'del-chain'; chain: string }
  | { table: Table; kind: 'append' | 'delete'; chain: string; spec: string }
  | { table: Table; kind: 'insert'; chain: string; pos: number; spec: string }

// Order inside PLUMB-FORWARD, which matters: published ports and allowed pairs are accepted
// before an isolated bridge's DROP, which comes before the broad per-bridge and masquerade
// ACCEPTs (a routed guest-to-guest packet on an isolated bridge must meet the DROP first).
const RANK: Record<RuleMark['op'], number> = { expose: 0, allow: 1, isolate: 2, bridge: 3, masquerade: 4 }
const rankOf = (r: { mark?: RuleMark | undefined }): number => (r.mark ? RANK[r.mark.op] : 5)

/** A token as iptables-restore and a shell both read it: double quotes around anything unusual. */
function quote(token: string): string {
  return /^[A-Za-z0-9_.,:/@%+=!-]+$/.test(token) ? token : `"${token}"`
}

/** The rule's text after `-A CHAIN`. */
export function ruleSpec(r: Pick<NewRule, 'match' | 'target' | 'mark'>): string {
  return [...r.match, '-m', 'comment', '--comment', formatRuleMark(r.mark), ...r.target].map(quote).join(' ')
}

interface Hook {
  chain: string
  spec: string
}

/** Where a plumb chain is jumped to from. */
function hooksOf(chain: PlumbChain, tables: Tables): Hook[] {
  switch (chain) {
    case 'PLUMB-FORWARD':
      return [{ chain: hasDockerUser(tables) ? 'DOCKER-USER' : 'FORWARD', spec: '-j PLUMB-FORWARD' }]
    case 'PLUMB-DNAT':
      // Local destinations only, as Docker's DOCKER chain: the host's addresses, 127.0.0.1 included (OUTPUT).
      return ['PREROUTING', 'OUTPUT'].map((c) => ({ chain: c, spec: '-m addrtype --dst-type LOCAL -j PLUMB-DNAT' }))
    case 'PLUMB-POSTROUTING':
      return [{ chain: 'POSTROUTING', spec: '-j PLUMB-POSTROUTING' }]
  }
}

/**
 * The commands that remove `change.remove` and add `change.add`, creating a plumb chain (and
 * its hooks) on its first rule and deleting both with its last. New rules go in rank order.
 */
export function planChange(tables: Tables, change: Change): Cmd[] {
  const cmds: Cmd[] = []
  for (const table of ['filter', 'nat'] as const) {
    const state = tables[table]
    const removed = change.remove.filter((r) => r.table === table)
    const added = change.add.filter((r) => r.table === table)
    if (removed.length === 0 && added.length === 0) continue
    const rules = state?.rules ?? []
    for (const r of removed) cmds.push({ table, kind: 'delete', chain: r.chain, spec: r.spec })
    const tail: Cmd[] = []
    for (const chain of PLUMB_CHAINS[table]) {
      const exists = state?.chains.has(chain) ?? false
      const kept = rules.filter((r) => r.chain === chain && !removed.includes(r))
      const mine = added.filter((r) => r.chain === chain).sort((a, b) => rankOf(a) - rankOf(b))
      if (kept.length + mine.length === 0) {
        if (!exists) continue
        // Its last rule goes: the hooks (wherever they are) and the chain with it.
        for (const h of rules.filter((r) => r.target === chain)) tail.push({ table, kind: 'delete', chain: h.chain, spec: h.spec })
        tail.push({ table, kind: 'del-chain', chain })
        continue
      }
      if (mine.length === 0) continue
      if (!exists) cmds.push({ table, kind: 'new-chain', chain })
      // A hook that is missing (a new chain, or one removed by hand) is put back at the top.
      for (const h of hooksOf(chain, tables)) {
        if (!rules.some((r) => r.chain === h.chain && r.target === chain)) cmds.push({ table, kind: 'insert', chain: h.chain, pos: 1, spec: h.spec })
      }
      const ranks = kept.map(rankOf)
      for (const r of mine) {
        const rank = rankOf(r)
        const at = ranks.findIndex((x) => x > rank)
        if (at === -1) {
          ranks.push(rank)
          cmds.push({ table, kind: 'append', chain, spec: specOf(r) })
        } else {
          ranks.splice(at, 0, rank)
          cmds.push({ table, kind: 'insert', chain, pos: at + 1, spec: specOf(r) })
        }
      }
    }
    // A rule of an older plumb put back where it was (DOCKER-USER, FORWARD): appended.
    for (const r of added) if (!isPlumbChain(r.chain)) cmds.push({ table, kind: 'append', chain: r.chain, spec: specOf(r) })
    cmds.push(...tail)
  }
  return cmds
}

/** The commands deleting plumb chains that hold no rule (left by a crash or by hand), with their hooks. */
export function planEmptyChains(tables: Tables): Cmd[] {
  const cmds: Cmd[] = []
  for (const table of ['filter', 'nat'] as const) {
    const state = tables[table]
    if (!state) continue
    for (const chain of PLUMB_CHAINS[table]) {
      if (!state.chains.has(chain) || state.rules.some((r) => r.chain === chain)) continue
      for (const h of state.rules.filter((r) => r.target === chain)) cmds.push({ table, kind: 'delete', chain: h.chain, spec: h.spec })
      cmds.push({ table, kind: 'del-chain', chain })
    }
  }
  return cmds
}

/** The batch for `iptables-restore --noflush`: one block per table, new chains declared first. */
export function restoreText(cmds: readonly Cmd[]): string {
  const out: string[] = []
  for (const table of ['filter', 'nat'] as const) {
    const mine = cmds.filter((c) => c.table === table)
    if (mine.length === 0) continue
    out.push(`*${table}`)
    // Only chains that do not exist are declared: with --noflush, declaring one that exists flushes it.
    for (const c of mine) if (c.kind === 'new-chain') out.push(`:${c.chain} - [0:0]`)
    for (const c of mine) {
      switch (c.kind) {
        case 'new-chain':
          break
        case 'del-chain':
          out.push(`-X ${c.chain}`)
          break
        case 'append':
          out.push(`-A ${c.chain} ${c.spec}`)
          break
        case 'delete':
          out.push(`-D ${c.chain} ${c.spec}`)
          break
        case 'insert':
          out.push(`-I ${c.chain} ${c.pos} ${c.spec}`)
      }
    }
    out.push('COMMIT')
  }
  return out.length ? `${out.join('\n')}\n` : ''
}

/** The same commands as `iptables` lines, for --dry-run and --verbose. */
export function commandLines(binary: Binary, cmds: readonly Cmd[]): string[] {
  return cmds.map((c) => {
    const head = `${binary} -w${c.table === 'filter' ? '' : ` -t ${c.table}`}`
    switch (c.kind) {
      case 'new-chain':
        return `${head} -N ${c.chain}`
      case 'del-chain':
        return `${head} -X ${c.chain}`
      case 'append':
        return `${head} -A ${c.chain} ${c.spec}`
      case 'delete':
        return `${head} -D ${c.chain} ${c.spec}`
      case 'insert':
        return `${head} -I ${c.chain} ${c.pos} ${c.spec}`
    }
  })
}
