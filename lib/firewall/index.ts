// iptables through the backend Docker uses (iptables-nft on Debian 12): reading the tables
// (iptables-save, one spawn for both families), applying a change (iptables-restore --noflush:
// one atomic batch, one spawn), and attach-veth's rule for Docker's FORWARD DROP.
//
// Docker's FORWARD DROP vs. plumb's bridges: with br_netfilter on, frames bridged between two
// ports of one Linux bridge traverse iptables FORWARD, and Docker sets its policy to DROP, so
// two containers on a user bridge silently can't talk (pipework's most common complaint).
// attach-veth adds one marked ACCEPT per bridge (in PLUMB-FORWARD) and detach removes it with
// the bridge's last plumb port. A bridge that is Docker's own gets none: its forwarding is
// Docker's policy (--icc=false closes it on purpose).

import { mkdirSync, readFileSync, realpathSync, statSync } from 'node:fs'
import { writeFileAtomic } from '../write-file.js'
import { basename } from 'node:path'
import { PlumbError } from '../errors.js'
import { RUN_DIR } from '../paths.js'
import { findOnPath, run as runProgram } from '../proc.js'
import { nftGeneration } from '../kernel/index.js'
import { formatRuleMark } from '../parse/index.js'
import { restoreText } from './plan.js'
import type { Cmd } from './plan.js'
import { forwardDrops, hasDockerUser, isDockerBridge, parseSave, tablesFromJson, tablesToJson } from './tables.js'
import type { Binary, StoredTables, Tables } from './tables.js'

export * from './tables.js'
export * from './plan.js'

/** The one lock of every plumb change to the firewall (flock(2): the flock binary and the addon share it). */
export const FIREWALL_LOCK = `${RUN_DIR}/firewall.lock`

/** A program's exit status and output; one that cannot be started is status 127, as in a shell. */
async function run(binary: string, args: string[], opts: { input?: string; childOf?: string } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await runProgram(binary, args, { ...(opts.input !== undefined ? { input: opts.input } : {}), ...(opts.childOf !== undefined ? { childOf: opts.childOf } : {}) })
    return { code: r.exitCode, stdout: r.stdout, stderr: r.stderr }
  } catch {
    return { code: 127, stdout: '', stderr: '' }
  }
}

// Several programs' output from ONE spawn: this sits on every attach, and forking node costs
// ~5 ms of main-thread time per spawn, a shell's fork a fraction of that. Each output is
// followed by a line carrying its program's exit status.
const END = '#plumb-end'
const DUMP = `for p; do eval "$p" 2>/dev/null; echo "${END} $?"; done`

/**
 * Each command's output, or undefined when there is no such table here: the program is not
 * installed (127), or iptables says the table is missing (3, as iptables-nft does for a family
 * without one). Any other failure (1, 2, 4: no permission, the lock, ...) is an error, never "no
 * rules": a table that could not be read planned as empty would skip the ACCEPT Docker's DROP
 * needs, or have iptables-restore declare (and so flush) a chain that exists.
 */
async function dumpAll(commands: readonly string[]): Promise<Array<string | undefined>> {
  if (commands.length === 0) return []
  const res = await run('sh', ['-c', DUMP, 'sh', ...commands])
  const out: Array<string | undefined> = []
  let lines: string[] = []
  for (const line of res.stdout.split('\n')) {
    if (!line.startsWith(`${END} `)) {
      lines.push(line)
      continue
    }
    const status = Number(line.slice(END.length + 1))
    const cmd = commands[out.length]!
    if (status !== 0 && status !== 127 && status !== 3) {
      throw new PlumbError('FAILED', `failed to read the firewall: \`${cmd}\` exited ${status}`, { hint: 'is another program holding the xtables lock? try again, or run it by hand to see why' })
    }
    out.push(status === 0 ? lines.join('\n') : undefined)
    lines = []
  }
  if (out.length < commands.length) throw new PlumbError('FAILED', `failed to read the firewall: the shell reading it stopped after ${out.length} of ${commands.length} tables`)
  return out
}

