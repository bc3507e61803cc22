// CNI results in every version plumb meets: read any (an IPAM plugin's answer, a prevResult),
// write the one the config asked for, and turn an IPAM answer into the op's IP and route specs.
// Pure; table-tested in test/unit/cni-result.test.ts.

import ipaddr from 'ipaddr.js'
import { ipv4Bytes, plainDecimal } from '../parse/addr.js'
import type { OpResult } from '../ops/result.js'
import { compareVersions } from './config.js'
import type { CniVersion } from './config.js'
import { CNI_CODES, CniError } from './errors.js'

export interface CniInterface {
  name: string
  mac?: string
  /** 1.1.0 */
  mtu?: number
  /** the netns path; absent for host interfaces */
  sandbox?: string
  socketPath?: string
  pciID?: string
}

export interface CniIp {
  /** CIDR: '198.18.0.10/24' */
  address: string
  gateway?: string
  /** index into interfaces */
  interface?: number
}

export interface CniRoute {
  dst: string
  gw?: string
  /** 1.1.0 */
  mtu?: number
  advmss?: number
  priority?: number
  table?: number
  scope?: number
}

export interface CniDns {
  nameservers?: string[]
  domain?: string
  search?: string[]
  options?: string[]
}

/** A result, whatever version it came in (the 1.1.0 shape, which holds every other one). */
export interface CniResult {
  interfaces: CniInterface[]
  ips: CniIp[]
  routes: CniRoute[]
  dns: CniDns
}

export const emptyCniResult = (): CniResult => ({ interfaces: [], ips: [], routes: [], dns: {} })

const bad = (what: string, msg: string): CniError => new CniError(CNI_CODES.DECODING_FAILURE, `${what}: ${msg}`)

// A plain dotted quad (what IPAM plugins answer) is checked without ipaddr.js's regular
// expressions (lib/parse/addr.ts's dottedQuad says why); anything else is ipaddr.js's to accept.
const plainV4 = (v: string): boolean => ipv4Bytes(v) !== undefined
const plainV4Cidr = (v: string): boolean => {
  const slash = v.indexOf('/')
  const len = plainDecimal(v.slice(slash + 1), 2)
  return slash > 0 && plainV4(v.slice(0, slash)) && len !== undefined && len <= 32
}

function cidr(v: unknown, what: string, field: string): string {
  if (typeof v !== 'string' || !(plainV4Cidr(v) || ipaddr.isValidCIDR(v))) throw bad(what, `${field} ${JSON.stringify(v)} is not an address/prefix`)
  return v
}

function ip(v: unknown, what: string, field: string): string {
  if (typeof v !== 'string' || !(plainV4(v) || ipaddr.isValid(v))) throw bad(what, `${field} ${JSON.stringify(v)} is not an IP address`)
  return v
}

const strings = (v: unknown): string[] | undefined => (Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : undefined)

/** The well-formed parts of a `dns` object. */
export function dnsOf(v: unknown): CniDns {
  if (typeof v !== 'object' || v === null) return {}
  const o = v as Record<string, unknown>
  const out: CniDns = {}
  const ns = strings(o.nameservers)
  if (ns?.length) out.nameservers = ns
  if (typeof o.domain === 'string' && o.domain) out.domain = o.domain
  const search = strings(o.search)
  if (search?.length) out.search = search
  const options = strings(o.options)
  if (options?.length) out.options = options
  return out
}

function routesOf(v: unknown, what: string): CniRoute[] {
  if (v === undefined || v === null) return []
  if (!Array.isArray(v)) throw bad(what, '"routes" is not an array')
  return v.map((r: unknown, i) => {
    const o = (r ?? {}) as Record<string, unknown>
    const out: CniRoute = { dst: cidr(o.dst, what, `routes[${i}].dst`) }
    if (o.gw !== undefined && o.gw !== '') out.gw = ip(o.gw, what, `routes[${i}].gw`)
    for (const k of ['mtu', 'advmss', 'priority', 'table', 'scope'] as const) if (Number.isInteger(o[k])) out[k] = o[k] as number
    return out
  })
}

/**
 * Read a result of any version: 0.1.0/0.2.0 (`ip4`/`ip6`), 0.3.x/0.4.0 (`ips` with `version`)
 * or 1.x. `what` names it in errors ("the host-local IPAM result", "prevResult").
 */
export function parseResult(v: unknown, what: string): CniResult {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(what, 'not a JSON object')
  const o = v as Record<string, unknown>
  const out = emptyCniResult()
  out.dns = dnsOf(o.dns)
  if (o.ip4 !== undefined || o.ip6 !== undefined) {
    for (const key of ['ip4', 'ip6'] as const) {
      const sect = o[key] as Record<string, unknown> | undefined
      if (!sect) continue
      out.ips.push({ address: cidr(sect.ip, what, `${key}.ip`), ...(sect.gateway ? { gateway: ip(sect.gateway, what, `${key}.gateway`) } : {}) })
      out.routes.push(...routesOf(sect.routes, what))
    }
    return out
  }
  if (o.interfaces !== undefined) {
    if (!Array.isArray(o.interfaces)) throw bad(what, '"interfaces" is not an array')
    out.interfaces = o.interfaces.map((x: unknown, i) => {
      const f = (x ?? {}) as Record<string, unknown>
      if (typeof f.name !== 'string' || f.name === '') throw bad(what, `interfaces[${i}] has no name`)
      const itf: CniInterface = { name: f.name }
      if (typeof f.mac === 'string' && f.mac) itf.mac = f.mac
      if (Number.isInteger(f.mtu) && (f.mtu as number) > 0) itf.mtu = f.mtu as number
      if (typeof f.sandbox === 'string' && f.sandbox) itf.sandbox = f.sandbox
      if (typeof f.socketPath === 'string' && f.socketPath) itf.socketPath = f.socketPath
      if (typeof f.pciID === 'string' && f.pciID) itf.pciID = f.pciID
      return itf
    })
  }
  if (o.ips !== undefined && o.ips !== null) {
    if (!Array.isArray(o.ips)) throw bad(what, '"ips" is not an array')
    out.ips = o.ips.map((x: unknown, i) => {
      const f = (x ?? {}) as Record<string, unknown>
      const entry: CniIp = { address: cidr(f.address, what, `ips[${i}].address`) }
      if (f.gateway !== undefined && f.gateway !== '') entry.gateway = ip(f.gateway, what, `ips[${i}].gateway`)
      if (f.interface !== undefined && f.interface !== null) {
        if (!Number.isInteger(f.interface) || (f.interface as number) < 0 || (f.interface as number) >= out.interfaces.length) throw bad(what, `ips[${i}].interface ${JSON.stringify(f.interface)} names no interface`)
        entry.interface = f.interface as number
      }
      return entry
    })
  }
  out.routes = routesOf(o.routes, what)
  return out
}

