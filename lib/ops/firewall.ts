// The firewall steps of the ops. attach-veth's rule for Docker's FORWARD DROP is planned from a
// read made under the bridge lock (started early, before the transaction) and added inside it.
// Every other change (expose, masquerade, isolate, and their removal by --del, detach and gc) is
// made under the firewall lock: read the tables, add and remove marked rules as ONE
// iptables-restore batch, and set (or put back) the sysctls the rules need, recording in the
// rules' marks what plumb found.

import { addRule, applyCmds, bridgeFirewall, commandLines, planChange, planEmptyChains, plumbRules, ruleLine, saveTables, FIREWALL_LOCK } from '../firewall/index.js'
import type { Binary, BridgeFirewall, Cmd, NewRule, SavedRule, Tables } from '../firewall/index.js'
import { PlumbError } from '../errors.js'
import { ruleKey } from '../parse/index.js'
import type { RecordKey, Records, RuleMark } from '../parse/index.js'
import type { NetHandle } from '../kernel/types.js'
import { acquireFileLock } from './bridge-lock.js'
import type { Tx } from './tx.js'

const early = new Map<string, Promise<BridgeFirewall>>()

/**
 * Start the firewall read for `bridge` now, to be taken by this process's next
 * plannedFirewall(bridge): the CNI plugin starts it before its IPAM call, so the iptables spawn
 * (~10-20 ms) runs beside the IPAM plugin's instead of after it. Only a head start: the op
 * reads again under the bridge lock, from what this read left (no spawn while the nftables
 * generation stands).
 */
export function prefetchFirewall(bridge: string): void {
  if (early.has(bridge)) return
  const p = bridgeFirewall(bridge)
  p.catch(() => undefined) // awaited by the op, unless the ADD stops first
  early.set(bridge, p)
}

export function plannedFirewall(bridge: string): Promise<BridgeFirewall> {
  const p = early.get(bridge)
  if (p) {
    early.delete(bridge)
    return p
  }
  return bridgeFirewall(bridge)
}

/** attach-veth's rule: added (under the flock) unless present; nothing at all on Docker's own bridges. */
export async function ensureFirewall(tx: Tx, plan: BridgeFirewall, bridge: string, result: { messages: string[] }): Promise<void> {
  if (plan.dockerBridge) {
    result.messages.push(`${bridge} is Docker's bridge: its forwarding policy is Docker's (--icc); plumb adds no firewall rule`)
    return
  }
  const added: string[] = []
  for (const rule of plan.rules) {
    if (rule.present) continue
    // The undo removes only the copy this attach added: a concurrent attach to the same
    // bridge that found the rule in place relies on it.
    tx.intend({ t: 'fw', bridge })
    const inserted = await tx.step(ruleLine(rule, '-A'), () => addRule(rule, { childOf: tx.childOf() }), {
      line: ruleLine(rule, '-D'),
      run: (mine) => (mine ? removeOneBridgeRule(rule.binary, bridge) : Promise.resolve()),
    })
    if (inserted || tx.dryRun) added.push(`${rule.binary} ${rule.hook}`)
  }
  if (added.length) {
    result.messages.push(`the FORWARD policy is DROP: added an ACCEPT rule for bridge ${bridge} (${added.join(', ')}); detach removes it with the bridge's last plumb port`)
  }
}

/** Run `fn` holding the firewall lock (none in a dry run: it changes nothing). */
export async function withFirewallLock<T>(dryRun: boolean, fn: () => Promise<T>): Promise<T> {
  const lock = await acquireFileLock('the firewall lock', FIREWALL_LOCK, 'exclusive', { dryRun })
  try {
    return await fn()
  } finally {
    lock.release()
  }
}

/** Under the firewall lock, the IPv4 tables (filter, nat) an edit of expose, isolate or masquerade starts from; UNSUPPORTED when iptables-save cannot read them. */
export async function withIpv4Tables<T>(dryRun: boolean, fn: (tables: Tables) => Promise<T>): Promise<T> {
  return withFirewallLock(dryRun, async () => {
    const tables = (await saveTables(['iptables'])).get('iptables')
    if (!tables) throw new PlumbError('UNSUPPORTED', 'cannot read the firewall: iptables-save failed', { hint: 'install iptables (the nft backend Docker uses) and run as root' })
    return fn(tables)
  })
}

