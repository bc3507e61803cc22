#!/usr/bin/env node
// Lab 4, DHCP: a DHCP server (dnsmasq) in its own namespace on a bridge; a container gets its
// address from it through plumb, keeps it renewed, and releases it on detach.
import { $ } from 'zx'
import { attachVeth, detach } from 'plumb'
import { expect, guest, lab, onTeardown, prefix, step } from './_lab.mjs'

const bridge = `${prefix}-br4`.slice(0, 15)
const srv = `${prefix}-dhcpsrv`
await lab('Lab 4: an address from the LAN\'s DHCP server', async () => {
  step(`a DHCP server in netns ${srv} on bridge ${bridge}`)
  await $`ip netns add ${srv}`
  onTeardown(() => $`ip netns del ${srv}`.nothrow())
  await attachVeth({ guest: `netns:${srv}`, bridge, ips: ['198.18.65.1/24'] })
  const lease = `/tmp/${srv}.leases`
  const server = $`ip netns exec ${srv} dnsmasq --no-daemon --conf-file=/dev/null --no-resolv --no-hosts --interface=eth1 --bind-interfaces --dhcp-range=198.18.65.100,198.18.65.150,2m --dhcp-leasefile=${lease} --dhcp-option=option:router,198.18.65.1`.nothrow()
  onTeardown(async () => {
    server.kill()
    await server
    await $`rm -f ${lease}`
  })
  const web = await guest('web')
  step(`plumb attach-veth ${web} ${bridge} dhcp`)
  const r = await attachVeth({ guest: web, bridge, ips: ['dhcp'] })
  console.log(r.messages.join('\n'))
  const addr = r.lease?.address ?? ''
  expect(addr.startsWith('198.18.65.'), `leased ${addr} from the server's range`)
  step(`plumb detach ${web} --all releases the lease`)
  console.log((await detach({ guest: web, all: true })).messages.join('\n'))
})
