// attach-veth: a veth whose guest end is born inside the guest (one RTM_NEWLINK) and whose
// host end is a port of a Linux bridge (created and marked plumb's when missing).

import { PlumbError, conflict } from '../errors.js'
import type { LinkInfo, NetHandle, RouteInfo } from '../kernel/types.js'
import { deriveHostIfname, formatMark, parseMark, parseVid, validateIfname } from '../parse/index.js'
import type { GuestRef, OwnerMark } from '../parse/index.js'
import { VETH_QUEUES, ipNetnsArg, journalFor, whereOf, withGuest, withLab } from './context.js'
import type { CommonOptions, GuestContext } from './context.js'
import { applyGuestConfig, configDiff, formatReplacedGateways, planGateways, putGuestMac } from './guest-config.js'
import { ensureFirewall, plannedFirewall } from './firewall.js'
import { bridgeFirewall } from '../firewall/index.js'
import type { BridgeFirewall } from '../firewall/index.js'
import { emptyResult } from './result.js'
import type { OpResult } from './result.js'
import { runTx } from './tx.js'
import { asksDhcp, leaseIfAsked, leasesOf, sameLease } from './lease.js'
import type { LeaseState } from '../dhcp/index.js'
import type { DhcpLeaseOptions } from './lease.js'
import { acquireBridgeLock } from './bridge-lock.js'
import type { BridgeLock } from './bridge-lock.js'
import { dropMadeBridge, ensureLinuxBridge } from './bridge.js'
import { mayBeOvsDevice, ovsOwner } from './ovs-owner.js'
import { firstFreeEth, pickHostIfname } from './ifnames.js'
import { validateLinkInput } from './link-input.js'
import { addressHolders, refuseHeld } from './segment.js'
import { commonArgs, ipTexts, linkEdit, persist, routeTexts } from './persist.js'
import type { ValidatedLinkInput } from './link-input.js'

export interface AttachVethOptions extends CommonOptions {
  guest: string | GuestRef
  /** an existing Linux bridge, or a new name (a Linux bridge is created and marked plumb's) */
  bridge: string
  /** `ADDR/PREFIX[@GATEWAY]`, IPv4 or IPv6 */
  ips?: string[]
  /** the guest-side name (default: the first free ethN, N ≥ 1) */
  ifname?: string
  /** the host-side name (default: derived, unique, ≤ 15 bytes) */
  hostIfname?: string
  /** `aa:bb:cc:dd:ee:ff` or `seed:STRING` */
  mac?: string
  /** default: the bridge's MTU */
  mtu?: number | string
  /** an access VLAN on the bridge (OVS bridges; Linux bridges need VLAN filtering) */
  vlan?: number | string
  /** extra routes `DST[@GW]` via this interface */
  routes?: string[]
  /** replace an existing default route for @GATEWAY's family (detach restores it) */
  replaceGateway?: boolean
  /** add an ACCEPT rule for the bridge when Docker's FORWARD DROP would block it (default true);
   *  the port is isolated on a bridge under `plumb isolate` either way */
  firewall?: boolean
  /** how the `dhcp` IP spec runs its client */
  dhcp?: DhcpLeaseOptions
  /** extra owner-mark fields on both ends (the CNI plugin's attachment id: see lib/cni) */
  tags?: Record<string, string>
}

export interface ValidatedAttachVeth extends ValidatedLinkInput {
  bridge: string
  hostIfname?: string
  vlan?: number
}

export function validateAttachVeth(o: AttachVethOptions): ValidatedAttachVeth {
  const base = validateLinkInput(o)
  const out: ValidatedAttachVeth = { ...base, bridge: validateIfname(o.bridge, 'bridge name') }
  if (o.hostIfname !== undefined) out.hostIfname = validateIfname(o.hostIfname, 'host interface name (-l)')
  if (o.vlan !== undefined) out.vlan = parseVid(o.vlan)
  return out
}

const sameSet = (a: string[], b: string[]): boolean => a.length === b.length && a.every((x) => b.includes(x))

