// Grading: every check of a lab file against whatever state its nodes are in, deployed or built
// by hand. Reachability retries until its timeout (a must-not-reach check passes only if nothing
// answered in its window); state checks read the node's netns once; exec runs in the node. A node
// that is not there fails its checks, not the run.

import { PlumbError, asPlumbError } from '../errors.js'
import { resolveGuest } from '../guest/index.js'
import type { Netns } from '../guest/index.js'
import { openHandleIn, openHostHandle } from '../kernel/index.js'
import type { AddrInfo, LinkInfo, RouteInfo } from '../kernel/types.js'
import type { GuestRef } from '../parse/index.js'
import { execInNode } from './exec.js'
import { pingProbe, tcpProbe } from './probe.js'
import type { ProbeResult } from './probe.js'
import { pool } from './progress.js'
import type { Lab, LabCheck, LabNode, ProbeTarget } from './types.js'

export interface CheckOutcome {
  name: string
  ok: boolean
  points: number
  detail: string
  /** where the check is in the file: `checks[3]` */
  at: string
  kind: LabCheck['kind']
  ms: number
}

export interface CheckReport {
  lab: string
  file: string
  checks: CheckOutcome[]
  /** points of the checks that passed, of all */
  score: number
  total: number
  ms: number
}

export interface CheckOptions {
  /** seconds a reachability check retries (default 5); a must-not-reach check's window */
  timeout?: number
  /** checks run at once (default 16) */
  concurrency?: number
}

const DEFAULT_TIMEOUT_S = 5

/** A node's netns, opened (the fd held for the probes), or why it cannot be. */
async function openNode(node: LabNode): Promise<Netns> {
  const ref: GuestRef = node.kind === 'netns' ? { kind: 'netns', name: node.runtime } : { kind: 'container', engine: 'docker', name: node.runtime }
  // A container on the host's network (network-mode host) is graded too: its netns is the host's.
  return resolveGuest(ref, { allowHost: true })
}

interface NetView {
  links: LinkInfo[]
  addrs: AddrInfo[]
  routes: RouteInfo[]
}

async function readNet(netns: Netns | undefined): Promise<NetView> {
  const h = netns === undefined || netns.isHost ? openHostHandle() : openHandleIn(netns.fd, netns.label)
  try {
    const [links, addrs, routes] = await Promise.all([h.getLinks(), h.getAddrs(), h.getRoutes()])
    return { links, addrs, routes }
  } finally {
    h.close()
  }
}

/** The addresses a probe may aim at: global ones (no loopback, no IPv6 link-local). */
function probeable(addrs: AddrInfo[], index?: number): string[] {
  return addrs
    .filter((a) => (index === undefined || a.index === index) && !a.address.startsWith('127.') && a.address !== '::1' && !a.address.toLowerCase().startsWith('fe80:'))
    .map((a) => a.address)
}

class NodeMissing extends Error {}

async function withNode<T>(nodes: Map<string, LabNode>, name: string, fn: (netns: Netns | undefined) => Promise<T>): Promise<T> {
  if (name === 'host') return fn(undefined)
  const node = nodes.get(name)!
  let netns: Netns
  try {
    netns = await openNode(node)
  } catch (err) {
    if (err instanceof PlumbError && err.code === 'NOT_FOUND') throw new NodeMissing(`node ${name} is not there: ${err.message}`)
    throw err
  }
  try {
    return await fn(netns)
  } finally {
    netns.close()
  }
}

async function targetAddresses(lab: Lab, nodes: Map<string, LabNode>, t: ProbeTarget): Promise<string[]> {
  if (t.kind === 'address') return [t.address]
  if (t.kind === 'host') {
    // The host's own addresses on the lab's links: its bridges and the host ends of host links.
    const names = new Set([...lab.nodes.filter((n) => n.kind === 'bridge').map((n) => n.runtime), ...lab.links.flatMap((l) => (l.kind === 'host' ? [l.b.ifname] : []))])
    const net = await readNet(undefined)
    const idx = net.links.filter((l) => names.has(l.name)).map((l) => l.index)
    const addrs = idx.flatMap((i) => probeable(net.addrs, i))
    if (addrs.length === 0) throw new NodeMissing(`the host has no address on the lab's bridges or host links (${[...names].join(', ') || 'none'})`)
    return addrs
  }
  return withNode(nodes, t.node, async (netns) => {
    const net = await readNet(netns)
    if (t.ifname !== undefined) {
      const l = net.links.find((x) => x.name === t.ifname)
      if (!l) throw new NodeMissing(`${t.node} has no interface ${t.ifname}`)
      const a = probeable(net.addrs, l.index)
      if (a.length === 0) throw new NodeMissing(`${t.node} ${t.ifname} has no address`)
      return a
    }
    const a = probeable(net.addrs)
    if (a.length === 0) throw new NodeMissing(`${t.node} has no address`)
    return a
  })
}

async function reach(lab: Lab, nodes: Map<string, LabNode>, c: Extract<LabCheck, { kind: 'ping' | 'tcp' }>, seconds: number): Promise<ProbeResult> {
  const addrs = await targetAddresses(lab, nodes, c.target)
  return withNode(nodes, c.from, (netns) => {
    const fd = netns === undefined || netns.isHost ? undefined : netns.fd
    return c.kind === 'ping' ? pingProbe(fd, addrs, seconds) : tcpProbe(fd, addrs, c.port, seconds)
  })
}

function routeMatches(r: RouteInfo, links: LinkInfo[], c: Extract<LabCheck, { kind: 'has-route' }>): boolean {
  if (r.table !== 254 || r.dst !== c.dst) return false
  if (c.via !== undefined && r.gateway !== c.via) return false
  if (c.dev !== undefined && links.find((l) => l.index === r.oif)?.name !== c.dev) return false
  return true
}

