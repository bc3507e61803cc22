// A guest's names as plumb left them (its lines in /etc/hosts and resolv.conf, the hostname it
// set, the files it created) and the steps that write and take them back: the names op, detach
// and ls share these.

import { mkdirSync, readFileSync, rmSync, rmdirSync, statSync } from 'node:fs'
import { getHostnameIn, setHostnameIn } from '../kernel/index.js'
import { plumbHosts, plumbResolv, removeHosts, renderResolv, stripResolv } from '../parse/index.js'
import type { GuestRef, HostEntry, ResolvWant } from '../parse/index.js'
import type { Netns } from '../guest/index.js'
import { assertNotHostFile, checkWritable, openGuestEtc, readGuestFile, writeGuestFile } from '../guest/etc.js'
import type { EtcFile, GuestEtc } from '../guest/etc.js'
import { clone, lockGuestRecord, newRecord, readRecord, restoreRecord, saveRecord } from './guest-record.js'
import type { GuestRecord } from './guest-record.js'
import type { OpResult } from './result.js'
import type { Tx } from './tx.js'

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

export interface FileState {
  file: EtcFile
  path: string
  exists: boolean
  text: string
  /** what the guest sees when the file is absent (an ip netns sees the host's /etc file); read when it is absent or empty */
  seed: string
}

export function fileState(etc: GuestEtc, file: EtcFile): FileState {
  const { path, exists } = etc.locate(file)
  // A private mount namespace over the host's own filesystem resolves to the host's very files.
  if (exists) assertNotHostFile(path)
  const text = exists ? readGuestFile(path) : ''
  // `ip netns exec` shows the host's own file where /etc/netns/NAME has none: a file plumb
  // creates there starts as a copy of it, so the guest keeps seeing localhost and its resolvers.
  // (An empty file too: one plumb created and was killed before writing starts from it as well.)
  const seed = text === '' && etc.kind === 'netns' && file !== 'hostname' ? readHostEtc(file) : ''
  return { file, path, exists, text, seed }
}

export function readHostEtc(file: EtcFile): string {
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
export async function writeStep(tx: Tx, etc: GuestEtc, f: FileState, next: string): Promise<void> {
  if (f.exists && next === f.text) return
  if (!f.exists && next === '') return
  await tx.step(etc.writeLine(f.file, next), async () => writeGuestFile(f.path, next, !f.exists), {
    line: f.exists ? etc.writeLine(f.file, f.text) : `rm ${f.path}`,
    run: async () => (f.exists ? writeGuestFile(f.path, f.text) : rmSync(f.path, { force: true })),
  })
}

export async function recordStep(tx: Tx, netns: Netns, before: GuestRecord | undefined, next: GuestRecord): Promise<void> {
  if (JSON.stringify(before ?? null) === JSON.stringify(next)) return
  await tx.step(`# record what plumb replaces in ${netns.label} (/run/plumb/guests)`, async () => saveRecord(next), {
    line: `# forget that record`,
    run: async () => restoreRecord(netns.key, before),
  })
}

export function existsDir(dir: string): boolean {
  try {
    return statSync(dir).isDirectory()
  } catch {
    return false
  }
}

/**
 * Remove plumb's name edits on a guest: `only` those given (--del with values), or all of them
 * (--del alone, detach --all). Lines that are not plumb's are never touched; the lines plumb's
 * resolv.conf block replaced come back, and so do the hostname and the files as they were.
 */
export async function removeNamesIn(tx: Tx, netns: Netns, etc: GuestEtc, result: OpResult, only?: ValidatedNames): Promise<void> {
  await lockGuestRecord(tx, netns)
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
  // A file plumb created that holds nothing of plumb's (a run killed between creating and
  // writing it, or someone took plumb's lines out) goes all the same, as it would with its last line.
  const emptied = [hosts, resolv].filter((f) => f.exists && created.has(f.path) && (f === hosts ? mineHosts.length === 0 : Object.keys(mineResolv).length === 0))
  for (const f of emptied) done.push(`${f.path} (plumb created it; nothing of plumb's left in it)`)

  if (!dropHosts.length && resolvNext === resolv.text && !hn && emptied.length === 0) {
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

export async function rewriteOrRemove(tx: Tx, etc: GuestEtc, f: FileState, next: string, remove: boolean): Promise<void> {
  if (remove) {
    await tx.step(`rm ${f.path}`, async () => rmSync(f.path, { force: true }), { line: etc.writeLine(f.file, f.text), run: async () => writeGuestFile(f.path, f.text, true) })
    return
  }
  await writeStep(tx, etc, f, next)
}

export function rmDirIfEmpty(dir: string): void {
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

export function describeResolv(r: ResolvWant): string {
  return [
    ...(r.nameservers ? [`nameserver ${r.nameservers.join(' ')}`] : []),
    ...(r.search ? [`search ${r.search.join(' ')}`] : []),
    ...(r.options ? [`options ${r.options.join(' ')}`] : []),
  ].join(', ')
}
