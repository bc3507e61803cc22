// ovs-port: a veth whose host end is a port of an Open vSwitch bridge (access with --tag,
// trunk with --trunks), marked in external_ids so ls, detach and gc find it.

import { conflict, notFound, usageError } from '../errors.js'
import { formatMark, parseTrunks, parseVid, validateIfname } from '../parse/index.js'
import type { GuestRef, OwnerMark } from '../parse/index.js'
import { firstFreeEth, pickHostIfname } from './ifnames.js'
import { validateLinkInput } from './link-input.js'
import { VETH_QUEUES, inGuest, ipNetnsArg, journalFor, whereOf, withGuest, withLab } from './context.js'
import type { CommonOptions, GuestContext } from './context.js'
import { applyGuestConfig, configDiff, formatReplacedGateways, missingAddrs, planGateways, recordGuestMac } from './guest-config.js'
import { parseMark } from '../parse/index.js'
import { emptyResult } from './result.js'
import type { OpResult } from './result.js'
import { runTx } from './tx.js'
import { commonArgs, ipTexts, linkEdit, persist, routeTexts } from './persist.js'
import { leaseIfAsked, sameLeaseIfAsked } from './lease.js'
import { addressHolders, refuseHeld } from './segment.js'
import type { AddressHolder } from './segment.js'
import type { LinkInfo, NetHandle } from '../kernel/types.js'
import type { DhcpLeaseOptions } from './lease.js'

export interface OvsPortOptions extends CommonOptions {
  guest: string | GuestRef
  bridge: string
  ips?: string[]
  routes?: string[]
  ifname?: string
  hostIfname?: string
  tag?: number | string
  trunks?: string | number[]
  mac?: string
  mtu?: number | string
  /** create the OVS bridge when missing (userspace datapath when the kernel has no openvswitch module) */
  createBridge?: boolean
  replaceGateway?: boolean
  /** how the `dhcp` IP spec runs its client */
  dhcp?: DhcpLeaseOptions
  /** extra owner-mark fields on both ends and `plumb-KEY` external_ids on the port (the CNI plugin's attachment id) */
  tags?: Record<string, string>
}

export type ValidatedOvsPort = ReturnType<typeof validateOvsPort>

export function validateOvsPort(o: OvsPortOptions) {
  const v = validateLinkInput(o)
  const tag = o.tag !== undefined ? parseVid(o.tag) : undefined
  const trunks = o.trunks === undefined ? undefined : Array.isArray(o.trunks) ? o.trunks.map(parseVid) : parseTrunks(o.trunks)
  if (tag !== undefined && trunks !== undefined) throw usageError('--tag (an access port) and --trunks (a trunk port) exclude each other')
  return {
    ...v,
    bridge: validateIfname(o.bridge, 'OVS bridge name'),
    ...(o.hostIfname !== undefined ? { hostIfname: validateIfname(o.hostIfname, 'host interface name (-l)') } : {}),
    ...(tag !== undefined ? { tag } : {}),
    ...(trunks !== undefined ? { trunks } : {}),
  }
}

export async function ovsPort(opts: OvsPortOptions): Promise<OpResult> {
  const v = validateOvsPort(opts)
  return withGuest(v.guest, opts, (ctx) => ovsPortIn(ctx, v, opts))
}

