// Slow (~65 s): with dnsmasq's 2-minute leases the clients must renew at T1 = 60 s, and each renewal
// must push the address's valid_lft back up (pipework's clients died after the first lease).

import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { listLeases, startDhcp, stopDhcp } from '../../lib/dhcp/index.js'
import { hasBinary, isRoot, testIf, waitFor } from '../helpers/index.js'
import { makeDhcpLab, v4Addrs } from './dhcp-lab.js'

const ready = isRoot && hasBinary('dnsmasq') && hasBinary('nsenter')

for (const client of ['udhcpc', 'dhclient'] as const) {
  const maybe = testIf(ready && hasBinary(client), `dhcp renewal (${client}): needs root, dnsmasq, nsenter and ${client}`)
  maybe(`${client} renews a 2-minute lease at T1 (slow: ~65 s) and valid_lft goes back up`, async (t) => {
    t.timeout(150_000)
    const lab = await makeDhcpLab(t)
    const c = await lab.addClient(t)
    const stateKey = `pt${randomBytes(4).toString('hex')}`
    t.teardown(async () => {
      await stopDhcp({ stateKey, ifname: c.ifname, release: false })
    })
    const lease = await startDhcp({ nsPath: c.nsPath, guestLabel: c.ns, stateKey, ifname: c.ifname, client })
    t.is(lease.leaseTime, 120)
    const acks = new RegExp(`DHCPACK\\(pt-br\\) ${lease.address.replace(/\./g, '\\.')} `)
    t.is(lab.count(acks), 1)

    // until the renewal (udhcpc: T1 = 60 s; dhclient: T1 with jitter, ~48 s) the lifetime runs down
    let low = Number.POSITIVE_INFINITY
    await waitFor(async () => {
      const a = (await v4Addrs(c.nsPath, c.ifname)).find((x) => x.local === lease.address)
      if (a) low = Math.min(low, a.valid_life_time)
      return lab.count(acks) >= 2
    }, { timeout: 90_000, interval: 500, what: 'a second DHCPACK (the renewal) in dnsmasq\'s log' })
    t.true(low <= 90, `valid_lft ran down to ${low} s before the renewal`)

    const after = await waitFor(async () => {
      const a = (await v4Addrs(c.nsPath, c.ifname)).find((x) => x.local === lease.address)
      return a && a.valid_life_time > low + 20 ? a : undefined
    }, { timeout: 5000, what: 'valid_lft to be reset by the hook' })
    t.log(`valid_lft ${low} s before the renewal, ${after.valid_life_time} s after`)

    // the hook reports the renewal after applying it: poll, the report may trail the kernel by a moment
    const listed = await waitFor(async () => {
      const l = (await listLeases()).find((x) => x.stateKey === stateKey)
      return l?.expiresAt && Date.parse(l.expiresAt) > Date.parse(lease.expiresAt) ? l : undefined
    }, { timeout: 5000, what: 'ls to show the renewed expiry' })
    t.true(listed.alive)
    t.is(listed.address, lease.address)
    t.log(`events: ${readFileSync(join(lease.stateDir, 'events'), 'utf8').trim().split('\n').join(' | ')}`)
  })
}
