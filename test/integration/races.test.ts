// Issue 8, items 17 and 20: attach-veth and detach racing on one guest and one bridge. A link a
// concurrent detach deletes between attach's listing and its reads is gone, not "no such
// device" (exit 3); detach deletes an empty plumb bridge only under the bridge lock that an
// attach holds from finding the bridge until its port exists.

import { attachVeth, detach, PlumbError } from '../../lib/index.js'
import { acquireBridgeLock } from '../../lib/ops/bridge-lock.js'
import { prefetchFirewall } from '../../lib/ops/firewall.js'
import { bridgeFirewall } from '../../lib/firewall/index.js'
import { getLink, isRoot, isolatedPorts, makeBridge, testIf, waitFor } from '../helpers/index.js'
import { firewallRules, fixture, forwardDropActive, guestLinks, plumb } from './ops-fixture.js'
import { extraGuest } from './links-fixture.js'

const asRoot = testIf(isRoot, 'races: needs root (ip netns, links)')

const ROUNDS = 25
const WORKERS = 3

asRoot(`storm: ${WORKERS} workers attach and detach on one guest and one plumb bridge, ${ROUNDS} rounds each: every call succeeds`, async (t) => {
  const f = await fixture(t)
  const failures: string[] = []
  let attached = 0
  const worker = async (w: number): Promise<void> => {
    for (let i = 0; i < ROUNDS; i++) {
      let ifname: string | undefined
      try {
        // No -i: each attach lists the guest's links and looks at the others' (the same bridge)
        // while their detach deletes them. The bridge is plumb's: the last detach deletes it
        // while another attach may have just found it.
        const r = await attachVeth({ guest: f.guest, bridge: f.br, ips: [f.v4(10 + w)], firewall: false })
        ifname = r.interfaces[1]?.name
        attached++
      } catch (err) {
        failures.push(`attach ${w}/${i}: exit ${(err as PlumbError).exitCode} ${(err as Error).message}`)
        continue
      }
      try {
        await detach({ guest: f.guest, ifname: ifname! })
      } catch (err) {
        failures.push(`detach ${w}/${i} ${ifname}: exit ${(err as PlumbError).exitCode} ${(err as Error).message}`)
      }
    }
  }
  await Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)))
  t.deepEqual(failures, [])
  t.is(attached, WORKERS * ROUNDS)
  t.deepEqual([...(await guestLinks(f.ns)).keys()], ['lo'], 'everything detached')
})

asRoot('detach takes the bridge lock before deleting an empty plumb bridge: an attach holding it keeps its bridge', async (t) => {
  const f = await fixture(t)
  const b = await extraGuest(t, f, 'b')
  t.is((await plumb('attach-veth', f.guest, f.br, f.v4(10))).exitCode, 0)
  const bridge = await getLink(f.br)
  t.regex(String(bridge?.ifalias), /^plumb:1 role=bridge /)

  // An attach-veth that has found the bridge and not yet made its port holds the lock, shared.
  const lock = await acquireBridgeLock('shared')
  t.teardown(() => lock.release())
  const detaching = plumb('detach', f.guest, 'eth1')
  // its port goes at once; the bridge, now empty, waits for the lock
  await waitFor(async () => !(await guestLinks(f.ns)).has('eth1'), { timeout: 10_000, what: 'detach to delete eth1' })
  // the attach that held the lock makes its port (an attach takes the lock shared: it does not wait)
  const other = await plumb('attach-veth', b.guest, f.br, f.v4(11))
  t.is(other.exitCode, 0, other.stderr)
  lock.release()
  const d = await detaching
  t.is(d.exitCode, 0, d.stderr)
  const after = await getLink(f.br)
  t.is(after?.ifindex, bridge?.ifindex, 'the same bridge: never deleted under the attach')
  t.is((await guestLinks(b.ns)).get('eth1')?.link_index !== undefined, true)
  t.notRegex(d.stdout, /deleted bridge/)
})

asRoot("attach's early firewall read found the bridge's rule, and the last other port's detach removed it before the attach took the bridge lock: the attach adds it again", async (t) => {
  t.true(await forwardDropActive(), "needs Docker's FORWARD DROP (scripts/testbed.sh up): else no bridge has a rule")
  const f = await fixture(t)
  const b = await extraGuest(t, f, 'b')
  // not plumb's bridge: it stays when its last plumb port goes, and only the rule goes with it
  await makeBridge(t, f.br)
  const rules = (): Promise<string[]> => firewallRules('iptables', f.br)
  t.is((await plumb('attach-veth', b.guest, f.br, f.v4(11))).exitCode, 0)
  t.is((await rules()).length, 1, "b's attach added the rule")

  // The read an attach starts before it resolves its guest (as the CNI plugin starts it before its
  // IPAM call), taken by the next attach to that bridge in this process: it finds the rule.
  prefetchFirewall(f.br)
  t.true((await bridgeFirewall(f.br)).rules.every((r) => r.present), 'the same read: the rule is there')
  // b's port was the bridge's last plumb port: its detach takes the rule
  const d = await plumb('detach', b.guest, 'eth1')
  t.is(d.exitCode, 0, d.stderr)
  t.deepEqual(await rules(), [], "b's detach removed the rule")

  const r = await attachVeth({ guest: f.guest, bridge: f.br, ips: [f.v4(10)] })
  t.true((await guestLinks(f.ns)).has(r.interfaces[1]!.name))
  t.is((await rules()).length, 1, 'the attach read the firewall again and added the rule its port needs')
})

asRoot("attach's early firewall read found the bridge not isolated, and `plumb isolate` came before the attach took the bridge lock: its port is isolated too", async (t) => {
  const f = await fixture(t)
  const b = await extraGuest(t, f, 'b')
  t.is((await plumb('attach-veth', b.guest, f.br, f.v4(11))).exitCode, 0)
  t.teardown(() => plumb('isolate', f.br, '--del'))

  prefetchFirewall(f.br)
  t.false((await bridgeFirewall(f.br)).isolated, 'the same read: not isolated yet')
  const iso = await plumb('isolate', f.br)
  t.is(iso.exitCode, 0, iso.stderr)
  t.deepEqual(await isolatedPorts(f.br), [true], "isolate isolated b's port")

  await attachVeth({ guest: f.guest, bridge: f.br, ips: [f.v4(10)] })
  t.deepEqual(await isolatedPorts(f.br), [true, true], "the attach read the bridge's isolation again under the lock: its port is isolated")
})

