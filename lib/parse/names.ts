// Docker's -h, --add-host, --dns, --dns-search, --dns-option for `plumb names`: the user's
// values parsed, and the pure edits of a guest's /etc/hosts and /etc/resolv.conf that carry
// plumb's marks (so --del removes exactly plumb's lines and brings back what they replaced).

import { usageError } from '../errors.js'
import { parseAddr } from './addr.js'

/** The trailing comment on every /etc/hosts line plumb writes (hosts(5): `#` to end of line is a comment). */
export const HOSTS_MARK = '# plumb'
/** plumb's block in /etc/resolv.conf sits between these lines; a trailing comment on a `search`
 *  line would be read as two more domains by some resolvers, so the block marks it instead. */
export const RESOLV_BEGIN = '# plumb: begin (plumb names --del removes this block)'
export const RESOLV_END = '# plumb: end'
/** An original line that plumb's block overrides, kept in the file (commented) so --del restores it. */
export const RESOLV_REPLACED = '# plumb-replaced: '

/** sethostname(2) takes at most HOST_NAME_MAX (64) bytes. */
const HOST_NAME_MAX = 64
const LABEL = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/

function checkDomain(s: string, what: string, example: string): string {
  const name = s.trim()
  if (name === '') throw usageError(`empty ${what}`, `e.g. ${example}`)
  if (Buffer.byteLength(name) > 253 || !name.split('.').every((l) => LABEL.test(l))) {
    throw usageError(`invalid ${what} "${s}"`, `letters, digits and dashes in dot-separated labels of at most 63 characters, e.g. ${example}`)
  }
  return name
}

export function parseHostname(s: string): string {
  const name = checkDomain(s, 'hostname (--hostname)', 'web or web.lab.example')
  if (Buffer.byteLength(name) > HOST_NAME_MAX) throw usageError(`hostname "${s}" is longer than ${HOST_NAME_MAX} bytes (the kernel's limit)`, 'use a shorter name')
  return name
}

export interface HostEntry {
  name: string
  address: string
}

/** Docker's `--add-host NAME:ADDR` (IPv6 allowed: the name ends at the first colon). */
export function parseAddHost(s: string): HostEntry {
  const text = s.trim()
  const colon = text.indexOf(':')
  if (colon <= 0) throw usageError(`invalid --add-host "${s}": expected NAME:ADDR`, 'e.g. --add-host db:198.18.0.5')
  const name = checkDomain(text.slice(0, colon), `host name in --add-host "${s}"`, 'db:198.18.0.5')
  const address = parseAddr(text.slice(colon + 1), 'address', `--add-host ${s}`).text
  return { name, address }
}

export function parseDnsServer(s: string): string {
  return parseAddr(s.trim(), 'DNS server address', `--dns ${s}`).text
}

export function parseDnsSearch(s: string): string {
  return checkDomain(s.trim().replace(/\.$/, ''), 'search domain (--dns-search)', 'lab.example')
}

/** resolv.conf(5) options: a word, or word:number (ndots:2, timeout:1, rotate, edns0, use-vc). */
export function parseDnsOption(s: string): string {
  const opt = s.trim()
  if (!/^[a-z][a-z0-9-]*(:\d{1,4})?$/.test(opt)) throw usageError(`invalid --dns-option "${s}"`, 'a resolv.conf option such as ndots:2, timeout:1, attempts:3, rotate, edns0')
  return opt
}

// ---- /etc/hosts ------------------------------------------------------------------------------

const lines = (text: string): string[] => (text === '' ? [] : text.replace(/\n$/, '').split('\n'))
const join = (ls: string[]): string => (ls.length ? `${ls.join('\n')}\n` : '')
const isHostsMark = (line: string): boolean => line.trimEnd().endsWith(HOSTS_MARK)

