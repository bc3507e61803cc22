#!/usr/bin/env node
// Lab 2, point-to-point links: two containers joined by a veth pair with no bridge at all,
// first with a /31, then a container and the host with /32 addresses plus peer routes.
import { p2pLink } from 'plumb'
import { $ } from 'zx'
import { expect, guest, lab, pingable, step } from './_lab.mjs'

await lab('Lab 2: point-to-point links', async () => {
  const a = await guest('a')
  const b = await guest('b')
  step(`plumb p2p-link ${a} ${b} --ip-a 198.18.62.0/31 --ip-b 198.18.62.1/31`)
  console.log((await p2pLink({ a, b, ipA: '198.18.62.0/31', ipB: '198.18.62.1/31' })).messages.join('\n'))
  expect(await pingable(a, '198.18.62.1'), 'a reaches b over the /31, no bridge involved')
  step(`plumb p2p-link ${a} host --ip-a 198.18.63.2/32 --ip-b 198.18.63.1/32`)
  const r = await p2pLink({ a, b: 'host', ipA: '198.18.63.2/32', ipB: '198.18.63.1/32' })
  console.log(r.messages.join('\n'))
  const hostEnd = r.interfaces[1].name
  const ping = await $`ping -c 1 -W 2 -I ${hostEnd} 198.18.63.2`.nothrow()
  expect(ping.exitCode === 0, 'the host reaches a over the /32 link (peer routes on both ends)')
})
