// What exists of a lab on this host, read once: its nodes (containers by label, ip netns by the
// mark on their lo, bridges by their mark), each guest's interfaces, addresses and routes, and
// what the lab made that the file no longer names. The planner compares this with the file.

import { readdirSync } from 'node:fs'
import { PlumbError, conflict } from '../errors.js'
import { listLabelled } from '../guest/containers.js'
import type { LabelledContainer } from '../guest/containers.js'
import { resolveGuest } from '../guest/index.js'
import type { Netns } from '../guest/index.js'
import { openHandleIn, openHostHandle } from '../kernel/index.js'
import { processHostHandle, recoverFor } from '../ops/context.js'
import type { AddrInfo, LinkInfo, NetHandle, RouteInfo } from '../kernel/types.js'
import { parseMark } from '../parse/index.js'
import type { GuestRef } from '../parse/index.js'
import { LABEL_LAB, LABEL_NODE, MARK_LAB, OVS_LAB_KEY, runtimeName } from './names.js'
import type { Lab, LabNode } from './types.js'

/** A guest node's network as read from its netns. */
export interface GuestState {
  /** the guest ref plumb's ops take for it */
  guest: string
  label: string
  /** the netns's identity (a container id, or ino:N) and nsfs inode/dev, to tell shared netns apart */
  key: string
  ino: number
  dev: number
  links: LinkInfo[]
  addrs: AddrInfo[]
  routes: RouteInfo[]
}

export interface ObservedNode {
  node: LabNode
  /** the node is on the host (a container, running or not; an ip netns; a bridge) */
  exists: boolean
  /** this lab made it (its label, or its mark): destroy removes it */
  ours: boolean
  /** linux: the container, when there is one */
  container?: LabelledContainer
  /** guest nodes that are up: their network */
  state?: GuestState
  /** bridge nodes: the host link */
  hostLink?: LinkInfo
}

export interface Observed {
  nodes: Map<string, ObservedNode>
  hostLinks: LinkInfo[]
  hostAddrs: AddrInfo[]
  /** what the lab made that the file no longer names */
  strayContainers: LabelledContainer[]
  strayNetns: string[]
  strayBridges: string[]
  strayOvsBridges: string[]
  /** OVS availability: false when ovsdb does not answer (and the lab has no OVS nodes to need it) */
  ovs: boolean
  /** the lab's OVS bridges that exist (name -> this lab made it) */
  ovsBridges: Map<string, { ours: boolean }>
  /** what finishing a killed plumb's runs on the lab's guests did first (observe's `recover`) */
  recovered: string[]
}

/** Finish a killed plumb's runs on each guest before reading it (a deploy's, a destroy's): its collected lines. */
export interface RecoverFirst {
  dryRun?: boolean
  lines: string[]
}

/**
 * Open a guest by ref, read its links, addresses and routes, close it; undefined when it is not
 * there (or not running). With `recover`, what a killed plumb left half-made in it (a veth created
 * and killed before its mark was set) is finished first, as every op does before reading its
 * guest: a rerun of a killed deploy then converges instead of refusing an unmarked eth2.
 */
export async function readGuest(ref: GuestRef, guest: string, recover?: RecoverFirst): Promise<GuestState | undefined> {
  let netns: Netns
  try {
    netns = await resolveGuest(ref, { allowHost: false })
  } catch (err) {
    if (err instanceof PlumbError && err.code === 'NOT_FOUND') return undefined
    throw err
  }
  try {
    if (recover) recover.lines.push(...(await recoverFor(processHostHandle(), netns, recover)))
    const h = openHandleIn(netns.fd, netns.label)
    try {
      const [links, addrs, routes] = await Promise.all([h.getLinks(), h.getAddrs(), h.getRoutes()])
      return { guest, label: netns.label, key: netns.key, ino: netns.ino, dev: netns.dev, links, addrs, routes }
    } finally {
      h.close()
    }
  } finally {
    netns.close()
  }
}

