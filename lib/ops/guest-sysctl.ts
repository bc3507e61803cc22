// Setting a guest's sysctls and putting back the values plumb found (kept in the guest's record):
// the sysctl op, set-ip (an interface's IPv6 switch) and detach share these steps.

import { notFound, usageError } from '../errors.js'
import type { NetHandle } from '../kernel/types.js'
import { parseSysctlKey, sameSysctlValue } from '../parse/index.js'
import type { SysctlSetting } from '../parse/index.js'
import type { Netns } from '../guest/index.js'
import { inGuest } from './context.js'
import { clone, lockGuestRecord, newRecord, readRecord, restoreRecord, saveRecord } from './guest-record.js'
import type { GuestRecord, SysctlEntry } from './guest-record.js'
import type { OpResult } from './result.js'
import type { Tx } from './tx.js'

/** Set each KEY=VALUE that differs, the value found kept in the guest record first (set-ip turns IPv6 on this way). */
export async function setSysctlsIn(tx: Tx, netns: Netns, guestNs: NetHandle, set: SysctlSetting[], result: OpResult): Promise<void> {
  await lockGuestRecord(tx, netns)
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
  await lockGuestRecord(tx, netns)
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

const line = (netns: Netns, key: string, value: string): string => inGuest(netns, `sysctl -qw ${key}=${/\s/.test(value) ? `'${value}'` : value}`)
