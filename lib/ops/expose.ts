// expose: Docker's `-p` for a running guest. A host port is DNATed to the guest (PLUMB-DNAT,
// hooked for the host's local addresses from PREROUTING and OUTPUT, so 127.0.0.1 and the host's
// own addresses work too), the DNATed flow is accepted through FORWARD (PLUMB-FORWARD, before
// Docker's DROP), and two masquerades make the replies come back: from guests on the guest's
// own subnet (the hairpin) and from 127.0.0.1 (with route_localnet on the guest's bridge).

import { PlumbError, conflict, notFound, usageError } from '../errors.js'
import { dockerPublishes, plumbRules } from '../firewall/index.js'
import type { NewRule, Tables } from '../firewall/index.js'
import { forgetFlows, forgetLines } from '../firewall/conntrack.js'
import { covers, hostSockets, localPortRange, socketHolder } from '../firewall/sockets.js'
import type { NetHandle } from '../kernel/types.js'
import { formatMapping, networkOf, parseGuestAddress, parsePortSpecs, parseMark, ruleKey } from '../parse/index.js'
import type { GuestRef, PortMapping, RuleMark } from '../parse/index.js'
import { journalFor, labField, toGuestRef, withGuest } from './context.js'
import type { CommonOptions, GuestContext } from './context.js'
import { editRules, withIpv4Tables } from './firewall.js'
import { emptyResult } from './result.js'
import type { OpResult } from './result.js'
import { runTx } from './tx.js'
import { commonArgs, persist, recordArgs } from './persist.js'
import { putExpose, removeExposed } from '../watch/record.js'
import type { Tx } from './tx.js'

export interface ExposeOptions extends CommonOptions {
  guest: string | GuestRef
  /** Docker's -p forms: `8080:80`, `127.0.0.1:8080:80`, `127.0.0.1::80`, `80`, each `/tcp` or `/udp` */
  ports?: string[]
  /** every port of the container's EXPOSE list (Docker's -P), host ports chosen */
  all?: boolean
  /** the guest address (default: its first IPv4 address on an interface plumb made) */
  to?: string
  /** unpublish: the same arguments; a PORTSPEC without a host port removes whatever port was chosen for it */
  del?: boolean
}

/** One published port, as the result reports it (and `--json` prints it). */
export interface PublishedMapping {
  proto: 'tcp' | 'udp'
  /** '' for every host address */
  hostIp: string
  hostPort: number
  /** guest address and port */
  to: string
  port: number
  /** what this run did with it */
  state: 'published' | 'already' | 'unpublished' | 'absent'
}

export interface ValidatedExpose {
  guest: GuestRef
  mappings: PortMapping[]
  all: boolean
  to?: string
  del: boolean
}

export function validateExpose(o: ExposeOptions): ValidatedExpose {
  const guest = toGuestRef(o.guest)
  const ports = o.ports ?? []
  if (o.all && ports.length) throw usageError('give PORTSPECs or --all, not both', '--all publishes the container image\'s EXPOSE list')
  if (!o.all && ports.length === 0) throw usageError('expose needs a PORTSPEC or --all', 'e.g. plumb expose web 8080:80, or --all for the image\'s EXPOSE list')
  return { guest, mappings: parsePortSpecs(ports), all: o.all ?? false, del: o.del ?? false, ...(o.to !== undefined ? { to: parseGuestAddress(o.to) } : {}) }
}

