// vxlan: joins a local Linux bridge to the bridges of the same VNI on other hosts: a marked
// VXLAN port on the bridge, learning off, one static flood entry per remote (no daemon, no
// key-value store), and an MTU that loses nothing silently.

import { conflict, notFound, unsupported, usageError } from '../errors.js'
import type { LinkInfo, NetHandle } from '../kernel/types.js'
import { formatMark, parseMark, parseRemotes, parseUdpPort, parseVni, validateIfname, VXLAN_PORT } from '../parse/index.js'
import type { OwnerMark } from '../parse/index.js'
import { acquireBridgeLock } from './bridge-lock.js'
import { removePort } from './vxlan-port.js'
import { cleanupBridges, ensureLinuxBridge } from './bridge.js'
import { journalFor, withGuest, withLab } from './context.js'
import type { Netns } from '../guest/index.js'
import type { CommonOptions } from './context.js'
import { ignoreGone } from './guest-config.js'
import { emptyResult } from './result.js'
import type { OpResult } from './result.js'
import { runTx } from './tx.js'

export interface VxlanOptions extends CommonOptions {
  /** a Linux bridge (created and marked plumb's when missing) */
  bridge: string
  vni: number | string
  /** the other hosts' underlay addresses (`A,B` strings are split) */
  remotes?: string[]
  /** this host's underlay address (default: the source address of the route to the remotes) */
  local?: string
  /** the underlay interface (default: the interface of the route to the remotes) */
  dev?: string
  /** UDP destination port (default 4789) */
  dstport?: number | string
  /** remove the given remotes; without remotes (or when none is left), the whole VXLAN port */
  del?: boolean
}

/** Flood entries: an all-zero MAC sends broadcast, multicast and unknown unicast to that remote. */
const FLOOD_MAC = '00:00:00:00:00:00'
/** Outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14); IPv6 adds 20 more. */
const overhead = (family: 4 | 6): number => (family === 4 ? 50 : 70)

export function validateVxlan(o: VxlanOptions) {
  const bridge = validateIfname(o.bridge, 'bridge name')
  const vni = parseVni(o.vni)
  const { remotes, family, local } = parseRemotes(o.remotes ?? [], o.local)
  if (!o.del && remotes.length === 0) throw usageError('vxlan needs at least one --remote', `e.g. plumb vxlan ${bridge} --vni ${vni} --remote 198.18.20.2`)
  return {
    bridge,
    vni,
    remotes,
    family,
    ...(local !== undefined ? { local } : {}),
    ...(o.dev !== undefined ? { dev: validateIfname(o.dev, '--dev') } : {}),
    dstport: o.dstport === undefined ? VXLAN_PORT : parseUdpPort(o.dstport, '--dstport'),
    del: o.del ?? false,
  }
}
type Validated = ReturnType<typeof validateVxlan>

/** The VXLAN port's name: one per VNI on a host (the kernel refuses two devices of one VNI and port anyway). */
export const vxlanName = (vni: number): string => `vx${vni}`

export async function vxlan(opts: VxlanOptions): Promise<OpResult> {
  const v = validateVxlan(opts)
  // The overlay lives in plumb's own netns: "the host" is the guest the journal and recovery go by.
  return withGuest({ kind: 'host' }, { ...opts, allowHost: true }, ({ netns, hostNs }) => (v.del ? remove(hostNs, v, opts) : join(hostNs, netns, v, opts)))
}

/** Is this link plumb's VXLAN port of `bridge` for `vni`? */
function ownPort(l: LinkInfo | undefined, v: Validated): OwnerMark | undefined {
  const m = parseMark(l?.alias)
  return l?.kind === 'vxlan' && m?.op === 'vxlan' && m.role === 'port' && m.bridge === v.bridge && l.vxlan?.vni === v.vni ? m : undefined
}