export async function attachVeth(opts: AttachVethOptions): Promise<OpResult> {
  const v = validateAttachVeth(opts)
  // The firewall read spawns iptables: it runs while the guest is resolved and the veth made,
  // so that the read the op relies on, made again under the bridge lock, finds it done (an OVS
  // bridge ignores it).
  const firewallPlan = plannedFirewall(v.bridge)
  return withGuest(v.guest, opts, async (ctx) => {
    // Held from the bridge's lookup until its port exists, so gc cannot delete it in between.
    const lock = await acquireBridgeLock('shared', { dryRun: opts.dryRun ?? false })
    try {
      return await attachIn(ctx, v, opts, firewallPlan, lock)
    } finally {
      lock.release()
    }
  })
}

async function attachIn(ctx: GuestContext, v: ValidatedAttachVeth, opts: AttachVethOptions, firewallPlan: Promise<BridgeFirewall>, lock: BridgeLock): Promise<OpResult> {
  const reads = firstReads(ctx, v)
  const bridge = await ctx.hostNs.getLink(v.bridge)
  if (!bridge || bridge.kind !== 'bridge') {
    // Not a Linux bridge: it may be an OVS bridge (its kernel side is an internal/tap port), or
    // a name OVS has a port row for (a Linux bridge made under it would join the switch).
    const owner = !bridge || mayBeOvsDevice(bridge) ? await ovsOwner(v.bridge, bridge) : undefined
    if (owner?.role === 'bridge') {
      const { ovsPortIn, validateOvsPort } = await import('./ovs-port.js')
      lock.release() // Linux bridges only: gc's OVS clean-up does not take it
      const portOpts = { ...opts, bridge: v.bridge, ...(v.vlan !== undefined ? { tag: v.vlan } : {}) }
      return ovsPortIn(ctx, validateOvsPort(portOpts), portOpts)
    }
    if (owner?.role === 'port') {
      throw conflict(
        `"${v.bridge}" is ${owner.port === v.bridge ? 'a port' : `an interface of port "${owner.port}"`} of Open vSwitch bridge "${owner.bridge}", not a bridge${bridge ? '' : ' (OVS has its row; the device is missing)'}`,
        `give the OVS bridge itself (plumb attach-veth ${ctx.netns.label} ${owner.bridge}), or another name for a new Linux bridge`,
      )
    }
    if (bridge) {
      throw conflict(
        `"${v.bridge}" is ${bridge.kind ? `a ${bridge.kind} interface` : 'a network interface'}, not a bridge`,
        'give an existing Linux or OVS bridge, or a new name to create a Linux bridge',
      )
    }
  }
  if (v.vlan !== undefined) {
    throw new PlumbError('UNSUPPORTED', `--vlan on a Linux bridge needs bridge VLAN filtering, which plumb does not drive yet`, {
      hint: `use an OVS bridge (plumb ovs-port ${v.bridge} --tag ${v.vlan}) for an access port`,
    })
  }
  return attachToLinuxBridge(ctx, v, bridge, opts, firewallPlan, reads, lock)
}

interface FirstReads {
  links: Promise<LinkInfo[]>
  routes?: Promise<RouteInfo[]>
  hostName?: { ifname: string; name: string; lookup: Promise<LinkInfo | undefined> }
}

/**
 * Every read the plan needs, sent at once: each costs a round trip through the event loop, a
 * good part of an attach. The guest's links and (with a gateway) routes, and the derived host
 * end's name for the likely guest interface: which ethN is free is known only from the guest's
 * links, and it is eth1 in a fresh --net=none guest (a wrong guess costs one more read).
 */
function firstReads(ctx: GuestContext, v: ValidatedAttachVeth): FirstReads {
  const quiet = <T>(p: Promise<T>): Promise<T> => {
    p.catch(() => undefined) // awaited later, unless the op stops first (OVS, a bad bridge)
    return p
  }
  const guess = v.ifname ?? 'eth1'
  const hostName = v.hostIfname === undefined ? deriveHostIfname(ctx.netns.key, guess) : undefined
  return {
    links: quiet(ctx.guestNs.getLinks()),
    ...(v.defaults.length ? { routes: quiet(ctx.guestNs.getRoutes()) } : {}),
    ...(hostName !== undefined ? { hostName: { ifname: guess, name: hostName, lookup: quiet(ctx.hostNs.getLink(hostName)) } } : {}),
  }
}

