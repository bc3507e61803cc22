// p2p-link: a veth pair whose two ends are born in two guests (or a guest and the host) in
// one RTM_NEWLINK, with optional /31 or /32-plus-peer-route addressing.

import { conflict, usageError } from '../errors.js'
import type { Family, LinkInfo, NetHandle } from '../kernel/types.js'
import { deriveHostIfname, formatMark, parseIpSpec, parseMac, parseMark, parseMtu, subnetContains, validateIfname } from '../parse/index.js'
import type { GuestRef, OwnerMark, RouteSpec } from '../parse/index.js'
import { resolveGuest } from '../guest/index.js'
import type { Netns } from '../guest/index.js'
import { firstFreeEth } from './ifnames.js'
import { VETH_QUEUES, handleFor, ipIn, ipNetnsArg, journalFor, toGuestRef, whereOf, withGuest, withLab } from './context.js'
import type { CommonOptions } from './context.js'
import { configDiff, guestConfigSteps, ignoreGone, recordGuestMac } from './guest-config.js'
import type { GuestConfig, StaticIp } from './guest-config.js'
import { emptyResult } from './result.js'
import type { OpResult } from './result.js'
import { runTx } from './tx.js'
import { commonArgs, entry, persist, recordedContainer } from './persist.js'
import { containerRef, putLink } from '../watch/record.js'

export interface P2pLinkOptions extends CommonOptions {
  a: string | GuestRef
  /** another guest, or 'host' */
  b: string | GuestRef
  ipA?: string
  ipB?: string
  ifnameA?: string
  ifnameB?: string
  /** `aa:bb:cc:dd:ee:ff` or `seed:STRING` for each end */
  macA?: string
  macB?: string
  mtu?: number | string
}

function parseP2pIp(s: string | undefined, side: string): StaticIp | undefined {
  if (s === undefined) return undefined
  const ip = parseIpSpec(s)
  if (ip.kind !== 'static') throw usageError(`--ip-${side} takes a static CIDR, not dhcp`)
  if (ip.gateway) throw usageError(`--ip-${side} takes no @gateway: the peer is the other end`, 'add routes with plumb set-ip ... --route')
  return ip
}

export function validateP2p(o: P2pLinkOptions) {
  const a = toGuestRef(o.a)
  const b = toGuestRef(o.b, { allowHostWord: true })
  if (a.kind === 'host') throw usageError('the first side of p2p-link must be a guest; "host" may only be the second')
  const ipA = parseP2pIp(o.ipA, 'a')
  const ipB = parseP2pIp(o.ipB, 'b')
  if (ipA && ipB && ipA.family !== ipB.family) throw usageError(`--ip-a is IPv${ipA.family} but --ip-b is IPv${ipB.family}`)
  if (ipA && ipB && ipA.address === ipB.address) throw usageError(`--ip-a and --ip-b are the same address ${ipA.address}`)
  return {
    a,
    b,
    ipA,
    ipB,
    ...(o.ifnameA !== undefined ? { ifnameA: validateIfname(o.ifnameA, '--ifname-a') } : {}),
    ...(o.ifnameB !== undefined ? { ifnameB: validateIfname(o.ifnameB, '--ifname-b') } : {}),
    ...(o.mtu !== undefined ? { mtu: parseMtu(o.mtu) } : {}),
    ...(o.macA !== undefined ? { macA: parseMac(o.macA) } : {}),
    ...(o.macB !== undefined ? { macB: parseMac(o.macB) } : {}),
  }
}

const hostPrefix = (f: Family): number => (f === 4 ? 32 : 128)

/** How a record names a side of the link: a container by its id (a restart keeps it), else as the op was given it. */
const p2pRef = (n: Netns): string => {
  const c = recordedContainer(n)
  return c ? containerRef(c.engine, c.id) : n.isHost ? 'host' : n.label
}

/** Does `ip`'s own subnet contain `peer`? If not (a /32), a host route to the peer is needed. */
export function needsPeerRoute(ip: StaticIp, peer: StaticIp): boolean {
  return ip.prefix === hostPrefix(ip.family) || !subnetContains(ip, peer.address)
}

export async function p2pLink(opts: P2pLinkOptions): Promise<OpResult> {
  const v = validateP2p(opts)
  return withGuest(v.a, opts, async (ctxA) => {
    const bNetns = await resolveGuest(v.b, { allowHost: v.b.kind === 'host' || (opts.allowHost ?? false) })
    const b = handleFor(bNetns, opts, ctxA.hostNs)
    const bNs: NetHandle = b.h
    try {
      if (bNetns.ino === ctxA.netns.ino && bNetns.dev === ctxA.netns.dev) {
        throw usageError(`both ends of the p2p link are in the same network namespace (${ctxA.netns.label} and ${bNetns.label})`, 'give two different guests, or "host" as the second')
      }
      return await linkBoth(ctxA.netns, ctxA.guestNs, bNetns, bNs, v, opts)
    } finally {
      b.release()
      bNetns.close()
    }
  })
}

