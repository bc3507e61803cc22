// names: Docker's -h, --add-host, --dns, --dns-search and --dns-option for a running guest.
// plumb's /etc/hosts lines and resolv.conf block carry marks in the files themselves; what a
// mark cannot hold (the hostname and files plumb created) is in the guest's record.

import { mkdirSync, readFileSync, rmSync, rmdirSync, statSync } from 'node:fs'
import { conflict, usageError } from '../errors.js'
import { getHostnameIn, setHostnameIn } from '../kernel/index.js'
import { addHosts, parseAddHost, parseDnsOption, parseDnsSearch, parseDnsServer, parseHostname, plumbHosts, plumbResolv, removeHosts, renderResolv, stripResolv } from '../parse/index.js'
import type { GuestRef, HostEntry, ResolvWant } from '../parse/index.js'
import { resolveGuest } from '../guest/index.js'
import type { Netns } from '../guest/index.js'
import { assertNotHostFile, checkWritable, openGuestEtc, readGuestFile, writeGuestFile } from '../guest/etc.js'
import type { EtcFile, GuestEtc } from '../guest/etc.js'
import { toGuestRef } from './context.js'
import type { CommonOptions } from './context.js'
import { clone, newRecord, readRecord, restoreRecord, saveRecord } from './guest-record.js'
import type { GuestRecord } from './guest-record.js'
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

/** What plumb set on a guest (ls, results). */
export interface NamesState {
  hostname?: string
  hosts: HostEntry[]
  resolv: ResolvWant
}