/**
 * What plumb last read of the tables (iptables-save, parsed: tablesToJson), and under which key:
 * iptables' view cannot have changed while the key holds, so an attach to a bridge whose rule is
 * in place, an ls, a gc or a lab deploy that finds nothing changed spawns nothing (the spawns are ~5-10 ms of a
 * one-shot command on a busy machine: bench/README.md).
 *
 * The key is the nftables generation of plumb's netns (lib/kernel/nftgen.ts), which the kernel
 * bumps on every committed nftables transaction, and so on every change iptables-nft makes, by
 * plumb or anyone (Docker, firewalld, nft itself); plus the programs `iptables-save` and
 * `ip6tables-save` on PATH resolve to. It is read BEFORE the tables: a change racing the read
 * bumps it past the key stored, so the next run reads again (the other order could store a new
 * key with old tables).
 * Kept only when each binary is iptables-nft (xtables-nft-multi, or "(nf_tables)" in its -V): the
 * legacy backend's tables change without a generation. And only in the initial netns, recognised by
 * its fixed inode (NET_NS_INIT_INO, kernel 6.18 and later): it never dies, while another netns's
 * inode and generation counter can come back, together, with a new netns after it is gone.
 */
export const TABLES_CACHE = `${RUN_DIR}/firewall-save.json`
const NET_NS_INIT_INO = 0xeffffff9

interface TablesKey {
  gen: number
  /** each binary asked for and the file its -save program resolves to */
  bins: Partial<Record<Binary, string>>
}
/** The cache file: the key and the tables read under it, parsed (format 2; format 1 held iptables-save's text) */
interface CachedTables extends TablesKey {
  format: 2
  tables: Partial<Record<Binary, StoredTables>>
}

/** Where each binary's iptables-save resolves to, walked once per process (PATH and its symlinks:
 *  ~40 syscalls a binary, on every attach of a library caller). */
const resolved = new Map<Binary, string | undefined>()
function resolveBinary(b: Binary): string | undefined {
  if (!resolved.has(b)) {
    const at = findOnPath(`${b}-save`)
    // libc's realpath (one call) rather than node's, which walks the path in JS
    resolved.set(b, at === undefined ? undefined : realpathSync.native(at))
  }
  return resolved.get(b)
}

async function tablesKey(binaries: readonly Binary[]): Promise<TablesKey | undefined> {
  try {
    if (statSync('/proc/self/ns/net').ino !== NET_NS_INIT_INO) return undefined
    const bins: TablesKey['bins'] = {}
    for (const b of binaries) {
      const at = resolveBinary(b)
      if (at === undefined) return undefined
      bins[b] = at
    }
    const gen = await nftGeneration()
    return gen === undefined ? undefined : { gen, bins }
  } catch {
    return undefined // no key: the tables are read, as without a cache
  }
}

function cachedTables(key: TablesKey, binaries: readonly Binary[]): Map<Binary, Tables> | undefined {
  try {
    const c = JSON.parse(readFileSync(TABLES_CACHE, 'utf8')) as CachedTables
    if (c.format !== 2 || c.gen !== key.gen || !binaries.every((b) => c.bins?.[b] === key.bins[b] && c.tables?.[b] !== undefined)) return undefined
    return new Map(binaries.map((b) => [b, tablesFromJson(c.tables[b])]))
  } catch {
    return undefined // none yet, an older plumb's, or torn by hand: read the tables
  }
}

function storeTables(key: TablesKey, tables: Map<Binary, Tables>): void {
  try {
    mkdirSync(RUN_DIR, { recursive: true })
    const stored: CachedTables = { format: 2, ...key, tables: Object.fromEntries([...tables].map(([b, t]) => [b, tablesToJson(t)])) }
    writeFileAtomic(TABLES_CACHE, JSON.stringify(stored))
  } catch {
    // not root, a read-only /run: every run reads the tables
  }
}

/**
 * Reads of one nftables generation already under way in this process: a lab's twenty attaches to
 * one bridge, started together after the first rule moved the generation, share one spawn
 * instead of twenty (the same generation is the same tables).
 */
const reading = new Map<string, Promise<{ tables: Map<Binary, Tables>; stored: boolean }>>()

/**
 * The tables this process last had for a key (its id as in `reading`) that the cache file holds
 * too (the same rule: an nft backend): a library caller's n-th attach while the generation
 * stands reads neither the file nor the tables again. Shared by every caller: only read, never
 * changed.
 */
