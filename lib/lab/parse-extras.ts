// The parts of a lab file that are plumb's own: `nat:` (expose, masquerade, isolate) and `checks:`
// (reachability with retries and must-not-reach windows, state, exec; points and names).

import { RULE_MARK_MAX_BYTES, parseIpSpec, parseMasqueradeSource, parsePortSpec, parseRouteSpec, ruleMarkText } from '../parse/index.js'
import type { RuleMark } from '../parse/index.js'
import { guestOf } from './names.js'
import { closest } from './read.js'
import type { Path, Reader } from './read.js'
import type { CheckKind, LabCheck, LabNat, LabNode, ProbeTarget } from './types.js'

const hint = (word: string, known: Iterable<string>): string => {
  const near = closest(word, known)
  return near ? `did you mean "${near}"?` : `the lab's nodes: ${[...known].join(', ') || '(none)'}`
}

function nodeRef(r: Reader, v: unknown, at: Path, nodes: Map<string, LabNode>, want: 'guest' | 'bridge' | 'guest-or-host'): string {
  const name = r.str(v, at, 'a node name')
  if (want === 'guest-or-host' && name === 'host') return name
  const n = nodes.get(name)
  if (!n) r.unknownNode(name, at, hint(name, nodes.keys()))
  const guest = n.kind === 'linux' || n.kind === 'netns'
  if (want === 'bridge' && n.kind !== 'bridge') r.fail(at, `"${name}" is a ${n.kind} node, not a bridge`)
  if (want !== 'bridge' && !guest) r.fail(at, `"${name}" is a ${n.kind} node: this needs a linux or netns node`)
  return name
}

// What a `nat:` entry's firewall marks hold that deploy learns only from the host: an interface
// name, an address and port, the sysctl values plumb found (ip_forward, route_localnet and
// proxy_arp_pvlan are booleans, proxy_delay an int). Their widest, to measure a mark before
// anything is made.
const WIDEST_IF = 'x'.repeat(15)
const WIDEST_ADDR_PORT = '255.255.255.255:65535'
const WIDEST_REC = { fwd: '1', rl: '1', pvlan: '1', pdelay: '2147483647' } as const

/**
 * Refuse an entry whose marks could outgrow an iptables comment (xt_comment: 255 bytes): they
 * carry the lab's name, and its guests' names, which carry it again (`docker:PREFIX-LAB-NODE`).
 * Caught here with the file's path (exit 2) rather than by the op, part-way through a deploy.
 */
function checkMarks(r: Reader, at: Path, marks: RuleMark[]): void {
  for (const m of marks) {
    const bytes = Buffer.byteLength(ruleMarkText(m), 'utf8')
    if (bytes > RULE_MARK_MAX_BYTES) {
      r.fail(at, `this entry's firewall mark can take ${bytes} bytes (it holds the lab's name and the names of its nodes and bridges), an iptables comment holds at most ${RULE_MARK_MAX_BYTES}`, "shorten the lab's name (or its prefix), or the names of the nodes it names")
    }
  }
}

