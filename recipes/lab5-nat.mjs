#!/usr/bin/env node
// Lab 5, NAT: a client on an inner network reaches a server on an outer one through a router
// container that masquerades; the server sees the router's address, not the client's.
import { p2pLink, setIp } from 'plumb'
import { expect, guest, inside, lab, step } from './_lab.mjs'

const reaches = async (from, addr, wait = 2) => (await inside(from, 'ping', '-c', '1', '-W', String(wait), addr)).exitCode === 0

await lab('Lab 5: a NAT router between two networks', async () => {
  const client = await guest('client')
  const router = await guest('router')
  const server = await guest('server')
  step('client <-> router (inner 198.18.66.0/31), router <-> server (outer 198.19.66.0/31)')
  await p2pLink({ a: client, b: router, ipA: '198.18.66.0/31', ipB: '198.18.66.1/31', ifnameA: 'eth1', ifnameB: 'in0' })
  await p2pLink({ a: router, b: server, ipA: '198.19.66.0/31', ipB: '198.19.66.1/31', ifnameA: 'out0', ifnameB: 'eth1' })
  await setIp({ guest: client, ifname: 'eth1', routes: ['198.19.66.0/24@198.18.66.1'] })
  // The server has no route back to the inner network: only NAT can make the reply find its way.
  const routes = (await inside(server, 'ip', 'route')).stdout
  expect(!routes.includes('198.18.66') && !routes.includes('default'), 'the server has no route to the inner network')

  step('the router forwards, but does not masquerade yet')
  expect((await inside(router, 'sysctl', '-qw', 'net.ipv4.ip_forward=1')).exitCode === 0, 'forwarding on in the router')
  expect(!(await reaches(client, '198.19.66.1', 1)), 'without NAT the client gets no answer (the server cannot reply to 198.18.66.0)')

  step('the router masquerades what leaves out0')
  const nat = await inside(router, 'iptables', '-t', 'nat', '-A', 'POSTROUTING', '-o', 'out0', '-j', 'MASQUERADE')
  expect(nat.exitCode === 0, 'MASQUERADE rule in the router')
  expect(await reaches(client, '198.19.66.1'), 'the client reaches the server through the router')
  // Read back from the router's conntrack table (/proc, no conntrack tool needed) when it is there.
  const ct = await inside(router, 'cat', '/proc/net/nf_conntrack')
  if (ct.exitCode === 0) {
    const natted = ct.stdout.split('\n').some((l) => /\bicmp\b/.test(l) && l.includes('src=198.18.66.0 dst=198.19.66.1') && l.includes('src=198.19.66.1 dst=198.19.66.0'))
    expect(natted, "the server's replies went to the router's outer address (conntrack shows the translation)")
  }
})
