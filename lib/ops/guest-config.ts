// The guest side every link op ends with: addresses, gratuitous ARP, up, gateway and routes,
// planned from a read of the guest first, then applied as undoable steps.

import { conflict } from '../errors.js'
import { isGone } from '../kernel/index.js'
import type { AddrInfo, Family, LinkInfo, NetHandle, RouteInfo } from '../kernel/types.js'
import type { IpSpec, RouteSpec } from '../parse/index.js'
import type { Netns } from '../guest/index.js'
import { inGuest, ipIn, whereOf } from './context.js'
import type { BatchStep, Tx } from './tx.js'
import type { OpResult } from './result.js'
import { enableIpv6Step } from './ipv6.js'

export type StaticIp = Extract<IpSpec, { kind: 'static' }>

/**
 * A default route asked for: the @GATEWAY of an IP spec, or `--route default@GW` (a
 * `--route 0.0.0.0/0` has no gateway: a device route). One per family (validateLinkInput).
 */
export interface DefaultWant {
  family: Family
  gateway?: string
  /** outside the address's subnet: an on-link host route to it first */
  onLink: boolean
}

export interface GatewayPlan extends DefaultWant {
  /** the default route this one replaces (--replace-gateway), restored by detach */
  replaces?: { gateway?: string; dev?: string }
  /** already in place: nothing to do */
  present: boolean
}

export const isStatic = (ip: IpSpec): ip is StaticIp => ip.kind === 'static'

function defaultRoutes(routes: RouteInfo[], family: Family): RouteInfo[] {
  return routes.filter((r) => r.family === family && r.dst === 'default' && r.table === 254)
}

const describeDefault = (r: { gateway?: string }, dev?: string): string => `${r.gateway ? ` via ${r.gateway}` : ''}${dev ? ` dev ${dev}` : ''}`

/**
 * Read phase: what each wanted default route means in this guest. An existing default route
 * to another gateway is a conflict unless --replace-gateway; then it is recorded so detach
 * restores it. (Two gateways of one family were refused as bad input before.)
 */
export async function planGateways(
  guestNs: NetHandle,
  wants: DefaultWant[],
  ifname: string,
  replaceGateway: boolean,
  /** the guest's links, when the caller has just read them (one dump less) */
  knownLinks?: LinkInfo[],
  /** the guest's routes, when the caller has already asked for them */
  knownRoutes?: Promise<RouteInfo[]>,
): Promise<GatewayPlan[]> {
  if (wants.length === 0) return []
  const [routes, links] = await Promise.all([knownRoutes ?? guestNs.getRoutes(), knownLinks ?? guestNs.getLinks()])
  const nameOf = (index?: number): string | undefined => links.find((l) => l.index === index)?.name
  const plans: GatewayPlan[] = []
  for (const want of wants) {
    const current = defaultRoutes(routes, want.family)[0]
    const plan: GatewayPlan = { ...want, present: false }
    if (current) {
      const dev = nameOf(current.oif)
      if (current.gateway === want.gateway && dev === ifname) {
        plan.present = true
      } else if (!replaceGateway) {
        throw conflict(
          `the guest already has an IPv${want.family} default route${describeDefault(current, dev)}`,
          `pass --replace-gateway to replace it (detach restores it), or drop ${want.gateway ? `@${want.gateway}` : 'the default route'}`,
        )
      } else {
        plan.replaces = { ...(current.gateway ? { gateway: current.gateway } : {}), ...(dev ? { dev } : {}) }
      }
    }
    plans.push(plan)
  }
  return plans
}

/** The `gw` field of an owner mark: the default routes a plumb interface replaced. */
export function formatReplacedGateways(plans: GatewayPlan[]): string | undefined {
  const parts = plans
    .filter((p) => p.replaces)
    .map((p) => [p.family, p.replaces!.gateway ?? '', p.replaces!.dev ?? ''].join(','))
  return parts.length ? parts.join(';') : undefined
}