/** The lab a netns belongs to, from the mark on its lo; undefined when it carries none. */
async function netnsLab(name: string): Promise<string | undefined> {
  let netns: Netns
  try {
    netns = await resolveGuest({ kind: 'netns', name })
  } catch (err) {
    // Gone meanwhile, or a stale file left in /run/netns: no netns, so not a lab's.
    if (err instanceof PlumbError && err.code === 'NOT_FOUND') return undefined
    throw err
  }
  let h: NetHandle | undefined
  try {
    h = openHandleIn(netns.fd, netns.label)
    const lo = await h.getLink('lo')
    const m = parseMark(lo?.alias)
    return m?.role === 'node' ? m.extra?.[MARK_LAB] : undefined
  } finally {
    h?.close()
    netns.close()
  }
}

export function netnsNames(): string[] {
  try {
    return readdirSync('/run/netns')
  } catch {
    return []
  }
}

/**
 * Read the lab's state. `strict` (deploy): a name the lab needs that something else holds is a
 * conflict (exit 4). Destroy is not strict: what is not the lab's is simply not its to remove.
 */
export async function observe(lab: Lab, opts: { strict?: boolean; recover?: { dryRun?: boolean } } = {}): Promise<Observed> {
  const strict = opts.strict ?? true
  const needDocker = lab.nodes.some((n) => n.kind === 'linux')
  const readHost = async (): Promise<[LinkInfo[], AddrInfo[]]> => {
    const hostNs = openHostHandle()
    try {
      return await Promise.all([hostNs.getLinks(), hostNs.getAddrs()])
    } finally {
      hostNs.close()
    }
  }
  let [hostLinks, hostAddrs] = await readHost()
  const recover: RecoverFirst | undefined = opts.recover ? { ...opts.recover, lines: [] } : undefined
  // All containers, once: a name taken by a container that is not the lab's is a conflict.
  const containers = needDocker ? await listLabelled().catch(engineNeeded(lab)) : await listLabelled({ key: LABEL_LAB, value: lab.name }).catch(engineAbsent)
  const byName = new Map(containers.map((c) => [c.name, c]))
  const nodes = new Map<string, ObservedNode>()
  const labNetns = new Map<string, string | undefined>()
  const netnsSet = new Set(netnsNames())
  // The lab's netns are named by its prefix rule: only those names are opened to read their mark
  // (a busy host has many others). With `prefix: ""` any name may be the lab's.
  const stem = runtimeName(lab.name, lab.prefix, '')
  await Promise.all(
    [...netnsSet].filter((n) => n.startsWith(stem)).map(async (n) => {
      labNetns.set(n, await netnsLab(n))
    }),
  )

  let ovs = false
  const ovsBridges = new Map<string, { ours: boolean }>()
  let labOvs: string[] = []
  const needOvs = lab.nodes.some((n) => n.kind === 'ovs-bridge')
  {
    const o = await import('../ovs/index.js')
    const avail = await o.ovsAvailable()
    if (!avail.ok && needOvs) throw new PlumbError('UNSUPPORTED', `lab ${lab.name} has ovs-bridge nodes but Open vSwitch does not answer: ${avail.reason ?? ''}`, { hint: o.START_HINT })
    ovs = avail.ok
    if (ovs) {
      labOvs = await o.listBridgesMarked(OVS_LAB_KEY, lab.name)
      for (const n of lab.nodes.filter((x) => x.kind === 'ovs-bridge')) {
        const b = await o.getBridge(n.runtime)
        if (b) ovsBridges.set(n.runtime, { ours: b.externalIds[OVS_LAB_KEY] === lab.name })
      }
    }
  }

  await Promise.all(
    lab.nodes.map(async (node) => {
      const o: ObservedNode = { node, exists: false, ours: false }
      nodes.set(node.name, o)
      if (node.kind === 'linux') {
        const c = byName.get(node.runtime)
        if (c) {
          o.exists = true
          o.container = c
          o.ours = c.labels[LABEL_LAB] === lab.name
          if (strict && !o.ours && !node.existing) {
            throw conflict(`${lab.file}: ${node.at}: a container named "${node.runtime}" exists and is not lab ${lab.name}'s`, `remove it (docker rm -f ${node.runtime}) or change the lab's prefix`)
          }
          // A node on the host's network (network-mode host) has no netns of its own: no links to read.
          if (c.running && node.networkMode !== 'host') o.state = await readGuest({ kind: 'container', engine: 'docker', name: node.runtime }, `docker:${node.runtime}`, recover)
        }
      } else if (node.kind === 'netns') {
        if (netnsSet.has(node.runtime)) {
          o.exists = true
          o.ours = labNetns.get(node.runtime) === lab.name
          if (!o.ours && strict) throw conflict(`${lab.file}: ${node.at}: an ip netns named "${node.runtime}" exists and is not lab ${lab.name}'s`, `remove it (ip netns del ${node.runtime}) or change the lab's prefix`)
          if (o.ours) o.state = await readGuest({ kind: 'netns', name: node.runtime }, `netns:${node.runtime}`, recover)
        }
      } else if (node.kind === 'bridge') {
        const l = hostLinks.find((x) => x.name === node.runtime)
        if (l && l.kind !== 'bridge') {
          if (strict) throw conflict(`${lab.file}: ${node.at}: "${node.runtime}" is ${l.kind ? `a ${l.kind} interface` : 'a network interface'} on the host, not a bridge`, 'rename the bridge node')
        } else if (l) {
          o.exists = true
          o.hostLink = l
          o.ours = parseMark(l.alias)?.extra?.[MARK_LAB] === lab.name
        }
      } else {
        const b = ovsBridges.get(node.runtime)
        if (b) {
          o.exists = true
          o.ours = b.ours
        } else if (strict && hostLinks.some((x) => x.name === node.runtime)) {
          throw conflict(`${lab.file}: ${node.at}: "${node.runtime}" exists on the host and is not an OVS bridge`, 'rename the ovs-bridge node')
        }
      }
    }),
  )

  // a killed run's host ends went with its half-made links: the host as it is now
  if (recover?.lines.length && !recover.dryRun) [hostLinks, hostAddrs] = await readHost()
  const fileContainers = new Set(lab.nodes.filter((n) => n.kind === 'linux' && !n.existing).map((n) => n.runtime))
  const fileNetns = new Set(lab.nodes.filter((n) => n.kind === 'netns').map((n) => n.runtime))
  const fileBridges = new Set(lab.nodes.filter((n) => n.kind === 'bridge').map((n) => n.runtime))
  const fileOvs = new Set(lab.nodes.filter((n) => n.kind === 'ovs-bridge').map((n) => n.runtime))
  return {
    nodes,
    hostLinks,
    hostAddrs,
    strayContainers: containers.filter((c) => c.labels[LABEL_LAB] === lab.name && !(fileContainers.has(c.name) && c.labels[LABEL_NODE] !== undefined)),
    strayNetns: [...labNetns].filter(([n, l]) => l === lab.name && !fileNetns.has(n)).map(([n]) => n),
    strayBridges: hostLinks.filter((l) => l.kind === 'bridge' && parseMark(l.alias)?.role === 'bridge' && parseMark(l.alias)?.extra?.[MARK_LAB] === lab.name && !fileBridges.has(l.name)).map((l) => l.name),
    strayOvsBridges: labOvs.filter((b) => !fileOvs.has(b)),
    ovs,
    ovsBridges,
    recovered: recover?.lines ?? [],
  }
}

/** A lab with linux nodes needs dockerd. */
function engineNeeded(lab: Lab): (err: unknown) => never {
  return (err) => {
    if ((err as { name?: string }).name === 'EngineUnreachable') {
      throw new PlumbError('UNSUPPORTED', `lab ${lab.name} has linux nodes (containers) but the Docker API does not answer: ${(err as Error).message}`, { hint: 'start dockerd (or set DOCKER_HOST=unix://PATH)', cause: err })
    }
    throw err
  }
}

/** A lab without linux nodes may run where no engine is: no engine, no containers of it. */
function engineAbsent(err: unknown): LabelledContainer[] {
  if ((err as { name?: string }).name === 'EngineUnreachable') return []
  throw err
}