export async function expose(opts: ExposeOptions): Promise<OpResult> {
  const v = validateExpose(opts)
  return withGuest(v.guest, opts, async (ctx) => {
    const mappings = v.all ? await exposedList(ctx) : v.mappings
    // Unpublishing needs no address of the guest: its interface may be gone already (a CNI DEL).
    const target = v.del ? undefined : await findTarget(ctx, v.to)
    if (!v.del) await checkHostIps(ctx.hostNs, mappings)
    const result = emptyResult('expose', ctx.netns.label, opts.dryRun ?? false)
    const published: PublishedMapping[] = []
    result.published = published
    if (mappings.length === 0) {
      result.messages.push(`nothing to publish: ${ctx.netns.label}'s image exposes no ports`)
      return result
    }
    return runTx({ ...opts, journal: journalFor('expose', ctx.netns) }, async (tx) => {
      await withIpv4Tables(tx.dryRun, async (tables) => {
        if (target) await publish(tx, ctx, tables, mappings, target, published, labField(opts))
        else await unpublish(tx, ctx, tables, mappings, v.to, published)
      })
      // The host ports as published (a chosen one too): a replay after a restart takes the same.
      const kept = published.filter((p) => p.state === 'published' || p.state === 'already')
      await persist(tx, opts, result, [
        {
          netns: ctx.netns,
          edit: !target
            ? (r) => removeExposed(r, mappings)
            : kept.length === 0
              ? () => undefined
              : (r) => putExpose(r, recordArgs({ ports: kept.map((p) => formatMapping({ proto: p.proto, ...(p.hostIp ? { hostIp: p.hostIp } : {}), hostPort: p.hostPort, port: p.port })), to: target.address, ...commonArgs(opts) }), new Date().toISOString()),
        },
      ])
      for (const p of published) {
        const what = `${p.hostIp || '0.0.0.0'}:${p.hostPort}/${p.proto} -> ${ctx.netns.label} ${p.to}`
        result.messages.push(p.state === 'published' ? `published ${what}` : p.state === 'already' ? `already published ${what}` : p.state === 'unpublished' ? `unpublished ${what}` : `not published: ${what}`)
      }
      result.changed = published.some((p) => p.state === 'published' || p.state === 'unpublished')
      result.plan = tx.lines
      return result
    })
  })
}

/** --all: the container's EXPOSE list (Config.ExposedPorts), every port on a chosen host port. */
async function exposedList(ctx: GuestContext): Promise<PortMapping[]> {
  const c = ctx.netns.container
  if (!c) throw usageError(`--all needs a container: ${ctx.netns.label} has no image and so no EXPOSE list`, 'name the ports: plumb expose GUEST 8080:80')
  const { inspectContainer } = await import('../guest/index.js')
  const info = await inspectContainer(c.id, c.engine)
  return (info.exposedPorts ?? []).flatMap((p) => {
    const [port, proto = 'tcp'] = p.split('/')
    return proto === 'tcp' || proto === 'udp' ? [{ proto, port: Number(port) }] : [] // sctp: not plumb's
  })
}

interface Target {
  /** the guest's address */
  address: string
  /** its subnet (the hairpin's source) */
  network: string
  ifname?: string
  /** the host interface the guest is reached through */
  dev: string
}

/** The guest address to DNAT to (--to, or the first IPv4 on a plumb interface) and how the host reaches it. */
async function findTarget(ctx: GuestContext, to: string | undefined): Promise<Target> {
  const [links, addrs] = await Promise.all([ctx.guestNs.getLinks(), ctx.guestNs.getAddrs({ family: 4 })])
  let found: { address: string; prefix: number; ifname: string } | undefined
  if (to !== undefined) {
    const a = addrs.find((x) => x.address === to)
    if (!a) throw notFound(`${to} is not an address of ${ctx.netns.label}`, `see its addresses: plumb exec ${ctx.netns.label} -- ip -4 addr`)
    found = { address: a.address, prefix: a.prefix, ifname: links.find((l) => l.index === a.index)?.name ?? '' }
  } else {
    for (const l of [...links].sort((x, y) => x.index - y.index)) {
      const m = parseMark(l.alias)
      if (!m || (m.role !== 'guest' && m.role !== 'moved')) continue
      const a = addrs.find((x) => x.index === l.index)
      if (a) {
        found = { address: a.address, prefix: a.prefix, ifname: l.name }
        break
      }
    }
    if (!found) throw notFound(`${ctx.netns.label} has no IPv4 address on an interface plumb made`, `attach it first (plumb attach-veth ${ctx.netns.label} BRIDGE ADDR/PREFIX@GW), or give the address with --to`)
  }
  const dev = await egress(ctx.hostNs, found.address)
  if (!dev) throw notFound(`the host has no route to ${found.address} (${ctx.netns.label})`, 'the guest must be reachable from the host, e.g. on a bridge that has an address in its subnet')
  const network = networkOf(found.address, found.prefix)
  return { address: found.address, network, ...(found.ifname ? { ifname: found.ifname } : {}), dev }
}

