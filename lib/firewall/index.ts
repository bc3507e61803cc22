// Docker's FORWARD DROP vs. plumb's bridges: with br_netfilter on, frames bridged between two
// ports of one Linux bridge traverse iptables FORWARD, and Docker sets its policy to DROP, so
// two containers on a user bridge silently can't talk (pipework's most common complaint).
// plumb adds one marked ACCEPT rule per bridge (DOCKER-USER, else FORWARD) and removes it with
// the bridge's last plumb port.

import { mkdirSync, readFileSync } from 'node:fs'
import { RUN_DIR } from '../paths.js'
import { run as runProgram } from '../proc.js'

export interface FirewallRule {
  binary: 'iptables' | 'ip6tables'
  chain: 'DOCKER-USER' | 'FORWARD'
  bridge: string
}

export const ruleComment = (bridge: string): string => `plumb:${bridge}`

/** A program's exit status and output; one that cannot be started is status 127, as in a shell. */
async function run(binary: string, args: string[], onSpawn?: (pid: number) => void): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await runProgram(binary, args, onSpawn ? { onSpawn } : {})
    return { code: r.exitCode, stdout: r.stdout, stderr: r.stderr }
  } catch {
    return { code: 127, stdout: '', stderr: '' }
  }
}

const ruleArgs = (r: FirewallRule): string[] => ['-i', r.bridge, '-o', r.bridge, '-m', 'comment', '--comment', ruleComment(r.bridge), '-j', 'ACCEPT']

export const ruleLine = (r: FirewallRule, verb: '-I' | '-D'): string =>
  `${r.binary} -w ${verb} ${r.chain}${verb === '-I' ? ' 1' : ''} ${ruleArgs(r).map((a) => (a.includes(' ') ? `'${a}'` : a)).join(' ')}`

/** br_netfilter hands bridged IPv4 (IPv6) frames to iptables (ip6tables) only when this sysctl is 1. */
function bridgeNetfilterOn(binary: FirewallRule['binary']): boolean {
  const key = binary === 'iptables' ? 'bridge-nf-call-iptables' : 'bridge-nf-call-ip6tables'
  try {
    return readFileSync(`/proc/sys/net/bridge/${key}`, 'utf8').trim() === '1'
  } catch {
    return false // br_netfilter not loaded: bridged frames never see iptables
  }
}

// Both families' filter tables from ONE spawn: this sits on every attach, and forking node costs
// ~5 ms of main-thread time per spawn, a shell's fork a fraction of that. Each table is followed
// by a line carrying its binary's exit status.
const END = '#plumb-end'
const DUMP_TABLES = `for b; do "$b" -w -S 2>/dev/null; echo "${END} $b $?"; done`

/** `iptables -S` (and/or ip6tables) output per binary, for the binaries that answered (exit 0). */
export async function dumpTables(binaries: ReadonlyArray<FirewallRule['binary']>): Promise<Map<FirewallRule['binary'], string>> {
  const tables = new Map<FirewallRule['binary'], string>()
  if (binaries.length === 0) return tables
  const res = await run('sh', ['-c', DUMP_TABLES, 'sh', ...binaries])
  let lines: string[] = []
  for (const line of res.stdout.split('\n')) {
    if (!line.startsWith(`${END} `)) {
      lines.push(line)
      continue
    }
    const [, binary, code] = line.split(' ')
    if (code === '0' && (binary === 'iptables' || binary === 'ip6tables')) tables.set(binary, lines.join('\n'))
    lines = []
  }
  return tables
}

/**
 * The rules a bridge needs on this host: one per family whose FORWARD policy is DROP while
 * br_netfilter is on. Present ones are reported with `present: true`. Never rejects.
 */
export async function plannedRules(bridge: string): Promise<Array<FirewallRule & { present: boolean }>> {
  const families = (['iptables', 'ip6tables'] as const).filter(bridgeNetfilterOn)
  const tables = await dumpTables(families).catch(() => new Map<FirewallRule['binary'], string>())
  const planned: Array<FirewallRule & { present: boolean }> = []
  for (const binary of families) {
    const table = tables.get(binary)
    if (table === undefined) continue // no such binary or no filter table: nothing drops
    // One `-S` of the whole filter table answers all three questions.
    if (!/^-P FORWARD DROP$/m.test(table)) continue
    const chain = /^-N DOCKER-USER$/m.test(table) ? 'DOCKER-USER' : 'FORWARD'
    const present = table
      .split('\n')
      .some((l) => l.startsWith(`-A ${chain} `) && (l.includes(`--comment "${ruleComment(bridge)}" `) || l.includes(`--comment ${ruleComment(bridge)} `)) && l.includes(`-i ${bridge} -o ${bridge} `))
    planned.push({ binary, chain, bridge, present })
  }
  return planned
}

