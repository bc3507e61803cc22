// Shared by the restart tests: a record store of the test's own (PLUMB_RECORDS_DIR, so a watch
// replays only the test's containers on a shared dockerd), the CLI pointed at it, a watch run as
// a process of its own, and what a container's plumbed interfaces look like from the kernel.

import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { PLUMB_BIN, inspectContainer, ipJson, runCli, uniq, waitFor, reserveOctet } from '../helpers/index.js'
import type { CliResult, IpObject, Teardown, TestContainer } from '../helpers/index.js'
import { sweepHost } from '../integration/ops-fixture.js'

export interface RestartLab {
  id: string
  /** the record store of this test */
  records: string
  env: Record<string, string>
  /** plumb with this test's store */
  plumb(...args: string[]): Promise<CliResult>
  /** a fresh 198.18.X prefix (X distinct within the test) */
  net(): string
}

export function restartLab(t: Teardown): RestartLab {
  const id = uniq()
  t.teardown(() => sweepHost(id))
  const records = mkdtempSync(`/run/${id}-records-`)
  t.teardown(() => rmSync(records, { recursive: true, force: true }))
  const env = { PLUMB_RECORDS_DIR: records }
  return {
    id,
    records,
    env,
    plumb: (...args) => runCli(args, { env }),
    net: () => `198.18.${reserveOctet(t)}`,
  }
}

/** The records in a store: file name -> the record's JSON. */
export function recordsIn(dir: string): Record<string, { name?: string; v: number; entries: Array<{ op: string; args: Record<string, unknown> }> }> {
  return Object.fromEntries(readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => [f, JSON.parse(readFileSync(`${dir}/${f}`, 'utf8'))]))
}

/** What a container's interfaces are, as the kernel has them: name -> kind, MAC, MTU, up, IPv4/IPv6 addresses (no link-local). */
export async function interfacesOf(ct: TestContainer): Promise<Record<string, { mac: string; mtu: number; up: boolean; addrs: string[] }>> {
  const links = await ipJson(['-d', 'addr', 'show'], { path: ct.sandboxKey })
  const out: Record<string, { mac: string; mtu: number; up: boolean; addrs: string[] }> = {}
  for (const l of links) {
    if (l.ifname === 'lo') continue
    out[String(l.ifname)] = {
      mac: String(l.address),
      mtu: Number(l.mtu),
      up: (l.flags as string[]).includes('UP'),
      addrs: (l.addr_info as IpObject[]).filter((a) => a.scope !== 'link').map((a) => `${a.local}/${a.prefixlen}`),
    }
  }
  return out
}

/** A container's routes other than the kernel's own (dst, gateway, device). */
export async function routesOf(ct: TestContainer): Promise<string[]> {
  const routes = [...(await ipJson(['-4', 'route', 'show'], { path: ct.sandboxKey })), ...(await ipJson(['-6', 'route', 'show'], { path: ct.sandboxKey }))]
  return routes
    .filter((r) => r.protocol !== 'kernel' && !String(r.dst).startsWith('fe80') && r.dst !== 'multicast')
    .map((r) => `${r.dst}${r.gateway ? ` via ${r.gateway}` : ''} dev ${r.dev}`)
    .sort()
}

/** The container again, once it runs with another netns than `before` had (a restart is done when its new pid is up). */
export async function restarted(before: TestContainer, opts: { timeout?: number } = {}): Promise<TestContainer> {
  return waitFor(
    async () => {
      const now = await inspectContainer(before.name).catch(() => undefined)
      return now && now.pid > 0 && now.pid !== before.pid && now.sandboxKey ? now : undefined
    },
    { timeout: opts.timeout ?? 20_000, what: `${before.name} to run again with a new pid` },
  )
}

export interface WatchProcess {
  /** every line the watch printed so far (stdout) */
  lines: string[]
  /** resolves with the first line matching re printed from now (or already printed after `from`) */
  line(re: RegExp, opts?: { timeout?: number; from?: number }): Promise<string>
  stop(): Promise<void>
}

/** `plumb watch` as a process of its own (with the test's store and `env`), stopped by its pid (SIGTERM) in teardown. */
export function startWatch(t: Teardown, env: Record<string, string>, args: string[] = []): WatchProcess {
  const proc = spawn(process.execPath, [PLUMB_BIN, 'watch', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  const lines: string[] = []
  const errs: string[] = []
  createInterface({ input: proc.stdout! }).on('line', (l) => lines.push(l))
  createInterface({ input: proc.stderr! }).on('line', (l) => errs.push(l))
  const exited = new Promise<void>((resolve) => proc.on('exit', () => resolve()))
  const stop = async (): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM')
    await exited
  }
  t.teardown(stop)
  return {
    lines,
    async line(re, opts = {}) {
      const from = opts.from ?? 0
      return waitFor(() => lines.slice(from).find((l) => re.test(l)), { timeout: opts.timeout ?? 15_000, what: `watch to print ${re} (it printed: ${JSON.stringify(lines.slice(from))}${errs.length ? `, stderr ${JSON.stringify(errs)}` : ''})` })
    },
    stop,
  }
}