/** The host interface the kernel would send to `address` through (`ip route get`). */
async function egress(hostNs: NetHandle, address: string): Promise<string | undefined> {
  const r = await hostNs.routeGet(address).catch((err: unknown) => {
    // no route at all is an answer (unreachable); anything else is not
    if (err instanceof PlumbError && err.code === 'NOT_FOUND') return undefined
    throw err
  })
  if (r?.oif === undefined) return undefined
  return (await hostNs.getLinkByIndex(r.oif))?.name
}

/** A HOSTIP must be one of the host's addresses (or loopback), as Docker's bind would require. */
async function checkHostIps(hostNs: NetHandle, mappings: PortMapping[]): Promise<void> {
  const wanted = new Set(mappings.map((m) => m.hostIp).filter((ip): ip is string => ip !== undefined && !ip.startsWith('127.')))
  if (wanted.size === 0) return
  const mine = new Set((await hostNs.getAddrs({ family: 4 })).map((a) => a.address))
  for (const ip of wanted) if (!mine.has(ip)) throw notFound(`${ip} is not an address of this host`, 'give one of the host\'s addresses (ip -4 addr), 127.0.0.1, or none for all of them')
}

type ExposeMark = Extract<RuleMark, { op: 'expose' }>

/** plumb's exposes in the tables, one mark per published port. */
function exposesIn(tables: Tables): ExposeMark[] {
  const byKey = new Map<string, ExposeMark>()
  for (const r of plumbRules(tables)) if (r.mark.op === 'expose') byKey.set(ruleKey(r.mark), r.mark)
  return [...byKey.values()]
}

const overlaps = (a: string, b: string): boolean => a === '' || b === '' || a === b
const shown = (m: { hostIp: string; hostPort: number; proto: string }): string => `${m.hostIp || '0.0.0.0'}:${m.hostPort}/${m.proto}`

/**
 * What holds host ports, read once for a whole publish (a range of a thousand ports would read
 * /proc/net and parse Docker's rules a thousand times): plumb's own, Docker's, host sockets.
 */
interface PortHolders {
  plumbs: ExposeMark[]
  docker: ReturnType<typeof dockerPublishes>
  sockets: () => ReturnType<typeof hostSockets>
}

function portHolders(tables: Tables): PortHolders {
  let sockets: ReturnType<typeof hostSockets> | undefined
  return { plumbs: exposesIn(tables), docker: dockerPublishes(tables), sockets: () => (sockets ??= hostSockets()) }
}

/** Who already holds a host port (exit 4 naming them), or undefined when it is free. */
async function holderOf(held: PortHolders, proto: 'tcp' | 'udp', hostIp: string, hostPort: number): Promise<string | undefined> {
  const p = held.plumbs.find((e) => e.proto === proto && e.hostPort === hostPort && overlaps(e.hostIp, hostIp))
  if (p) return `plumb (published to ${p.guest} ${p.to})`
  const d = held.docker.find((e) => e.proto === proto && e.hostPort === hostPort && overlaps(e.hostIp, hostIp))
  if (d) {
    // The container's name, from the engine; its nat DOCKER chain says enough without it.
    const { publishedPorts } = await import('../guest/index.js')
    const c = (await publishedPorts().catch(() => [])).find((x) => x.proto === proto && x.hostPort === hostPort)
    return `Docker (${c ? `container ${c.container}, -p ${c.hostIp ? `${c.hostIp}:` : ''}${c.hostPort}:${c.port}/${c.proto}` : `its nat rule ${d.spec}`})`
  }
  const s = held.sockets().find((x) => x.proto === proto && x.port === hostPort && x.listening && covers(x.address, hostIp))
  if (!s) return undefined
  // one walk of /proc/*/fd for the program that holds it
  const who = socketHolder(s.inode)
  return `a host socket listening on ${s.address}:${s.port}/${proto}${who ? ` (${who})` : ''}`
}