/** plumb's marks in the firewall (both families unless told), and whether IPv4's tables could be read at all. */
export async function readMarks(binaries: readonly Binary[] = ['iptables', 'ip6tables']): Promise<{ marks: RuleMark[]; read: boolean }> {
  const tables = await saveTables(binaries)
  return { marks: [...tables.values()].flatMap((t) => plumbRules(t).map((r) => r.mark)), read: tables.has('iptables') }
}

// ---- sysctls the rules need ----------------------------------------------------------------

interface Need {
  key: RecordKey
  /** under /proc/sys/net */
  path: string
  want: string
}

/** The sysctls a rule cannot work without (host side): forwarding, 127.0.0.1 to a bridge, proxy ARP for allowed pairs. */
function needsOf(m: RuleMark): Need[] {
  const fwd: Need = { key: 'fwd', path: 'ipv4/ip_forward', want: '1' }
  switch (m.op) {
    case 'expose':
      // 127.0.0.1 as a source may leave through the guest's bridge only with route_localnet there
      return m.hostIp === '' || m.hostIp.startsWith('127.') ? [fwd, { key: 'rl', path: `ipv4/conf/${m.dev}/route_localnet`, want: '1' }] : [fwd]
    case 'masquerade':
      return [fwd]
    case 'allow':
      // The pair talks through the host (its ports stay isolated): the host answers ARP for the
      // bridge's addresses on the bridge itself (RFC 3069's private VLAN proxy ARP), at once.
      return [fwd, { key: 'pvlan', path: `ipv4/conf/${m.bridge}/proxy_arp_pvlan`, want: '1' }, { key: 'pdelay', path: `ipv4/neigh/${m.bridge}/proxy_delay`, want: '0' }]
    default:
      return []
  }
}

/** `NAME=VALUE` of a /proc/sys/net path as sysctl spells it (slashes when an interface name has a dot). */
function sysctlSetting(path: string, value: string): string {
  const name = `net/${path}`
  return `${path.includes('.') ? name : name.replace(/\//g, '.')}=${value}`
}

/** The `sysctl -w` line of a /proc/sys/net path. */
export const sysctlLine = (path: string, value: string): string => `sysctl -w ${sysctlSetting(path, value)}`

interface SysctlWrite {
  path: string
  value: string
  /** what it was (for the step's undo) */
  was: string
  /** set for a new rule (not put back for a removed one): journaled */
  sets: boolean
}

export interface RuleEdit {
  /** new IPv4 rules (their records are filled in here) */
  add?: NewRule[]
  /** which of plumb's rules go */
  remove?: (m: RuleMark, r: SavedRule) => boolean
}

export interface EditResult {
  removed: RuleMark[]
  added: RuleMark[]
  /** sysctls set or put back, as `NAME=VALUE` */
  sysctls: string[]
}

/**
 * One edit of plumb's rules, in every family of `tables`, as transaction steps: the batch (its
 * undo puts the rules back as they were, under the lock) and the sysctl writes it implies. A new
 * rule needing a sysctl that is not yet as wanted sets it and records the old value in its mark
 * (or copies the record an earlier rule holds); the last rule needing it puts the recorded value
 * back. Call it holding the firewall lock, with `tables` read under it.
 */
export async function editRules(tx: Tx, hostNs: NetHandle, tables: Map<Binary, Tables>, edit: RuleEdit): Promise<EditResult> {
  const out: EditResult = { removed: [], added: [], sysctls: [] }
  for (const [binary, t] of tables) {
    const all = plumbRules(t)
    const removed = edit.remove ? all.filter((r) => edit.remove!(r.mark, r)) : []
    const kept = all.filter((r) => !removed.includes(r)).map((r) => r.mark)
    const add = binary === 'iptables' ? (edit.add ?? []).map((r) => ({ ...r, mark: { ...r.mark, ...('rec' in r.mark ? { rec: { ...r.mark.rec } } : {}) } as RuleMark })) : []
    if (removed.length === 0 && add.length === 0) continue
    const writes = await planSysctls(hostNs, kept, removed.map((r) => r.mark), add.map((r) => r.mark))
    const cmds = planChange(t, { add, remove: removed })
    if (cmds.length) {
      const addedKeys = new Set(add.map((r) => ruleKey(r.mark)))
      // Write-ahead (./journal.ts): a plumb killed from here on leaves rules whose removal the
      // next op on the guest, or gc, knows to do. A removal needs none: it leaves less, not more.
      if (addedKeys.size) tx.intend({ t: 'rules', binary, keys: [...addedKeys] })
      await tx.step(commandLines(binary, cmds), () => applyEdit(binary, cmds, add, removed, tx.childOf()), {
        line: `${binary}-restore --noflush  # put back: ${[...addedKeys, ...new Set(removed.map((r) => ruleKey(r.mark)))].join('; ')}`,
        run: () => withFirewallLock(false, () => putBack(binary, addedKeys, removed)),
      })
    }
    for (const w of writes) {
      if (w.sets) tx.intend({ t: 'sysctl', path: w.path, was: w.was })
      await tx.step(sysctlLine(w.path, w.value), () => hostNs.setSysctl(w.path, w.value), { line: sysctlLine(w.path, w.was), run: () => hostNs.setSysctl(w.path, w.was) })
      out.sysctls.push(sysctlSetting(w.path, w.value))
    }
    out.removed.push(...removed.map((r) => r.mark))
    out.added.push(...add.map((r) => r.mark))
  }
  return out
}