export function parseNat(r: Reader, v: unknown, nodes: Map<string, LabNode>, lab: string): LabNat {
  const nat: LabNat = { expose: [], masquerade: [], isolate: [] }
  if (v === undefined || v === null) return nat
  const m = r.map(v, ['nat'])
  r.fields(m, ['nat'], ['expose', 'masquerade', 'isolate'])
  if (m.expose != null) {
    r.list(m.expose, ['nat', 'expose']).forEach((e, i) => {
      const at: Path = ['nat', 'expose', i]
      const x = r.map(e, at, 'a mapping {node, ports}')
      r.fields(x, at, ['node', 'ports', 'to'])
      if (x.node === undefined) r.fail(at, 'expose needs node:')
      if (x.ports === undefined) r.fail(at, 'expose needs ports: (Docker -p forms, e.g. "8080:80")')
      const node = nodeRef(r, x.node, [...at, 'node'], nodes, 'guest')
      const ports = (Array.isArray(x.ports) ? x.ports : [x.ports]).map((p, j) => {
        const path = Array.isArray(x.ports) ? [...at, 'ports', j] : [...at, 'ports']
        const text = r.scalar(p, path, 'a port spec')
        // plumb expose's own parser: what deploy would refuse is refused here, with the file's path
        r.parse(path, () => parsePortSpec(text))
        return text
      })
      const to = x.to === undefined ? undefined : r.str(x.to, [...at, 'to'])
      if (to !== undefined) r.parse([...at, 'to'], () => parseIpSpec(`${to}/${to.includes(':') ? 128 : 32}`))
      const wide = { ifname: WIDEST_IF, to: WIDEST_ADDR_PORT, hostIp: '255.255.255.255', hostPort: 65535, proto: 'tcp' as const, dev: WIDEST_IF, auto: true }
      checkMarks(r, at, [{ op: 'expose', guest: guestOf(nodes.get(node)!), ...wide, lab, rec: { fwd: WIDEST_REC.fwd, rl: WIDEST_REC.rl } }])
      nat.expose.push({ node, ports, ...(to !== undefined ? { to } : {}), at: `nat.expose[${i}]` })
    })
  }
  if (m.masquerade != null) {
    r.list(m.masquerade, ['nat', 'masquerade']).forEach((e, i) => {
      const at: Path = ['nat', 'masquerade', i]
      // A bridge node's name or a CIDR; or {target, out}.
      const x = typeof e === 'string' ? { target: e } : r.map(e, at, 'a bridge node, a CIDR, or {target, out}')
      r.fields(x, at, ['target', 'out'])
      const target = r.str(x.target, typeof e === 'string' ? at : [...at, 'target'], 'a bridge node or a CIDR')
      // plumb masquerade's own parser: a CIDR with host bits set is refused here, not half-way through a deploy
      if (target.includes('/')) r.parse(at, () => parseMasqueradeSource(target))
      else nodeRef(r, target, typeof e === 'string' ? at : [...at, 'target'], nodes, 'bridge')
      const out = x.out === undefined ? undefined : r.str(x.out, [...at, 'out'])
      const bridge = nodes.get(target)?.runtime
      checkMarks(r, at, [{ op: 'masquerade', src: bridge ?? target, ...(bridge ? { bridge } : {}), ...(out !== undefined ? { out } : {}), lab, rec: { fwd: WIDEST_REC.fwd } }])
      nat.masquerade.push({ target, ...(out !== undefined ? { out } : {}), at: `nat.masquerade[${i}]` })
    })
  }
  if (m.isolate != null) {
    r.list(m.isolate, ['nat', 'isolate']).forEach((e, i) => {
      const at: Path = ['nat', 'isolate', i]
      const x = typeof e === 'string' ? { bridge: e } : r.map(e, at, 'a bridge node or {bridge, allow}')
      r.fields(x, at, ['bridge', 'allow'])
      const bridge = nodeRef(r, x.bridge, typeof e === 'string' ? at : [...at, 'bridge'], nodes, 'bridge')
      const allow = (x.allow == null ? [] : r.list(x.allow, [...at, 'allow'], 'a list of [NODE, NODE] pairs')).map((pair, j) => {
        const p = r.list(pair, [...at, 'allow', j], 'a pair [NODE, NODE]')
        if (p.length !== 2) r.fail([...at, 'allow', j], `an allowed pair has two nodes, this one has ${p.length}`)
        return [nodeRef(r, p[0], [...at, 'allow', j, 0], nodes, 'guest'), nodeRef(r, p[1], [...at, 'allow', j, 1], nodes, 'guest')] as [string, string]
      })
      const br = nodes.get(bridge)!.runtime
      const guest = (n: string): string => guestOf(nodes.get(n)!)
      checkMarks(r, at, [
        { op: 'isolate', bridge: br, lab, rec: {} },
        ...allow.map(([a, b]): RuleMark => ({ op: 'allow', bridge: br, a: guest(a), b: guest(b), lab, rec: { fwd: WIDEST_REC.fwd, pvlan: WIDEST_REC.pvlan, pdelay: WIDEST_REC.pdelay } })),
      ])
      nat.isolate.push({ bridge, allow, at: `nat.isolate[${i}]` })
    })
  }
  return nat
}

const CHECK_KINDS: readonly CheckKind[] = ['ping', 'tcp', 'has-address', 'has-route', 'exec', 'same-netns']
const COMMON = ['name', 'points', 'expect', 'timeout']
const CHECK_FIELDS: Record<CheckKind, string[]> = {
  ping: ['from', 'ping'],
  tcp: ['from', 'tcp'],
  'has-address': ['node', 'ifname', 'has-address'],
  'has-route': ['node', 'has-route'],
  exec: ['node', 'exec', 'stdout', 'stderr', 'exit'],
  'same-netns': ['node', 'same-netns'],
}