/** The lowest port of ip_local_port_range that no one holds (any socket on it counts). */
function choosePort(held: PortHolders, proto: 'tcp' | 'udp', hostIp: string, taken: Set<number>): number {
  const [lo, hi] = localPortRange()
  const busy = new Set<number>(taken)
  for (const e of held.plumbs) if (e.proto === proto && overlaps(e.hostIp, hostIp)) busy.add(e.hostPort)
  for (const d of held.docker) if (d.proto === proto && overlaps(d.hostIp, hostIp)) busy.add(d.hostPort)
  for (const s of held.sockets()) if (s.proto === proto) busy.add(s.port)
  for (let p = lo; p <= hi; p++) if (!busy.has(p)) return p
  throw conflict(`no free ${proto} port in the host's ip_local_port_range ${lo}-${hi}`, 'name a host port: HOSTPORT:PORT')
}

async function publish(tx: Tx, ctx: GuestContext, tables: Tables, mappings: PortMapping[], target: Target, out: PublishedMapping[], lab: { lab?: string }): Promise<void> {
  const held = portHolders(tables)
  const plumbs = held.plumbs
  const add: NewRule[] = []
  const chosen = new Set<number>()
  const label = ctx.netns.label
  for (const m of mappings) {
    const hostIp = m.hostIp ?? ''
    const to = `${target.address}:${m.port}`
    const mine = (e: ExposeMark): boolean => e.guest === label && e.to === to
    if (m.hostPort === undefined) {
      const same = plumbs.find((e) => e.auto && e.proto === m.proto && e.hostIp === hostIp && mine(e))
      if (same) {
        out.push({ proto: m.proto, hostIp, hostPort: same.hostPort, to, port: m.port, state: 'already' })
        continue
      }
    } else {
      const same = plumbs.find((e) => e.proto === m.proto && e.hostPort === m.hostPort && e.hostIp === hostIp)
      if (same && mine(same)) {
        out.push({ proto: m.proto, hostIp, hostPort: m.hostPort, to, port: m.port, state: 'already' })
        continue
      }
      const holder = await holderOf(held, m.proto, hostIp, m.hostPort)
      if (holder) {
        throw conflict(`host port ${shown({ hostIp, hostPort: m.hostPort, proto: m.proto })} is taken: ${holder}`, same?.guest === label ? `unpublish it first: plumb expose ${label} ${formatMapping({ ...m, port: Number(same.to.split(':').pop()) })} --del` : 'choose another host port, or leave it out to have one chosen')
      }
    }
    const hostPort = m.hostPort ?? choosePort(held, m.proto, hostIp, chosen)
    chosen.add(hostPort)
    const mark: ExposeMark = { op: 'expose', guest: label, ...(target.ifname ? { ifname: target.ifname } : {}), to, hostIp, hostPort, proto: m.proto, dev: target.dev, auto: m.hostPort === undefined, ...lab, rec: {} }
    add.push(...exposeRules(mark, target, m.port))
    out.push({ proto: m.proto, hostIp, hostPort, to, port: m.port, state: 'published' })
  }
  if (add.length === 0) return
  await editRules(tx, ctx.hostNs, new Map([['iptables', tables]]), { add })
  await forget(tx, ctx.hostNs, out.filter((p) => p.state === 'published'))
}

/**
 * Remove the guest's published ports: a host port given is matched by itself (another guest's
 * is exit 4); one left out by the guest port it was chosen for. `to` narrows to one guest address.
 */