async function attachToLinuxBridge(
  ctx: GuestContext,
  v: ValidatedAttachVeth,
  bridge: LinkInfo | undefined,
  opts: AttachVethOptions,
  firewallPlan: Promise<BridgeFirewall>,
  reads: FirstReads,
  lock: BridgeLock,
): Promise<OpResult> {
  const { netns, hostNs, guestNs } = ctx
  let guestLinks = await reads.links
  const result = emptyResult('attach-veth', netns.label, opts.dryRun ?? false)
  const wantAddrs = v.statics.map((s) => s.cidr)

  // Idempotency: the same attach done before is found by its owner mark. A concurrent detach
  // may delete it between the listing and the reads of its addresses: then it is gone, and
  // the guest is read again (not "no such device", exit 3).
  // With dhcp, the lease's address is not part of the configuration asked for: the client's state
  // says which interface holds it.
  const leases = asksDhcp(v.ips) ? await leasesOf(netns) : undefined
  for (let reread = 0; ; reread++) {
    const existing = v.ifname ? guestLinks.find((l) => l.name === v.ifname) : await findSameAttach(guestNs, guestLinks, v.bridge, wantAddrs, leases)
    if (!existing) break
    try {
      return await alreadyAttached(ctx, v, existing, result, guestLinks, leases)
    } catch (err) {
      if (reread >= 3 || !(err instanceof PlumbError && err.code === 'NOT_FOUND') || (await guestNs.getLinkByIndex(existing.index))) throw err
      guestLinks = await guestNs.getLinks()
    }
  }

  // The host end's name and the addresses on the bridge's segment (host reads) are looked up
  // while the gateways are planned (guest reads).
  const firstIfname = v.ifname ?? firstFreeEth(guestLinks)
  const firstHostIfname = pickHostIfname(hostNs, netns, firstIfname, v.hostIfname, reads.hostName)
  firstHostIfname.catch(() => undefined) // awaited in the first attempt below
  const br = bridge
  const held = br && v.statics.length ? Promise.resolve(hostNs.portsOf(br.index)).then((ports) => addressHolders(hostNs, v.statics, { index: br.index, holder: `the bridge ${v.bridge} itself` }, ports)) : Promise.resolve([])
  held.catch(() => undefined) // awaited below
  const gateways = await planGateways(guestNs, v.defaults, v.ifname ?? 'eth?', opts.replaceGateway ?? false, guestLinks, reads.routes)
  refuseHeld(await held, `bridge ${v.bridge}`)
  const mtu = v.mtu ?? bridge?.mtu ?? 1500

  // Ten attaches to one guest at once all pick "the first free ethN": the losers of that race
  // get EEXIST and try the next name (only when -i was not given).
  const tried = new Set<string>()
  // A bridge this op creates outlives a raced attempt: the other attaches of the race may be
  // its ports already (deleting it in that attempt's rollback left their host ends without a
  // master). It is removed only when the op fails for good and the bridge is still empty.
  const made: { index?: number } = {}
  for (let attempt = 0; ; attempt++) {
    const ifname = attempt === 0 ? firstIfname : (v.ifname ?? firstFreeEth(await guestNs.getLinks(), tried))
    tried.add(ifname)
    try {
      return await runTx({ ...opts, journal: journalFor('attach-veth', netns) }, async (tx) => {
        const hostIfname = await (attempt === 0 ? firstHostIfname : pickHostIfname(hostNs, netns, ifname, v.hostIfname))
        const gwPlans = gateways.map((g) => ({ ...g, present: g.present && ifname === v.ifname }))
        const tags = v.tags ? { extra: v.tags } : {}
        const mark: OwnerMark = withLab({ v: 1, role: 'guest', op: 'attach-veth', guest: netns.label, ifname, peer: hostIfname, bridge: v.bridge, ...tags }, opts)
        const gw = formatReplacedGateways(gwPlans)
        if (gw) mark.gw = gw
        const hostMark: OwnerMark = withLab({ v: 1, role: 'host', op: 'attach-veth', guest: netns.label, ifname, peer: ifname, bridge: v.bridge, ...tags }, opts)

        const bridgeIndex = await ensureLinuxBridge(tx, hostNs, v.bridge, bridge, result, made)
        tx.intend({ t: 'link', where: { ns: 'host' }, name: hostIfname, kind: 'veth', peer: whereOf(netns) })
        const created = await tx.step(
          `ip link add ${hostIfname} mtu ${mtu} ${VETH_QUEUES} master ${v.bridge} up type veth peer name ${ifname} netns ${ipNetnsArg(netns)} mtu ${mtu} ${VETH_QUEUES}${v.mac ? ` address ${v.mac}` : ''}`,
          () =>
            hostNs.createVeth({
              name: hostIfname,
              mtu,
              master: bridgeIndex,
              up: true,
              peer: { name: ifname, nsFd: netns.fd, mtu, ...(v.mac ? { mac: v.mac } : {}) },
            }),
          { line: `ip link del ${hostIfname}`, run: (r) => hostNs.delLink(r.index) },
        )
        result.interfaces.push(
          { name: hostIfname, mtu, netns: 'host', kind: 'veth', peer: ifname, bridge: v.bridge },
          { name: ifname, mtu, netns: netns.label, kind: 'veth', peer: hostIfname },
        )
        // The guest end's MAC (for the result) is read beside the configuration, not after it.
        const guestEnd = created ? guestNs.getLinkByIndex(created.peerIndex) : undefined
        guestEnd?.catch(() => undefined) // awaited below
        // The kernel ignores IFLA_IFALIAS on create: the host end's mark is set in the guest's batch.
        const hostAlias = formatMark(hostMark)
        const hostSteps = [{ line: `ip link set ${hostIfname} alias '${hostAlias}'`, run: () => hostNs.setLink(created!.index, { alias: hostAlias }) }]
        // The early read ran before the bridge lock was taken, and what it found may have changed
        // since: the detach of the bridge's last other plumb port took its rule, gc took a
        // leftover rule of a bridge that did not exist yet, `plumb isolate` came or went. It is
        // read again under the lock: the same read, with no spawn, while the nftables generation
        // stands. What it finds now holds: detach, gc, a killed run's recovery and isolate change
        // a bridge's rules only holding the lock exclusive, and this port has its mark before the
        // lock is let go. (Where iptables is not nftables' there is no generation to key by: a
        // second iptables-save.)
        await firewallPlan
        const fw = await bridgeFirewall(v.bridge)
        // On a bridge under `plumb isolate` the port is isolated before the guest end comes up.
        if (fw.isolated) {
          hostSteps.push({ line: `ip link set ${hostIfname} type bridge_slave isolated on`, run: () => hostNs.setPortIsolated(created!.index, true) })
          result.messages.push(`bridge ${v.bridge} is isolated (plumb isolate): ${hostIfname} is an isolated port`)
        }
        await applyGuestConfig(tx, { netns, guestNs, ifname, index: created?.peerIndex, alias: formatMark(mark), ips: v.statics, routes: v.routes, gateways: gwPlans, up: true }, result, 1, hostSteps)
        // The bridge has a port with plumb's mark now: detach, gc, a killed run's recovery and
        // isolate see it from here on (they look for marked ports, holding the lock exclusive).
        // Let go only now: a port seen before its mark counts for none.
        lock.release()
        if (opts.firewall !== false) await ensureFirewall(tx, fw, v.bridge, result)
        await leaseIfAsked(tx, ctx, ifname, v.ips, opts.dhcp, result)
        putGuestMac(await guestEnd, result, 1)
        await persist(tx, opts, result, [
          {
            netns,
            edit: linkEdit('attach-veth', {
              bridge: v.bridge,
              ifname,
              hostIfname,
              // the MAC it ended up with: a replay makes the same one, so leases and ARP caches hold
              mac: result.interfaces[1]?.mac ?? v.mac,
              mtu: v.mtu,
              ips: ipTexts(v.ips),
              routes: routeTexts(v.routes),
              replaceGateway: opts.replaceGateway || undefined,
              firewall: opts.firewall === false ? false : undefined,
              dhcp: opts.dhcp,
              ...commonArgs(opts),
            }),
          },
        ])
        result.changed = true
        result.mark = formatMark(mark)
        result.plan = tx.lines
        result.messages.push(`attached ${netns.label} ${ifname} to bridge ${v.bridge} (host end ${hostIfname})${wantAddrs.length ? `: ${wantAddrs.join(', ')}` : ''}`)
        // A bridge's MTU below the guest's (a VXLAN overlay sets it to what the underlay carries):
        // the guest's bigger frames are dropped on the way out, silently.
        if (bridge && mtu > bridge.mtu) result.messages.push(`warning: MTU ${mtu} is more than bridge ${v.bridge} carries (${bridge.mtu}): bigger frames are dropped; leave --mtu out to take the bridge's`)
        return result
      })
    } catch (err) {
      const raced = !v.ifname && err instanceof PlumbError && err.code === 'CONFLICT' && /EEXIST/.test(err.message) && attempt < 32
      if (!raced) throw await dropMadeBridge(hostNs, v.bridge, made, err)
      if (made.index !== undefined) bridge = await hostNs.getLink(v.bridge)
      result.interfaces.length = 0
      result.ips.length = 0
      result.routes.length = 0
    }
  }
}