function target(r: Reader, text: string, at: Path, nodes: Map<string, LabNode>): ProbeTarget {
  if (text === 'host') return { kind: 'host' }
  const ip = text.includes('/') ? undefined : tryAddress(text)
  if (ip) return { kind: 'address', address: ip }
  const [node, ifname, more] = text.split(':')
  if (more !== undefined || node === undefined) r.fail(at, `"${text}" is not a node, NODE:IFNAME or an address`)
  nodeRef(r, node, at, nodes, 'guest')
  return { kind: 'node', node, ...(ifname ? { ifname } : {}) }
}

function tryAddress(text: string): string | undefined {
  if (!/^[0-9.]+$/.test(text) && !(text.includes(':') && /^[0-9a-fA-F:.]+$/.test(text) && text.split(':').length > 2)) return undefined
  const ip = parseIpSpec(`${text}/${text.includes(':') ? 128 : 32}`)
  return ip.kind === 'static' ? ip.address : undefined
}

export function parseChecks(r: Reader, v: unknown, nodes: Map<string, LabNode>): LabCheck[] {
  if (v === undefined || v === null) return []
  const names = new Map<string, string>()
  return r.list(v, ['checks']).map((item, i) => {
    const at: Path = ['checks', i]
    const m = r.map(item, at, 'a check mapping (e.g. {from: web, ping: db})')
    const kinds = CHECK_KINDS.filter((k) => m[k] !== undefined)
    if (kinds.length === 0) r.fail(at, 'the check says what to check with none of: ping, tcp, has-address, has-route, exec, same-netns')
    if (kinds.length > 1) r.fail(at, `one check does one thing, this one has ${kinds.join(' and ')}`, 'split it into two checks')
    const kind = kinds[0]!
    r.fields(m, at, [...CHECK_FIELDS[kind], ...COMMON])
    const base = {
      points: m.points === undefined ? 1 : r.int(m.points, [...at, 'points'], 'points', 0, 1_000_000),
      expect: m.expect === undefined ? ('ok' as const) : (r.str(m.expect, [...at, 'expect']) as 'ok' | 'fail'),
      ...(m.timeout !== undefined ? { timeout: r.num(m.timeout, [...at, 'timeout'], 'seconds') } : {}),
      at: `checks[${i}]`,
    }
    if (base.expect !== 'ok' && base.expect !== 'fail') r.fail([...at, 'expect'], `expect is ok or fail, not "${String(m.expect)}"`, 'expect: fail makes a must-not-reach check')
    const need = (field: string): unknown => {
      if (m[field] === undefined) r.fail(at, `a ${kind} check needs ${field}:`)
      return m[field]
    }
    let check: LabCheck
    const neg = base.expect === 'fail'
    switch (kind) {
      case 'ping': {
        const from = nodeRef(r, need('from'), [...at, 'from'], nodes, 'guest-or-host')
        const text = r.scalar(m.ping, [...at, 'ping'], 'a node, NODE:IFNAME or an address')
        check = { ...base, kind, from, target: target(r, text, [...at, 'ping'], nodes), name: `${from} ${neg ? 'must not reach' : 'pings'} ${text}` }
        break
      }
      case 'tcp': {
        const from = nodeRef(r, need('from'), [...at, 'from'], nodes, 'guest-or-host')
        const text = r.scalar(m.tcp, [...at, 'tcp'], 'NODE:PORT, ADDRESS:PORT or host:PORT')
        const cut = text.lastIndexOf(':')
        const port = cut > 0 ? Number(text.slice(cut + 1)) : NaN
        if (!Number.isInteger(port) || port < 1 || port > 65535) r.fail([...at, 'tcp'], `"${text}" has no port`, 'write NODE:PORT, ADDRESS:PORT ([ADDR]:PORT for IPv6) or host:PORT')
        const where = text.slice(0, cut).replace(/^\[(.*)\]$/, '$1')
        check = { ...base, kind, from, port, target: target(r, where, [...at, 'tcp'], nodes), name: `${from} ${neg ? 'must not connect to' : 'connects to'} tcp ${text}` }
        break
      }
      case 'has-address': {
        const node = nodeRef(r, need('node'), [...at, 'node'], nodes, 'guest')
        const ifname = m.ifname === undefined ? undefined : r.str(m.ifname, [...at, 'ifname'])
        const ip = r.parse([...at, 'has-address'], () => parseIpSpec(r.str(m['has-address'], [...at, 'has-address'], 'ADDR/PREFIX')))
        if (ip.kind !== 'static') r.fail([...at, 'has-address'], 'has-address takes ADDR/PREFIX, not dhcp')
        check = { ...base, kind, node, cidr: ip.cidr, ...(ifname !== undefined ? { ifname } : {}), name: `${node}${ifname ? ` ${ifname}` : ''} ${neg ? 'lacks' : 'has'} ${ip.cidr}` }
        break
      }
      case 'has-route': {
        const node = nodeRef(r, need('node'), [...at, 'node'], nodes, 'guest')
        const text = r.str(m['has-route'], [...at, 'has-route'], 'a route, e.g. "default via 198.18.1.1"')
        const route = parseRoute(r, text, [...at, 'has-route'])
        check = { ...base, kind, node, ...route, name: `${node} ${neg ? 'lacks' : 'has'} route ${text}` }
        break
      }
      case 'exec': {
        const node = nodeRef(r, need('node'), [...at, 'node'], nodes, 'guest')
        const command = r.str(m.exec, [...at, 'exec'], 'a command line')
        for (const f of ['stdout', 'stderr'] as const) {
          if (m[f] === undefined) continue
          const re = r.str(m[f], [...at, f], 'a regular expression')
          try {
            new RegExp(re, 'm')
          } catch (err) {
            r.fail([...at, f], `invalid regular expression: ${(err as Error).message}`)
          }
        }
        check = {
          ...base,
          kind,
          node,
          command,
          exit: m.exit === undefined ? 0 : r.int(m.exit, [...at, 'exit'], 'an exit status', 0, 255),
          ...(m.stdout !== undefined ? { stdout: m.stdout as string } : {}),
          ...(m.stderr !== undefined ? { stderr: m.stderr as string } : {}),
          name: `${node} runs "${command}"`,
        }
        break
      }
      case 'same-netns': {
        const node = nodeRef(r, need('node'), [...at, 'node'], nodes, 'guest')
        const other = nodeRef(r, m['same-netns'], [...at, 'same-netns'], nodes, 'guest-or-host')
        check = { ...base, kind, node, other, name: `${node} ${neg ? 'is not in' : 'is in'} the netns of ${other}` }
        break
      }
    }
    if (m.name !== undefined) check.name = r.scalar(m.name, [...at, 'name'], 'a name')
    const prev = names.get(check.name)
    // TAP and JUnit name each check: two with one name could not be told apart in a report.
    if (prev) r.fail(m.name !== undefined ? [...at, 'name'] : at, `a second check named "${check.name}" (the first is ${prev})`, 'give one of them name:')
    names.set(check.name, check.at)
    return check
  })
}

/** `default`, `default via GW`, `DST[ via GW][ dev IF]`, as `ip route` prints them. */
function parseRoute(r: Reader, text: string, at: Path): { dst: string; via?: string; dev?: string } {
  const words = text.trim().split(/\s+/)
  const dstText = words.shift() ?? ''
  let via: string | undefined
  let dev: string | undefined
  while (words.length) {
    const w = words.shift()
    const val = words.shift()
    if (val === undefined || (w !== 'via' && w !== 'dev')) r.fail(at, `"${text}" is not a route`, 'write DST [via GW] [dev IFNAME], e.g. "default via 198.18.1.1" or "198.19.0.0/16 dev eth1"')
    if (w === 'via') via = r.parse(at, () => (parseIpSpec(`${val}/${val.includes(':') ? 128 : 32}`) as { address: string }).address)
    else dev = val
  }
  let dst = dstText
  if (dst !== 'default') {
    // A bare address is a host route, as `ip route` prints one.
    dst = r.parse(at, () => parseRouteSpec(dst.includes('/') ? dst : `${dst}/${dst.includes(':') ? 128 : 32}`)).dst
  }
  return { dst, ...(via !== undefined ? { via } : {}), ...(dev !== undefined ? { dev } : {}) }
}