async function unpublish(tx: Tx, ctx: GuestContext, tables: Tables, mappings: PortMapping[], to: string | undefined, out: PublishedMapping[]): Promise<void> {
  const plumbs = exposesIn(tables)
  const label = ctx.netns.label
  const going = new Set<string>()
  const guestPort = (e: ExposeMark): number => Number(e.to.slice(e.to.lastIndexOf(':') + 1))
  const ours = (e: ExposeMark, port: number): boolean => e.guest === label && guestPort(e) === port && (to === undefined || e.to === `${to}:${port}`)
  for (const m of mappings) {
    const hostIp = m.hostIp ?? ''
    const found =
      m.hostPort === undefined
        ? plumbs.filter((e) => e.auto && e.proto === m.proto && e.hostIp === hostIp && ours(e, m.port))
        : plumbs.filter((e) => e.proto === m.proto && e.hostPort === m.hostPort && e.hostIp === hostIp)
    for (const e of found) {
      if (!ours(e, m.port)) throw conflict(`host port ${shown(e)} is published to ${e.guest} ${e.to}, not to ${label}${to ? ` ${to}` : ''} port ${m.port}`, 'see what is published: plumb ls')
      going.add(ruleKey(e))
      out.push({ proto: e.proto, hostIp: e.hostIp, hostPort: e.hostPort, to: e.to, port: m.port, state: 'unpublished' })
    }
    if (found.length === 0) out.push({ proto: m.proto, hostIp, hostPort: m.hostPort ?? 0, to: to ? `${to}:${m.port}` : `:${m.port}`, port: m.port, state: 'absent' })
  }
  if (going.size === 0) return
  await editRules(tx, ctx.hostNs, new Map([['iptables', tables]]), { remove: (mk) => mk.op === 'expose' && going.has(ruleKey(mk)) })
  await forget(tx, ctx.hostNs, out.filter((p) => p.state === 'unpublished'))
}

/** The rules of one published port (see the top of this file). */
function exposeRules(mark: ExposeMark, target: Pick<Target, 'address' | 'network' | 'dev'>, port: number): NewRule[] {
  const { proto, hostIp, hostPort } = mark
  const H = String(hostPort)
  const P = String(port)
  const G = target.address
  const rules: NewRule[] = [
    { table: 'nat', chain: 'PLUMB-DNAT', match: [...(hostIp ? ['-d', `${hostIp}/32`] : []), '-p', proto, '-m', proto, '--dport', H], target: ['-j', 'DNAT', '--to-destination', `${G}:${P}`], mark },
    // Both directions of exactly this published flow (DOCKER-USER sees packets after the DNAT).
    {
      table: 'filter',
      chain: 'PLUMB-FORWARD',
      match: ['-p', proto, '-m', 'conntrack', '--ctstate', 'DNAT', ...(hostIp ? ['--ctorigdst', hostIp] : []), '--ctorigdstport', H, '--ctreplsrc', G, '--ctreplsrcport', P],
      target: ['-j', 'ACCEPT'],
      mark,
    },
  ]
  const masq = (src: string): NewRule => ({
    table: 'nat',
    chain: 'PLUMB-POSTROUTING',
    match: ['-s', src, '-d', `${G}/32`, '-o', target.dev, '-p', proto, '-m', proto, '--dport', P, '-m', 'conntrack', '--ctstate', 'DNAT', '--ctorigdstport', H],
    target: ['-j', 'MASQUERADE'],
    mark,
  })
  const loopback = hostIp.startsWith('127.')
  // the hairpin: a client on the guest's own subnet would get the reply straight from the guest
  if (!loopback) rules.push(masq(target.network))
  // 127.0.0.1 cannot be a source on the wire: the guest would answer to its own loopback
  if (hostIp === '' || loopback) rules.push(masq('127.0.0.0/8'))
  return rules
}

/** Forget the conntrack entries of the host ports that changed (a UDP flow would keep its old way). */
async function forget(tx: Tx, hostNs: NetHandle, changed: PublishedMapping[]): Promise<void> {
  if (changed.length === 0) return
  const all = (await hostNs.getAddrs({ family: 4 })).map((a) => a.address)
  for (const p of changed) {
    const addrs = p.hostIp ? [p.hostIp] : all
    const ok = await tx.step(forgetLines(p.proto, p.hostPort, addrs), () => forgetFlows(p.proto, p.hostPort, addrs))
    if (ok === false) throw new PlumbError('UNSUPPORTED', 'cannot run conntrack to forget the old flows of the published port', { hint: 'install conntrack (apt-get install conntrack): a UDP flow would otherwise keep its old translation' })
  }
}