export function parseReplacedGateways(text: string | undefined): Array<{ family: Family; gateway?: string; dev?: string }> {
  if (!text) return []
  return text.split(';').flatMap((part) => {
    const [fam, gateway, dev] = part.split(',')
    if (fam !== '4' && fam !== '6') return []
    return [{ family: Number(fam) as Family, ...(gateway ? { gateway } : {}), ...(dev ? { dev } : {}) }]
  })
}

export interface GuestConfig {
  netns: Netns
  guestNs: NetHandle
  ifname: string
  /** the interface's index in the guest; undefined only in dry-run */
  index: number | undefined
  ips: StaticIp[]
  routes: RouteSpec[]
  gateways: GatewayPlan[]
  /** bring the interface up (and arm arp_notify first, so the kernel announces the address) */
  up: boolean
  /** set with the up step, in the same message: the owner mark of an interface just created */
  alias?: string
  /**
   * IPv6 is on already (set-ip saw to it, through the guest record: see ipv6.ts). Otherwise the
   * interface is one this op made or moved in, and IPv6 is turned on, unread, before an IPv6
   * address goes on it (Docker starts containers with it off); the link's deletion undoes it.
   */
  ipv6On?: boolean
}

const hostRoute = (family: Family, addr: string): string => `${addr}/${family === 4 ? 32 : 128}`

/**
 * Apply phase: addresses, arp_notify, up, gateways, routes; each step undoable. They go to the
 * kernel as one batch (see Tx.batch): requests in order with no round trip between them, the
 * round trips being most of an attach's time after the veth itself. `alongside` steps (say, the
 * host end's owner mark) join the batch ahead of the guest's.
 */
export async function applyGuestConfig(tx: Tx, c: GuestConfig, result: OpResult, ifIndexInResult: number, alongside: Array<BatchStep<unknown>> = []): Promise<void> {
  await tx.batch([...alongside, ...guestConfigSteps(tx, c, result, ifIndexInResult)])
}

/**
 * The steps of applyGuestConfig, for a caller that batches two interfaces' at once (p2p-link's
 * two ends); `tx` only hears what they are about to replace (its journal), it runs nothing.
 */