export interface ValidatedNames {
  guest: GuestRef
  hostname?: string
  hosts: HostEntry[]
  resolv: ResolvWant
  del: boolean
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

interface FileState {
  file: EtcFile
  path: string
  exists: boolean
  text: string
  /** what the guest sees when the file is absent (an ip netns sees the host's /etc file) */
  seed: string
}

function fileState(etc: GuestEtc, file: EtcFile): FileState {
  const { path, exists } = etc.locate(file)
  // A private mount namespace over the host's own filesystem resolves to the host's very files.
  if (exists) assertNotHostFile(path)
  const text = exists ? readGuestFile(path) : ''
  // `ip netns exec` shows the host's own file where /etc/netns/NAME has none: a file plumb
  // creates there starts as a copy of it, so the guest keeps seeing localhost and its resolvers.
  const seed = !exists && etc.kind === 'netns' && file !== 'hostname' ? readHostEtc(file) : ''
  return { file, path, exists, text, seed }
}

function readHostEtc(file: EtcFile): string {
  try {
    return readFileSync(`/etc/${file}`, 'utf8')
  } catch {
    return ''
  }
}

/** What plumb set on this guest, read back from the files' marks and the record. */
export function namesState(netns: Netns, etc: GuestEtc): NamesState {
  const hosts = fileState(etc, 'hosts')
  const resolv = fileState(etc, 'resolv.conf')
  const rec = readRecord(netns)
  return {
    ...(rec?.names?.hostname ? { hostname: rec.names.hostname.set } : {}),
    hosts: plumbHosts(hosts.text),
    resolv: plumbResolv(resolv.text),
  }
}

/** One file rewrite as a step: its undo writes the old text back (or removes a file plumb created). */
async function writeStep(tx: Tx, etc: GuestEtc, f: FileState, next: string): Promise<void> {
  if (f.exists && next === f.text) return
  if (!f.exists && next === '') return
  await tx.step(etc.writeLine(f.file, next), async () => writeGuestFile(f.path, next, !f.exists), {
    line: f.exists ? etc.writeLine(f.file, f.text) : `rm ${f.path}`,
    run: async () => (f.exists ? writeGuestFile(f.path, f.text) : rmSync(f.path, { force: true })),
  })
}

async function recordStep(tx: Tx, netns: Netns, before: GuestRecord | undefined, next: GuestRecord): Promise<void> {
  if (JSON.stringify(before ?? null) === JSON.stringify(next)) return
  await tx.step(`# record what plumb replaces in ${netns.label} (/run/plumb/guests)`, async () => saveRecord(next), {
    line: `# forget that record`,
    run: async () => restoreRecord(netns.key, before),
  })
}

async function setNamesIn(tx: Tx, netns: Netns, etc: GuestEtc, v: ValidatedNames, result: OpResult): Promise<void> {
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
    hostsNext = addHosts(hosts.exists ? hosts.text : hosts.seed, v.hosts)
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
    resolvNext = renderResolv(resolv.exists ? resolv.text : resolv.seed, { ...have, ...v.resolv })
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

function existsDir(dir: string): boolean {
  try {
    return statSync(dir).isDirectory()
  } catch {
    return false
  }
}

function describeResolv(r: ResolvWant): string {
  return [
    ...(r.nameservers ? [`nameserver ${r.nameservers.join(' ')}`] : []),
    ...(r.search ? [`search ${r.search.join(' ')}`] : []),
    ...(r.options ? [`options ${r.options.join(' ')}`] : []),
  ].join(', ')
}

/**
 * Remove plumb's name edits on a guest: `only` those given (--del with values), or all of them
 * (--del alone, detach --all). Lines that are not plumb's are never touched; the lines plumb's
 * resolv.conf block replaced come back, and so do the hostname and the files as they were.
 */
export async function removeNamesIn(tx: Tx, netns: Netns, etc: GuestEtc, result: OpResult, only?: ValidatedNames): Promise<void> {
  const before = readRecord(netns)
  const record = clone(before) ?? newRecord(netns)
  const entry = (record.names ??= {})
  const created = new Set(entry.created ?? [])
  const done: string[] = []

  const hosts = fileState(etc, 'hosts')
  const mineHosts = plumbHosts(hosts.text)
  const dropHosts = only ? mineHosts.filter((h) => only.hosts.some((x) => x.name === h.name && x.address === h.address)) : mineHosts
  let hostsNext = hosts.text
  if (dropHosts.length) {
    hostsNext = removeHosts(hosts.text, only ? dropHosts : undefined)
    done.push(`/etc/hosts: ${dropHosts.map((h) => h.name).join(', ')}`)
  }
  const resolv = fileState(etc, 'resolv.conf')
  const mineResolv = plumbResolv(resolv.text)
  let resolvNext = resolv.text
  if (Object.keys(mineResolv).length) {
    const keep: ResolvWant = { ...mineResolv }
    for (const k of Object.keys(mineResolv) as Array<keyof ResolvWant>) {
      if (!only || (only.resolv[k] && only.resolv[k]!.join(' ') === mineResolv[k]!.join(' '))) delete keep[k]
    }
    resolvNext = Object.keys(keep).length ? renderResolv(resolv.text, keep) : stripResolv(resolv.text)
    if (resolvNext !== resolv.text) done.push(`/etc/resolv.conf: ${describeResolv(Object.fromEntries(Object.entries(mineResolv).filter(([k]) => !(k in keep))))}`)
  }
  const hn = entry.hostname && (!only || only.hostname === entry.hostname.set) ? entry.hostname : undefined

  if (!dropHosts.length && resolvNext === resolv.text && !hn) {
    const what = only ? 'those name edits are not plumb\'s (or already removed)' : 'plumb made no name edits there'
    result.messages.push(`nothing to remove on ${netns.label}: ${what}`)
    // The marks are the truth: a record whose lines someone else removed is forgotten.
    if (!only && before?.names) {
      delete record.names
      await tx.step(`# forget ${netns.label}'s name edits (none left) in /run/plumb/guests`, async () => saveRecord(record), { line: '# restore the record', run: async () => restoreRecord(netns.key, before) })
    }
    return
  }
  for (const f of [hosts, resolv]) if (f.exists) checkWritable(f.path, true)

  // A file plumb created goes when nothing of plumb's is left in it (the guest then sees what it saw before).
  const rmHosts = created.has(hosts.path) && plumbHosts(hostsNext).length === 0
  const rmResolv = created.has(resolv.path) && Object.keys(plumbResolv(resolvNext)).length === 0
  if (hn) delete entry.hostname
  if (rmHosts) entry.created = (entry.created ?? []).filter((p) => p !== hosts.path)
  if (rmResolv) entry.created = (entry.created ?? []).filter((p) => p !== resolv.path)
  if (!plumbHosts(hostsNext).length && !rmHosts && entry.files) delete entry.files.hosts
  if (!Object.keys(plumbResolv(resolvNext)).length && !rmResolv && entry.files) delete entry.files['resolv.conf']
  if (rmHosts && entry.files) delete entry.files.hosts
  if (rmResolv && entry.files) delete entry.files['resolv.conf']
  const dir = entry.createdDir
  const dropDir = dir !== undefined && !(entry.created ?? []).some((p) => p.startsWith(`${dir}/`))
  if (dropDir) delete entry.createdDir

  await rewriteOrRemove(tx, etc, hosts, hostsNext, rmHosts)
  await rewriteOrRemove(tx, etc, resolv, resolvNext, rmResolv)
  if (hn) {
    const file = fileState(etc, 'hostname')
    if (entry.files) delete entry.files.hostname
    if (hn.file === null || hn.file === undefined) {
      if (file.exists && created.has(file.path)) {
        await tx.step(`rm ${file.path}`, async () => rmSync(file.path, { force: true }), { line: etc.writeLine('hostname', file.text), run: async () => writeGuestFile(file.path, file.text, true) })
      }
    } else {
      await writeStep(tx, etc, file, hn.file)
    }
    if (etc.utsFd !== undefined && hn.uts !== undefined) {
      const utsFd = etc.utsFd
      const now = getHostnameIn(utsFd)
      const old = hn.uts
      // Put the old name back only over plumb's: a hostname someone changed since stays theirs.
      if (now === hn.set) {
        await tx.step(`nsenter --uts=/proc/${etc.pid}/ns/uts hostname ${old}`, async () => setHostnameIn(utsFd, old), {
          line: `nsenter --uts=/proc/${etc.pid}/ns/uts hostname ${now}`,
          run: async () => setHostnameIn(utsFd, now),
        })
      } else {
        result.messages.push(`note: ${netns.label}'s hostname is ${now} now, not plumb's ${hn.set}: left as it is`)
      }
    }
    done.push(`hostname ${hn.set} (back to ${hn.uts ?? '?'})`)
  }
  if (dropDir) await tx.step(`rmdir ${dir}`, async () => rmDirIfEmpty(dir!), { line: `mkdir -p ${dir}`, run: async () => void mkdirSync(dir!, { recursive: true }) })
  await tx.step(`# update the record of ${netns.label} (/run/plumb/guests)`, async () => saveRecord(record), { line: '# restore the record', run: async () => restoreRecord(netns.key, before) })
  result.messages.push(`removed from ${netns.label}: ${done.join('; ')}`)
}

async function rewriteOrRemove(tx: Tx, etc: GuestEtc, f: FileState, next: string, remove: boolean): Promise<void> {
  if (remove) {
    await tx.step(`rm ${f.path}`, async () => rmSync(f.path, { force: true }), { line: etc.writeLine(f.file, f.text), run: async () => writeGuestFile(f.path, f.text, true) })
    return
  }
  await writeStep(tx, etc, f, next)
}

function rmDirIfEmpty(dir: string): void {
  try {
    rmdirSync(dir)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOTEMPTY' && (err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
}

/** detach --all: every name edit of plumb's on this guest goes (nothing when there is none). */
export async function undoNamesOf(tx: Tx, netns: Netns, result: OpResult): Promise<void> {
  const rec = readRecord(netns)
  if (!rec?.names || netns.isHost) return
  let etc: GuestEtc
  try {
    etc = openGuestEtc(netns)
  } catch {
    return // no /etc of its own: plumb could not have edited it
  }
  try {
    await removeNamesIn(tx, netns, etc, result)
  } finally {
    etc.close()
  }
}

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
