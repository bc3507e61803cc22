#!/usr/bin/env node
// Lab 6, names: Docker's -h, --add-host and --dns for containers that are already running
// (Docker itself can't: moby#22133), plus a per-container sysctl. Every check reads the
// guest's own files or watches its traffic; the host's /etc files must not change at all.
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { attachVeth, names, sysctl } from 'plumb'
import { docker, expect, guest, ifnamed, inside, insideWithFiles, lab, pingable, step } from './_lab.mjs'

const bridge = ifnamed('br6')
const hostFiles = () => ['/etc/hosts', '/etc/hostname', '/etc/resolv.conf'].map((f) => createHash('sha256').update(readFileSync(f)).digest('hex')).join(' ')

await lab('Lab 6: names and sysctls for running guests', async () => {
  const before = hostFiles()
  const web = await guest('web')
  const db = await guest('db')
  step(`both on ${bridge}: web 198.18.67.10, db 198.18.67.20`)
  await attachVeth({ guest: web, bridge, ips: ['198.18.67.10/24'] })
  await attachVeth({ guest: db, bridge, ips: ['198.18.67.20/24'] })

  step(`plumb names ${web} --add-host db:198.18.67.20 --dns 198.18.67.53 --dns-search lab.example${docker ? ' --hostname web' : ''}`)
  const r = await names({ guest: web, addHosts: ['db:198.18.67.20'], dns: ['198.18.67.53'], dnsSearch: ['lab.example'], ...(docker ? { hostname: 'web' } : {}) })
  console.log(r.messages.join('\n'))
  const hosts = (await insideWithFiles(web, 'cat', '/etc/hosts')).stdout
  expect(/^198\.18\.67\.20\tdb\t# plumb$/m.test(hosts), "web's own /etc/hosts has db, marked as plumb's")
  expect(!(await inside(web, 'cat', '/etc/hosts')).stdout.includes('# plumb'), "plain exec shows the host's /etc/hosts: it runs host programs in web's network namespace only")
  const resolv = (await insideWithFiles(web, 'cat', '/etc/resolv.conf')).stdout
  expect(/^nameserver 198\.18\.67\.53$/m.test(resolv) && /^search lab\.example$/m.test(resolv), "web's resolver uses 198.18.67.53 and searches lab.example")
  expect(await pingableByName(web, 'db'), 'web reaches db by name')
  if (docker) expect((await insideWithFiles(web, 'hostname')).stdout.trim() === 'web', 'the container calls itself web')

  step(`plumb sysctl ${db} net.ipv4.icmp_echo_ignore_all=1`)
  await sysctl({ guest: db, settings: ['net.ipv4.icmp_echo_ignore_all=1'] })
  expect(!(await pingable(web, '198.18.67.20')), 'db ignores pings now')
  await sysctl({ guest: db, settings: ['net.ipv4.icmp_echo_ignore_all'], del: true })
  expect(await pingable(web, '198.18.67.20'), 'plumb sysctl --del put the value back: db answers again')

  step(`plumb names ${web} --del`)
  await names({ guest: web, del: true })
  expect(!(await insideWithFiles(web, 'cat', '/etc/hosts')).stdout.includes('# plumb'), "plumb's lines are gone from web's /etc/hosts")
  expect(!(await pingableByName(web, 'db')), 'and the name db no longer resolves')
  expect(hostFiles() === before, "the host's /etc/hosts, /etc/hostname and /etc/resolv.conf never changed")
})

/** A ping by name with the guest's own files (its resolver reads its /etc/hosts). */
async function pingableByName(ref, name) {
  return (await insideWithFiles(ref, 'ping', '-c', '1', '-W', '2', name)).exitCode === 0
}