async function linkBoth(aNetns: Netns, aNs: NetHandle, bNetns: Netns, bNs: NetHandle, v: ReturnType<typeof validateP2p>, opts: P2pLinkOptions): Promise<OpResult> {
  const result = emptyResult('p2p-link', aNetns.label, opts.dryRun ?? false)
  result.peerGuest = bNetns.label
  const [aLinks, bLinks] = await Promise.all([aNs.getLinks(), bNs.getLinks()])
  const routeA = peerRoutes(v.ipA, v.ipB)
  const routeB = peerRoutes(v.ipB, v.ipA)

  // Idempotency: an existing p2p end in A whose peer is in B (with the name asked for, if one
  // was). It is this link only if both ends are configured as asked; otherwise exit 4.
  const candidates = aLinks.filter((l) => {
    const m = parseMark(l.alias)
    return m?.op === 'p2p-link' && m.role === 'guest' && m.extra?.peerGuest === bNetns.label && (v.ifnameA === undefined || l.name === v.ifnameA)
  })
  let firstDiff: { link: LinkInfo; differs: string[] } | undefined
  for (const existing of candidates) {
    const peerName = parseMark(existing.alias)!.peer
    const peerEnd = bLinks.find((l) => l.name === peerName)
    const differs: string[] = []
    if (v.ifnameB !== undefined && peerName !== v.ifnameB) differs.push(`its other end is ${bNetns.label} ${peerName ?? '?'}, not ${v.ifnameB}`)
    const [diffA, diffB] = await Promise.all([
      configDiff(aNs, existing, { ips: v.ipA ? [v.ipA] : [], mtu: v.mtu, mac: v.macA, routes: routeA }),
      peerEnd ? configDiff(bNs, peerEnd, { ips: v.ipB ? [v.ipB] : [], mtu: v.mtu, mac: v.macB, routes: routeB }) : [`its other end ${peerName ?? '?'} is gone from ${bNetns.label}`],
    ])
    differs.push(...diffA.map((d) => `${existing.name} ${d}`), ...diffB.map((d) => (peerEnd ? `${bNetns.label} ${peerEnd.name} ${d}` : d)))
    if (differs.length === 0) {
      result.interfaces.push(
        { name: existing.name, mtu: existing.mtu, netns: aNetns.label, kind: 'veth', ...(peerName ? { peer: peerName } : {}) },
        ...(peerEnd ? [{ name: peerEnd.name, mtu: peerEnd.mtu, netns: bNetns.label, kind: 'veth', peer: existing.name }] : []),
      )
      result.mark = existing.alias
      result.messages.push(`already linked: ${aNetns.label} ${existing.name} <-> ${bNetns.label} ${peerName ?? '?'}; nothing changed`)
      return result
    }
    firstDiff ??= { link: existing, differs }
  }
  if (firstDiff) {
    const { link, differs } = firstDiff
    throw conflict(
      `${aNetns.label} ${link.name} is already a p2p link to ${bNetns.label} with a different configuration: ${differs.join('; ')}`,
      `detach it first (plumb detach ${aNetns.label} ${link.name}), or give --ifname-a for a second link`,
    )
  }
  const ifA = v.ifnameA ?? firstFreeEth(aLinks)
  if (aLinks.some((l) => l.name === ifA)) throw conflict(`"${ifA}" already exists in ${aNetns.label}`, 'choose another --ifname-a')
  const ifB = v.ifnameB ?? (bNetns.isHost ? deriveHostIfname(aNetns.key, `p2p-${ifA}`, (n) => bLinks.some((l) => l.name === n)) : firstFreeEth(bLinks))
  if (bLinks.some((l) => l.name === ifB)) throw conflict(`"${ifB}" already exists in ${bNetns.label}`, 'choose another --ifname-b')
  const mtu = v.mtu ?? 1500

  const markA: OwnerMark = withLab({ v: 1, role: 'guest', op: 'p2p-link', guest: aNetns.label, ifname: ifA, peer: ifB, extra: { peerGuest: bNetns.label } }, opts)
  const markB: OwnerMark = withLab(
    bNetns.isHost
      ? { v: 1, role: 'host', op: 'p2p-link', guest: aNetns.label, ifname: ifA, peer: ifA }
      : { v: 1, role: 'guest', op: 'p2p-link', guest: bNetns.label, ifname: ifB, peer: ifA, extra: { peerGuest: aNetns.label } },
    opts,
  )

  return runTx({ ...opts, journal: journalFor('p2p-link', aNetns, bNetns) }, async (tx) => {
    tx.intend({ t: 'link', where: whereOf(aNetns), name: ifA, kind: 'veth' })
    tx.intend({ t: 'link', where: whereOf(bNetns), name: ifB, kind: 'veth', ...(bNetns.isHost ? { peer: whereOf(aNetns) } : {}) })
    const nsArg = (n: Netns): string => (n.isHost ? '' : ` netns ${ipNetnsArg(n)}`)
    const created = await tx.step(
      `ip link add ${ifA}${nsArg(aNetns)} mtu ${mtu} ${VETH_QUEUES}${v.macA ? ` address ${v.macA}` : ''} type veth peer name ${ifB}${nsArg(bNetns)} mtu ${mtu} ${VETH_QUEUES}${v.macB ? ` address ${v.macB}` : ''}`,
      // Both ends born where they belong, in one message. Between two guests it is sent from
      // inside A: end A is born there, the peer's nsFd puts end B in B, and the echo gives both
      // indexes. With the host, from the host's handle (plumb's own netns: what "host" means
      // here, also under `ip netns exec`), the top-level nsFd sending end A to A.
      () => {
        const macA = v.macA ? { mac: v.macA } : {}
        const macB = v.macB ? { mac: v.macB } : {}
        return bNetns.isHost
          ? bNs.createVeth({ name: ifA, nsFd: aNetns.fd, mtu, ...macA, peer: { name: ifB, mtu, ...macB } })
          : aNs.createVeth({ name: ifA, mtu, ...macA, peer: { name: ifB, mtu, ...macB, nsFd: bNetns.fd } })
      },
      { line: ipIn(aNetns, `link del ${ifA}`), run: (r) => ignoreGone(aNs.delLink(r.index)) },
    )
    result.interfaces.push({ name: ifA, mtu, netns: aNetns.label, kind: 'veth', peer: ifB }, { name: ifB, mtu, netns: bNetns.label, kind: 'veth', peer: ifA })
    // Both ends' addresses, marks, up and peer routes in one batch: the marks go with `up`, as
    // the kernel ignores IFLA_IFALIAS on create.
    const end = (netns: Netns, guestNs: NetHandle, ifname: string, index: number | undefined, mark: OwnerMark, ip: StaticIp | undefined, routes: RouteSpec[]): GuestConfig => ({
      netns, guestNs, ifname, index, alias: formatMark(mark), ips: ip ? [ip] : [], routes, gateways: [], up: true,
    })
    await tx.batch([
      ...guestConfigSteps(tx, end(aNetns, aNs, ifA, created?.index, markA, v.ipA, routeA), result, 0),
      ...guestConfigSteps(tx, end(bNetns, bNs, ifB, created?.peerIndex, markB, v.ipB, routeB), result, 1),
    ])
    // The MACs the ends got (the kernel's, unless given): recorded, so a replay makes the same ones.
    await Promise.all([recordGuestMac(aNs, created?.index, result, 0), recordGuestMac(bNs, created?.peerIndex, result, 1)])
    // The same entry on both sides: whichever container starts second makes the link again.
    const link = entry('p2p-link', {
      a: p2pRef(aNetns),
      b: p2pRef(bNetns),
      ifnameA: ifA,
      ifnameB: ifB,
      ipA: v.ipA?.cidr,
      ipB: v.ipB?.cidr,
      macA: result.interfaces[0]?.mac ?? v.macA,
      macB: result.interfaces[1]?.mac ?? v.macB,
      mtu: v.mtu,
      ...commonArgs(opts),
    })
    await persist(tx, opts, result, [aNetns, bNetns].map((netns) => ({ netns, edit: (r) => putLink(r, link) })))
    result.changed = true
    result.mark = formatMark(markA)
    result.plan = tx.lines
    result.messages.push(`linked ${aNetns.label} ${ifA} <-> ${bNetns.label} ${ifB}${v.ipA || v.ipB ? ` (${[v.ipA?.cidr, v.ipB?.cidr].filter(Boolean).join(' <-> ')})` : ''}`)
    return result
  })
}

/** /32 (or /128) addressing: the peer is reachable only through a host route on the link. */
function peerRoutes(ip: StaticIp | undefined, peer: StaticIp | undefined): RouteSpec[] {
  if (!ip || !peer || !needsPeerRoute(ip, peer)) return []
  return [{ family: peer.family, dst: `${peer.address}/${hostPrefix(peer.family)}` }]
}