async function join(hostNs: NetHandle, host: Netns, v: Validated, opts: VxlanOptions): Promise<OpResult> {
  const name = vxlanName(v.vni)
  const result = emptyResult('vxlan', 'host', opts.dryRun ?? false)
  const [existing, bridge, links] = await Promise.all([hostNs.getLink(name), hostNs.getLink(v.bridge), hostNs.getLinks()])
  if (bridge && bridge.kind !== 'bridge') {
    throw bridge.kind === 'openvswitch' || bridge.kind === 'tun'
      ? unsupported(`"${v.bridge}" is an Open vSwitch bridge: plumb's overlay joins Linux bridges`, `OVS has its own: ovs-vsctl add-port ${v.bridge} ${name} -- set interface ${name} type=vxlan options:remote_ip=${v.remotes[0]} options:key=${v.vni}`)
      : conflict(`"${v.bridge}" is ${bridge.kind ? `a ${bridge.kind} interface` : 'a network interface'}, not a bridge`, 'give a Linux bridge, or a new name to create one')
  }
  if (existing) {
    const mark = ownPort(existing, v)
    if (!mark) {
      throw conflict(
        parseMark(existing.alias)?.op === 'vxlan' ? `VNI ${v.vni} already joins bridge ${parseMark(existing.alias)?.bridge} (${name})` : `"${name}" already exists and is not plumb's VXLAN port of ${v.bridge}`,
        parseMark(existing.alias)?.op === 'vxlan' ? `one VNI joins one bridge per host: plumb vxlan ${parseMark(existing.alias)?.bridge} --vni ${v.vni} --del first` : `remove or rename ${name}`,
      )
    }
    return addRemotes(hostNs, v, existing, mark, result)
  }

  // The underlay: the given device, or the route to the remotes (all must leave through one).
  const routes = await Promise.all(v.remotes.map((r) => hostNs.routeGet(r).catch(() => ({}) as { oif?: number; prefsrc?: string })))
  let under: LinkInfo | undefined
  if (v.dev) {
    under = links.find((l) => l.name === v.dev)
    if (!under) throw notFound(`no interface "${v.dev}" on the host for the underlay (--dev)`, 'the interface that carries traffic to the other hosts')
  } else {
    const oifs = [...new Set(routes.map((r) => r.oif))]
    if (oifs.some((o) => o === undefined)) throw notFound(`no route to ${v.remotes.filter((_, i) => routes[i]!.oif === undefined).join(', ')}`, 'add a route to the other hosts first, or name the underlay with --dev')
    if (oifs.length > 1) throw usageError(`the remotes are reached through different interfaces (${oifs.map((o) => links.find((l) => l.index === o)?.name ?? `#${o}`).join(', ')})`, 'name one underlay with --dev')
    under = links.find((l) => l.index === oifs[0])
  }
  if (!under) throw notFound('the underlay interface of the route to the remotes vanished')
  const local = v.local ?? routes.find((r) => r.prefsrc)?.prefsrc
  const family = v.family ?? 4
  const mtu = under.mtu - overhead(family)
  if (mtu < 68) throw usageError(`the underlay ${under.name} has MTU ${under.mtu}: too small to carry VXLAN (${overhead(family)} bytes of headers)`)
  const mark: OwnerMark = withLab({ v: 1, role: 'port', op: 'vxlan', guest: 'host', ifname: name, bridge: v.bridge, extra: { vni: String(v.vni), dstport: String(v.dstport), underlay: under.name, ...(bridge ? { brmtu: String(bridge.mtu) } : {}) } }, opts)
  const alias = formatMark(mark)

  const lock = await acquireBridgeLock('shared', { dryRun: opts.dryRun ?? false })
  try {
    return await runTx({ ...opts, journal: journalFor('vxlan', host) }, async (tx) => {
      const brIndex = await ensureLinuxBridge(tx, hostNs, v.bridge, bridge, result)
      // Guests attached later take the bridge's MTU: fix it at the overlay's, so none is bigger.
      if (!bridge || bridge.mtu !== mtu) {
        const before = bridge?.mtu
        // A bridge this op made goes whole on recovery; one it found gets its MTU back.
        if (before !== undefined) tx.intend({ t: 'mtu', name: v.bridge, mtu, was: before })
        await tx.step(`ip link set ${v.bridge} mtu ${mtu}`, async () => hostNs.setLink(brIndex, { mtu }), {
          line: `ip link set ${v.bridge} mtu ${before ?? 1500}`,
          run: () => (before === undefined ? Promise.resolve() : ignoreGone(hostNs.setLink(brIndex, { mtu: before }))),
        })
      }
      tx.intend({ t: 'link', where: { ns: 'host' }, name, kind: 'vxlan' })
      const made = await tx.step(
        `ip link add ${name} mtu ${mtu} master ${v.bridge} up type vxlan id ${v.vni} dstport ${v.dstport} dev ${under!.name}${local ? ` local ${local}` : ''} nolearning`,
        () => hostNs.createVxlan({ name, vni: v.vni, port: v.dstport, dev: under!.index, ...(local ? { local } : {}), mtu, master: brIndex, up: true }),
        { line: `ip link del ${name}`, run: (r) => ignoreGone(hostNs.delLink(r.index)) },
      )
      const idx = (): number => made!.index
      await tx.batch([
        { line: `ip link set ${name} alias '${alias}'`, run: () => hostNs.setLink(idx(), { alias }) },
        ...v.remotes.map((r) => ({ line: `bridge fdb append ${FLOOD_MAC} dev ${name} dst ${r}`, run: () => hostNs.appendFdb(idx(), FLOOD_MAC, r) })),
      ])
      result.interfaces.push({ name, mtu, netns: 'host', kind: 'vxlan', bridge: v.bridge })
      result.changed = true
      result.mark = alias
      result.plan = tx.lines
      result.messages.push(`joined bridge ${v.bridge} to VNI ${v.vni} through ${name} (underlay ${under!.name}${local ? ` ${local}` : ''}, UDP ${v.dstport}): remotes ${v.remotes.join(', ')}; MTU ${mtu} on the bridge and the guests attached from now on`)
      warnBiggerPorts(links, brIndex, name, mtu, result)
      return result
    })
  } finally {
    lock.release()
  }
}

/** A rerun: the same port; add the remotes it lacks. A different port configuration is a conflict. */
async function addRemotes(hostNs: NetHandle, v: Validated, link: LinkInfo, mark: OwnerMark, result: OpResult): Promise<OpResult> {
  const differs: string[] = []
  if (link.vxlan!.port !== v.dstport) differs.push(`UDP port ${link.vxlan!.port}, not ${v.dstport}`)
  if (v.local && link.vxlan!.local !== v.local) differs.push(`local ${link.vxlan!.local ?? '(any)'}, not ${v.local}`)
  if (v.dev && mark.extra?.underlay !== v.dev) differs.push(`underlay ${mark.extra?.underlay ?? '?'}, not ${v.dev}`)
  if (differs.length) throw conflict(`${link.name} already joins ${v.bridge} to VNI ${v.vni} with ${differs.join('; ')}`, `remove it first: plumb vxlan ${v.bridge} --vni ${v.vni} --del`)
  const have = new Set((await hostNs.getFdb(link.index)).filter((e) => e.mac === FLOOD_MAC && e.dst).map((e) => e.dst!))
  const missing = v.remotes.filter((r) => !have.has(r))
  result.interfaces.push({ name: link.name, mtu: link.mtu, netns: 'host', kind: 'vxlan', bridge: v.bridge })
  result.mark = link.alias
  if (missing.length === 0) {
    result.messages.push(`already so: ${link.name} joins ${v.bridge} to VNI ${v.vni} with remotes ${v.remotes.join(', ')}; nothing changed`)
    return result
  }
  return runTx({ ...(result.dryRun ? { dryRun: true } : {}) }, async (tx) => {
    await tx.batch(
      missing.map((r) => ({
        line: `bridge fdb append ${FLOOD_MAC} dev ${link.name} dst ${r}`,
        run: () => hostNs.appendFdb(link.index, FLOOD_MAC, r),
        undo: { line: `bridge fdb del ${FLOOD_MAC} dev ${link.name} dst ${r}`, run: () => ignoreGone(hostNs.delFdb(link.index, FLOOD_MAC, r)) },
      })),
    )
    result.changed = true
    result.plan = tx.lines
    result.messages.push(`added remote${missing.length > 1 ? 's' : ''} ${missing.join(', ')} to VNI ${v.vni} on ${v.bridge}`)
    return result
  })
}

/** `--del`: the given remotes' flood entries; the port itself without remotes or when none is left. */
async function remove(hostNs: NetHandle, v: Validated, opts: VxlanOptions): Promise<OpResult> {
  const result = emptyResult('vxlan --del', 'host', opts.dryRun ?? false)
  const name = vxlanName(v.vni)
  const link = await hostNs.getLink(name)
  const mark = ownPort(link, v)
  if (!link) {
    result.messages.push(`nothing to remove: no VXLAN port for VNI ${v.vni} (already removed)`)
    return result
  }
  if (!mark) throw conflict(`"${name}" is not plumb's VXLAN port of ${v.bridge}: plumb never deletes what it did not create`)
  const flood = (await hostNs.getFdb(link.index)).filter((e) => e.mac === FLOOD_MAC && e.dst).map((e) => e.dst!)
  const drop = v.remotes.filter((r) => flood.includes(r))
  const whole = v.remotes.length === 0 || flood.every((r) => v.remotes.includes(r))
  result.interfaces.push({ name, mtu: link.mtu, netns: 'host', kind: 'vxlan', bridge: v.bridge })
  if (!whole && drop.length === 0) {
    result.messages.push(`nothing to remove: ${name} has no flood entry for ${v.remotes.join(', ')} (already removed)`)
    return result
  }
  return runTx({ ...(opts.dryRun ? { dryRun: true } : {}) }, async (tx) => {
    if (whole) {
      await removePort(tx, hostNs, link, mark, result)
      await cleanupBridges(tx, hostNs, [v.bridge], result)
    }
    else {
      await tx.batch(
        drop.map((r) => ({
          line: `bridge fdb del ${FLOOD_MAC} dev ${name} dst ${r}`,
          run: () => ignoreGone(hostNs.delFdb(link.index, FLOOD_MAC, r)),
          undo: { line: `bridge fdb append ${FLOOD_MAC} dev ${name} dst ${r}`, run: () => hostNs.appendFdb(link.index, FLOOD_MAC, r) },
        })),
      )
      result.messages.push(`removed remote${drop.length > 1 ? 's' : ''} ${drop.join(', ')} from VNI ${v.vni} on ${v.bridge}`)
    }
    result.changed = true
    result.plan = tx.lines
    return result
  })
}

/** Ports already on the bridge with a bigger MTU lose their big frames on the overlay: say so. */
function warnBiggerPorts(links: LinkInfo[], brIndex: number, self: string, mtu: number, result: OpResult): void {
  const big = links.filter((l) => l.master === brIndex && l.name !== self && l.mtu > mtu)
  if (big.length) {
    result.messages.push(`warning: ${big.map((l) => `${l.name} (mtu ${l.mtu})`).join(', ')} on ${result.interfaces[0]?.bridge ?? 'the bridge'} carry frames bigger than the overlay's ${mtu}: those are dropped; lower the guests' MTU (plumb exec GUEST -- ip link set dev IF mtu ${mtu})`)
  }
}