/** The op on a guest already open (attach-veth hands over here when its bridge is OVS's). */
export async function ovsPortIn(ctx: GuestContext, v: ValidatedOvsPort, opts: OvsPortOptions): Promise<OpResult> {
  const ovs = await import('../ovs/index.js')
  const { netns, hostNs, guestNs } = ctx
  const result = emptyResult('ovs-port', netns.label, opts.dryRun ?? false)
  // What OVS knows (does the bridge exist? is there a port row?) is read in one OVSDB round
  // trip, once the host end's name is known.
  const checkBridge = async (exists: boolean): Promise<boolean> => {
    if (!exists) {
      const link = await hostNs.getLink(v.bridge)
      if (link?.kind === 'bridge') throw conflict(`"${v.bridge}" is a Linux bridge, not an OVS bridge`, `use plumb attach-veth ${netns.label} ${v.bridge}`)
      if (link) {
        throw conflict(`"${v.bridge}" is an existing ${link.kind ?? 'network'} interface, not an OVS bridge`, `a NIC is a parent, not a bridge: plumb macvlan ${netns.label} ${v.bridge}, or name an OVS bridge (--create-bridge makes a new one)`)
      }
      if (!opts.createBridge) throw notFound(`no OVS bridge "${v.bridge}"`, 'pass --create-bridge to create it (userspace datapath where the kernel has no openvswitch module)')
    }
    return exists
  }
  const guestLinks = await guestNs.getLinks()
  const same = guestLinks.find((l) => {
    const m = parseMark(l.alias)
    return m?.role === 'guest' && m.op === 'ovs-port' && m.bridge === v.bridge && (v.ifname === undefined || l.name === v.ifname)
  })
  // Without -i, a port of the same bridge with other addresses is another port, not this one.
  if (same && (v.ifname !== undefined || (await missingAddrs(guestNs, same.index, v.statics)).length === 0)) {
    const m = parseMark(same.alias)!
    const [{ bridgeExists, port }, differs] = await Promise.all([
      ovs.lookupBridgeAndPort(v.bridge, m.peer),
      configDiff(guestNs, same, { ips: v.statics, mtu: v.mtu, mac: v.mac, defaults: v.defaults, routes: v.routes }, guestLinks),
    ])
    await checkBridge(bridgeExists)
    if (!port) differs.push(`has no OVS port row ${m.peer ?? '?'}`)
    else if ((port.tag ?? undefined) !== v.tag || !sameList(port.trunks, v.trunks ?? [])) {
      const vlans = (tag: number | undefined, trunks: number[]): string => (tag !== undefined ? `tag ${tag}` : trunks.length ? `trunks ${trunks.join(',')}` : 'no VLAN settings')
      differs.push(`has ${vlans(port.tag, port.trunks)}, not ${vlans(v.tag, v.trunks ?? [])}`)
    }
    if (differs.length === 0) {
      result.interfaces.push({ name: same.name, mtu: same.mtu, netns: netns.label, kind: 'veth', peer: m.peer!, bridge: v.bridge })
      await sameLeaseIfAsked(netns, same.name, v.ips, result)
      result.messages.push(`already so: ${netns.label} ${same.name} is a port of OVS bridge ${v.bridge}; nothing changed`)
      return result
    }
    throw conflict(
      `${netns.label} ${same.name} is already on OVS bridge ${v.bridge} with a different configuration: it ${differs.join('; ')}`,
      `change addresses with plumb set-ip ${netns.label} ${same.name} ..., or detach it first: plumb detach ${netns.label} ${same.name}`,
    )
  }
  if (v.ifname && guestLinks.some((l) => l.name === v.ifname)) {
    throw conflict(`"${v.ifname}" already exists in ${netns.label}${parseMark(guestLinks.find((l) => l.name === v.ifname)!.alias) ? '' : " and is not plumb's"}`, 'choose another name with -i')
  }
  const ifname = v.ifname ?? firstFreeEth(guestLinks)
  // The segment's addresses (an OVSDB read and the guests' dumps) are read while the port's name is
  // picked and its row looked up: one OVSDB round trip less on the way (a bridge that turns out not
  // to exist has no holders, and its read is dropped)
  const segment = v.statics.length && v.trunks === undefined ? segmentHolders(ovs, hostNs, v) : undefined
  segment?.catch(() => undefined) // awaited below, unless the op stops first
  const hostIfname = await pickHostIfname(hostNs, netns, ifname, v.hostIfname)
  const { bridgeExists, datapathType, port: existingPort } = await ovs.lookupBridgeAndPort(v.bridge, hostIfname)
  const exists = await checkBridge(bridgeExists)
  if (existingPort && existingPort.externalIds['plumb-owner'] !== 'plumb') throw conflict(`OVS port "${hostIfname}" exists and is not plumb's`, 'choose another -l name')
  const held = exists && segment ? segment : Promise.resolve([])
  const gateways = await planGateways(guestNs, v.defaults, ifname, opts.replaceGateway ?? false, guestLinks)
  refuseHeld(await held, `OVS bridge ${v.bridge}${v.tag !== undefined ? ` (VLAN ${v.tag})` : ''}`)
  const mtu = v.mtu ?? 1500
  const tags = v.tags ? { extra: v.tags } : {}
  const mark: OwnerMark = withLab({ v: 1, role: 'guest', op: 'ovs-port', guest: netns.label, ifname, peer: hostIfname, bridge: v.bridge, ...tags }, opts)
  const gw = formatReplacedGateways(gateways)
  if (gw) mark.gw = gw
  const hostMark: OwnerMark = withLab({ v: 1, role: 'host', op: 'ovs-port', guest: netns.label, ifname, peer: ifname, bridge: v.bridge, ...tags }, opts)
  const externalIds = {
    'plumb-owner': 'plumb',
    'plumb-guest': netns.label,
    'plumb-ifname': ifname,
    'plumb-op': 'ovs-port',
    ...(opts.lab !== undefined ? { 'plumb-lab': opts.lab } : {}),
    ...Object.fromEntries(Object.entries(v.tags ?? {}).map(([k, val]) => [`plumb-${k}`, val])),
  }
  const portOpts = { ...(v.tag !== undefined ? { tag: v.tag } : {}), ...(v.trunks ? { trunks: v.trunks } : {}), externalIds }

  return runTx({ ...opts, journal: journalFor('ovs-port', netns) }, async (tx) => {
    let datapath = datapathType
    if (!exists) {
      const bridgeMark = { 'plumb-owner': 'plumb', 'plumb-op': 'bridge' }
      tx.intend({ t: 'ovs-bridge', name: v.bridge })
      const made = await tx.step(ovs.vsctlLine(ovs.createBridgeArgv(v.bridge, { datapathType: 'auto', mark: bridgeMark })), () => ovs.createBridge(v.bridge, { datapathType: 'auto', mark: bridgeMark }, { childOf: tx.childOf() }), {
        line: `ovs-vsctl --if-exists del-br ${v.bridge}`,
        run: () => ovs.deleteBridge(v.bridge),
      })
      datapath = made?.datapathType ?? ovs.resolveDatapathType('auto')
      result.messages.push(`created OVS bridge ${v.bridge}`)
    }
    if (existingPort) {
      // plumb's row from before, whose interface is gone (pickHostIfname found no link of that
      // name): the container restarted, or its host end was deleted under it. A port re-set under
      // such a row carried no traffic for ~20 s after a restart here (issue 11); deleted first and
      // added anew, traffic flows at once.
      const stale = existingPort
      await tx.step(`ovs-vsctl --if-exists del-port ${hostIfname}`, () => ovs.delPortRow(stale))
    }
    tx.intend({ t: 'link', where: { ns: 'host' }, name: hostIfname, kind: 'veth', peer: whereOf(netns) })
    const created = await tx.step(
      `ip link add ${hostIfname} mtu ${mtu} ${VETH_QUEUES} up type veth peer name ${ifname} netns ${ipNetnsArg(netns)} mtu ${mtu} ${VETH_QUEUES}${v.mac ? ` address ${v.mac}` : ''}`,
      () => hostNs.createVeth({ name: hostIfname, mtu, up: true, alias: formatMark(hostMark), peer: { name: ifname, nsFd: netns.fd, mtu, ...(v.mac ? { mac: v.mac } : {}) } }),
      { line: `ip link del ${hostIfname}`, run: (r) => hostNs.delLink(r.index) },
    )
    // The userspace (netdev) datapath takes frames off its ports through packet sockets, so a
    // TCP or UDP checksum the guest's stack left to offload (CHECKSUM_PARTIAL) is never filled
    // in: the other guest drops the segment, and only ping (checksummed in full) gets through.
    // Measured here (OVS 3.1, kernel 6.18, two netns on a netdev bridge): TCP and UDP fail both
    // ways until TX checksumming is off on BOTH guest ends; off on the host ends alone changes
    // nothing, and the bridge's own (tap) port needs nothing. The kernel datapath keeps the
    // frame in the kernel, which honours the offload: left alone there. Before the port joins
    // the bridge, so no frame crosses it unfixed; undone with the veth.
    if (datapath === 'netdev') {
      await tx.step(inGuest(netns, `ethtool -K ${ifname} tx off`), () => guestNs.setTxChecksum(ifname, false))
    }
    tx.intend({ t: 'ovs-port', name: hostIfname })
    await tx.step(ovs.vsctlLine(ovs.addPortArgv(v.bridge, hostIfname, portOpts)), () => ovs.addPort(v.bridge, hostIfname, portOpts), {
      line: `ovs-vsctl --if-exists del-port ${hostIfname}`,
      run: () => ovs.delPort(hostIfname),
    })
    result.interfaces.push(
      { name: hostIfname, mtu, netns: 'host', kind: 'veth', peer: ifname, bridge: v.bridge },
      { name: ifname, mtu, netns: netns.label, kind: 'veth', peer: hostIfname },
    )
    await applyGuestConfig(tx, { netns, guestNs, ifname, index: created?.peerIndex, alias: formatMark(mark), ips: v.statics, routes: v.routes, gateways, up: true }, result, 1)
    await leaseIfAsked(tx, ctx, ifname, v.ips, opts.dhcp, result)
    await recordGuestMac(guestNs, created?.peerIndex, result, 1)
    // Recorded as ovs-port whichever command asked (attach-veth or vlan onto an OVS bridge): the same port again.
    await persist(tx, opts, result, [
      {
        netns,
        edit: linkEdit('ovs-port', {
          bridge: v.bridge,
          ifname,
          hostIfname,
          mac: result.interfaces[1]?.mac ?? v.mac,
          mtu: v.mtu,
          tag: v.tag,
          trunks: v.trunks,
          createBridge: opts.createBridge || undefined,
          ips: ipTexts(v.ips),
          routes: routeTexts(v.routes),
          replaceGateway: opts.replaceGateway || undefined,
          dhcp: opts.dhcp,
          ...commonArgs(opts),
        }),
      },
    ])
    result.changed = true
    result.mark = formatMark(mark)
    result.plan = tx.lines
    result.messages.push(
      `attached ${netns.label} ${ifname} to OVS bridge ${v.bridge} (port ${hostIfname}${v.tag !== undefined ? `, tag ${v.tag}` : ''}${v.trunks ? `, trunks ${v.trunks.join(',')}` : ''})${v.statics.length ? `: ${v.statics.map((s) => s.cidr).join(', ')}` : ''}`,
    )
    return result
  })
}

