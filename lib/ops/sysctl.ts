// sysctl: set a guest's per-netns sysctls (net.ipv4.ip_forward, net.ipv4.conf.*.*, ...), the
// value plumb found kept in the guest's record so --del and detach --all put it back.

import { usageError } from '../errors.js'
import { parseSysctlKey, parseSysctlSetting } from '../parse/index.js'
import type { GuestRef, SysctlKey, SysctlSetting } from '../parse/index.js'
import { toGuestRef, withGuest } from './context.js'
import type { CommonOptions } from './context.js'
import { readRecord } from './guest-record.js'
import { restoreSysctlsIn, setSysctlsIn } from './guest-sysctl.js'
import { emptyResult } from './result.js'
import type { OpResult } from './result.js'
import { runTx } from './tx.js'
import { persist } from './persist.js'
import { putSysctl, removeSysctl } from '../watch/record.js'

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
