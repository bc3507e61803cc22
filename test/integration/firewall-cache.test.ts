// The firewall check's cache (lib/firewall/index.ts): an attach reads iptables' tables only when
// the nftables generation moved since plumb last read them. Proved here against the host's real
// iptables-nft, whose rules this test changes behind plumb's back (a marked rule for a bridge
// name of its own, removed in teardown). Which reads spawned iptables is counted through
// stand-ins first on PATH that log their argv and exec the real binaries.

import test from 'ava'
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { bridgeFirewall, ruleComment, saveTables } from '../../lib/firewall/index.js'
import { nftGeneration, openHostHandle } from '../../lib/kernel/index.js'
import { editRules, withFirewallLock } from '../../lib/ops/firewall.js'
import { runTx } from '../../lib/ops/tx.js'
import { findOnPath } from '../../lib/proc.js'
import { holdGcLock, isRoot, testIf, uniq } from '../helpers/index.js'

const iptables = findOnPath('iptables')
const nft = iptables !== undefined && /\(nf_tables\)/.test(execFileSync(iptables, ['-V'], { encoding: 'utf8' }))
const initialNetns = statSync('/proc/self/ns/net').ino === 0xeffffff9
const bridgeNf = existsSync('/proc/sys/net/bridge/bridge-nf-call-iptables') && readFileSync('/proc/sys/net/bridge/bridge-nf-call-iptables', 'utf8').trim() === '1'
const forwardDrop = isRoot && iptables !== undefined && /^-P FORWARD DROP$/m.test(execFileSync(iptables, ['-w', '-S', 'FORWARD'], { encoding: 'utf8' }))
// serial: both put their stand-ins on this process's PATH
const cacheOk = isRoot && nft && initialNetns
const withCache = cacheOk ? test.serial : testIf(false, 'firewall cache: needs root, iptables-nft and the initial netns of a 6.18+ kernel (its fixed inode)')
const withRoot = isRoot && iptables ? test.serial : testIf(false, 'firewall: needs root and iptables')
const withDrop = cacheOk && bridgeNf && forwardDrop ? test.serial : testIf(false, "firewall cache: needs br_netfilter on and FORWARD DROP (Docker's) to see a rule appear")

function standIns(t: { teardown(fn: () => void): void }): { reads: () => number } {
  const dir = mkdtempSync(join(tmpdir(), 'pt-fwc-'))
  const log = join(dir, 'argv.log')
  for (const b of ['iptables-save', 'ip6tables-save']) {
    const real = findOnPath(b)
    if (real) writeFileSync(join(dir, b), `#!/bin/sh\nprintf 'run %s\\n' "$*" >>${log}\nexec ${real} "$@"\n`, { mode: 0o755 })
  }
  const path = process.env.PATH
  process.env.PATH = `${dir}:${path ?? ''}`
  t.teardown(() => {
    process.env.PATH = path
    rmSync(dir, { recursive: true, force: true })
  })
  return { reads: () => (existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter((l) => l === 'run ').length : 0) }
}

/** bridgeFirewall, and whether it read the tables (ran iptables-save) to answer. */
async function planned(bridge: string, reads: () => number): Promise<{ present: boolean[]; read: boolean }> {
  const before = reads()
  const { rules } = await bridgeFirewall(bridge)
  return { present: rules.map((r) => r.present), read: reads() > before }
}

/**
 * A second bridgeFirewall right after a first, during which nobody changed the rules (this machine
 * is shared: other suites change iptables at any time): the first has the generation's tables
 * (read, or kept by this process or the cache file), the second is the one looked at. The first
 * of up to 50 tries with the generation the same before the first and after the second.
 */
async function quietRun(bridge: string, reads: () => number): Promise<{ present: boolean[]; read: boolean } | undefined> {
  for (let i = 0; i < 50; i++) {
    const gen = await nftGeneration()
    await bridgeFirewall(bridge)
    const r = await planned(bridge, reads)
    if ((await nftGeneration()) === gen) return r
  }
  return undefined
}

withCache('a second read with the generation unchanged spawns nothing; an nftables change behind plumb\'s back is read', async (t) => {
  const { reads } = standIns(t)
  const bridge = uniq('fw', { dash: false })
  await bridgeFirewall(bridge) // reads and keeps
  const hit = await quietRun(bridge, reads)
  t.truthy(hit, 'no quiet moment in 50 tries')
  t.false(hit!.read, 'the generation did not move: the tables were not read again')
  // Any committed nftables transaction moves the generation, a chain made and dropped included.
  const chain = `pt-${bridge}`
  execFileSync(iptables!, ['-w', '-N', chain])
  execFileSync(iptables!, ['-w', '-X', chain])
  const after = await planned(bridge, reads)
  t.true(after.read, 'the tables were read again after a change')
})

