// The lesson's lab files (recipes/labs/*.yml) run for real: each deploys, passes all its own
// checks, and is destroyed to nothing. Names on the host are made the test's own (pt-...) by
// rewriting the lab's name and its bridges' and host ends' names; the files are otherwise as a
// teacher hands them out.

import test from 'ava'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { execa } from 'execa'
import { PLUMB_BIN, assertTraffic, hasBinary, hasDocker, hasOvs, inspectContainer, isRoot, makeNetns, reserveFixedNets, sh, testIf } from '../helpers/index.js'
import { parseLab } from '../../lib/lab/parse.js'
import { labFixture, leftovers, nothingLeft } from './lab-fixture.js'
import type { LabFixture } from './lab-fixture.js'

const LABS = fileURLToPath(new URL('../../../recipes/labs/', import.meta.url))
const docker = isRoot && hasDocker()
// Serial: each lab has its own fixed subnet, and they are a teacher's files, not the test's.
const serialIf = (cond: boolean, reason: string): typeof test.serial | typeof test.serial.skip => (testIf(cond, reason) === test ? test.serial : test.serial.skip)

/** The lab file with every name it puts on the host replaced by one of the test's (`${id}N`), the lab named `${id}${suffix}`. */
function localise(f: LabFixture, file: string, suffix = ''): string {
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
  return text.replace(/^name: .*$/m, `name: ${f.id}${suffix}`)
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
  { file: 'publish.yml' },
  { file: 'icc.yml' },
  { file: 'vlan-ovs.yml', needs: [hasOvs(), 'recipes-labs: vlan-ovs needs Open vSwitch'] },
  { file: 'dhcp.yml', needs: [hasBinary('udhcpc') || hasBinary('dhclient'), 'recipes-labs: dhcp needs a DHCP client on the host (udhcpc or dhclient)'] },
]

for (const c of RUNNABLE) {
  const [ok, why] = c.needs ?? [true, '']
  serialIf(docker && ok, docker ? why : 'recipes-labs: needs root and dockerd with plumb-test:busybox')(`${c.file}: deploys, passes every check it has, destroys to nothing`, async (t) => {
    // its fixed subnets are no other test's meanwhile (held first: released after the destroy)
    await reserveFixedNets(t, readFileSync(`${LABS}${c.file}`, 'utf8'))
    const f = labFixture(t)
    const file = f.write(c.file, localise(f, c.file))
    const dep = await f.plumb('lab', 'deploy', file)
    t.is(dep.exitCode, 0, dep.stderr)
    // A deploy finishes whatever killed runs the host has first (the crash tests' killed deploys,
    // running meanwhile) and reports it in warnings that are not this lab's
    const othersKilled = (l: string): boolean => l === 'warning: finished an interrupted plumb first:' || /^warning: {3}.* \(left by .*, killed\)$/.test(l)
    t.deepEqual(dep.stderr.split('\n').filter((l) => l.startsWith('warning:') && !othersKilled(l)), [], 'every exec line worked')
    const chk = await f.plumb('lab', 'check', file, '--json')
    t.is(chk.exitCode, 0, JSON.stringify(chk.json?.checks?.filter((x: { ok: boolean }) => !x.ok), null, 1))
    t.is(chk.json.score, chk.json.total)
    t.true(chk.json.checks.length > 0)
    t.is((await f.plumb('lab', 'destroy', file)).exitCode, 0)
    t.deepEqual(await leftovers(f.id), nothingLeft)
  })
}

/** `plumb ARGS` run inside `host` (an ip netns standing in for a machine: plumb's host is its own netns). */
async function plumbOn(host: string, ...args: string[]): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const r = await execa('ip', ['netns', 'exec', host, process.execPath, PLUMB_BIN, ...args], { reject: false, timeout: 120_000 })
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) }
}

serialIf(docker, 'recipes-labs: needs root and dockerd with plumb-test:busybox')('overlay-host1.yml and overlay-host2.yml: two ip netns hosts on one underlay, each deploys its half; the containers reach each other over VXLAN (ping, TCP, UDP)', async (t) => {
  const f = labFixture(t)
  const [h1, h2] = [await makeNetns(t, { name: `${f.id}-h1`, loUp: true }), await makeNetns(t, { name: `${f.id}-h2`, loUp: true })]
  await sh('ip', ['link', 'add', `${f.id}u1`, 'netns', h1, 'type', 'veth', 'peer', 'name', `${f.id}u2`, 'netns', h2])
  for (const [h, ifname, addr] of [[h1, `${f.id}u1`, '198.18.88.1/30'], [h2, `${f.id}u2`, '198.18.88.2/30']] as const) {
    await sh('ip', ['-n', h, 'addr', 'add', addr, 'dev', ifname])
    await sh('ip', ['-n', h, 'link', 'set', ifname, 'up'])
  }
  const file1 = f.write('overlay-host1.yml', localise(f, 'overlay-host1.yml', 'a'))
  const file2 = f.write('overlay-host2.yml', localise(f, 'overlay-host2.yml', 'b'))
  t.teardown(async () => {
    await plumbOn(h1, 'lab', 'destroy', file1, '-q')
    await plumbOn(h2, 'lab', 'destroy', file2, '-q')
  })
  for (const [h, file] of [[h1, file1], [h2, file2]] as const) {
    const r = await plumbOn(h, 'lab', 'deploy', file)
    t.is(r.exitCode, 0, r.stderr)
  }
  // the VXLAN port on each host's bridge, marked with its lab, the bridge at the overlay's MTU
  const port = JSON.parse(await sh('ip', ['-n', h1, '-j', '-d', 'link', 'show', 'vx42']))[0] as { ifalias: string; mtu: number; linkinfo: { info_data: { id: number } } }
  t.is(port.linkinfo.info_data.id, 42)
  t.regex(port.ifalias, new RegExp(`lab=${f.id}a`))
  t.is(port.mtu, 1450)
  const c1 = await inspectContainer(`${f.id}a-c1`)
  const c2 = await inspectContainer(`${f.id}b-c2`)
  t.is((await plumbOn(h1, 'lab', 'check', file1)).exitCode, 0)
  t.is((await plumbOn(h2, 'lab', 'check', file2)).exitCode, 0)
  // TCP (256 KiB, segments at the overlay's MTU) and UDP both ways over the VXLAN, not only ping
  await assertTraffic(t, { path: c1.sandboxKey }, { path: c2.sandboxKey }, '198.18.89.2', 'c1 -> c2 over the overlay')
  await assertTraffic(t, { path: c2.sandboxKey }, { path: c1.sandboxKey }, '198.18.89.1', 'c2 -> c1 over the overlay')
  // a second deploy changes nothing; destroy takes the port, the bridge and the container
  t.regex((await plumbOn(h1, 'lab', 'deploy', file1)).stdout, /already deployed/)
  t.is((await plumbOn(h1, 'lab', 'destroy', file1)).exitCode, 0)
  t.is((await execa('ip', ['-n', h1, 'link', 'show', 'vx42'], { reject: false })).exitCode, 1)
  t.is((await plumbOn(h2, 'lab', 'destroy', file2)).exitCode, 0)
  t.deepEqual((await leftovers(f.id)).containers, [])
})
