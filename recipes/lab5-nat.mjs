#!/usr/bin/env node
// Lab 5, NAT: a client on an inner network reaches a server on an outer one through a router
// container that masquerades; the server sees the router's address, not the client's.
import { p2pLink, setIp } from 'plumb'
import { expect, guest, inside, lab, step } from './_lab.mjs'

await lab('Lab 5: a NAT router between two networks', async () => {
  const client = await guest('client')
  const router = await guest('router')
  const server = await guest('server')
  step('client <-> router (inner 198.18.66.0/31), router <-> server (outer 198.19.66.0/31)')
  await p2pLink({ a: client, b: router, ipA: '198.18.66.0/31', ipB: '198.18.66.1/31', ifnameA: 'eth1', ifnameB: 'in0' })
  await p2pLink({ a: router, b: server, ipA: '198.19.66.0/31', ipB: '198.19.66.1/31', ifnameA: 'out0', ifnameB: 'eth1' })
  await setIp({ guest: client, ifname: 'eth1', routes: ['198.19.66.0/24@198.18.66.1'] })
  step('the router forwards and masquerades what leaves out0')
  await inside(router, 'sysctl', '-qw', 'net.ipv4.ip_forward=1')
  const nat = await inside(router, 'iptables', '-t', 'nat', '-A', 'POSTROUTING', '-o', 'out0', '-j', 'MASQUERADE')
  expect(nat.exitCode === 0, 'MASQUERADE rule in the router')
  expect((await inside(client, 'ping', '-c', '1', '-W', '2', '198.19.66.1')).exitCode === 0, 'the client reaches the server through the router')
  // The server has no route back to the inner network: only NAT makes the reply find its way.
  const routes = (await inside(server, 'ip', 'route')).stdout
  expect(!routes.includes('198.18.66'), 'the server knows nothing of the inner network (replies go to the router\'s address)')
})