export function guestConfigSteps(tx: Tx, c: GuestConfig, result: OpResult, ifIndexInResult: number): Array<BatchStep<unknown>> {
  const { guestNs, ifname } = c
  const idx = (): number => c.index!
  const ip = (args: string): string => ipIn(c.netns, args)
  const steps: Array<BatchStep<unknown>> = []

  if (!c.ipv6On && c.ips.some((a) => a.family === 6)) steps.push(enableIpv6Step(c.netns, guestNs, ifname))
  for (const addr of c.ips) {
    // IPv6 statics skip DAD (as `ip addr add ... nodad`): usable at once, like an IPv4 address.
    steps.push({
      line: ip(`addr add ${addr.cidr} dev ${ifname}${addr.family === 6 ? ' nodad' : ''}`),
      run: () => guestNs.addAddr(idx(), addr.cidr, { nodad: addr.family === 6 }),
      undo: { line: ip(`addr del ${addr.cidr} dev ${ifname}`), run: () => ignoreGone(guestNs.delAddr(idx(), addr.cidr)) },
    })
    result.ips.push({ address: addr.cidr, ...(addr.gateway ? { gateway: addr.gateway } : {}), interface: ifIndexInResult })
  }
  if (c.up) {
    // arp_notify=1: the kernel sends the gratuitous ARP itself when the link comes up, instead
    // of pipework's blocking `arping -c 1` (a full second per attach). No undo: `up` is only
    // asked for an interface this transaction created or moved in, whose rollback deletes it
    // or moves it out (a netns move re-creates its IPv4 settings with the new netns's defaults).
    if (c.ips.some((a) => a.family === 4)) {
      steps.push({ line: inGuest(c.netns, `sysctl -qw net.ipv4.conf.${ifname}.arp_notify=1`), run: () => guestNs.setLink(idx(), { arpNotify: true }) })
    }
    const alias = c.alias
    steps.push({
      line: ip(`link set ${ifname}${alias ? ` alias '${alias}'` : ''} up`),
      run: () => guestNs.setLink(idx(), { up: true, ...(alias ? { alias } : {}) }),
      undo: { line: ip(`link set ${ifname} down`), run: () => ignoreGone(guestNs.setLink(idx(), { up: false })) },
    })
  }
  for (const gw of c.gateways) {
    if (gw.present) continue
    if (gw.onLink && gw.gateway) {
      // A gateway outside the address's subnet is reachable through an on-link host route, as pipework did.
      const dst = hostRoute(gw.family, gw.gateway)
      steps.push({
        line: ip(`route replace ${dst} dev ${ifname} scope link`),
        run: () => guestNs.addRoute({ family: gw.family, dst, oif: idx(), scope: 'link' }, { replace: true }),
        undo: { line: ip(`route del ${dst} dev ${ifname}`), run: () => ignoreGone(guestNs.delRoute({ family: gw.family, dst, oif: idx() })) },
      })
    }
    const via = gw.gateway ? ` via ${gw.gateway}` : ''
    const route = { family: gw.family, dst: 'default', ...(gw.gateway ? { gateway: gw.gateway } : {}) }
    if (gw.replaces) {
      const old = gw.replaces
      tx.intend({ t: 'gw', where: whereOf(c.netns), family: gw.family, ...old })
      steps.push({
        line: ip(`route replace default${via} dev ${ifname}`),
        run: () => guestNs.addRoute({ ...route, oif: idx() }, { replace: true }),
        undo: {
          line: ip(`route replace default${describeDefault(old, old.dev)}`),
          run: () => restoreDefaultRoute(guestNs, gw.family, old),
        },
      })
    } else {
      steps.push({
        line: ip(`route add default${via} dev ${ifname}`),
        run: () => guestNs.addRoute({ ...route, oif: idx() }),
        undo: { line: ip(`route del default${via} dev ${ifname}`), run: () => ignoreGone(guestNs.delRoute({ ...route, oif: idx() })) },
      })
    }
    result.routes.push({ dst: gw.family === 4 ? '0.0.0.0/0' : '::/0', ...(gw.gateway ? { gw: gw.gateway } : {}) })
  }
  for (const r of c.routes) {
    const line = `${r.dst}${r.gateway ? ` via ${r.gateway}` : ''} dev ${ifname}`
    const spec = { family: r.family, dst: r.dst, ...(r.gateway ? { gateway: r.gateway } : {}) }
    steps.push({
      line: ip(`route add ${line}`),
      run: () => guestNs.addRoute({ ...spec, oif: idx() }),
      undo: { line: ip(`route del ${line}`), run: () => ignoreGone(guestNs.delRoute({ ...spec, oif: idx() })) },
    })
    result.routes.push({ dst: r.dst === 'default' ? (r.family === 4 ? '0.0.0.0/0' : '::/0') : r.dst, ...(r.gateway ? { gw: r.gateway } : {}) })
  }
  return steps
}

/** Put back a default route plumb replaced (detach, or the rollback of a replace). */
export async function restoreDefaultRoute(guestNs: NetHandle, family: Family, old: { gateway?: string; dev?: string }): Promise<boolean> {
  const link = old.dev ? await guestNs.getLink(old.dev) : undefined
  if (old.dev && !link) return false
  await guestNs.addRoute(
    { family, dst: 'default', ...(old.gateway ? { gateway: old.gateway } : {}), ...(link ? { oif: link.index } : {}) },
    { replace: true },
  )
  return true
}

/** Undo steps tolerate what is already gone (the interface was deleted first, say). */
export async function ignoreGone(p: Promise<unknown>): Promise<void> {
  try {
    await p
  } catch (err) {
    if (isGone(err)) return
    throw err
  }
}

/** The address `w` as asked (family, address and prefix) among `have`. */
export const holdsAddr = (have: AddrInfo[], w: StaticIp): boolean => have.some((h) => h.family === w.family && h.address === w.address && h.prefix === w.prefix)

/**
 * The addresses of one interface, from a dump of the whole guest: a query for one link fails
 * (ENODEV) when a concurrent detach deleted it after the caller listed it, where this reads
 * "no addresses" and the caller's own checks go on. One round trip either way.
 */
