// Shared pieces of the link-menu tests (macvlan, vlan, ovs-port, p2p-link, move-dev, gc): a
// "NIC" made of a veth pair whose far end sits in its own netns, OVS rows read back with
// ovs-vsctl, and a view of everything a test owns on the host, in its guests and in OVS.

import { makeNetns, runCli, sh, shQuiet } from '../helpers/index.js'
import type { CliResult, Teardown } from '../helpers/index.js'
import { guestView, hostView } from './ops-fixture.js'
import type { Fixture } from './ops-fixture.js'

/**
 * A stand-in for a physical NIC: veth `${id}p` in the host (up, the parent/device under test)
 * whose peer `${id}q` lives in netns `${id}f` with `farAddr` on it: "the LAN behind the NIC".
 */
export async function nicWithFarEnd(t: Teardown, f: Fixture, farAddr?: string): Promise<{ nic: string; far: string; farIf: string }> {
  const far = await makeNetns(t, { name: `${f.id}f` })
  const nic = `${f.id}p`
  const farIf = `${f.id}q`
  t.teardown(async () => void (await shQuiet('ip', ['link', 'del', nic])))
  await sh('ip', ['link', 'add', nic, 'type', 'veth', 'peer', 'name', farIf, 'netns', far])
  await sh('ip', ['link', 'set', nic, 'up'])
  await sh('ip', ['-n', far, 'link', 'set', farIf, 'up'])
  if (farAddr) await sh('ip', ['-n', far, 'addr', 'add', farAddr, 'dev', farIf])
  return { nic, far, farIf }
}

/** Another guest netns for test `f`: `${id}${suffix}`. */
export const extraGuest = async (t: Teardown, f: Fixture, suffix: string): Promise<{ ns: string; guest: string }> => {
  const ns = await makeNetns(t, { name: `${f.id}${suffix}` })
  return { ns, guest: `netns:${ns}` }
}

export interface OvsPortRow {
  name: string
  bridge: string
  tag: number | undefined
  trunks: number[]
  externalIds: Record<string, string>
}

/** `ovs-vsctl --format=json` cell: ["set",[...]] / ["map",[[k,v]...]] / atom. */
function cellSet(v: unknown): unknown[] {
  if (Array.isArray(v) && v[0] === 'set') return v[1] as unknown[]
  return v === undefined ? [] : [v]
}
function cellMap(v: unknown): Record<string, string> {
  return Array.isArray(v) && v[0] === 'map' ? Object.fromEntries((v[1] as Array<[string, string]>).map(([k, x]) => [k, String(x)])) : {}
}

/** Every OVS Port row whose name or external_ids mention `id`, with its bridge, read from ovsdb. */
export async function ovsPortsOf(id: string): Promise<OvsPortRow[]> {
  const out = await sh('ovs-vsctl', ['--timeout=10', '--format=json', '--', '--columns=_uuid,name,tag,trunks,external_ids', 'list', 'Port', '--', '--columns=name,ports', 'list', 'Bridge'])
  const [ports, bridges] = out.split('\n').map((l) => JSON.parse(l) as { headings: string[]; data: unknown[][] })
  const bridgeOf = new Map<string, string>()
  for (const row of bridges!.data) for (const p of cellSet(row[1])) bridgeOf.set((p as [string, string])[1], String(row[0]))
  return ports!.data
    .map((r) => ({
      uuid: (r[0] as [string, string])[1],
      name: String(r[1]),
      tag: cellSet(r[2])[0] as number | undefined,
      trunks: (cellSet(r[3]) as number[]).sort((a, b) => a - b),
      externalIds: cellMap(r[4]),
    }))
    .filter((p) => p.name.includes(id) || JSON.stringify(p.externalIds).includes(id))
    .map(({ uuid, ...p }) => ({ ...p, bridge: bridgeOf.get(uuid) ?? '' }))
    // a bridge's own local port is the bridge, not a port anyone attached
    .filter((p) => p.name !== p.bridge)
    .sort((a, b) => (a.name < b.name ? -1 : 1))
}

/** OVS bridges whose name contains `id`. */
export async function ovsBridgesOf(id: string): Promise<string[]> {
  const out = await sh('ovs-vsctl', ['--timeout=10', 'list-br'])
  return out.split('\n').filter((b) => b.includes(id)).sort()
}

/** An OVS bridge plumb may create for this test: deleted in teardown whoever made it. */
export function ovsBridgeName(t: Teardown, f: Fixture, suffix = 'o'): string {
  const name = `${f.id}${suffix}`
  t.teardown(async () => void (await shQuiet('ovs-vsctl', ['--timeout=10', '--if-exists', 'del-br', name])))
  return name
}

/** What a failed command must leave unchanged: the host's and each guest's links, addresses and routes, and OVS rows. */
export async function worldView(id: string, guests: string[], opts: { ovs?: boolean } = {}): Promise<unknown> {
  const [host, ...gs] = await Promise.all([hostView(id), ...guests.map((g) => guestView(g))])
  return { host, guests: gs, ovs: opts.ovs ? { ports: await ovsPortsOf(id), bridges: await ovsBridgesOf(id) } : undefined }
}

/** The CLI run inside another netns (a throwaway "host"), for what must not happen to the real host. */
export async function plumbIn(nsName: string, ...args: string[]): Promise<CliResult> {
  return runCli(args, { netns: nsName })
}

/** `ip -j -d link show` names in a netns (or the host). */
export async function linkNames(ns?: string): Promise<string[]> {
  const out = await sh('ip', [...(ns ? ['-n', ns] : []), '-j', 'link', 'show'])
  return (JSON.parse(out || '[]') as Array<{ ifname: string }>).map((l) => l.ifname).sort()
}

/** The bare address of a fixture CIDR (`198.18.7.10/24` -> `198.18.7.10`), for pings. */
export const bare = (cidr: string): string => cidr.split('/')[0]!