/**
 * The wanted addresses already used on this port's segment of an OVS bridge: the ports with the
 * same access tag (untagged: the untagged, non-trunk ports and the bridge's own local port).
 * A trunk port's segments are its VLANs' sub-interfaces in the guest: not checked.
 */
async function segmentHolders(ovs: typeof import('../ovs/index.js'), hostNs: NetHandle, v: ValidatedOvsPort): Promise<AddressHolder[]> {
  const ports = (await ovs.bridgePortVlans(v.bridge)).filter((p) => p.tag === v.tag && (v.tag !== undefined || p.trunks.length === 0))
  // The kernel side of the ports: one dump for all, or only the bridge's own when alone.
  const links = ports.length ? await hostNs.getLinks() : [await hostNs.getLink(v.bridge)].filter((l): l is LinkInfo => l !== undefined)
  const byName = new Map(links.map((l) => [l.name, l]))
  const local = v.tag === undefined ? byName.get(v.bridge) : undefined
  return addressHolders(hostNs, v.statics, local ? { index: local.index, holder: `the bridge ${v.bridge} itself` } : undefined, ports.flatMap((p) => byName.get(p.name) ?? []))
}

const sameList = (a: number[], b: number[]): boolean => a.length === b.length && a.every((x, i) => x === b[i])
