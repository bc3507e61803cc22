// The firewall steps of an attach: plan (read) before the transaction, apply inside it.

import { addRule, plannedRules, removeRule, ruleLine } from '../firewall/index.js'
import type { FirewallRule } from '../firewall/index.js'
import type { Tx } from './tx.js'

export type PlannedRule = FirewallRule & { present: boolean }

const early = new Map<string, Promise<PlannedRule[]>>()

/**
 * Start the firewall read for `bridge` now, to be taken by this process's next
 * plannedFirewall(bridge): the CNI plugin starts it before its IPAM call, so the iptables spawn
 * (~10-20 ms) runs beside the IPAM plugin's instead of after it. As stale as the op's own read:
 * addRule checks again under its lock.
 */
export function prefetchFirewall(bridge: string): void {
  if (early.has(bridge)) return
  const p = plannedRules(bridge)
  p.catch(() => undefined) // awaited by the op, unless the ADD stops first
  early.set(bridge, p)
}

export function plannedFirewall(bridge: string): Promise<PlannedRule[]> {
  const p = early.get(bridge)
  if (p) {
    early.delete(bridge)
    return p
  }
  return plannedRules(bridge)
}

export async function ensureFirewall(tx: Tx, rules: PlannedRule[], result: { messages: string[]; firewall?: unknown }): Promise<void> {
  const added: string[] = []
  for (const rule of rules) {
    if (rule.present) continue
    // The undo removes only the copy this attach inserted: a concurrent attach to the same
    // bridge that found the rule in place relies on it.
    tx.intend({ t: 'fw', bridge: rule.bridge })
    const inserted = await tx.step(ruleLine(rule, '-I'), () => addRule(rule, { onSpawn: tx.onSpawn }), { line: ruleLine(rule, '-D'), run: (mine) => (mine ? removeRule(rule) : Promise.resolve()) })
    if (inserted || tx.dryRun) added.push(`${rule.binary} ${rule.chain}`)
  }
  if (added.length) {
    result.messages.push(`Docker's FORWARD policy is DROP: added an ACCEPT rule for bridge ${rules[0]!.bridge} (${added.join(', ')}); detach removes it with the bridge's last plumb port`)
  }
}
