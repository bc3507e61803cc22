// The course recipes (recipes/*.mjs, zx scripts on plumb's library API) run for real under a pt-
// prefix, on Docker containers and on ip netns guests: each must pass its own checks (exit 0, its
// `ok:` lines) and leave nothing with the prefix behind, read back from ip/docker/ovs/iptables.

import test from 'ava'
import type { ExecutionContext } from 'ava'
import { execa } from 'execa'
import { readFileSync, readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { hasBinary, hasDocker, hasOvs, isRoot, reserveFixedNets, shQuiet, testIf, uniq } from '../helpers/index.js'

// dist/test/e2e/ -> the clone's root, so this works from any checkout.
const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const RECIPES = fileURLToPath(new URL('../../../recipes/', import.meta.url))

const docker = isRoot && hasDocker()
const ovs = hasOvs()
const dnsmasq = hasBinary('dnsmasq')
const NEEDS = 'recipes: needs root and dockerd with plumb-test:busybox'
const NEEDS_ROOT = 'recipes: ip netns guests need root'
// Serial: the labs use fixed subnets (one per lab), and together they stay well under a minute.
const serialIf = (cond: boolean, reason: string): typeof test.serial | typeof test.serial.skip => (testIf(cond, reason) === test ? test.serial : test.serial.skip)

interface Run {
  exitCode: number | undefined
  out: string
}

/** Run one recipe the way a student would (`node recipes/X.mjs`), with the test's names. */
async function runRecipe(t: ExecutionContext, file: string, args: string[]): Promise<Run> {
  const res = await execa(process.execPath, [`${RECIPES}${file}`, ...args], {
    cwd: ROOT,
    env: { FORCE_COLOR: '0' },
    reject: false,
    all: true,
    // A bound on a hang, not on speed: a lab takes 10-15 s alone, and CI's load (the other files'
    // containers and kills side by side) once made lab9's three `docker run` and six 2-second
    // pings pass 45 s. SIGTERM: the recipe's own handler still tears down before it exits.
    timeout: 90_000,
    killSignal: 'SIGTERM',
  })
  const out = String(res.all ?? '')
  return { exitCode: res.exitCode, out }
}

/** Everything on the machine that names the prefix: netns, links (by name or plumb alias), containers, OVS, rules, processes, files. */
async function leftovers(prefix: string): Promise<string[]> {
  const mine = (s: string | undefined): boolean => !!s && (s === prefix || s.startsWith(`${prefix}-`))
  const found: string[] = []
  const words = (s: string): string[] => s.split('\n').map((l) => l.trim().split(/\s/)[0] ?? '').filter(Boolean)
  for (const n of words((await shQuiet('ip', ['netns', 'list'])).stdout)) if (mine(n)) found.push(`netns ${n}`)
  const links = JSON.parse((await shQuiet('ip', ['-j', '-d', 'link', 'show'])).stdout || '[]') as Array<{ ifname: string; ifalias?: string }>
  for (const l of links) if (mine(l.ifname) || l.ifalias?.includes(prefix)) found.push(`link ${l.ifname}${l.ifalias ? ` (alias ${l.ifalias})` : ''}`)
  if (docker) for (const c of words((await shQuiet('docker', ['ps', '-a', '--format', '{{.Names}}'])).stdout)) if (mine(c)) found.push(`container ${c}`)
  if (ovs) {
    for (const b of words((await shQuiet('ovs-vsctl', ['--timeout=5', 'list-br'])).stdout)) if (mine(b)) found.push(`OVS bridge ${b}`)
    for (const p of words((await shQuiet('ovs-vsctl', ['--timeout=5', '--bare', '--columns=name', 'list', 'Port'])).stdout)) if (mine(p)) found.push(`OVS port ${p}`)
  }
  for (const save of ['iptables-save', 'ip6tables-save']) {
    if (!hasBinary(save)) continue
    for (const rule of (await shQuiet(save, [])).stdout.split('\n')) if (rule.startsWith('-A') && rule.includes(prefix)) found.push(`${save}: ${rule}`)
  }
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let argv = ''
    try {
      argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ')
    } catch {
      continue
    }
    if (argv.includes(prefix)) found.push(`process ${pid} ${argv.slice(0, 120)}`)
  }
  for (const dir of ['/tmp', '/run']) for (const f of readdirSync(dir)) if (f.startsWith(prefix)) found.push(`file ${dir}/${f}`)
  return found
}

/** If a recipe failed to clean up, do it here (so the suite's leak check reports this test, not the next). */
function sweepAfter(t: ExecutionContext, prefix: string): void {
  t.teardown(async () => {
    const left = await leftovers(prefix)
    if (left.length === 0) return
    for (const item of left) {
      const [kind = '', name = ''] = item.split(' ')
      if (kind === 'netns') await shQuiet('ip', ['netns', 'del', name])
      else if (kind === 'container') await shQuiet('docker', ['rm', '-f', name])
      else if (item.startsWith('OVS bridge ')) await shQuiet('ovs-vsctl', ['--if-exists', 'del-br', item.slice('OVS bridge '.length)])
      else if (kind === 'link') await shQuiet('ip', ['link', 'del', name])
    }
  })
}

