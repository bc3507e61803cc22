// plumb as a CNI plugin killed at every step of an ADD and of a DEL: a runtime's plugin call has a
// timeout and a runtime may die, so plumb can be SIGKILLed anywhere. The runtime's answer to a
// failed ADD is a DEL of the same attachment (libcni, the CRI plugin), to a failed DEL another
// DEL: after it nothing of the attachment may be left (no link in the netns, no host end, no
// bridge plumb made for it, no firewall rule, no address held in host-local's store, no record,
// no journal entry), and after a killed ADD's DEL the next ADD must work. Each
// kill is killat's (test/helpers/killat.c): plumb SIGKILLed on entry to its K-th call that changes
// something, K = 1, 2, ... until an ADD gets through. State is read from the kernel, iptables-save and the stores' files.

import type { ExecutionContext } from 'ava'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { CniCallError, REFERENCE_PLUGINS, canBuildKillAt, ipJson, killAt, journalEntriesFor, isRoot, makeNetns, shQuiet, testIf } from '../helpers/index.js'
import { addrsIn, installPlumb, network, records, reserved } from './cni-fixture.js'

const canKill = testIf(isRoot && canBuildKillAt && existsSync(`${REFERENCE_PLUGINS}/host-local`), `needs root, a C compiler (for killat) and the reference plugins in ${REFERENCE_PLUGINS}`)

/** Past this many kill points an ADD is looping, not working. */
const MAX_K = 120

/** plumb installed as a plugin behind a wrapper that runs it under killat while `k` holds K > 0, a network, a netns, and a view of all an attachment leaves. */
async function killable(t: ExecutionContext) {
  // No gc lock: another test's gc finishing a killed ADD's journal entry first leaves what the DEL
  // is checked against the same, and the network's records and IPAM store are the test's own.
  const bin = await installPlumb(t)
  // The plugin the runtime finds first: plumb's installed launcher, under killat while `k` holds K > 0.
  const dir = mkdtempSync('/tmp/pt-cnikill-')
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const kFile = join(dir, 'k')
  writeFileSync(
    join(dir, 'plumb'),
    `#!/bin/sh\nk=$(cat ${kFile})\n[ "$k" = 0 ] && exec ${bin}/plumb\nexec ${killAt()} $k ${bin}/plumb\n`,
    { mode: 0o755 },
  )
  writeFileSync(kFile, '0')
  const net = network(t, dir)
  const ns = await makeNetns(t)
  const nsPath = `/run/netns/${ns}`
  const rt = net.runtime('1.0.0')
  const world = async (): Promise<unknown> => ({
    guest: (await ipJson(['link', 'show'], ns)).map((l) => l.ifname),
    hostEnds: (await ipJson(['link', 'show'])).filter((l) => typeof l.ifalias === 'string' && l.ifalias.includes(` cni=${ns}-`)).map((l) => l.ifname),
    bridge: (await ipJson(['link', 'show'])).some((l) => l.ifname === net.bridge),
    rules: (await shQuiet('iptables-save')).stdout.split('\n').filter((l) => l.startsWith('-A ') && l.includes(net.bridge)),
    reserved: reserved(net),
    records: records(net),
    journal: journalEntriesFor([nsPath]),
  })
  const before = await world()
  t.deepEqual(before, { guest: ['lo'], hostEnds: [], bridge: false, rules: [], reserved: [], records: [], journal: [] })
  /** ADD's result made real: eth0 holds the address IPAM gave, on a port of the bridge. */
  const intended = async (res: any, what: string): Promise<void> => {
    t.deepEqual(await addrsIn(ns, 'eth0'), [res.ips[0].address], `${what}: eth0 has the address in the result`)
    t.deepEqual(reserved(net), [res.ips[0].address.split('/')[0]], `${what}: host-local holds that one address`)
    t.is((await ipJson(['link', 'show'])).filter((l) => l.master === net.bridge).length, 1, `${what}: one port on the bridge`)
  }
  /** Run `fn` with plumb killed at its K-th call (K = 0: not killed). */
  const killedAt = async <T>(k: number, fn: () => Promise<T>): Promise<T> => {
    writeFileSync(kFile, String(k))
    try {
      return await fn()
    } finally {
      writeFileSync(kFile, '0')
    }
  }
  return { ns, nsPath, rt, world, before, intended, killedAt }
}

canKill('CNI ADD killed at every step: the runtime\'s DEL leaves nothing (IPAM released), and the next ADD works', async (t) => {
  t.timeout(600_000)
  const { ns, nsPath, rt, world, before, intended, killedAt } = await killable(t)
  for (let k = 1; k <= MAX_K; k++) {
    const call = { containerId: `${ns}-${k}`, netns: nsPath, ifname: 'eth0' }
    let res: any
    try {
      res = await killedAt(k, () => rt.add(call))
    } catch (err) {
      t.true(err instanceof CniCallError, `K=${k}: ${String(err)}`)
    }
    if (res !== undefined) {
      await intended(res, `K=${k} (got through)`)
      await rt.del(call)
      t.deepEqual(await world(), before, 'a whole ADD, then DEL')
      t.log(`${k - 1} kill points`)
      t.true(k - 1 >= 5)
      return
    }
    await rt.del(call)
    t.deepEqual(await world(), before, `K=${k}: DEL after the killed ADD leaves nothing`)
    const again = await rt.add(call)
    await intended(again, `K=${k}: the next ADD`)
    await rt.del(call)
    t.deepEqual(await world(), before, `K=${k}: ADD, DEL`)
  }
  t.fail(`ADD was still killed at K=${MAX_K}`)
})

canKill('CNI DEL killed at every step: the runtime\'s next DEL leaves nothing (IPAM released)', async (t) => {
  t.timeout(600_000)
  const { ns, nsPath, rt, world, before, intended, killedAt } = await killable(t)
  for (let k = 1; k <= MAX_K; k++) {
    const call = { containerId: `${ns}-${k}`, netns: nsPath, ifname: 'eth0' }
    await intended(await rt.add(call), `K=${k}: ADD`)
    let done = true
    try {
      await killedAt(k, () => rt.del(call))
    } catch (err) {
      t.true(err instanceof CniCallError, `K=${k}: ${String(err)}`)
      done = false
    }
    if (!done) await rt.del(call)
    t.deepEqual(await world(), before, `K=${k}: ${done ? 'a whole DEL' : 'DEL again after the killed one'} leaves nothing`)
    if (done) {
      t.log(`${k - 1} kill points`)
      t.true(k - 1 >= 3)
      return
    }
  }
  t.fail(`DEL was still killed at K=${MAX_K}`)
})
