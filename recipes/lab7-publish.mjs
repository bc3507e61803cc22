#!/usr/bin/env node
// Lab 7, publishing a port: a web server in a --net=none container, published on the host as
// `docker run -p` would (DNAT in the nat table, an ACCEPT through Docker's FORWARD DROP). It
// answers through the host's addresses, through 127.0.0.1, and to a neighbour container on the
// same bridge (the hairpin); after --del, to none of them.
import { $ } from 'zx'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { attachVeth, expose, formatLs, ls } from 'plumb'
import { background, eventually, expect, guest, ifnamed, inside, lab, onTeardown, prefix, step } from './_lab.mjs'

const bridge = ifnamed('br7')
// (busybox wget's own -T crashes in Debian 12's busybox-static: timeout(1) bounds it)
const get = async (from, url) => (from ? (await inside(from, 'timeout', '3', 'busybox', 'wget', '-q', '-O', '-', url)).stdout : await fetch(url, { signal: AbortSignal.timeout(2000) }).then((r) => r.text(), () => '')).trim()

await lab('Lab 7: publishing a web server (docker run -p, after the fact)', async () => {
  const web = await guest('web')
  const client = await guest('client')
  step(`plumb attach-veth ${web} ${bridge} 198.18.77.10/24@198.18.77.1 (and the client .11); the host is the gateway`)
  await attachVeth({ guest: web, bridge, ips: ['198.18.77.10/24@198.18.77.1'] })
  await attachVeth({ guest: client, bridge, ips: ['198.18.77.11/24@198.18.77.1'] })
  await $`ip addr add 198.18.77.1/24 dev ${bridge}`
  onTeardown(() => $`ip addr del 198.18.77.1/24 dev ${bridge}`.nothrow())

  step('busybox httpd on port 80 in the container')
  const www = mkdtempSync(`/tmp/${prefix}-www-`)
  onTeardown(() => rmSync(www, { recursive: true, force: true }))
  writeFileSync(`${www}/index.html`, 'hello from web\n')
  await background(web, 'busybox', 'httpd', '-f', '-p', '80', '-h', www)
  expect(await eventually(async () => (await get(client, 'http://198.18.77.10/')) === 'hello from web'), 'the server answers on its own address')

  step(`plumb expose ${web} 8080:80 127.0.0.1::80`)
  const r = await expose({ guest: web, ports: ['8080:80', '127.0.0.1::80'] })
  console.log(r.messages.join('\n'))
  const chosen = r.published.find((p) => p.hostIp === '127.0.0.1').hostPort
  expect((await get(undefined, 'http://127.0.0.1:8080/')) === 'hello from web', 'the host reaches it through 127.0.0.1:8080')
  expect((await get(undefined, 'http://198.18.77.1:8080/')) === 'hello from web', "the host reaches it through its own address 198.18.77.1:8080")
  expect((await get(client, 'http://198.18.77.1:8080/')) === 'hello from web', 'the neighbour on the same bridge reaches it through the host (hairpin)')
  expect((await get(undefined, `http://127.0.0.1:${chosen}/`)) === 'hello from web', `127.0.0.1::80 was given port ${chosen}, and it answers there`)
  console.log(formatLs(await ls({ guest: web })))

  step(`plumb expose ${web} 8080:80 127.0.0.1::80 --del`)
  await expose({ guest: web, ports: ['8080:80', '127.0.0.1::80'], del: true })
  expect((await get(undefined, 'http://127.0.0.1:8080/')) === '', 'unpublished: 8080 answers no more')
  expect((await get(client, 'http://198.18.77.1:8080/')) === '', 'not to the neighbour either')
})