/**
 * The attach done before, without -i: plumb's guest end on the same bridge holding exactly the
 * static addresses asked for. With `leases` (dhcp asked for), an interface with a DHCP client's
 * state, whose leased address (valid for a lifetime, not permanent) does not count. One address
 * dump of the whole guest, not one per candidate: a per-link query fails (ENODEV) when a
 * concurrent detach deleted the link after the listing, and this way there is one round trip
 * whatever the count.
 */
async function findSameAttach(guestNs: NetHandle, links: LinkInfo[], bridge: string, wantAddrs: string[], leases: Map<string, LeaseState> | undefined): Promise<LinkInfo | undefined> {
  const candidates = links.filter((l) => {
    const m = parseMark(l.alias)
    return m?.role === 'guest' && m.op === 'attach-veth' && m.bridge === bridge && (!leases || leases.has(l.name))
  })
  if (candidates.length === 0) return undefined
  const addrs = await guestNs.getAddrs()
  return candidates.find((l) => {
    const have = addrs.filter((a) => a.index === l.index && !(a.family === 6 && a.address.startsWith('fe80:')) && (!leases || a.permanent)).map((a) => `${a.address}/${a.prefix}`)
    return sameSet(have, wantAddrs)
  })
}

/** A re-run: exit 0 and say so when the state is the same; exit 4 when it differs. */
async function alreadyAttached(ctx: GuestContext, v: ValidatedAttachVeth, link: LinkInfo, result: OpResult, guestLinks: LinkInfo[], leases: Map<string, LeaseState> | undefined): Promise<OpResult> {
  const mark = parseMark(link.alias)
  if (!mark || mark.role !== 'guest') {
    throw conflict(`"${link.name}" already exists in ${ctx.netns.label} and is not plumb's`, 'choose another name with -i, or leave -i out to take the first free ethN')
  }
  if (mark.op !== 'attach-veth' || mark.bridge !== v.bridge) {
    throw conflict(`"${link.name}" in ${ctx.netns.label} is plumb's ${mark.op}${mark.bridge ? ` on ${mark.bridge}` : ''}, not an attach to ${v.bridge}`, `detach it first: plumb detach ${ctx.netns.label} ${link.name}`)
  }
  const differs = await configDiff(ctx.guestNs, link, { ips: v.statics, mtu: v.mtu, mac: v.mac, defaults: v.defaults, routes: v.routes }, guestLinks)
  if (differs.length) {
    throw conflict(`${ctx.netns.label} ${link.name} is already attached to ${v.bridge} with a different configuration: it ${differs.join('; ')}`, `change addresses with plumb set-ip, or detach first: plumb detach ${ctx.netns.label} ${link.name}`)
  }
  result.interfaces.push(
    ...(mark.peer ? [{ name: mark.peer, netns: 'host', kind: 'veth', peer: link.name, bridge: v.bridge }] : []),
    { name: link.name, ...(link.mac ? { mac: link.mac } : {}), mtu: link.mtu, netns: ctx.netns.label, kind: 'veth', ...(mark.peer ? { peer: mark.peer } : {}) },
  )
  if (leases) sameLease(ctx.netns, link.name, leases.get(link.name), result)
  for (const ip of v.statics) result.ips.push({ address: ip.cidr, ...(ip.gateway ? { gateway: ip.gateway } : {}), interface: result.interfaces.length - 1 })
  result.mark = link.alias
  result.messages.push(`already attached: ${ctx.netns.label} ${link.name} on bridge ${v.bridge}${leases ? ` (DHCP lease ${(result.lease as LeaseState).address ?? 'pending'})` : ''}; nothing changed`)
  return result
}
