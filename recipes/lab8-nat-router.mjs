#!/usr/bin/env node
// Lab 8, the host as a NAT router: a container on a bridge, with the host as its gateway, reaches
// a server beyond the host that has no route back to the container's network. `plumb masquerade`
// (MASQUERADE, forwarding through Docker's FORWARD DROP, ip_forward) makes it work, and the
// server sees the host's address, not the container's.
import { $ } from 'zx'
import { attachVeth, masquerade, p2pLink } from 'plumb'
import { background, eventually, expect, guest, ifnamed, inside, lab, onTeardown, step } from './_lab.mjs'

const bridge = ifnamed('br8')
// answers every TCP connection with the address it came from
const WHO = "require('node:net').createServer((c) => c.end(c.remoteAddress.replace(/^::ffff:/, ''))).listen(7000)"
const ask = async (from) => (await inside(from, process.execPath, '-e', "const c = require('node:net').connect(7000, '198.19.78.0'); let s = ''; c.on('data', (d) => (s += d)); c.on('end', () => console.log(s)); c.on('error', () => process.exit(1)); setTimeout(() => process.exit(1), 2000)")).stdout.trim()

await lab('Lab 8: the host as a NAT router (plumb masquerade)', async () => {
  const inner = await guest('inner')
  const server = await guest('server')
  step(`plumb attach-veth ${inner} ${bridge} 198.18.78.10/24@198.18.78.1; the bridge is the gateway`)
  await attachVeth({ guest: inner, bridge, ips: ['198.18.78.10/24@198.18.78.1'] })
  await $`ip addr add 198.18.78.1/24 dev ${bridge}`
  onTeardown(() => $`ip addr del 198.18.78.1/24 dev ${bridge}`.nothrow())
  step(`plumb p2p-link ${server} host --ip-a 198.19.78.0/31 --ip-b 198.19.78.1/31: the server is "outside", beyond the host`)
  await p2pLink({ a: server, b: 'host', ipA: '198.19.78.0/31', ipB: '198.19.78.1/31' })
  const routes = (await inside(server, 'ip', 'route')).stdout
  expect(!routes.includes('198.18.68') && !routes.includes('default'), 'the server has no route back to the inner network')
  await background(server, process.execPath, '-e', WHO)
  expect(await eventually(async () => (await ask(server)) !== ''), 'the server listens on 198.19.78.0:7000')
  expect((await ask(inner)) === '', 'without NAT the inner container gets no answer')

  step(`plumb masquerade ${bridge}`)
  console.log((await masquerade({ source: bridge })).messages.join('\n'))
  const seen = await ask(inner)
  expect(seen !== '', 'the inner container reaches the server through the host')
  expect(seen === '198.19.78.1', `the server sees the host's address (${seen}), not 198.18.78.10`)

  step(`plumb masquerade ${bridge} --del`)
  await masquerade({ source: bridge, del: true })
  expect((await ask(inner)) === '', 'after --del: no way out again')
})