/**
 * The batch, once more against a fresh read when it fails: a rule deleted by hand (or by a
 * program that does not take plumb's lock) after the tables were read makes its `-D` fail the
 * whole batch. The retry deletes what is still there and adds what is still missing; a second
 * failure is the error.
 */
async function applyEdit(binary: Binary, cmds: Cmd[], add: NewRule[], removed: SavedRule[], childOf?: string): Promise<void> {
  try {
    await applyCmds(binary, cmds, childOf)
    return
  } catch (err) {
    if (removed.length === 0) throw err
    const t = (await saveTables([binary])).get(binary)
    if (!t) throw err
    const at = (r: { table: string; chain: string; spec: string }): string => `${r.table} ${r.chain} ${r.spec}`
    const gone = new Set(removed.map(at))
    const still = plumbRules(t).filter((r) => gone.has(at(r)))
    if (still.length === removed.length) throw err // every rule was there: not what failed
    const have = new Set(plumbRules(t).map((r) => ruleKey(r.mark)))
    await applyCmds(binary, planChange(t, { add: add.filter((r) => !have.has(ruleKey(r.mark))), remove: still }), childOf)
  }
}

/** The rollback of an edit: its new rules out, its removed rules back (read afresh: others may have changed the tables). */
async function putBack(binary: Binary, addedKeys: Set<string>, removed: SavedRule[]): Promise<void> {
  const t = (await saveTables([binary])).get(binary)
  if (!t) throw new Error(`${binary}-save failed: cannot put the firewall back`)
  const remove = plumbRules(t).filter((r) => addedKeys.has(ruleKey(r.mark)))
  const have = new Set(plumbRules(t).map((r) => `${r.table} ${r.chain} ${r.spec}`))
  const add = removed.filter((r) => !have.has(`${r.table} ${r.chain} ${r.spec}`))
  await applyCmds(binary, planChange(t, { add, remove }))
}

/**
 * The sysctl writes an edit implies; fills the records of the new marks. `kept` are the rules
 * that stay, `gone` those removed, `fresh` those added (mutated: their records).
 */
async function planSysctls(hostNs: NetHandle, kept: RuleMark[], gone: RuleMark[], fresh: RuleMark[]): Promise<SysctlWrite[]> {
  const writes: SysctlWrite[] = []
  const recOf = (m: RuleMark): Records => ('rec' in m ? m.rec : {})
  const needing = (marks: RuleMark[], path: string): RuleMark[] => marks.filter((m) => needsOf(m).some((n) => n.path === path))
  const paths = new Map<string, Need>()
  for (const m of fresh) for (const n of needsOf(m)) paths.set(n.path, n)
  for (const n of paths.values()) {
    const recorded = needing(kept, n.path).map((m) => recOf(m)[n.key]).find((v) => v !== undefined)
    const now = await hostNs.getSysctl(n.path)
    if (now === undefined) continue // no such device: the rule works without (or not at all) either way
    const record = recorded ?? (now !== n.want ? now : undefined)
    if (record !== undefined) for (const m of needing(fresh, n.path)) recOf(m)[n.key] = record
    if (now !== n.want) writes.push({ path: n.path, value: n.want, was: now, sets: true })
  }
  const after = [...kept, ...fresh]
  const released = new Map<string, Need>()
  for (const m of gone) for (const n of needsOf(m)) if (needing(after, n.path).length === 0) released.set(n.path, n)
  for (const n of released.values()) {
    const record = needing(gone, n.path).map((m) => recOf(m)[n.key]).find((v) => v !== undefined)
    if (record === undefined) continue // plumb did not change it: not plumb's to put back
    const now = await hostNs.getSysctl(n.path)
    if (now === undefined || now === record) continue // the device is gone, or it is back already
    writes.push({ path: n.path, value: record, was: now, sets: false })
  }
  return writes
}