let lastTables: { id: string; tables: Map<Binary, Tables> } | undefined

/**
 * The families' tables (filter, nat) as iptables-save gives them, from one spawn, or none while
 * nftables' generation stands (above); a family not installed is absent. plumb's one read of the
 * firewall: attach's check, planning a change (under the firewall lock), ls, gc and labs. The
 * tables are shared with other readers of the same generation: only read, never changed.
 */
export async function saveTables(binaries: readonly Binary[] = ['iptables', 'ip6tables']): Promise<Map<Binary, Tables>> {
  if (binaries.length === 0) return new Map()
  const key = await tablesKey(binaries)
  if (!key) return (await readSaved(binaries, key)).tables
  const id = `${key.gen} ${binaries.map((b) => `${b}=${key.bins[b]}`).join(' ')}`
  if (lastTables?.id === id) return new Map(lastTables.tables)
  const cached = cachedTables(key, binaries)
  let p = cached ? Promise.resolve({ tables: cached, stored: true }) : reading.get(id)
  if (!p) {
    p = readSaved(binaries, key).finally(() => reading.delete(id))
    reading.set(id, p)
  }
  const { tables, stored } = await p
  if (stored) lastTables = { id, tables }
  return new Map(tables)
}

/** The tables read by spawning iptables-save; `stored`: kept in the cache file for `key`. */
async function readSaved(binaries: readonly Binary[], key: TablesKey | undefined): Promise<{ tables: Map<Binary, Tables>; stored: boolean }> {
  const tables = new Map<Binary, Tables>()
  // With a key, each binary's backend: xtables-nft-multi is iptables-nft; anything else (a
  // wrapper, the legacy backend) says it with -V, in the same spawn as the tables.
  const ask = key ? binaries.filter((b) => basename(key.bins[b] ?? '') !== 'xtables-nft-multi') : []
  const texts = await dumpAll([...binaries.map((b) => `${b}-save`), ...ask.map((b) => `${b}-save -V`)])
  binaries.forEach((b, i) => {
    const t = texts[i]
    if (t !== undefined) tables.set(b, parseSave(t))
  })
  const nft = ask.every((_, i) => texts[binaries.length + i]?.includes('(nf_tables)'))
  const stored = !!key && nft && tables.size === binaries.length
  if (stored) storeTables(key, tables)
  return { tables, stored }
}

/** Apply planned commands as one iptables-restore --noflush batch: all of them or none. */
export async function applyCmds(binary: Binary, cmds: readonly Cmd[], childOf?: string): Promise<void> {
  const text = restoreText(cmds)
  if (!text) return
  const r = await run(`${binary}-restore`, ['-w', '--noflush'], { input: text, ...(childOf !== undefined ? { childOf } : {}) })
  if (r.code === 127 && r.stderr === '') throw new PlumbError('UNSUPPORTED', `cannot run ${binary}-restore`, { hint: 'install iptables (the nft backend Docker uses)' })
  if (r.code !== 0) {
    throw new PlumbError('FAILED', `failed to change the firewall (${binary}-restore): ${r.stderr.trim() || `exit ${r.code}`}`, {
      hint: `the batch was:\n${text}`,
    })
  }
}

// ---- attach-veth's rule --------------------------------------------------------------------

export interface FirewallRule {
  binary: Binary
  /** where PLUMB-FORWARD is hooked from if the rule creates it */
  hook: 'DOCKER-USER' | 'FORWARD'
  bridge: string
}

export const ruleComment = (bridge: string): string => formatRuleMark({ op: 'bridge', bridge })

const ruleArgs = (r: FirewallRule): string[] => ['-i', r.bridge, '-o', r.bridge, '-m', 'comment', '--comment', ruleComment(r.bridge), '-j', 'ACCEPT']

export const ruleLine = (r: FirewallRule, verb: '-A' | '-D'): string => `${r.binary} -w ${verb} PLUMB-FORWARD ${ruleArgs(r).join(' ')}`

/** br_netfilter hands bridged IPv4 (IPv6) frames to iptables (ip6tables) only when this sysctl is 1. */
function bridgeNetfilterOn(binary: Binary): boolean {
  const key = binary === 'iptables' ? 'bridge-nf-call-iptables' : 'bridge-nf-call-ip6tables'
  try {
    return readFileSync(`/proc/sys/net/bridge/${key}`, 'utf8').trim() === '1'
  } catch {
    return false // br_netfilter not loaded: bridged frames never see iptables
  }
}

