// p2p-link: a veth pair whose two ends are born in two guests (or a guest and the host) in
// one RTM_NEWLINK, with optional /31 or /32-plus-peer-route addressing.

import { PlumbError, conflict, usageError } from '../errors.js'
import type { Family, NetHandle } from '../kernel/types.js'
import { deriveHostIfname, formatMark, parseIpSpec, parseMac, parseMark, parseMtu, validateIfname } from '../parse/index.js'
import type { GuestRef, OwnerMark } from '../parse/index.js'
import { resolveGuest } from '../guest/index.js'
import type { Netns } from '../guest/index.js'
import { firstFreeEth } from './ifnames.js'
import { handleFor, ipIn, ipNetnsArg, journalFor, toGuestRef, whereOf, withGuest, withLab } from './context.js'
import type { CommonOptions } from './context.js'
import type { StaticIp } from './guest-config.js'
import { enableIpv6Step } from './ipv6.js'
import { emptyResult } from './result.js'
import type { OpResult } from './result.js'
import { runTx } from './tx.js'
import type { Tx } from './tx.js'

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

/** Does `ip`'s own subnet contain `peer`? If not (a /32), a host route to the peer is needed. */
export function needsPeerRoute(ip: StaticIp, peer: StaticIp): boolean {
  if (ip.prefix === hostPrefix(ip.family)) return true
  const probe = parseIpSpec(`${peer.address}/${ip.prefix}`)
  return probe.kind === 'static' && probe.network !== ip.network
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

  // Idempotency: an existing p2p end in A whose peer is in B with the same names.
  const existing = aLinks.find((l) => {
    const m = parseMark(l.alias)
    return m?.op === 'p2p-link' && m.role === 'guest' && m.extra?.peerGuest === bNetns.label && (v.ifnameA === undefined || l.name === v.ifnameA)
  })
  if (existing) {
    const m = parseMark(existing.alias)!
    result.interfaces.push({ name: existing.name, mtu: existing.mtu, netns: aNetns.label, kind: 'veth', ...(m.peer ? { peer: m.peer } : {}) })
    result.messages.push(`already linked: ${aNetns.label} ${existing.name} <-> ${bNetns.label} ${m.peer ?? '?'}; nothing changed`)
    return result
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
    tx.intend({ t: 'link', where: whereOf(bNetns), name: ifB, kind: 'veth' })
    const nsArg = (n: Netns): string => (n.isHost ? '' : ` netns ${ipNetnsArg(n)}`)
    await tx.step(
      `ip link add ${ifA}${nsArg(aNetns)} mtu ${mtu}${v.macA ? ` address ${v.macA}` : ''} type veth peer name ${ifB}${nsArg(bNetns)} mtu ${mtu}${v.macB ? ` address ${v.macB}` : ''}`,
      () =>
        // Both ends born where they belong, in one message: the handle is the host's, the top-level
        // nsFd puts end A in guest A, the peer's nsFd puts end B in guest B.
        (bNetns.isHost ? bNs : aNs).createVeth({
          name: ifA,
          nsFd: aNetns.fd,
          mtu,
          alias: formatMark(markA),
          ...(v.macA ? { mac: v.macA } : {}),
          peer: { name: ifB, mtu, alias: formatMark(markB), ...(v.macB ? { mac: v.macB } : {}), ...(bNetns.isHost ? {} : { nsFd: bNetns.fd }) },
        }),
      {
        line: ipIn(aNetns, `link del ${ifA}`),
        run: async () => {
          const l = await aNs.getLink(ifA)
          if (l) await aNs.delLink(l.index)
        },
      },
    )
    result.interfaces.push({ name: ifA, mtu, netns: aNetns.label, kind: 'veth', peer: ifB }, { name: ifB, mtu, netns: bNetns.label, kind: 'veth', peer: ifA })
    await configureEnd(tx, aNetns, aNs, ifA, formatMark(markA), v.ipA, v.ipB, result, 0)
    await configureEnd(tx, bNetns, bNs, ifB, formatMark(markB), v.ipB, v.ipA, result, 1)
    result.changed = true
    result.mark = formatMark(markA)
    result.plan = tx.lines
    result.messages.push(`linked ${aNetns.label} ${ifA} <-> ${bNetns.label} ${ifB}${v.ipA || v.ipB ? ` (${[v.ipA?.cidr, v.ipB?.cidr].filter(Boolean).join(' <-> ')})` : ''}`)
    return result
  })
}

async function configureEnd(tx: Tx, netns: Netns, ns: NetHandle, ifname: string, alias: string, ip: StaticIp | undefined, peer: StaticIp | undefined, result: OpResult, resultIndex: number): Promise<void> {
  const line = (args: string): string => ipIn(netns, args)
  const link = tx.dryRun ? undefined : await ns.getLink(ifname)
  if (!tx.dryRun && !link) throw new PlumbError('FAILED', `the p2p end "${ifname}" did not appear in ${netns.label}`)
  if (link && link.alias !== alias) await ns.setLink(link.index, { alias })
  const idx = (): number => link!.index
  if (ip) {
    // IPv6 on (a guest of Docker's starts with it off); the link's deletion undoes it
    if (ip.family === 6) await tx.batch([enableIpv6Step(netns, ns, ifname)])
    await tx.step(line(`addr add ${ip.cidr} dev ${ifname}${ip.family === 6 ? ' nodad' : ''}`), () => ns.addAddr(idx(), ip.cidr, { nodad: ip.family === 6 }))
    result.ips.push({ address: ip.cidr, interface: resultIndex })
  }
  await tx.step(line(`link set ${ifname} up`), () => ns.setLink(idx(), { up: true }))
  if (ip && peer && needsPeerRoute(ip, peer)) {
    // /32 (or /128) addressing: the peer is reachable only through a host route on the link.
    const dst = `${peer.address}/${hostPrefix(peer.family)}`
    await tx.step(line(`route add ${dst} dev ${ifname} scope link`), () => ns.addRoute({ family: peer.family, dst, oif: idx(), scope: 'link' }))
    result.routes.push({ dst })
  }
}
