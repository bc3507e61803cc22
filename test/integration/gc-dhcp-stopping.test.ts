// gc and a DHCP lease a plumb is stopping right now: stopDhcp stops the supervisor before it sends
// the DHCPRELEASE, so for those seconds the lease looks unsupervised; gc must leave it to that
// plumb (a host-wide gc of another test lost detach's release that way), unless the stop is stale.

import type { ExecutionContext } from 'ava'
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { isRoot, runCli, testIf } from '../helpers/index.js'

const asRoot = testIf(isRoot, 'gc-dhcp-stopping: needs root (gc reads the host links and firewall)')

/** A lease dir under a private state root, its supervisor gone and its client still running. */
function stoppingLease(t: ExecutionContext) {
  const root = mkdtempSync('/run/pt-dhcpstate-')
  const key = `ino:pt${randomBytes(3).toString('hex')}`
  const dir = `${root}/${key}-eth1`
  mkdirSync(dir, { mode: 0o700 })
  writeFileSync(`${dir}/meta.json`, JSON.stringify({ stateKey: key, ifname: 'eth1', guestLabel: key, nsPath: '/nonexistent', netnsIno: 0, client: 'udhcpc', argv: [], nsenter: 'nsenter', watch: {}, startedAt: new Date().toISOString() }))
  // the "client": a live process whose argv names the dir, as the real one names its hook
  const client = spawn('/bin/sh', ['-c', 'sleep 60', `${dir}/hook`], { stdio: 'ignore' })
  t.teardown(() => {
    client.kill('SIGKILL')
    rmSync(root, { recursive: true, force: true })
  })
  writeFileSync(`${dir}/client.pid`, `${client.pid}\n`)
  // a supervisor pid that is not (or no longer) ours: stopDhcp has just terminated it
  writeFileSync(`${dir}/supervisor.pid`, '1\n')
  writeFileSync(`${dir}/stopping`, '')
  return { root, key, dir, env: { PLUMB_DHCP_STATE_DIR: root } }
}

const plansStop = (plan: unknown, key: string): boolean => JSON.stringify(plan ?? []).includes(`DHCP client of ${key} eth1`)

asRoot('gc leaves a lease with a fresh stopping file to the plumb stopping it, and collects one whose stop is stale', async (t) => {
  const l = stoppingLease(t)
  const fresh = await runCli(['gc', '--dry-run', '--json'], { env: l.env })
  t.is(fresh.exitCode, 0, fresh.stderr)
  t.false(plansStop(fresh.json?.plan, l.key), `gc must not stop a lease being released: ${JSON.stringify(fresh.json?.plan)}`)

  // a plumb killed mid-stop: its stopping file ages past any stop's length
  const old = new Date(Date.now() - 5 * 60_000)
  utimesSync(`${l.dir}/stopping`, old, old)
  const stale = await runCli(['gc', '--dry-run', '--json'], { env: l.env })
  t.is(stale.exitCode, 0, stale.stderr)
  t.true(plansStop(stale.json?.plan, l.key), `a stale stop is a leftover: ${JSON.stringify(stale.json?.plan)}`)
})