export interface BridgeFirewall {
  /** the ACCEPT rules the bridge needs here (one per family whose FORWARD drops bridged frames), present or not */
  rules: Array<FirewallRule & { present: boolean }>
  /** `plumb isolate` is in force on the bridge: new guest ports are isolated too */
  isolated: boolean
  /** the bridge is Docker's own: no rule (its forwarding is Docker's policy) */
  dockerBridge: boolean
}

/**
 * What a bridge needs from the firewall on this host, from one read of the tables (IPv4 always:
 * it says whether the bridge is isolated; IPv6 when br_netfilter hands it bridged frames). A
 * table that cannot be read rejects (see dumpAll): the op fails and rolls back.
 */
export async function bridgeFirewall(bridge: string): Promise<BridgeFirewall> {
  const families: Binary[] = ['iptables', ...(bridgeNetfilterOn('ip6tables') ? (['ip6tables'] as const) : [])]
  const v4On = bridgeNetfilterOn('iptables')
  const saved = await saveTables(families)
  const v4 = saved.get('iptables') ?? {}
  const out: BridgeFirewall = {
    rules: [],
    isolated: (v4.filter?.rules ?? []).some((r) => r.mark?.op === 'isolate' && r.mark.bridge === bridge),
    dockerBridge: isDockerBridge(v4, bridge),
  }
  if (out.dockerBridge) return out
  for (const binary of families) {
    if (binary === 'iptables' && !v4On) continue
    const tables = saved.get(binary)
    if (tables === undefined) continue // no such binary or no filter table: nothing drops
    if (!forwardDrops(tables)) continue
    const present = (tables.filter?.rules ?? []).some((r) => r.mark?.op === 'bridge' && r.mark.bridge === bridge)
    out.rules.push({ binary, hook: hasDockerUser(tables) ? 'DOCKER-USER' : 'FORWARD', bridge, present })
  }
  return out
}

const PRESENT = 99
// check-then-append as one step under the lock: $1 binary, $2 hook chain, the rest the rule.
// PLUMB-FORWARD and its hook are made in one restore batch when the chain is missing.
const ENSURE = [
  'b=$1; h=$2; shift 2',
  `"$b" -w -C PLUMB-FORWARD "$@" 2>/dev/null && exit ${PRESENT}`,
  'if "$b" -w -S PLUMB-FORWARD >/dev/null 2>&1; then',
  '  "$b" -w -C "$h" -j PLUMB-FORWARD 2>/dev/null || "$b" -w -I "$h" 1 -j PLUMB-FORWARD || exit',
  '  exec "$b" -w -A PLUMB-FORWARD "$@"',
  'fi',
  `printf '*filter\\n:PLUMB-FORWARD - [0:0]\\n-I %s 1 -j PLUMB-FORWARD\\n-A PLUMB-FORWARD %s\\nCOMMIT\\n' "$h" "$*" | "$b-restore" -w --noflush`,
].join('\n')

/**
 * Append the rule unless it is there; true when this call added it. Check and append run
 * under one flock: parallel attaches to one new bridge all planned "absent", and a bare -C
 * then -A still let two of ten add a copy each.
 */
export async function addRule(r: FirewallRule, opts: { childOf?: string } = {}): Promise<boolean> {
  try {
    mkdirSync(RUN_DIR, { recursive: true })
  } catch {
    // flock reports a lock it cannot create
  }
  const res = await run('flock', ['-w', '10', FIREWALL_LOCK, 'sh', '-c', ENSURE, 'sh', r.binary, r.hook, ...ruleArgs(r)], opts)
  if (res.code === PRESENT) return false
  if (res.code === 127 && res.stderr === '') throw new PlumbError('UNSUPPORTED', `cannot run flock to add the firewall rule for bridge "${r.bridge}"`, { hint: 'install util-linux' })
  if (res.code !== 0) throw new PlumbError('FAILED', `failed to add firewall rule for bridge "${r.bridge}": ${res.stderr.trim() || `exit ${res.code}`}`)
  return true
}
