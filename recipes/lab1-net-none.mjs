#!/usr/bin/env node
// Lab 1, "--net=none by hand": a container with no network gets a NIC on a bridge, an address
// and a default route via the host, which is the gateway on the bridge.
import { $ } from 'zx'
import { attachVeth, ls, formatLs } from 'plumb'
import { expect, guest, ifnamed, lab, onTeardown, pingable, step } from './_lab.mjs'

const bridge = ifnamed('br1')
await lab('Lab 1: plumbing a --net=none container by hand', async () => {
  const web = await guest('web')
  step(`plumb attach-veth ${web} ${bridge} 198.18.61.10/24@198.18.61.1`)
  console.log((await attachVeth({ guest: web, bridge, ips: ['198.18.61.10/24@198.18.61.1'] })).messages.join('\n'))
  step('the host is the gateway: give the bridge 198.18.61.1')
  await $`ip addr add 198.18.61.1/24 dev ${bridge}`
  onTeardown(() => $`ip addr del 198.18.61.1/24 dev ${bridge}`.nothrow())
  expect(await pingable(web, '198.18.61.1'), 'the container reaches its gateway (the host)')
  console.log(formatLs(await ls({ guest: web })))
})