/** plumb's entries in a hosts file (the lines it marked). */
export function plumbHosts(text: string): HostEntry[] {
  return lines(text)
    .filter(isHostsMark)
    .map((l) => l.split('#')[0]!.trim().split(/\s+/))
    .filter((w) => w.length >= 2)
    .map(([address, name]) => ({ address: address!, name: name! }))
}

export function hostsLine(e: HostEntry): string {
  return `${e.address}\t${e.name}\t${HOSTS_MARK}`
}

/** The file with `add` appended as marked lines (those already there are not repeated). */
export function addHosts(text: string, add: HostEntry[]): string {
  const have = plumbHosts(text)
  const fresh = add.filter((e) => !have.some((h) => h.name === e.name && h.address === e.address))
  return join([...lines(text), ...fresh.map(hostsLine)])
}

/** The file without plumb's lines (only those in `only`, when given). */
export function removeHosts(text: string, only?: HostEntry[]): string {
  return join(
    lines(text).filter((l) => {
      if (!isHostsMark(l)) return true
      if (!only) return false
      const [address, name] = l.split('#')[0]!.trim().split(/\s+/)
      return !only.some((e) => e.name === name && e.address === address)
    }),
  )
}

// ---- /etc/resolv.conf ------------------------------------------------------------------------

export interface ResolvWant {
  nameservers?: string[]
  search?: string[]
  options?: string[]
}

const KIND_OF: Record<keyof ResolvWant, string> = { nameservers: 'nameserver', search: 'search', options: 'options' }

/** What plumb's block sets (an absent kind: plumb does not set it). */
export function plumbResolv(text: string): ResolvWant {
  const ls = lines(text)
  const begin = ls.indexOf(RESOLV_BEGIN)
  const end = ls.indexOf(RESOLV_END)
  const out: ResolvWant = {}
  if (begin < 0 || end < begin) return out
  for (const l of ls.slice(begin + 1, end)) {
    const [word, ...rest] = l.trim().split(/\s+/)
    if (word === 'nameserver' && rest[0]) (out.nameservers ??= []).push(rest[0])
    else if (word === 'search') (out.search ??= []).push(...rest)
    else if (word === 'options') (out.options ??= []).push(...rest)
  }
  return out
}

/** The file as it was before plumb: its block removed, the lines it replaced brought back. */
export function stripResolv(text: string): string {
  const out: string[] = []
  let inBlock = false
  for (const l of lines(text)) {
    if (l === RESOLV_BEGIN) {
      inBlock = true
      continue
    }
    if (inBlock) {
      if (l === RESOLV_END) inBlock = false
      continue
    }
    out.push(l.startsWith(RESOLV_REPLACED) ? l.slice(RESOLV_REPLACED.length) : l)
  }
  return join(out)
}

/**
 * The file with plumb's block setting `want` (the kinds not in `want` left as the file has
 * them): the original lines of each kind plumb sets are commented out with RESOLV_REPLACED,
 * so the guest's resolver reads only plumb's (glibc takes the last `search` line, the first
 * three nameservers), and the block goes first. An empty `want` gives the original back.
 */
export function renderResolv(text: string, want: ResolvWant): string {
  const original = lines(stripResolv(text))
  const kinds = (Object.keys(KIND_OF) as Array<keyof ResolvWant>).filter((k) => want[k]?.length)
  if (kinds.length === 0) return join(original)
  const replaced = new Set(kinds.map((k) => KIND_OF[k]))
  const body = original.map((l) => (replaced.has(l.trim().split(/\s+/)[0] ?? '') ? `${RESOLV_REPLACED}${l}` : l))
  const block = [
    RESOLV_BEGIN,
    ...(want.nameservers ?? []).map((n) => `nameserver ${n}`),
    ...(want.search?.length ? [`search ${want.search.join(' ')}`] : []),
    ...(want.options?.length ? [`options ${want.options.join(' ')}`] : []),
    RESOLV_END,
  ]
  return join([...block, ...body])
}
