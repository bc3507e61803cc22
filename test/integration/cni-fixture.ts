// Shared fixture of the CNI plugin tests: plumb installed as a plugin (`plumb cni install`) into a
// private bin dir, a network per test (its own name, bridge, host-local store and record dir
// under a private temp dir), and readers of what IPAM holds and what plumb left.

import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { CniRuntime, REFERENCE_PLUGINS, ipJson, runCli, shQuiet, uniq, reserveOctet } from '../helpers/index.js'
import type { Conflist, Teardown } from '../helpers/index.js'
import { removeBridgeRules } from '../../lib/ops/firewall.js'

/** A private plugin dir holding plumb's launcher, written by the real `plumb cni install --dir`. */
export async function installPlumb(t: Teardown): Promise<string> {
  const dir = mkdtempSync('/tmp/pt-cnibin-')
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const r = await runCli(['cni', 'install', '--dir', dir])
  if (r.exitCode !== 0) throw new Error(`plumb cni install failed: ${r.stderr}`)
  return dir
}

export interface Net {
  /** the network name (pt-xxxxxx) */
  name: string
  bridge: string
  /** third octet of this network's 198.18.X.0/24 */
  octet: number
  subnet: string
  gateway: string
  /** plumb's dataDir (records) */
  records: string
  /** host-local's store of this network */
  store: string
  ipam: Record<string, unknown>
  plumb(extra?: Record<string, unknown>): Conflist['plugins'][number]
  runtime(version: string, plugins?: Conflist['plugins']): CniRuntime
}

/**
 * A network for one test. Teardown sweeps what a failed test may leave: the bridge, its
 * firewall rule, the private dirs (the netns go with makeNetns' own teardown).
 */
export function network(t: Teardown, bin: string, opts: { octet?: number } = {}): Net {
  const name = uniq()
  const bridge = uniq('b', { dash: false })
  const dir = mkdtempSync(`/tmp/${name}-`)
  const octet = opts.octet ?? reserveOctet(t, '198.18', [100, 250])
  t.teardown(async () => {
    await shQuiet('ip', ['link', 'del', bridge])
    await removeBridgeRules(bridge).catch(() => undefined)
    rmSync(dir, { recursive: true, force: true })
  })
  const subnet = `198.18.${octet}.0/24`
  const gateway = `198.18.${octet}.1`
  const ipam = { type: 'host-local', dataDir: `${dir}/ipam`, ranges: [[{ subnet, gateway }]], routes: [{ dst: '0.0.0.0/0' }] }
  const net: Net = {
    name,
    bridge,
    octet,
    subnet,
    gateway,
    records: `${dir}/plumb`,
    store: `${dir}/ipam/${name}`,
    ipam,
    plumb: (extra = {}) => ({ type: 'plumb', op: 'attach-veth', bridge, dataDir: `${dir}/plumb`, ipam, ...extra }),
    runtime: (version, plugins) => new CniRuntime({ cniVersion: version, name, plugins: plugins ?? [net.plumb()] }, [bin, REFERENCE_PLUGINS]),
  }
  return net
}

/** The addresses host-local holds for the network (its store: one file per address). */
export function reserved(net: Net): string[] {
  try {
    return readdirSync(net.store).filter((f) => /^[0-9a-f.:]+$/.test(f) && (f.includes('.') || f.includes(':')))
  } catch {
    return []
  }
}

/** plumb's attachment records of the network. */
export function records(net: Net): string[] {
  try {
    return readdirSync(`${net.records}/${net.name}`)
  } catch {
    return []
  }
}

/** Host links whose owner mark names this container id (the CNI attachment's tag). */
export async function markedLinks(containerId: string): Promise<string[]> {
  const links = await ipJson(['link', 'show'])
  return links.filter((l) => typeof l.ifalias === 'string' && l.ifalias.includes(` cni=${containerId} `)).map((l) => l.ifname as string)
}

/** The IPv4 addresses (CIDR) on an interface in a netns. */
export async function addrsIn(ns: string, ifname: string): Promise<string[]> {
  const a = await ipJson(['-4', 'addr', 'show', 'dev', ifname], ns).catch(() => [])
  return a.flatMap((x) => (x.addr_info ?? []).map((i: { local: string; prefixlen: number }) => `${i.local}/${i.prefixlen}`))
}
