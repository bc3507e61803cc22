// sysctl: set a guest's per-netns sysctls (net.ipv4.ip_forward, net.ipv4.conf.*.*, ...), the
// value plumb found kept in the guest's record so --del and detach --all put it back.

import { notFound, usageError } from '../errors.js'
import type { NetHandle } from '../kernel/types.js'
import { parseSysctlKey, parseSysctlSetting, sameSysctlValue } from '../parse/index.js'
import type { GuestRef, SysctlKey, SysctlSetting } from '../parse/index.js'
import type { Netns } from '../guest/index.js'
import { inGuest, toGuestRef, withGuest } from './context.js'
import type { CommonOptions } from './context.js'
import { clone, newRecord, readRecord, restoreRecord, saveRecord } from './guest-record.js'
import type { GuestRecord, SysctlEntry } from './guest-record.js'
import { emptyResult } from './result.js'
import type { OpResult } from './result.js'
import { runTx } from './tx.js'
import { persist } from './persist.js'
import { putSysctl, removeSysctl } from '../watch/record.js'
import type { Tx } from './tx.js'

export interface SysctlOptions extends CommonOptions {
  guest: string | GuestRef
  /** KEY=VALUE to set; with `del`, KEYs (a `=VALUE` is ignored) to put back, none = all of plumb's */
  settings: string[]
  del?: boolean
}

export function validateSysctl(o: SysctlOptions): { guest: GuestRef; set: SysctlSetting[]; keys: SysctlKey[]; del: boolean } {
  const guest = toGuestRef(o.guest)
  if (o.del) {
    const keys = o.settings.map((s) => parseSysctlKey(s.includes('=') ? s.slice(0, s.indexOf('=')) : s))
    return { guest, set: [], keys, del: true }
  }
  if (o.settings.length === 0) throw usageError('sysctl needs KEY=VALUE', `e.g. plumb sysctl ${typeof o.guest === 'string' ? o.guest : 'GUEST'} net.ipv4.ip_forward=1`)
  const set = o.settings.map(parseSysctlSetting)
  for (const [i, s] of set.entries()) if (set.findIndex((x) => x.key === s.key) !== i) throw usageError(`${s.key} given twice`)
  return { guest, set, keys: [], del: false }
}

const line = (netns: Netns, key: string, value: string): string => inGuest(netns, `sysctl -qw ${key}=${/\s/.test(value) ? `'${value}'` : value}`)

export async function sysctl(opts: SysctlOptions): Promise<OpResult> {
  const v = validateSysctl(opts)
  return withGuest(v.guest, opts, async ({ netns, guestNs }) => {
    const result = emptyResult(v.del ? 'sysctl --del' : 'sysctl', netns.label, opts.dryRun ?? false)
    return runTx(opts, async (tx) => {
      if (v.del) await restoreSysctlsIn(tx, netns, guestNs, result, v.keys.length ? v.keys.map((k) => k.key) : undefined)
      else await setSysctlsIn(tx, netns, guestNs, v.set, result)
      const keys = v.keys.map((k) => k.key)
      await persist(tx, opts, result, [
        {
          netns,
          edit: v.del ? (r) => removeSysctl(r, keys.length ? keys : undefined) : (r) => putSysctl(r, v.set.map((s) => `${s.key}=${s.value}`), new Date().toISOString()),
        },
      ])
      result.plan = tx.lines
      result.changed = tx.lines.length > 0
      result.sysctl = readRecord(netns)?.sysctl ?? {}
      return result
    })
  })
}

/** Set each KEY=VALUE that differs, the value found kept in the guest record first (set-ip turns IPv6 on this way). */
export async function setSysctlsIn(tx: Tx, netns: Netns, guestNs: NetHandle, set: SysctlSetting[], result: OpResult): Promise<void> {
  const before = readRecord(netns)
  const record = clone(before) ?? newRecord(netns)
  const entries = (record.sysctl ??= {})
  const todo: Array<{ s: SysctlSetting; now: string }> = []
  const same: string[] = []
  for (const s of set) {
    const now = await guestNs.getSysctl(s.path)
    if (now === undefined) {
      // The key's family is per-netns (checked already); absent means no such interface, or
      // a key this kernel keeps for the host only.
      if (s.ifname !== undefined && s.ifname !== 'all' && s.ifname !== 'default') throw notFound(`no interface "${s.ifname}" in ${netns.label} for ${s.key}`, `see what is there: plumb exec ${netns.label} -- ip link`)
      throw usageError(`no sysctl ${s.key} in ${netns.label}'s network namespace: not a per-netns key on this kernel`, 'see what a guest has: plumb exec GUEST -- sysctl -a -r "^net\\."')
    }
    const mine = entries[s.key]
    if (sameSysctlValue(now, s.value)) {
      same.push(`${s.key}=${s.value}`)
      continue
    }
    todo.push({ s, now })
    // The first value plumb found is the one to go back to, however many times it sets the key.
    entries[s.key] = { found: mine ? mine.found : now, set: s.value }
  }
  if (todo.length) {
    await tx.step(`# record the values plumb replaces in ${netns.label} (/run/plumb/guests)`, async () => saveRecord(record), {
      line: '# restore the record',
      run: async () => restoreRecord(netns.key, before),
    })
  }
  for (const { s, now } of todo) {
    await tx.step(line(netns, s.key, s.value), () => guestNs.setSysctl(s.path, s.value), { line: line(netns, s.key, now), run: () => guestNs.setSysctl(s.path, now) })
  }
  if (todo.length) result.messages.push(`set in ${netns.label}: ${todo.map(({ s, now }) => `${s.key}=${s.value} (was ${now})`).join(', ')}`)
  if (same.length) result.messages.push(`already so in ${netns.label}: ${same.join(', ')}`)
}

/** Put back the values plumb found: of `keys`, or of every key plumb set (detach --all, --del alone). */
export async function restoreSysctlsIn(tx: Tx, netns: Netns, guestNs: NetHandle, result: OpResult, keys?: string[]): Promise<void> {
  const before = readRecord(netns)
  const entries = before?.sysctl ?? {}
  const chosen = (keys ?? Object.keys(entries)).filter((k) => entries[k] !== undefined)
  const foreign = (keys ?? []).filter((k) => entries[k] === undefined)
  if (foreign.length) result.messages.push(`plumb did not set ${foreign.join(', ')} in ${netns.label}: left as it is`)
  if (chosen.length === 0) {
    if (!keys) result.messages.push(`nothing to restore in ${netns.label}: plumb set no sysctl there`)
    return
  }
  const record = clone(before) as GuestRecord
  const restored: string[] = []
  for (const key of chosen) {
    const e = entries[key] as SysctlEntry
    const path = parseSysctlKey(key).path
    const now = await guestNs.getSysctl(path)
    delete record.sysctl![key]
    // An interface's keys went with the interface (a detached link): nothing to put back.
    if (now === undefined || sameSysctlValue(now, e.found)) continue
    await tx.step(line(netns, key, e.found), () => guestNs.setSysctl(path, e.found), { line: line(netns, key, now), run: () => guestNs.setSysctl(path, now) })
    restored.push(`${key}=${e.found}`)
  }
  await tx.step(`# forget them in ${netns.label}'s record (/run/plumb/guests)`, async () => saveRecord(record), { line: '# restore the record', run: async () => restoreRecord(netns.key, before) })
  result.messages.push(restored.length ? `restored in ${netns.label}: ${restored.join(', ')}` : `${chosen.join(', ')} in ${netns.label} already had the values plumb found`)
}