export async function addrsOf(guestNs: NetHandle, index: number): Promise<AddrInfo[]> {
  return (await guestNs.getAddrs()).filter((a) => a.index === index)
}

/** Idempotency: which of the wanted addresses are missing on the interface. */
export async function missingAddrs(guestNs: NetHandle, index: number, ips: StaticIp[]): Promise<StaticIp[]> {
  if (ips.length === 0) return []
  const have = await addrsOf(guestNs, index)
  return ips.filter((w) => !holdsAddr(have, w))
}

/** What a re-run asks of an interface that is already there (what it leaves out is not compared). */
export interface WantedConfig {
  ips: StaticIp[]
  /** undefined: not asked, so not compared */
  mtu?: number | undefined
  mac?: string | undefined
  defaults?: DefaultWant[]
  routes?: RouteSpec[]
}

/**
 * Idempotency, one rule for every op: how the interface in place differs from what is asked,
 * as phrases ("lacks 198.18.0.10/24", "has mtu 1400, not 1500"); none means "already so". An
 * address, MTU, MAC, default route or route asked for must be there as asked; what was added
 * since (another address, say) is no difference. The caller says exit 4 with these.
 */
export async function configDiff(guestNs: NetHandle, link: LinkInfo, want: WantedConfig, knownLinks?: LinkInfo[]): Promise<string[]> {
  const needRoutes = (want.defaults?.length ?? 0) + (want.routes?.length ?? 0) > 0
  const [addrs, routes, links] = await Promise.all([
    want.ips.length ? addrsOf(guestNs, link.index) : [],
    needRoutes ? guestNs.getRoutes() : [],
    // names for the interfaces other routes use, in the phrases
    needRoutes && !knownLinks ? guestNs.getLinks() : (knownLinks ?? []),
  ])
  const differs: string[] = []
  for (const w of want.ips) {
    if (holdsAddr(addrs, w)) continue
    const other = addrs.find((h) => h.family === w.family && h.address === w.address)
    differs.push(other ? `has ${other.address}/${other.prefix}, not /${w.prefix}` : `lacks ${w.cidr}`)
  }
  if (want.mtu !== undefined && link.mtu !== want.mtu) differs.push(`has mtu ${link.mtu}, not ${want.mtu}`)
  if (want.mac !== undefined && link.mac !== want.mac) differs.push(`has mac ${link.mac ?? 'none'}, not ${want.mac}`)
  const nameOf = (index?: number): string | undefined => links.find((l) => l.index === index)?.name
  for (const d of want.defaults ?? []) {
    const current = defaultRoutes(routes, d.family)[0]
    if (current && current.gateway === d.gateway && current.oif === link.index) continue
    differs.push(current ? `the IPv${d.family} default route is${describeDefault(current, nameOf(current.oif))}, not${describeDefault(d, link.name)}` : `has no IPv${d.family} default route${describeDefault(d)}`)
  }
  for (const r of want.routes ?? []) {
    const there = routes.filter((x) => x.family === r.family && x.dst === r.dst && x.table === 254)
    if (there.some((x) => x.oif === link.index && x.gateway === r.gateway)) continue
    const other = there[0]
    differs.push(other ? `the route to ${r.dst} is${describeDefault(other, nameOf(other.oif) ?? `#${other.oif}`)}, not${describeDefault(r, link.name)}` : `has no route to ${r.dst}${describeDefault(r)}`)
  }
  return differs
}

/** The guest end's MAC into the result (the kernel chose it unless --mac was given): one read. */
export async function recordGuestMac(guestNs: NetHandle, peerIndex: number | undefined, result: OpResult, at: number): Promise<void> {
  if (peerIndex === undefined) return // dry-run: nothing was created
  putGuestMac(await guestNs.getLinkByIndex(peerIndex), result, at)
}

/** The MAC of a guest end already read into the result's interface `at`. */
export function putGuestMac(guestEnd: LinkInfo | undefined, result: OpResult, at: number): void {
  const entry = result.interfaces[at]
  if (guestEnd?.mac && entry) entry.mac = guestEnd.mac
}