/**
 * A killed op's recovery (no transaction): plumb's rules that `pick` selects out of the tables of
 * `binaries`, under the lock; the lines done.
 */
export async function removeRulesNow(binaries: Binary | Binary[], pick: (m: RuleMark) => boolean): Promise<string[]> {
  return withFirewallLock(false, async () => {
    const done: string[] = []
    for (const [binary, t] of await saveTables(typeof binaries === 'string' ? [binaries] : binaries)) {
      const remove = plumbRules(t).filter((r) => pick(r.mark))
      if (remove.length === 0) continue
      const cmds = planChange(t, { add: [], remove })
      await applyCmds(binary, cmds)
      done.push(...commandLines(binary, cmds))
    }
    return done
  })
}

/** A killed attach's recovery: attach-veth's rule for `bridge` out of both families. */
export const removeBridgeRules = (bridge: string): Promise<string[]> => removeRulesNow(['iptables', 'ip6tables'], (m) => m.op === 'bridge' && m.bridge === bridge)

/** Remove one copy of attach-veth's rule for `bridge` (the rollback of one addRule). */
async function removeOneBridgeRule(binary: Binary, bridge: string): Promise<void> {
  await withFirewallLock(false, async () => {
    const t = (await saveTables([binary])).get(binary)
    const one = t ? plumbRules(t).find((r) => r.mark.op === 'bridge' && r.mark.bridge === bridge) : undefined
    if (t && one) await applyCmds(binary, planChange(t, { add: [], remove: [one] }))
  })
}

/**
 * The rules that go with a bridge: attach-veth's ACCEPT when its last plumb port leaves, and
 * with `all` (plumb deletes the bridge, or it is gone) its isolation and masquerade too.
 */
export function bridgeRules(bridge: string, all: boolean): (m: RuleMark) => boolean {
  return (m) => {
    if (m.op === 'bridge') return m.bridge === bridge
    if (!all) return false
    return (m.op === 'isolate' || m.op === 'allow' || m.op === 'masquerade') && m.bridge === bridge
  }
}

/** gc: delete plumb's chains that hold no rule (a crash between a rule's removal and its chain's, or a hand's). */
export async function dropEmptyChains(tx: Tx): Promise<string[]> {
  return withFirewallLock(tx.dryRun, async () => {
    const dropped: string[] = []
    for (const [binary, t] of await saveTables(['iptables', 'ip6tables'])) {
      const cmds = planEmptyChains(t)
      if (cmds.length === 0) continue
      await tx.step(commandLines(binary, cmds), () => applyCmds(binary, cmds))
      dropped.push(...cmds.filter((c) => c.kind === 'del-chain').map((c) => `${binary} ${c.chain}`))
    }
    return dropped
  })
}

/** detach/gc: remove the rules `pick` selects, in both families, under the lock, as steps of `tx`. */
export const removeRules = (tx: Tx, hostNs: NetHandle, pick: (m: RuleMark) => boolean): Promise<EditResult> => removeRulesPicked(tx, hostNs, async () => pick)

/** removeRules with the pick made under the lock, from what `choose` reads there (gc: whether a rule's device is still missing). */
export async function removeRulesPicked(tx: Tx, hostNs: NetHandle, choose: () => Promise<(m: RuleMark) => boolean>): Promise<EditResult> {
  return withFirewallLock(tx.dryRun, async () => {
    const pick = await choose()
    return editRules(tx, hostNs, await saveTables(['iptables', 'ip6tables']), { remove: pick })
  })
}

/** Say what went with the guest (or its bridge) in the result's messages. */
export function sayRemoved(marks: RuleMark[], result: { messages: string[] }): void {
  const seen = new Set<string>()
  for (const m of marks) {
    const key = ruleKey(m)
    if (seen.has(key)) continue
    seen.add(key)
    if (m.op === 'expose') result.messages.push(`unpublished ${m.hostIp || '0.0.0.0'}:${m.hostPort}/${m.proto} (to ${m.guest} ${m.to})`)
    else if (m.op === 'allow') result.messages.push(`removed the allowed pair ${m.a},${m.b} of isolated bridge ${m.bridge}`)
    else if (m.op === 'isolate') result.messages.push(`lifted the isolation of bridge ${m.bridge}`)
    else if (m.op === 'masquerade') result.messages.push(`removed the masquerade of ${m.src}`)
    else result.messages.push(`removed the firewall rule for bridge ${m.bridge}`)
  }
}