// Our own lock, not /run/xtables.lock: `iptables -w` takes that one itself and would wait on us.
const LOCK = `${RUN_DIR}/firewall.lock`
const PRESENT = 99
// check-then-insert as one step under the lock: $1 binary, $2 chain, the rest the rule
const CHECK_INSERT = `b=$1; c=$2; shift 2; "$b" -w -C "$c" "$@" 2>/dev/null && exit ${PRESENT}; exec "$b" -w -I "$c" 1 "$@"`

/**
 * Insert the rule unless it is there; true when this call inserted it. Check and insert run
 * under one flock: parallel attaches to one new bridge all planned "absent", and a bare -C
 * then -I still let two of ten insert a copy each.
 */
export async function addRule(r: FirewallRule, opts: { onSpawn?: (pid: number) => void } = {}): Promise<boolean> {
  try {
    mkdirSync(RUN_DIR, { recursive: true })
  } catch {
    // flock reports a lock it cannot create
  }
  let res = await run('flock', ['-w', '10', LOCK, 'sh', '-c', CHECK_INSERT, 'sh', r.binary, r.chain, ...ruleArgs(r)], opts.onSpawn)
  if (res.code === 127 && res.stderr === '') {
    // flock itself could not be spawned (no util-linux): check and insert unlocked
    if ((await run(r.binary, ['-w', '-C', r.chain, ...ruleArgs(r)])).code === 0) return false
    res = await run(r.binary, ['-w', '-I', r.chain, '1', ...ruleArgs(r)], opts.onSpawn)
  }
  if (res.code === PRESENT) return false
  if (res.code !== 0) throw new Error(`failed to add firewall rule for bridge "${r.bridge}": ${res.stderr.trim() || `exit ${res.code}`}`)
  return true
}

/** Delete one copy of the rule (the rollback of one addRule), if there is one. */
export async function removeRule(r: FirewallRule): Promise<void> {
  if ((await run(r.binary, ['-w', '-C', r.chain, ...ruleArgs(r)])).code !== 0) return
  await run(r.binary, ['-w', '-D', r.chain, ...ruleArgs(r)])
}

/** Remove every plumb rule for this bridge, in both families and both chains. Idempotent. */
export async function removeRules(bridge: string): Promise<string[]> {
  const removed: string[] = []
  for (const binary of ['iptables', 'ip6tables'] as const) {
    for (const chain of ['DOCKER-USER', 'FORWARD'] as const) {
      const r: FirewallRule = { binary, chain, bridge }
      // -C first: -D on a missing rule is an error, and there may be duplicates (a crash, or
      // attaches racing between -C and -I): bounded only against a rule that will not go.
      for (let i = 0; i < 64; i++) {
        if ((await run(binary, ['-w', '-C', chain, ...ruleArgs(r)])).code !== 0) break
        if ((await run(binary, ['-w', '-D', chain, ...ruleArgs(r)])).code !== 0) break
        removed.push(ruleLine(r, '-D'))
      }
    }
  }
  return removed
}

/** All plumb rules on the host: the bridges they are for (for ls and gc). */
export async function listRuleBridges(): Promise<Array<{ binary: FirewallRule['binary']; bridge: string }>> {
  const found: Array<{ binary: FirewallRule['binary']; bridge: string }> = []
  for (const binary of ['iptables', 'ip6tables'] as const) {
    const res = await run(`${binary}-save`, ['-t', 'filter'])
    if (res.code !== 0) continue
    for (const m of res.stdout.matchAll(/--comment "?plumb:([^\s"]+)"?/g)) {
      if (!found.some((f) => f.binary === binary && f.bridge === m[1])) found.push({ binary, bridge: m[1]! })
    }
  }
  return found
}
