// The lesson's lab files (recipes/labs/*.yml) run for real: each deploys, passes all its own
// checks, and is destroyed to nothing. Names on the host are made the test's own (pt-...) by
// rewriting the lab's name and its bridges' and host ends' names; the files are otherwise as a
// teacher hands them out. The labs that wait for an op (expose, isolate, vxlan) are refused with
// exit 5 naming it, and nothing is touched.

import test from 'ava'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { hasBinary, hasDocker, hasOvs, isRoot, testIf } from '../helpers/index.js'
import { parseLab } from '../../lib/lab/parse.js'
import { labFixture, leftovers, nothingLeft } from './lab-fixture.js'
import type { LabFixture } from './lab-fixture.js'

const LABS = fileURLToPath(new URL('../../../recipes/labs/', import.meta.url))
const docker = isRoot && hasDocker()
// Serial: each lab has its own fixed subnet, and they are a teacher's files, not the test's.
const serialIf = (cond: boolean, reason: string): typeof test.serial | typeof test.serial.skip => (testIf(cond, reason) === test ? test.serial : test.serial.skip)

/** The lab file with every name it puts on the host replaced by one of the test's (`${id}N`). */
function localise(f: LabFixture, file: string): string {
  let text = readFileSync(`${LABS}${file}`, 'utf8')
  const lab = parseLab(text, file)
  const names = new Set<string>()
  for (const n of lab.nodes) if (n.kind === 'bridge' || n.kind === 'ovs-bridge') names.add(n.name)
  for (const l of lab.links) if (l.kind === 'bridge' || l.kind === 'ovs' || l.kind === 'host') names.add(l.b.ifname)
  ;[...names]
    .sort((a, b) => b.length - a.length)
    .forEach((name, i) => {
      text = text.replace(new RegExp(`(?<![\\w-])${name.replace(/[-.]/g, '\\$&')}(?![\\w-])`, 'g'), `${f.id}${i.toString(36)}`)
    })
  return text.replace(/^name: .*$/m, `name: ${f.id}`)
}

interface Case {
  file: string
  needs?: [boolean, string]
}

const RUNNABLE: Case[] = [
  { file: 'net-modes.yml' },
  { file: 'net-none-by-hand.yml' },
  { file: 'p2p.yml' },
  { file: 'nat-router.yml' },
  { file: 'vlan-ovs.yml', needs: [hasOvs(), 'recipes-labs: vlan-ovs needs Open vSwitch'] },
  { file: 'dhcp.yml', needs: [hasBinary('udhcpc') || hasBinary('dhclient'), 'recipes-labs: dhcp needs a DHCP client on the host (udhcpc or dhclient)'] },
]

for (const c of RUNNABLE) {
  const [ok, why] = c.needs ?? [true, '']
  serialIf(docker && ok, docker ? why : 'recipes-labs: needs root and dockerd with plumb-test:busybox')(`${c.file}: deploys, passes every check it has, destroys to nothing`, async (t) => {
    const f = labFixture(t)
    const file = f.write(c.file, localise(f, c.file))
    const dep = await f.plumb('lab', 'deploy', file)
    t.is(dep.exitCode, 0, dep.stderr)
    t.deepEqual(dep.stderr.split('\n').filter((l) => l.startsWith('warning:')), [], 'every exec line worked')
    const chk = await f.plumb('lab', 'check', file, '--json')
    t.is(chk.exitCode, 0, JSON.stringify(chk.json?.checks?.filter((x: { ok: boolean }) => !x.ok), null, 1))
    t.is(chk.json.score, chk.json.total)
    t.true(chk.json.checks.length > 0)
    t.is((await f.plumb('lab', 'destroy', file)).exitCode, 0)
    t.deepEqual(await leftovers(f.id), nothingLeft)
  })
}

for (const [file, op] of [
  ['publish.yml', 'plumb expose'],
  ['icc.yml', 'plumb isolate'],
  ['overlay-host1.yml', 'plumb vxlan'],
  ['overlay-host2.yml', 'plumb vxlan'],
] as const) {
  serialIf(docker, 'recipes-labs: needs root and dockerd')(`${file} waits for ${op}: deploy is exit 5 naming it, nothing touched`, async (t) => {
    const f = labFixture(t)
    const path = f.write(file, localise(f, file))
    const r = await f.plumb('lab', 'deploy', path)
    t.is(r.exitCode, 5, r.stderr)
    t.true(r.stderr.includes(`needs \`${op}\``), r.stderr)
    t.deepEqual(await leftovers(f.id), nothingLeft)
  })
}
