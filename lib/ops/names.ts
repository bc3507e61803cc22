// names: Docker's -h, --add-host, --dns, --dns-search and --dns-option for a running guest.
// plumb's /etc/hosts lines and resolv.conf block carry marks in the files themselves; what a
// mark cannot hold (the hostname and files plumb created) is in the guest's record.

import { mkdirSync, rmdirSync } from 'node:fs'
import { conflict, usageError } from '../errors.js'
import { getHostnameIn, setHostnameIn } from '../kernel/index.js'
import { addHosts, parseAddHost, parseDnsOption, parseDnsSearch, parseDnsServer, parseHostname, plumbHosts, plumbResolv, renderResolv } from '../parse/index.js'
import type { GuestRef, ResolvWant } from '../parse/index.js'
import { resolveGuest } from '../guest/index.js'
import type { Netns } from '../guest/index.js'
import { checkWritable, openGuestEtc } from '../guest/etc.js'
import type { GuestEtc } from '../guest/etc.js'
import { toGuestRef } from './context.js'
import type { CommonOptions } from './context.js'
import { clone, lockGuestRecord, newRecord, readRecord } from './guest-record.js'
import { describeResolv, existsDir, fileState, namesState, recordStep, removeNamesIn, writeStep } from './guest-names.js'
import type { FileState, ValidatedNames } from './guest-names.js'
import type { NamesEntry } from './guest-record.js'
import { emptyResult } from './result.js'
import type { OpResult } from './result.js'
import { runTx } from './tx.js'
import { persist, recordArgs } from './persist.js'
import { putNames, removeNames } from '../watch/record.js'
import type { Tx } from './tx.js'

export interface NamesOptions extends CommonOptions {
  guest: string | GuestRef
  /** -h: /etc/hostname and the guest's UTS hostname */
  hostname?: string
  /** --add-host NAME:ADDR lines in /etc/hosts */
  addHosts?: string[]
  /** --dns ADDR: the nameservers of /etc/resolv.conf (replacing the guest's own) */
  dns?: string[]
  dnsSearch?: string[]
  dnsOptions?: string[]
  /** remove plumb's edits: the ones given, or all of them when none is given */
  del?: boolean
}

export function validateNames(o: NamesOptions): ValidatedNames {
  const guest = toGuestRef(o.guest)
  const resolv: ResolvWant = {}
  if (o.dns?.length) resolv.nameservers = o.dns.map(parseDnsServer)
  if (o.dnsSearch?.length) resolv.search = o.dnsSearch.map(parseDnsSearch)
  if (o.dnsOptions?.length) resolv.options = o.dnsOptions.map(parseDnsOption)
  const hosts = (o.addHosts ?? []).map(parseAddHost)
  for (const [i, h] of hosts.entries()) {
    if (hosts.findIndex((x) => x.name === h.name) !== i) throw usageError(`--add-host gives "${h.name}" twice`, 'one address per name')
  }
  const v: ValidatedNames = { guest, hosts, resolv, del: o.del ?? false, ...(o.hostname !== undefined ? { hostname: parseHostname(o.hostname) } : {}) }
  const given = v.hostname !== undefined || hosts.length > 0 || Object.keys(resolv).length > 0
  if (!given && !v.del) throw usageError('names needs something to set: --hostname, --add-host, --dns, --dns-search or --dns-option', `e.g. plumb names ${typeof o.guest === 'string' ? o.guest : 'GUEST'} --hostname web --add-host db:198.18.0.5 --dns 198.18.0.53`)
  if (v.hostname !== undefined && guest.kind === 'netns') {
    throw usageError(`an ip netns (netns:${guest.name}) has no hostname of its own: it shares the host's UTS namespace`, 'give it /etc/hosts and /etc/resolv.conf entries only, or use a container')
  }
  return v
}

export async function names(opts: NamesOptions): Promise<OpResult> {
  const v = validateNames(opts)
  const netns = await resolveGuest(v.guest, { allowHost: opts.allowHost ?? false })
  try {
    const etc = openGuestEtc(netns)
    try {
      const result = emptyResult(v.del ? 'names --del' : 'names', netns.label, opts.dryRun ?? false)
      return await runTx(opts, async (tx) => {
        const some = v.hostname !== undefined || v.hosts.length > 0 || Object.keys(v.resolv).length > 0
        if (v.del) await removeNamesIn(tx, netns, etc, result, some ? v : undefined)
        else await setNamesIn(tx, netns, etc, v, result)
        await persist(tx, opts, result, [{ netns, edit: v.del ? (r) => removeNames(r, some ? namesArgs(v) : undefined) : (r) => putNames(r, namesArgs(v), new Date().toISOString()) }])
        result.plan = tx.lines
        result.changed = tx.lines.length > 0
        result.names = namesState(netns, etc)
        return result
      })
    } finally {
      etc.close()
    }
  } finally {
    netns.close()
  }
}