withDrop("a rule added and removed behind plumb's back is seen at once", async (t) => {
  // no other test's gc meanwhile: the rule is plumb's by its mark, for a bridge that does not exist
  await holdGcLock(t)
  const { reads } = standIns(t)
  const bridge = uniq('fw', { dash: false })
  const chain = /^-N DOCKER-USER$/m.test(execFileSync(iptables!, ['-w', '-S'], { encoding: 'utf8' })) ? 'DOCKER-USER' : 'FORWARD'
  const rule = ['-i', bridge, '-o', bridge, '-m', 'comment', '--comment', ruleComment(bridge), '-j', 'ACCEPT']
  // Behind plumb's cache, not behind its lock: the rule is plumb's by its mark and its bridge does
  // not exist, so a gc of another test may be removing it in the same instant (iptables-restore
  // then fails on a -D whose rule went). What plumb's own ops do, the test does under their lock.
  const byHand = (op: '-I' | '-D'): Promise<void> => withFirewallLock(false, async () => void execFileSync(iptables!, ['-w', op, chain, ...(op === '-I' ? ['1'] : []), ...rule], { stdio: 'ignore' }))
  t.teardown(async () => {
    for (let i = 0; i < 8; i++) {
      try {
        await byHand('-D')
      } catch {
        break
      }
    }
  })
  t.deepEqual((await bridgeFirewall(bridge)).rules.map((r) => r.present), [false])
  t.deepEqual((await quietRun(bridge, reads))?.present, [false])
  await byHand('-I')
  const added = await planned(bridge, reads)
  t.true(added.read)
  t.deepEqual(added.present, [true])
  await byHand('-D')
  t.deepEqual((await bridgeFirewall(bridge)).rules.map((r) => r.present), [false])
})

withRoot("a removal whose rule was deleted behind plumb's back after its read is retried against a fresh read: the rest goes, nothing fails", async (t) => {
  await holdGcLock(t)
  const [a, b] = [uniq('fa', { dash: false }), uniq('fb', { dash: false })]
  const rule = (br: string): string[] => ['-i', br, '-o', br, '-m', 'comment', '--comment', ruleComment(br), '-j', 'ACCEPT']
  const chain = 'FORWARD'
  const has = (br: string): boolean => execFileSync(iptables!, ['-w', '-S', chain], { encoding: 'utf8' }).includes(ruleComment(br))
  t.teardown(() => {
    for (const br of [a, b]) while (has(br)) execFileSync(iptables!, ['-w', '-D', chain, ...rule(br)])
  })
  const hostNs = openHostHandle()
  t.teardown(() => hostNs.close())
  await withFirewallLock(false, async () => {
    for (const br of [a, b]) execFileSync(iptables!, ['-w', '-A', chain, ...rule(br)])
    const tables = await saveTables(['iptables'])
    // gone between the read and the batch (a user's iptables -D)
    execFileSync(iptables!, ['-w', '-D', chain, ...rule(a)])
    const done = await runTx({}, (tx) => editRules(tx, hostNs, tables, { remove: (m) => m.op === 'bridge' && (m.bridge === a || m.bridge === b) }))
    t.deepEqual(done.removed.map((m) => (m as { bridge: string }).bridge).sort(), [a, b].sort())
  })
  t.false(has(a))
  t.false(has(b), 'the rule that was still there is removed')
})

withCache('reads of one generation started together in one process share one spawn (a lab\'s attaches to one bridge)', async (t) => {
  const { reads } = standIns(t)
  const bridge = uniq('fw', { dash: false })
  // up to 50 tries for a moment nobody else changes the rules in
  for (let i = 0; i < 50; i++) {
    const chain = `pt-${bridge}`
    execFileSync(iptables!, ['-w', '-N', chain])
    execFileSync(iptables!, ['-w', '-X', chain])
    // what one read spawns (iptables-save, and ip6tables-save where br_netfilter hands it IPv6)
    const [gen1, start] = [await nftGeneration(), reads()]
    await bridgeFirewall(bridge)
    const one = reads() - start
    execFileSync(iptables!, ['-w', '-N', chain])
    execFileSync(iptables!, ['-w', '-X', chain])
    const [gen, before] = [await nftGeneration(), reads()]
    const all = await Promise.all(Array.from({ length: 8 }, () => bridgeFirewall(bridge)))
    if ((await nftGeneration()) !== gen || gen === gen1 || one === 0) continue
    t.is(reads() - before, one, 'eight plans, the reads of one')
    t.is(new Set(all.map((r) => JSON.stringify(r))).size, 1, 'all eight see the same tables')
    return
  }
  t.fail('no quiet moment in 50 tries')
})
