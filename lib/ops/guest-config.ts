// The guest side every link op ends with: addresses, gratuitous ARP, up, gateway and routes,
// planned from a read of the guest first, then applied as undoable steps.

import { conflict } from '../errors.js'
import { isGone } from '../kernel/index.js'
import type { Family, LinkInfo, NetHandle, RouteInfo } from '../kernel/types.js'
import type { IpSpec, RouteSpec } from '../parse/index.js'
import type { Netns } from '../guest/index.js'
import { inGuest, ipIn, whereOf } from './context.js'
import type { BatchStep, Tx } from './tx.js'
import type { OpResult } from './result.js'
import { enableIpv6Step } from './ipv6.js'

export type StaticIp = Extract<IpSpec, { kind: 'static' }>

export interface GatewayPlan {
  family: Family
  gateway: string
  onLink: boolean
  /** the default route this one replaces (--replace-gateway), restored by detach */
  replaces?: { gateway?: string; dev?: string }
  /** already in place: nothing to do */
  present: boolean
}

export const isStatic = (ip: IpSpec): ip is StaticIp => ip.kind === 'static'

function defaultRoutes(routes: RouteInfo[], family: Family): RouteInfo[] {
  return routes.filter((r) => r.family === family && r.dst === 'default' && r.table === 254)
}

/**
 * Read phase: what each @GATEWAY means in this guest. An existing default route to another
 * gateway is a conflict unless --replace-gateway; then it is recorded so detach restores it.
 */
export async function planGateways(
  guestNs: NetHandle,
  ips: StaticIp[],
  ifname: string,
  replaceGateway: boolean,
  /** the guest's links, when the caller has just read them (one dump less) */
  knownLinks?: LinkInfo[],
  /** the guest's routes, when the caller has already asked for them */
  knownRoutes?: Promise<RouteInfo[]>,
): Promise<GatewayPlan[]> {
  const wanted = ips.filter((ip) => ip.gateway !== undefined)
  if (wanted.length === 0) return []
  const seen = new Map<Family, StaticIp>()
  for (const ip of wanted) {
    const prev = seen.get(ip.family)
    if (prev && prev.gateway !== ip.gateway) {
      throw conflict(`two IPv${ip.family} gateways given (${prev.gateway} and ${ip.gateway})`, 'a guest has one default route per family: give @GATEWAY once')
    }
    seen.set(ip.family, ip)
  }
  const [routes, links] = await Promise.all([knownRoutes ?? guestNs.getRoutes(), knownLinks ?? guestNs.getLinks()])
  const nameOf = (index?: number): string | undefined => links.find((l) => l.index === index)?.name
  const plans: GatewayPlan[] = []
  for (const ip of seen.values()) {
    const current = defaultRoutes(routes, ip.family)[0]
    const plan: GatewayPlan = { family: ip.family, gateway: ip.gateway!, onLink: ip.gatewayOnLink, present: false }
    if (current) {
      const dev = nameOf(current.oif)
      if (current.gateway === ip.gateway && dev === ifname) {
        plan.present = true
      } else if (!replaceGateway) {
        throw conflict(
          `the guest already has an IPv${ip.family} default route${current.gateway ? ` via ${current.gateway}` : ''}${dev ? ` dev ${dev}` : ''}`,
          `pass --replace-gateway to replace it (detach restores it), or drop @${ip.gateway}`,
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
  const { guestNs, ifname } = c
  const idx = (): number => c.index!
  const ip = (args: string): string => ipIn(c.netns, args)
  const steps: Array<BatchStep<unknown>> = [...alongside]

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
    // of pipework's blocking `arping -c 1` (a full second per attach).
    if (c.ips.some((a) => a.family === 4)) {
      steps.push({ line: inGuest(c.netns, `sysctl -qw net.ipv4.conf.${ifname}.arp_notify=1`), run: () => guestNs.setLink(idx(), { arpNotify: true }) })
    }
    const alias = c.alias
    steps.push({ line: ip(`link set ${ifname}${alias ? ` alias '${alias}'` : ''} up`), run: () => guestNs.setLink(idx(), { up: true, ...(alias ? { alias } : {}) }) })
  }
  for (const gw of c.gateways) {
    if (gw.present) continue
    if (gw.onLink) {
      // A gateway outside the address's subnet is reachable through an on-link host route, as pipework did.
      const dst = hostRoute(gw.family, gw.gateway)
      steps.push({
        line: ip(`route replace ${dst} dev ${ifname} scope link`),
        run: () => guestNs.addRoute({ family: gw.family, dst, oif: idx(), scope: 'link' }, { replace: true }),
        undo: { line: ip(`route del ${dst} dev ${ifname}`), run: () => ignoreGone(guestNs.delRoute({ family: gw.family, dst, oif: idx() })) },
      })
    }
    const route = { family: gw.family, dst: 'default', gateway: gw.gateway, oif: c.index ?? 0 }
    if (gw.replaces) {
      const old = gw.replaces
      tx.intend({ t: 'gw', where: whereOf(c.netns), family: gw.family, ...old })
      steps.push({
        line: ip(`route replace default via ${gw.gateway} dev ${ifname}`),
        run: () => guestNs.addRoute({ ...route, oif: idx() }, { replace: true }),
        undo: {
          line: ip(`route replace default${old.gateway ? ` via ${old.gateway}` : ''}${old.dev ? ` dev ${old.dev}` : ''}`),
          run: () => restoreDefaultRoute(guestNs, gw.family, old),
        },
      })
    } else {
      steps.push({
        line: ip(`route add default via ${gw.gateway} dev ${ifname}`),
        run: () => guestNs.addRoute({ ...route, oif: idx() }),
        undo: { line: ip(`route del default via ${gw.gateway} dev ${ifname}`), run: () => ignoreGone(guestNs.delRoute({ ...route, oif: idx() })) },
      })
    }
    result.routes.push({ dst: gw.family === 4 ? '0.0.0.0/0' : '::/0', gw: gw.gateway })
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
  await tx.batch(steps)
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

/** Idempotency: which of the wanted addresses are missing on the interface. */
export async function missingAddrs(guestNs: NetHandle, index: number, ips: StaticIp[]): Promise<StaticIp[]> {
  const have = await guestNs.getAddrs({ index })
  return ips.filter((w) => !have.some((h) => h.family === w.family && h.address === w.address && h.prefix === w.prefix))
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