async function setNamesIn(tx: Tx, netns: Netns, etc: GuestEtc, v: ValidatedNames, result: OpResult): Promise<void> {
  await lockGuestRecord(tx, netns)
  const before = readRecord(netns)
  const record = clone(before) ?? newRecord(netns)
  const entry = (record.names ??= {})
  const done: string[] = []
  const same: string[] = []

  const hosts = v.hosts.length ? fileState(etc, 'hosts') : undefined
  let hostsNext: string | undefined
  if (hosts) {
    const have = plumbHosts(hosts.text)
    for (const h of v.hosts) {
      const other = have.find((x) => x.name === h.name && x.address !== h.address)
      if (other) throw conflict(`${netns.label}'s /etc/hosts already has plumb's ${h.name} -> ${other.address}, not ${h.address}`, `remove it first: plumb names ${netns.label} --add-host ${h.name}:${other.address} --del`)
    }
    hostsNext = addHosts(ownText(hosts, entry), v.hosts)
    const fresh = v.hosts.filter((h) => !have.some((x) => x.name === h.name))
    if (fresh.length) done.push(`/etc/hosts: ${fresh.map((h) => `${h.name} -> ${h.address}`).join(', ')}`)
    else same.push('/etc/hosts')
  }

  const resolv = Object.keys(v.resolv).length ? fileState(etc, 'resolv.conf') : undefined
  let resolvNext: string | undefined
  if (resolv) {
    const have = plumbResolv(resolv.text)
    for (const k of Object.keys(v.resolv) as Array<keyof ResolvWant>) {
      const mine = have[k]
      if (mine && mine.join(' ') !== v.resolv[k]!.join(' ')) {
        throw conflict(`${netns.label}'s /etc/resolv.conf already has plumb's ${k} ${mine.join(' ')}, not ${v.resolv[k]!.join(' ')}`, `remove plumb's first: plumb names ${netns.label} --del`)
      }
    }
    resolvNext = renderResolv(ownText(resolv, entry), { ...have, ...v.resolv })
    if (resolvNext !== resolv.text) done.push(`/etc/resolv.conf: ${describeResolv(v.resolv)}`)
    else same.push('/etc/resolv.conf')
  }

  let hostname: { file: FileState; uts: string; utsFd: number } | undefined
  if (v.hostname !== undefined) {
    const mine = entry.hostname
    if (mine && mine.set !== v.hostname) throw conflict(`plumb already set ${netns.label}'s hostname to ${mine.set}, not ${v.hostname}`, `restore it first: plumb names ${netns.label} --hostname ${mine.set} --del`)
    if (etc.utsFd === undefined) throw conflict(`${netns.label} shares the host's UTS namespace: setting its hostname would rename the host`, 'run the guest with a UTS namespace of its own (a container has one)')
    if (!mine) {
      const file = fileState(etc, 'hostname')
      hostname = { file, uts: getHostnameIn(etc.utsFd), utsFd: etc.utsFd }
      entry.hostname = { set: v.hostname, file: file.exists ? file.text : null, uts: hostname.uts }
      done.push(`hostname ${v.hostname}`)
    } else same.push(`hostname ${v.hostname}`)
  }

  // Refuse a read-only file before the first step: nothing is changed then.
  for (const f of [hosts, resolv, hostname?.file]) if (f) checkWritable(f.path, f.exists)

  for (const f of [hosts, resolv, hostname?.file]) {
    if (!f) continue
    ;(entry.files ??= {})[f.file] = f.path
    if (!f.exists && !(entry.created ??= []).includes(f.path)) entry.created.push(f.path)
  }
  const dir = etc.kind === 'netns' ? `/etc/netns/${etc.netnsName}` : undefined
  const makeDir = dir !== undefined && [hosts, resolv].some((f) => f && !f.exists) && !existsDir(dir)
  if (makeDir) entry.createdDir = dir
  if (done.length) await recordStep(tx, netns, before, record)
  if (makeDir) {
    await tx.step(`mkdir -p ${dir}`, async () => void mkdirSync(dir!, { recursive: true, mode: 0o755 }), { line: `rmdir ${dir}`, run: async () => rmdirSync(dir!) })
  }
  if (hosts && hostsNext !== undefined) await writeStep(tx, etc, hosts, hostsNext)
  if (resolv && resolvNext !== undefined) await writeStep(tx, etc, resolv, resolvNext)
  if (hostname && v.hostname !== undefined) {
    await writeStep(tx, etc, hostname.file, `${v.hostname}\n`)
    const name = v.hostname
    const old = hostname.uts
    await tx.step(`nsenter --uts=/proc/${etc.pid}/ns/uts hostname ${name}`, async () => setHostnameIn(hostname!.utsFd, name), {
      line: `nsenter --uts=/proc/${etc.pid}/ns/uts hostname ${old}`,
      run: async () => setHostnameIn(hostname!.utsFd, old),
    })
  }
  if (done.length) result.messages.push(`set on ${netns.label}: ${done.join('; ')}`)
  if (same.length) result.messages.push(`already set on ${netns.label}: ${same.join(', ')}`)
}

/**
 * What a file's new text starts from: the file, or the seed a new file gets (for an ip netns, the
 * host's own). A file plumb created and left empty (a run killed between creating and writing
 * it) starts from the seed too, as the clean run would have.
 */
function ownText(f: FileState, entry: NamesEntry): string {
  return f.exists && !(f.text === '' && entry.created?.includes(f.path)) ? f.text : f.seed
}

export type { NamesState, ValidatedNames } from './guest-names.js'

/** The options a record keeps for a names run, in NamesOptions' spelling (what a replay passes back). */
function namesArgs(v: ValidatedNames): Record<string, unknown> {
  return recordArgs({
    hostname: v.hostname,
    addHosts: v.hosts.map((h) => `${h.name}:${h.address}`),
    dns: v.resolv.nameservers,
    dnsSearch: v.resolv.search,
    dnsOptions: v.resolv.options,
  })
}
