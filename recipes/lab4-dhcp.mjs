#!/usr/bin/env node
// Lab 4, DHCP: a DHCP server (dnsmasq) in its own namespace on a bridge; a container gets its
// address from it through plumb, keeps it renewed, and releases it on detach.
import { readFile } from 'node:fs/promises'
import { $ } from 'zx'
import { attachVeth, detach } from 'plumb'
import { expect, guest, ifnamed, inside, lab, named, onTeardown, step } from './_lab.mjs'

const bridge = ifnamed('br4')
const srv = named('dhcp')
const leases = `/tmp/${srv}.leases`
/** The server's own record (dnsmasq's lease file), not what plumb reports. */
const serverHas = async (addr) => (await readFile(leases, 'utf8').catch(() => '')).split('\n').some((l) => l.split(' ')[2] === addr)
/** Poll for up to 3 s: dnsmasq rewrites its lease file right after it answers, not before. */
async function until(check) {
  for (let i = 0; i < 30; i++) {
    if (await check()) return true
    await new Promise((r) => setTimeout(r, 100))
  }
  return false
}

await lab("Lab 4: an address from the LAN's DHCP server", async () => {
  step(`a DHCP server in netns ${srv} on bridge ${bridge}`)
  // Undo steps run last-registered first: stop the server, detach its NIC (so plumb removes the
  // bridge it made with its last port, and the bridge's firewall rule), then drop the netns.
  onTeardown(() => $`ip netns del ${srv}`.nothrow())
  await $`ip netns del ${srv}`.nothrow()
  await $`ip netns add ${srv}`
  onTeardown(() => detach({ guest: `netns:${srv}`, all: true }))
  await attachVeth({ guest: `netns:${srv}`, bridge, ips: ['198.18.65.1/24'] })
  const server = $`ip netns exec ${srv} dnsmasq --no-daemon --conf-file=/dev/null --no-resolv --no-hosts --interface=eth1 --bind-interfaces --dhcp-range=198.18.65.100,198.18.65.150,2m --dhcp-leasefile=${leases} --dhcp-option=option:router,198.18.65.1`.nothrow()
  onTeardown(async () => {
    // `ip netns exec` execs dnsmasq, so this pid is the server's own.
    await server.kill('SIGTERM').catch(() => {}) // already gone if it failed to start
    await server
    await $`rm -f ${leases}`
  })

  const web = await guest('web')
  step(`plumb attach-veth ${web} ${bridge} dhcp`)
  const r = await attachVeth({ guest: web, bridge, ips: ['dhcp'] })
  console.log(r.messages.join('\n'))
  const addr = r.lease?.address ?? ''
  expect(addr.startsWith('198.18.65.'), `leased ${addr} from the server's range`)
  const shown = (await inside(web, 'ip', '-4', '-o', 'addr', 'show', 'dev', 'eth1')).stdout
  expect(shown.includes(` ${addr}/24 `), `the guest's eth1 holds ${addr}/24`)
  expect(await until(() => serverHas(addr)), `the server's lease file records ${addr}`)

  step(`plumb detach ${web} --all releases the lease`)
  console.log((await detach({ guest: web, all: true })).messages.join('\n'))
  expect(await until(async () => !(await serverHas(addr))), `the server dropped the lease on ${addr} (DHCPRELEASE on detach)`)
})