/** Whether the check holds (before `expect` is applied), and what was seen. */
async function evaluate(lab: Lab, nodes: Map<string, LabNode>, c: LabCheck, seconds: number): Promise<ProbeResult> {
  switch (c.kind) {
    case 'ping':
    case 'tcp':
      return reach(lab, nodes, c, seconds)
    case 'has-address':
      return withNode(nodes, c.node, async (netns) => {
        const net = await readNet(netns)
        const link = c.ifname === undefined ? undefined : net.links.find((l) => l.name === c.ifname)
        if (c.ifname !== undefined && !link) return { ok: false, detail: `${c.node} has no interface ${c.ifname}` }
        const [addr, prefix] = c.cidr.split('/')
        const hit = net.addrs.find((a) => a.address === addr && String(a.prefix) === prefix && (link === undefined || a.index === link.index))
        if (hit) return { ok: true, detail: `${c.cidr} on ${net.links.find((l) => l.index === hit.index)?.name ?? '?'}` }
        const there = link ? probeable(net.addrs, link.index) : probeable(net.addrs)
        return { ok: false, detail: `${c.node}${c.ifname ? ` ${c.ifname}` : ''} has ${there.length ? net.addrs.filter((a) => there.includes(a.address)).map((a) => `${a.address}/${a.prefix}`).join(', ') : 'no address'}` }
      })
    case 'has-route':
      return withNode(nodes, c.node, async (netns) => {
        const net = await readNet(netns)
        const hit = net.routes.find((r) => routeMatches(r, net.links, c))
        const show = (r: RouteInfo): string => `${r.dst}${r.gateway ? ` via ${r.gateway}` : ''} dev ${net.links.find((l) => l.index === r.oif)?.name ?? '?'}`
        if (hit) return { ok: true, detail: show(hit) }
        const same = net.routes.filter((r) => r.table === 254 && r.dst === c.dst)
        return { ok: false, detail: same.length ? `${c.node} has ${same.map(show).join('; ')}` : `${c.node} has no route to ${c.dst}` }
      })
    case 'exec': {
      const node = nodes.get(c.node)!
      return withNode(nodes, c.node, async () => {
        const r = await execInNode(node, c.command, Math.max(seconds, 10) * 1000)
        const problems: string[] = []
        if (r.exitCode !== c.exit) problems.push(`exit ${r.exitCode}, not ${c.exit}`)
        if (c.stdout !== undefined && !new RegExp(c.stdout, 'm').test(r.stdout)) problems.push(`stdout ${JSON.stringify(r.stdout.trim().slice(0, 200))} does not match /${c.stdout}/`)
        if (c.stderr !== undefined && !new RegExp(c.stderr, 'm').test(r.stderr)) problems.push(`stderr ${JSON.stringify(r.stderr.trim().slice(0, 200))} does not match /${c.stderr}/`)
        return problems.length ? { ok: false, detail: problems.join('; ') } : { ok: true, detail: `exit ${r.exitCode}${r.stdout.trim() ? `, stdout ${JSON.stringify(r.stdout.trim().slice(0, 80))}` : ''}` }
      })
    }
    case 'same-netns':
      return withNode(nodes, c.node, (a) =>
        withNode(nodes, c.other, async (b) => {
          const idOf = async (n: Netns | undefined): Promise<string> => {
            if (n) return `${n.dev}:${n.ino}`
            const host = await resolveGuest({ kind: 'host' })
            try {
              return `${host.dev}:${host.ino}`
            } finally {
              host.close()
            }
          }
          const [x, y] = await Promise.all([idOf(a), idOf(b)])
          return { ok: x === y, detail: x === y ? `both in netns ${x.split(':')[1]}` : `${c.node} is in netns ${x.split(':')[1]}, ${c.other} in ${y.split(':')[1]}` }
        }),
      )
  }
}

export async function runChecks(lab: Lab, opts: CheckOptions = {}): Promise<CheckReport> {
  const started = performance.now()
  const nodes = new Map(lab.nodes.map((n) => [n.name, n]))
  const outcomes: CheckOutcome[] = new Array(lab.checks.length)
  await pool(
    lab.checks.map((c, i) => [c, i] as const),
    opts.concurrency ?? 16,
    async ([c, i]) => {
      const t0 = performance.now()
      const seconds = c.timeout ?? opts.timeout ?? DEFAULT_TIMEOUT_S
      let r: ProbeResult
      try {
        r = await evaluate(lab, nodes, c, seconds)
      } catch (err) {
        // A node (or a target's address) that is not there fails this check; anything else is a failure of the run.
        if (!(err instanceof NodeMissing)) throw asPlumbError(err)
        r = { ok: false, detail: err.message }
        if (c.expect === 'fail') r = { ok: false, detail: `${err.message} (a must-not check of something absent is not passed)` }
        outcomes[i] = { name: c.name, ok: false, points: c.points, detail: r.detail, at: c.at, kind: c.kind, ms: performance.now() - t0 }
        return
      }
      const ok = c.expect === 'ok' ? r.ok : !r.ok
      const detail = c.expect === 'ok' ? r.detail : r.ok ? `it should not: ${r.detail}` : r.detail
      outcomes[i] = { name: c.name, ok, points: c.points, detail, at: c.at, kind: c.kind, ms: performance.now() - t0 }
    },
  )
  const score = outcomes.filter((o) => o.ok).reduce((s, o) => s + o.points, 0)
  const total = outcomes.reduce((s, o) => s + o.points, 0)
  return { lab: lab.name, file: lab.file, checks: outcomes, score, total, ms: performance.now() - started }
}