const familyOf = (addr: string): 4 | 6 => (addr.includes(':') ? 6 : 4)

/** The result as the spec writes it in `version`: fields a version lacks are left out, 0.x ips get `version`. */
export function formatResult(r: CniResult, version: CniVersion): Record<string, unknown> {
  const v11 = compareVersions(version, '1.1.0') >= 0
  const v1 = compareVersions(version, '1.0.0') >= 0
  const interfaces = r.interfaces.map((i) => ({
    name: i.name,
    ...(i.mac ? { mac: i.mac } : {}),
    ...(v11 && i.mtu ? { mtu: i.mtu } : {}),
    ...(i.sandbox ? { sandbox: i.sandbox } : {}),
    ...(v11 && i.socketPath ? { socketPath: i.socketPath } : {}),
    ...(v11 && i.pciID ? { pciID: i.pciID } : {}),
  }))
  const ips = r.ips.map((i) => ({
    ...(v1 ? {} : { version: String(familyOf(i.address)) }),
    address: i.address,
    ...(i.gateway ? { gateway: i.gateway } : {}),
    ...(i.interface !== undefined ? { interface: i.interface } : {}),
  }))
  const routes = r.routes.map((x) => ({
    dst: x.dst,
    ...(x.gw ? { gw: x.gw } : {}),
    ...(v11 ? Object.fromEntries((['mtu', 'advmss', 'priority', 'table', 'scope'] as const).filter((k) => x[k] !== undefined).map((k) => [k, x[k]])) : {}),
  }))
  return {
    cniVersion: version,
    ...(interfaces.length ? { interfaces } : {}),
    ips,
    ...(routes.length ? { routes } : {}),
    dns: r.dns,
  }
}

const isDefault = (dst: string): boolean => dst === '0.0.0.0/0' || dst === '::/0'

/**
 * What an IPAM answer asks the guest interface to get, as the op's own specs: each address, the
 * first of its family with `@GATEWAY` when a default route of that family is listed (a route
 * without `gw` goes via the address's gateway, as the reference plugins do), and every other
 * route as `DST[@GW]`. An IPAM gateway without a default route is only information (CNI).
 */
export function ipamToSpecs(r: CniResult): { ips: string[]; routes: string[] } {
  const gwOf = (family: 4 | 6): string | undefined => r.ips.find((i) => familyOf(i.address) === family && i.gateway)?.gateway
  const defaults = new Map<4 | 6, string | undefined>()
  const routes: string[] = []
  for (const route of r.routes) {
    const family = familyOf(route.dst)
    const gw = route.gw ?? gwOf(family)
    if (isDefault(route.dst) && !defaults.has(family) && gw) {
      defaults.set(family, gw)
      continue
    }
    routes.push(gw ? `${route.dst}@${gw}` : route.dst)
  }
  const used = new Set<4 | 6>()
  const ips = r.ips.map((i) => {
    const family = familyOf(i.address)
    const gw = defaults.get(family)
    if (!gw || used.has(family)) return i.address
    used.add(family)
    return `${i.address}@${gw}`
  })
  return { ips, routes }
}

/**
 * The ADD's answer: what came before in the chain, then the interfaces the op made (host ends
 * without a sandbox, guest ends with the netns path) and the addresses given to the guest end
 * (IPAM's, with their interface index), IPAM's routes and DNS (else the config's).
 */
export function composeResult(prev: CniResult | undefined, op: OpResult, opts: { netns: string; ipam?: CniResult; staticIps?: string[]; dns?: CniDns }): CniResult {
  const out = prev ? structuredClone(prev) : emptyCniResult()
  let guestAt: number | undefined
  for (const itf of op.interfaces) {
    const inGuest = itf.netns !== 'host'
    if (inGuest && guestAt === undefined) guestAt = out.interfaces.length
    out.interfaces.push({ name: itf.name, ...(itf.mac ? { mac: itf.mac } : {}), ...(itf.mtu ? { mtu: itf.mtu } : {}), ...(inGuest ? { sandbox: opts.netns } : {}) })
  }
  const given: CniIp[] = opts.ipam ? opts.ipam.ips : (opts.staticIps ?? []).map((address) => ({ address }))
  for (const a of given) out.ips.push({ address: a.address, ...(a.gateway ? { gateway: a.gateway } : {}), ...(guestAt !== undefined ? { interface: guestAt } : {}) })
  if (opts.ipam) out.routes.push(...opts.ipam.routes)
  const dns = opts.ipam && Object.keys(opts.ipam.dns).length ? opts.ipam.dns : opts.dns
  if (dns && Object.keys(dns).length) out.dns = { ...out.dns, ...dns }
  return out
}