interface Case {
  file: string
  oks: string[]
  netns?: boolean
  needs?: [boolean, string]
}

const LABS: Case[] = [
  { file: 'lab1-net-none.mjs', oks: ['the container reaches its gateway (the host)'] },
  { file: 'lab2-p2p.mjs', oks: ['a reaches b over the /31', 'the host reaches a over the /32 link'] },
  {
    file: 'lab3-vlan.mjs',
    oks: ['VLAN 10 peers reach each other', 'VLAN 20 peers reach each other', 'VLAN 10 does not reach VLAN 20'],
    needs: [ovs, 'recipes: Lab 3 needs Open vSwitch (ovs-vsctl show answering)'],
  },
  {
    file: 'lab4-dhcp.mjs',
    oks: ["from the server's range", "the guest's eth1 holds", "the server's lease file records", 'the server dropped the lease'],
    needs: [dnsmasq, 'recipes: Lab 4 needs dnsmasq'],
  },
  {
    file: 'lab5-nat.mjs',
    oks: ['the server has no route to the inner network', 'without NAT the client gets no answer', 'MASQUERADE rule in the router', 'the client reaches the server through the router'],
  },
  {
    file: 'lab6-names.mjs',
    oks: ["web's own /etc/hosts has db", "plain exec shows the host's /etc/hosts", 'web reaches db by name', 'db ignores pings now', 'db answers again', 'no longer resolves', 'never changed'],
  },
  {
    file: 'lab7-publish.mjs',
    oks: ['the host reaches it through 127.0.0.1:8080', 'through its own address', 'the neighbour on the same bridge reaches it through the host (hairpin)', 'and it answers there', 'unpublished: 8080 answers no more'],
  },
  {
    file: 'lab8-nat-router.mjs',
    oks: ['the server has no route back', 'without NAT the inner container gets no answer', 'the inner container reaches the server through the host', "the server sees the host's address", 'after --del: no way out again'],
  },
  {
    file: 'lab9-icc.mjs',
    oks: ['isolated: web does not reach db', 'isolated: web still reaches the host', 'the link: web reaches db', 'the link: db reaches web', 'only that pair', 'lifted: other reaches web again'],
  },
]

function okLines(out: string): string[] {
  return out.split('\n').filter((l) => l.startsWith('ok: '))
}

for (const netns of [false, true]) {
  const mode = netns ? 'ip netns guests' : 'Docker containers'
  for (const lab of LABS) {
    const [cond, reason] = lab.needs ?? [true, '']
    const base = netns ? isRoot : docker
    serialIf(base && cond, !cond ? reason : netns ? NEEDS_ROOT : NEEDS)(`${lab.file} passes its checks on ${mode} and leaves nothing behind`, async (t) => {
      // its fixed subnets are no other test's meanwhile
      await reserveFixedNets(t, readFileSync(`${RECIPES}${lab.file}`, 'utf8'))
      const prefix = uniq()
      sweepAfter(t, prefix)
      const run = await runRecipe(t, lab.file, ['--prefix', prefix, ...(netns ? ['--netns'] : [])])
      t.is(run.exitCode, 0, 'the recipe exits 0 (all its checks passed, its own leftover check too)')
      t.true(run.out.includes(`(${mode}, prefix ${prefix})`), `ran on ${mode} under ${prefix}`)
      const oks = okLines(run.out)
      for (const want of lab.oks) t.true(oks.some((l) => l.includes(want)), `ok: ${want}`)
      t.false(run.out.includes('FAILED'))
      t.true(run.out.includes('nothing left behind'))
      t.deepEqual(await leftovers(prefix), [], 'nothing with the prefix is left (netns, links, containers, OVS, rules, processes, files)')
      // The recipe's whole story only when something went wrong: passing runs stay quiet in CI logs.
      if (!t.passed) t.log(run.out)
    })
  }
}

serialIf(docker, NEEDS)('demo.mjs runs under --prefix names and leaves nothing behind', async (t) => {
  await reserveFixedNets(t, readFileSync(`${RECIPES}demo.mjs`, 'utf8'))
  const prefix = uniq()
  sweepAfter(t, prefix)
  const run = await runRecipe(t, 'demo.mjs', ['--prefix', prefix])
  t.is(run.exitCode, 0)
  t.true(run.out.includes(`bridge ${prefix}-br`), 'the bridge carries the prefix, not plumbdemo0')
  t.true(run.out.includes(`docker:${prefix}-a`) && run.out.includes(`docker:${prefix}-b`), 'the guests carry the prefix')
  t.false(run.out.includes('plumbdemo0') || run.out.includes('plumb-demo-'), 'the default names are not used')
  const oks = okLines(run.out)
  t.true(oks.some((l) => l.includes('the guests reach each other')))
  t.true(oks.some((l) => l.includes('the second attach changed nothing')))
  t.deepEqual(await leftovers(prefix), [])
  if (!t.passed) t.log(run.out)
})
