// parseLab: a lab file's text to a validated Lab (LAB.md), pure. containerlab's topology format
// (defaults/kinds/groups merged node > group > kind > defaults, brief and extended links, `host:`
// endpoints, the prefix naming rule) plus plumb's addressing, NAT and checks. Every error is exit
// 2 naming the file, line:column and the path in it; a node kind plumb cannot deploy is exit 5.

import { PlumbError, unsupported } from '../errors.js'
import {
  parseAddHost,
  parseDnsOption,
  parseDnsSearch,
  parseDnsServer,
  parseHostname,
  parseIpSpec,
  parseMac,
  parseMacvlanMode,
  parseMtu,
  parseRemotes,
  parseRouteSpec,
  parseSysctlSetting,
  parseTrunks,
  parseUdpPort,
  parseVid,
  parseVni,
  validateIfname,
} from '../parse/index.js'
import type { IpSpec } from '../parse/index.js'
import { parseChecks, parseNat } from './parse-extras.js'
import { Reader, closest } from './read.js'
import type { Path } from './read.js'
import { loadSource } from './source.js'
import type { Lab, LabEndpoint, LabLink, LabNode, NamesSpec, NodeKind } from './types.js'
import { runtimeName } from './names.js'

const KINDS: readonly NodeKind[] = ['linux', 'netns', 'bridge', 'ovs-bridge']
/** Names an endpoint gives special meaning to (containerlab's); no node may take them. */
const SPECIAL_NODES = ['host', 'macvlan', 'mgmt-net']

// What a node (or defaults/kinds/groups entry) may say. containerlab's fields that do nothing for
// a plain Linux container on --net=none are accepted and reported as ignored.
const NODE_FIELDS = ['kind', 'group', 'image', 'cmd', 'entrypoint', 'env', 'binds', 'user', 'labels', 'exec', 'network-mode', 'sysctls', 'names', 'container', 'ips'] as const
const CLAB_IGNORED = [
  'type', 'startup-config', 'startup-delay', 'enforce-startup-config', 'suppress-startup-config', 'auto-remove', 'license', 'ports', 'publish',
  'mgmt-ipv4', 'mgmt-ipv6', 'runtime', 'cpu', 'cpu-set', 'memory', 'shm-size', 'cap-add', 'devices', 'dns', 'healthcheck', 'wait-for', 'certificate',
  'stages', 'extras', 'config', 'sandbox', 'kernel', 'restart-policy', 'image-pull-policy', 'env-files', 'components', 'aliases', 'position', 'image-pull-secret',
]
const TOP_FIELDS = ['name', 'prefix', 'topology', 'nat', 'checks']
const TOP_IGNORED = ['mgmt', 'settings', 'debug']
const TOPOLOGY_FIELDS = ['defaults', 'kinds', 'groups', 'nodes', 'links']

/** Parse and validate a lab file's text. `file` names it in messages. */
export function parseLab(text: string, file = 'lab.yml'): Lab {
  const src = loadSource(text, file)
  const r = new Reader(src)
  const top = r.map(src.value, [], 'a mapping (name:, topology:, ...)')
  const ignored: string[] = []
  r.fields(top, [], TOP_FIELDS, TOP_IGNORED, ignored)
  if (top.name === undefined) r.fail([], 'the lab has no name', 'add name: LAB at the top ([A-Za-z0-9_-]+)')
  const name = r.str(top.name, ['name'])
  if (!/^[A-Za-z0-9_-]+$/.test(name)) r.fail(['name'], `invalid lab name "${name}"`, 'a lab name is [A-Za-z0-9_-]+ (it goes into container names and plumb\'s marks)')
  const prefix = top.prefix === undefined ? undefined : top.prefix === null ? '' : r.str(top.prefix, ['prefix'])
  if (prefix !== undefined && prefix !== '' && prefix !== '__lab-name' && !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(prefix)) {
    r.fail(['prefix'], `invalid prefix "${prefix}"`, 'a prefix is [A-Za-z0-9][A-Za-z0-9_.-]* (it starts container names), "" for none, or __lab-name')
  }
  if (top.topology === undefined) r.fail([], 'the lab has no topology', 'add topology: with nodes: (and links:)')
  const topo = r.map(top.topology, ['topology'])
  r.fields(topo, ['topology'], TOPOLOGY_FIELDS)

  const nodes = parseNodes(r, topo, name, prefix, ignored)
  const links = parseLinks(r, topo, nodes, ignored)
  const nat = parseNat(r, top.nat, nodes, name)
  const checks = parseChecks(r, top.checks, nodes)
  // Structure first (exit 2), then what this host cannot deploy (exit 5).
  const first = r.unsupported.values().next()
  if (!first.done) throw first.value
  return { name, file, ...(prefix !== undefined ? { prefix } : {}), nodes: [...nodes.values()], links, nat, checks, ignored }
}

interface Layer {
  def: Record<string, unknown>
  at: Path
}

function parseNodes(r: Reader, topo: Record<string, unknown>, lab: string, prefix: string | undefined, ignored: string[]): Map<string, LabNode> {
  const defaults: Layer = { def: r.optMap(topo.defaults, ['topology', 'defaults']), at: ['topology', 'defaults'] }
  const table = (key: 'kinds' | 'groups'): Map<string, Layer> => {
    const m = new Map<string, Layer>()
    for (const [k, v] of Object.entries(r.optMap(topo[key], ['topology', key]))) m.set(k, { def: r.optMap(v, ['topology', key, k]), at: ['topology', key, k] })
    return m
  }
  const kinds = table('kinds')
  const groups = table('groups')
  for (const l of [defaults, ...kinds.values(), ...groups.values()]) r.fields(l.def, l.at, NODE_FIELDS, CLAB_IGNORED, ignored)

  if (topo.nodes === undefined) r.fail(['topology'], 'the topology has no nodes', 'add topology.nodes: with at least one node')
  const rawNodes = r.map(topo.nodes, ['topology', 'nodes'], 'a mapping of node names')
  const nodes = new Map<string, LabNode>()
  for (const [nodeName, raw] of Object.entries(rawNodes)) {
    const at: Path = ['topology', 'nodes', nodeName]
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(nodeName)) r.fail(at, `invalid node name "${nodeName}"`, 'a node name is [A-Za-z0-9][A-Za-z0-9_.-]* (it appears in endpoints as NODE:IFNAME)')
    if (SPECIAL_NODES.includes(nodeName)) r.fail(at, `"${nodeName}" cannot name a node`, `"${nodeName}:IFNAME" in an endpoint has its own meaning (containerlab's)`)
    const own: Layer = { def: r.optMap(raw, at), at }
    r.fields(own.def, at, NODE_FIELDS, CLAB_IGNORED, ignored)
    // containerlab: kind = node > its group's > the default group's > defaults; group = node > its kind's > defaults.
    const groupName = (l: Layer): string | undefined => (l.def.group === undefined ? undefined : r.str(l.def.group, [...l.at, 'group']))
    const groupOf = (g: string | undefined, from: Path): Layer | undefined => {
      if (g === undefined) return undefined
      const found = groups.get(g)
      if (!found) r.fail([...from, 'group'], `no group "${g}" in topology.groups`, hintFor(g, groups.keys()))
      return found
    }
    const kindText = (l: Layer | undefined): string | undefined => (l?.def.kind === undefined ? undefined : r.str(l.def.kind, [...l.at, 'kind']))
    const kind =
      kindText(own) ?? kindText(groupOf(groupName(own), at)) ?? kindText(groupOf(groupName(defaults), defaults.at)) ?? kindText(defaults)
    if (kind === undefined) r.fail(at, `node "${nodeName}" has no kind`, 'give it kind: linux (or netns, bridge, ovs-bridge), or set topology.defaults.kind')
    const kindLayer = kinds.get(kind)
    const group = groupName(own) ?? (kindLayer ? groupName(kindLayer) : undefined) ?? groupName(defaults)
    const layers = [defaults, kindLayer, groupOf(group, group === groupName(own) ? at : group === groupName(defaults) ? defaults.at : kindLayer!.at), own].filter((l): l is Layer => l !== undefined)
    if (!(KINDS as readonly string[]).includes(kind)) {
      const where = kindText(own) !== undefined ? [...at, 'kind'] : at
      const near = closest(kind, KINDS)
      r.unsupported.set(
        nodeName,
        unsupported(
          r.src.fail(where, `kind "${kind}" is not supported`).message,
          `${near ? `did you mean "${near}"? ` : ''}plumb deploys linux (containers), netns, bridge and ovs-bridge nodes; run the others with containerlab`,
        ),
      )
      continue
    }
    nodes.set(nodeName, mergeNode(r, nodeName, kind as NodeKind, layers, lab, prefix))
  }
  // network-mode container:NODE names another node of the lab.
  for (const n of nodes.values()) {
    if (!n.networkMode.startsWith('container:')) continue
    const other = n.networkMode.slice('container:'.length)
    const o = nodes.get(other)
    if (o) {
      if (o.kind !== 'linux') r.fail([...n.at, 'network-mode'], `"${other}" is a ${o.kind} node, not a container`, 'network-mode container:NODE shares the netns of another linux node')
      n.sharesWith = other
      n.networkMode = `container:${o.runtime}`
    }
  }
  return nodes
}

const hintFor = (word: string, known: Iterable<string>): string => {
  const near = closest(word, known)
  return near ? `did you mean "${near}"?` : `known: ${[...known].join(', ') || '(none)'}`
}

/** Split a command line the way containerlab does (a shell's quoting, no expansion). */
export function shellWords(s: string): string[] {
  const words: string[] = []
  let cur = ''
  let inWord = false
  let quote: '"' | "'" | undefined
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!
    if (quote) {
      if (c === quote) quote = undefined
      else if (c === '\\' && quote === '"' && i + 1 < s.length && '"\\$`'.includes(s[i + 1]!)) cur += s[++i]
      else cur += c
    } else if (c === '"' || c === "'") {
      quote = c
      inWord = true
    } else if (c === '\\' && i + 1 < s.length) {
      cur += s[++i]
      inWord = true
    } else if (/\s/.test(c)) {
      if (inWord) words.push(cur)
      cur = ''
      inWord = false
    } else {
      cur += c
      inWord = true
    }
  }
  if (quote) throw new PlumbError('USAGE', `unterminated ${quote === '"' ? 'double' : 'single'} quote in "${s}"`, { hint: 'close the quote' })
  if (inWord) words.push(cur)
  return words
}

function mergeNode(r: Reader, name: string, kind: NodeKind, layers: Layer[], lab: string, prefix: string | undefined): LabNode {
  const at: Path = ['topology', 'nodes', name]
  // The most specific layer that sets a field wins; maps merge; exec and binds append (containerlab's rules).
  const last = <T>(field: string, read: (v: unknown, path: Path) => T): T | undefined => {
    let out: T | undefined
    for (const l of layers) if (l.def[field] !== undefined && l.def[field] !== null) out = read(l.def[field], [...l.at, field])
    return out
  }
  const merged = (field: string): Record<string, string> => Object.assign({}, ...layers.map((l) => (l.def[field] == null ? {} : r.stringMap(l.def[field], [...l.at, field]))))
  const appended = (field: string): string[] => layers.flatMap((l) => (l.def[field] == null ? [] : r.strings(l.def[field], [...l.at, field])))
  const argv = (v: unknown, path: Path): string[] => (typeof v === 'string' ? r.parse(path, () => shellWords(v)) : r.strings(v, path, 'a string or a list of strings'))

  const container = last('container', (v, p) => r.str(v, p, 'a container name'))
  if (container !== undefined && !/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(container)) r.fail([...at, 'container'], `invalid container name "${container}"`, 'container names match [a-zA-Z0-9][a-zA-Z0-9_.-]*')
  const node: LabNode = {
    name,
    kind,
    at: formatNodeAt(name),
    runtime: kind === 'bridge' || kind === 'ovs-bridge' ? name : (container ?? runtimeName(lab, prefix, name)),
    existing: container !== undefined,
    env: merged('env'),
    binds: appended('binds'),
    labels: merged('labels'),
    networkMode: last('network-mode', (v, p) => r.str(v, p)) ?? 'none',
    exec: appended('exec'),
    sysctls: merged('sysctls'),
    ips: [],
  }
  const image = last('image', (v, p) => r.str(v, p, 'an image name'))
  if (image !== undefined) node.image = image
  const cmd = last('cmd', argv)
  if (cmd !== undefined) node.cmd = cmd
  const entrypoint = last('entrypoint', argv)
  if (entrypoint !== undefined) node.entrypoint = entrypoint
  const user = last('user', (v, p) => r.scalar(v, p))
  if (user !== undefined) node.user = user
  const names = last('names', (v, p) => parseNames(r, v, p))
  if (names !== undefined) node.names = names
  const ips = last('ips', (v, p) => r.strings(v, p))

  const guest = kind === 'linux' || kind === 'netns'
  const onlyFor = (field: string, ok: boolean, why: string): void => {
    if (ok) return
    const l = [...layers].reverse().find((x) => x.def[field] != null && (x.at.length === 3 && x.at[1] === 'nodes'))
    if (l) r.fail([...l.at, field], `a ${kind} node takes no ${field}`, why)
  }
  onlyFor('image', kind === 'linux', 'only linux nodes are containers')
  onlyFor('cmd', kind === 'linux', 'only linux nodes are containers')
  onlyFor('container', kind === 'linux', 'only linux nodes are containers')
  onlyFor('exec', guest, 'exec runs inside a linux or netns node')
  onlyFor('sysctls', guest, "sysctls are set in a linux or netns node's netns")
  onlyFor('names', kind === 'linux' || kind === 'netns', 'names edits a guest\'s /etc files')
  onlyFor('network-mode', kind === 'linux', 'only linux nodes are containers')
  onlyFor('ips', kind === 'bridge', "ips: on a node are the host's addresses on a bridge; a guest's addresses go on its link endpoints")
  if (!guest) {
    // Defaults and kinds apply to every node: what a bridge cannot take from them is simply not its.
    node.exec = []
    node.sysctls = {}
    node.env = {}
    node.binds = []
    node.labels = {}
    delete node.names
  }
  if (node.existing) {
    // A container the lab did not start: what it runs is not the lab's to say.
    delete node.image
    delete node.cmd
    delete node.entrypoint
    delete node.user
  }
  if (kind === 'linux') {
    if (!node.existing && node.image === undefined) r.fail(at, `linux node "${name}" has no image`, 'give it image: (or topology.defaults.image), or container: NAME to use a running container')
    if (!/^(none|host|bridge|container:.+)$/.test(node.networkMode)) {
      r.fail([...at, 'network-mode'], `invalid network-mode "${node.networkMode}"`, 'none (the default), host, bridge, or container:NODE')
    }
  } else {
    delete node.image
    delete node.cmd
    delete node.entrypoint
    delete node.user
    node.networkMode = 'none'
  }
  if (kind === 'bridge' || kind === 'ovs-bridge') r.parse(at, () => validateIfname(name, `${kind} node name (it is the bridge's name)`))
  if (kind === 'bridge' && ips) {
    node.ips = ips.map((s, i) => {
      const ip = r.parse([...at, 'ips', i], () => parseIpSpec(s))
      if (ip.kind !== 'static') r.fail([...at, 'ips', i], "a bridge's address is static", 'give ADDR/PREFIX')
      if (ip.gateway) r.fail([...at, 'ips', i], "a bridge's address takes no @gateway", "the host's routes are not the lab's to change")
      return ip.cidr
    })
  }
  if (kind === 'netns' && (/[/\s]/.test(node.runtime) || node.runtime === '.' || node.runtime === '..')) r.fail(at, `"${node.runtime}" cannot be an ip netns name`)
  // Per-netns keys only (plumb sysctl's own check): a node's sysctls must never change the host's.
  for (const [key, value] of Object.entries(node.sysctls)) r.parse([...at, 'sysctls', key], () => parseSysctlSetting(`${key}=${value}`))
  if (node.names?.hostname !== undefined && kind === 'netns') r.fail([...at, 'names', 'hostname'], 'an ip netns has no hostname of its own (it shares the host\'s UTS namespace)', 'give it add-host/dns only, or make the node a container')
  return node
}

function formatNodeAt(name: string): string {
  return /^[A-Za-z_][A-Za-z0-9_-]*$/.test(name) ? `topology.nodes.${name}` : `topology.nodes[${JSON.stringify(name)}]`
}

/** `names:` as `plumb names` takes it, checked by the same parsers. */
function parseNames(r: Reader, v: unknown, at: Path): NamesSpec {
  const m = r.map(v, at)
  r.fields(m, at, ['hostname', 'add-host', 'dns', 'dns-search', 'dns-option'])
  const out: NamesSpec = { addHost: [], dns: [], dnsSearch: [], dnsOption: [] }
  const each = (field: string, parse: (s: string) => unknown): string[] => {
    if (m[field] === undefined) return []
    const list = r.strings(m[field], [...at, field])
    list.forEach((s, i) => r.parse(typeof m[field] === 'string' ? [...at, field] : [...at, field, i], () => parse(s)))
    return list
  }
  if (m.hostname !== undefined) out.hostname = r.parse([...at, 'hostname'], () => parseHostname(r.str(m.hostname, [...at, 'hostname'])))
  out.addHost = each('add-host', parseAddHost)
  out.dns = each('dns', parseDnsServer)
  out.dnsSearch = each('dns-search', parseDnsSearch)
  out.dnsOption = each('dns-option', parseDnsOption)
  return out
}

const LINK_FIELDS = ['endpoints', 'endpoint', 'type', 'mtu', 'ips', 'host-interface', 'mode', 'remote', 'vni', 'udp-port', 'dstport', 'local', 'dev']
const LINK_IGNORED = ['labels', 'vars']
const ENDPOINT_FIELDS = ['node', 'interface', 'mac', 'ips', 'routes', 'vlan', 'trunks']

interface RawEndpoint {
  node: string
  ifname: string
  at: Path
  def?: Record<string, unknown>
  /** brief form: the link-level ips entry for this endpoint */
  ips?: unknown
  ipsAt?: Path
}

function parseLinks(r: Reader, topo: Record<string, unknown>, nodes: Map<string, LabNode>, ignored: string[]): LabLink[] {
  if (topo.links === undefined || topo.links === null) return []
  const raw = r.list(topo.links, ['topology', 'links'])
  const links: LabLink[] = []
  /** netns-or-host key + ifname -> where it was first used */
  const used = new Map<string, string>()
  const addresses = new Map<string, string>()
  raw.forEach((item, i) => {
    const at: Path = ['topology', 'links', i]
    const m = r.map(item, at, 'a link (endpoints: [...])')
    r.fields(m, at, LINK_FIELDS, LINK_IGNORED, ignored)
    const link = parseLink(r, m, at, nodes)
    for (const ep of endpointsOf(link)) claim(r, ep, nodes, used, addresses)
    links.push(link)
  })
  return links
}

function endpointsOf(l: LabLink): LabEndpoint[] {
  if (l.kind === 'vxlan') return []
  if (l.kind === 'macvlan') return [l.a]
  return [l.a, l.b]
}

/** The namespace an endpoint's interface lives in: a guest's (shared netns followed) or the host's. */
function nsKey(ep: LabEndpoint, nodes: Map<string, LabNode>): string {
  let n = nodes.get(ep.node)
  if (!n || n.kind === 'bridge' || n.kind === 'ovs-bridge') return 'host'
  for (let i = 0; n.sharesWith && i < 16; i++) n = nodes.get(n.sharesWith)!
  return `node:${n.name}`
}

/** Where each endpoint's addresses are written: on the endpoint (extended form) or in the link's `ips:` (brief form). */
const ipsPaths = new WeakMap<LabEndpoint, { at: Path; single: boolean }>()
/** The path of an endpoint's `ips` (or of its entry `i`). */
function ipsPath(ep: LabEndpoint, i?: number): Path {
  const p = ipsPaths.get(ep) ?? { at: pathOf(ep.at, 'ips'), single: false }
  return i === undefined || p.single ? p.at : [...p.at, i]
}

function claim(r: Reader, ep: LabEndpoint, nodes: Map<string, LabNode>, used: Map<string, string>, addresses: Map<string, string>): void {
  const path = pathOf(ep.at)
  const key = `${nsKey(ep, nodes)}/${ep.ifname}`
  const first = used.get(key)
  if (first) {
    const where = key.startsWith('host/') ? 'on the host' : `in ${ep.node}`
    r.fail(path, `interface "${ep.ifname}" ${where} is already used by ${first}`, 'an endpoint can be used by one link only: give this one another interface name')
  }
  used.set(key, ep.at)
  ep.ips.forEach((s, i) => {
    if (s === 'dhcp') return
    const ip = parseIpSpec(s)
    if (ip.kind !== 'static') return
    const p = ipsPath(ep, i)
    const prev = addresses.get(ip.address)
    if (prev) r.fail(p, `address ${ip.address} is already given at ${prev}`, 'every address in a lab must be unique')
    addresses.set(ip.address, formatAt(p))
  })
}

function parseLink(r: Reader, m: Record<string, unknown>, at: Path, nodes: Map<string, LabNode>): LabLink {
  const type = m.type === undefined ? undefined : r.str(m.type, [...at, 'type'])
  const mtu = m.mtu === undefined ? undefined : r.parse([...at, 'mtu'], () => parseMtu(m.mtu as string | number))
  const base = { at: formatAt(at), ...(mtu !== undefined ? { mtu } : {}) }
  if (type === undefined) {
    // containerlab's brief form: endpoints: ["node:if", "node:if"], with plumb's `ips:` per endpoint.
    if (m.endpoints === undefined) r.fail(at, 'a link needs endpoints: ["NODE:IFNAME", "NODE:IFNAME"] (or type: and the extended form)')
    const eps = r.list(m.endpoints, [...at, 'endpoints'], 'a list of two "NODE:IFNAME" strings')
    if (eps.length !== 2) r.fail([...at, 'endpoints'], `a link has two endpoints, this one has ${eps.length}`)
    let ips: unknown[] = []
    if (m.ips !== undefined) {
      ips = r.list(m.ips, [...at, 'ips'], 'a list with one entry per endpoint (null for none)')
      if (ips.length > 2) r.fail([...at, 'ips'], `ips has ${ips.length} entries for 2 endpoints`, 'one entry per endpoint, in order (null for none)')
    }
    for (const f of ['host-interface', 'mode', 'remote', 'vni', 'endpoint']) if (m[f] !== undefined) r.fail([...at, f], `"${f}" belongs to the extended form`, 'add type: (veth, host, macvlan, vxlan) and write the endpoints as mappings')
    const raws = eps.map((e, i): RawEndpoint => {
      const p: Path = [...at, 'endpoints', i]
      const s = r.str(e, p, 'a "NODE:IFNAME" string')
      const colon = s.indexOf(':')
      if (colon <= 0 || colon === s.length - 1) r.fail(p, `"${s}" is not NODE:IFNAME`, 'e.g. "web:eth1"')
      return { node: s.slice(0, colon), ifname: s.slice(colon + 1), at: p, ...(ips[i] !== undefined ? { ips: ips[i], ipsAt: [...at, 'ips', i] } : {}) }
    })
    if (raws.some((e) => e.node === 'mgmt-net')) throw unsupported(r.src.fail(at, 'mgmt-net endpoints are not supported').message, "plumb has no management network: put the node on a bridge node of the lab")
    const mv = raws.findIndex((e) => e.node === 'macvlan')
    if (mv >= 0) {
      // containerlab: "macvlan:PARENT" makes the other endpoint a macvlan child of the host's PARENT.
      const guestEp = endpoint(r, raws[1 - mv]!, nodes, 'guest')
      const parent = r.parse(raws[mv]!.at, () => validateIfname(raws[mv]!.ifname, 'macvlan parent'))
      return { ...base, kind: 'macvlan', a: guestEp, parent, mode: 'bridge' }
    }
    return veth(r, raws, base, at, nodes)
  }
  switch (type) {
    case 'veth': {
      if (m.endpoints === undefined) r.fail(at, 'a veth link needs endpoints: [{node, interface}, {node, interface}]')
      const eps = r.list(m.endpoints, [...at, 'endpoints'])
      if (eps.length !== 2) r.fail([...at, 'endpoints'], `a veth link has two endpoints, this one has ${eps.length}`)
      if (m.ips !== undefined) r.fail([...at, 'ips'], 'in the extended form, ips go on each endpoint', 'endpoints: [{node: web, interface: eth1, ips: [...]}, ...]')
      return veth(r, eps.map((e, i) => extendedEndpoint(r, e, [...at, 'endpoints', i])), base, at, nodes)
    }
    case 'host': {
      const ep = singleEndpoint(r, m, at)
      if (m['host-interface'] === undefined) r.fail(at, 'a host link needs host-interface: (the host end\'s name)')
      const hostIf = r.str(m['host-interface'], [...at, 'host-interface'])
      return veth(r, [ep, { node: 'host', ifname: hostIf, at: [...at, 'host-interface'] }], base, at, nodes)
    }
    case 'macvlan': {
      const ep = singleEndpoint(r, m, at)
      if (m['host-interface'] === undefined) r.fail(at, 'a macvlan link needs host-interface: (the parent NIC on the host)')
      const parent = r.parse([...at, 'host-interface'], () => validateIfname(r.str(m['host-interface'], [...at, 'host-interface']), 'macvlan parent'))
      const mode = m.mode === undefined ? 'bridge' : r.parse([...at, 'mode'], () => parseMacvlanMode(r.str(m.mode, [...at, 'mode'])))
      return { ...base, kind: 'macvlan', a: endpoint(r, ep, nodes, 'guest'), parent, mode }
    }
    case 'vxlan': {
      const ep = singleEndpoint(r, m, at)
      const n = nodes.get(ep.node)
      if (!n) r.unknownNode(ep.node, ep.at, hintFor(ep.node, nodes.keys()))
      if (n.kind !== 'bridge') r.fail(ep.at, `a vxlan link joins a bridge node to the other hosts' bridges; "${ep.node}" is a ${n.kind} node`, 'put the node on a bridge node and give the vxlan link that bridge as its endpoint')
      if (m.vni === undefined) r.fail(at, 'a vxlan link needs vni:')
      if (m.remote === undefined) r.fail(at, 'a vxlan link needs remote: (the other hosts\' addresses)')
      // plumb vxlan's own parsers: a VNI, remotes of one family (and the local address of it)
      const vni = r.parse([...at, 'vni'], () => parseVni(r.scalar(m.vni, [...at, 'vni'])))
      const local = m.local === undefined ? undefined : r.str(m.local, [...at, 'local'])
      const remote = r.parse([...at, 'remote'], () => parseRemotes(r.strings(m.remote, [...at, 'remote']), local).remotes)
      const portField = m['udp-port'] !== undefined ? 'udp-port' : 'dstport'
      const port = m[portField] === undefined ? undefined : r.parse([...at, portField], () => parseUdpPort(r.scalar(m[portField], [...at, portField]), portField))
      const dev = m.dev === undefined ? undefined : r.parse([...at, 'dev'], () => validateIfname(r.str(m.dev, [...at, 'dev']), 'underlay device'))
      return {
        ...base,
        kind: 'vxlan',
        bridge: ep.node,
        vni,
        remote,
        ...(port !== undefined ? { dstport: port } : {}),
        ...(local !== undefined ? { local } : {}),
        ...(dev !== undefined ? { dev } : {}),
      }
    }
    case 'mgmt-net':
    case 'dummy':
    case 'vxlan-stitch':
      throw unsupported(r.src.fail([...at, 'type'], `link type "${type}" is not supported`).message, 'plumb deploys veth, host, macvlan and vxlan links')
    default:
      return r.fail([...at, 'type'], `unknown link type "${type}"`, hintFor(type, ['veth', 'host', 'macvlan', 'vxlan']))
  }
}

function formatAt(at: Path): string {
  return at.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('')
}

function singleEndpoint(r: Reader, m: Record<string, unknown>, at: Path): RawEndpoint {
  // containerlab writes `endpoint:` (one mapping) for host/macvlan/vxlan links; a one-item `endpoints:` list is accepted too.
  if (m.endpoint !== undefined) return extendedEndpoint(r, m.endpoint, [...at, 'endpoint'])
  if (m.endpoints !== undefined) {
    const eps = r.list(m.endpoints, [...at, 'endpoints'])
    if (eps.length !== 1) r.fail([...at, 'endpoints'], `this link type has one endpoint, not ${eps.length}`, 'write endpoint: {node: NODE, interface: IFNAME}')
    return extendedEndpoint(r, eps[0], [...at, 'endpoints', 0])
  }
  return r.fail(at, 'this link needs endpoint: {node: NODE, interface: IFNAME}')
}

function extendedEndpoint(r: Reader, v: unknown, at: Path): RawEndpoint {
  const m = r.map(v, at, 'an endpoint mapping {node, interface, ...}')
  r.fields(m, at, ENDPOINT_FIELDS)
  if (m.node === undefined) r.fail(at, 'the endpoint has no node')
  const node = r.str(m.node, [...at, 'node'])
  const ifname = m.interface === undefined ? '' : r.str(m.interface, [...at, 'interface'])
  return { node, ifname, at, def: m }
}

type Role = 'guest' | 'any'

function endpoint(r: Reader, raw: RawEndpoint, nodes: Map<string, LabNode>, role: Role): LabEndpoint {
  const n = raw.node === 'host' ? undefined : nodes.get(raw.node)
  if (raw.node !== 'host' && !n) r.unknownNode(raw.node, raw.def ? [...raw.at, 'node'] : raw.at, hintFor(raw.node, [...nodes.keys(), 'host']))
  const guest = n !== undefined && (n.kind === 'linux' || n.kind === 'netns')
  if (role === 'guest' && !guest) r.fail(raw.at, `"${raw.node}" is ${n ? `a ${n.kind} node` : 'the host'}: this endpoint must be a linux or netns node`)
  if (n?.networkMode === 'host') r.fail(raw.at, `node "${raw.node}" uses the host's network (network-mode host): plumb links never go into the host's own namespace`)
  if (raw.ifname === '') r.fail(raw.def ? raw.at : raw.at, 'the endpoint has no interface', 'give interface: IFNAME')
  const ifAt: Path = raw.def ? [...raw.at, 'interface'] : raw.at
  const what = guest ? 'interface name' : raw.node === 'host' ? "host interface name (the host end)" : `host end name on ${n!.kind} ${n!.name}`
  const ifname = r.parse(ifAt, () => validateIfname(raw.ifname, what))
  const ep: LabEndpoint = { node: raw.node, ifname, ips: [], routes: [], at: formatAt(raw.at) }
  const d = raw.def ?? {}
  const ipsValue = raw.def ? d.ips : raw.ips
  const ipsAt = raw.def ? [...raw.at, 'ips'] : (raw.ipsAt ?? raw.at)
  ipsPaths.set(ep, { at: ipsAt, single: typeof ipsValue === 'string' })
  if (ipsValue !== undefined && ipsValue !== null) {
    ep.ips = r.strings(ipsValue, ipsAt, 'an IP spec or a list of them').map((s, i) => {
      const p = typeof ipsValue === 'string' ? ipsAt : [...ipsAt, i]
      const ip: IpSpec = r.parse(p, () => parseIpSpec(s))
      return ip.kind === 'dhcp' ? 'dhcp' : `${ip.cidr}${ip.gateway ? `@${ip.gateway}` : ''}`
    })
  }
  if (d.routes !== undefined) ep.routes = r.strings(d.routes, [...raw.at, 'routes']).map((s, i) => (r.parse([...raw.at, 'routes', i], () => parseRouteSpec(s)), s))
  if (d.mac !== undefined) {
    const mac = r.str(d.mac, [...raw.at, 'mac'])
    r.parse([...raw.at, 'mac'], () => parseMac(mac))
    ep.mac = mac
  }
  if (d.vlan !== undefined) ep.vlan = r.parse([...raw.at, 'vlan'], () => parseVid(d.vlan as number))
  if (d.trunks !== undefined) {
    const t = d.trunks
    ep.trunks = Array.isArray(t) ? t.map((x, i) => r.parse([...raw.at, 'trunks', i], () => parseVid(x as number))) : r.parse([...raw.at, 'trunks'], () => parseTrunks(r.scalar(t, [...raw.at, 'trunks'])))
    if (ep.vlan !== undefined) r.fail([...raw.at, 'trunks'], 'vlan (an access port) and trunks (a trunk port) exclude each other')
  }
  const onlyOvs = ep.vlan !== undefined || ep.trunks !== undefined
  if (onlyOvs && n?.kind !== 'ovs-bridge') r.fail([...raw.at, ep.vlan !== undefined ? 'vlan' : 'trunks'], `vlan/trunks belong on an ovs-bridge endpoint; "${raw.node}" is ${n ? `a ${n.kind} node` : 'the host'}`)
  if (!guest) {
    if (ep.routes.length) r.fail([...raw.at, 'routes'], `routes belong on a guest's endpoint, not on ${raw.node === 'host' ? 'the host' : `${n!.kind} ${n!.name}`}`)
    if (ep.mac !== undefined && raw.node !== 'host') r.fail([...raw.at, 'mac'], 'the host end of a bridge port takes no mac: give the guest side one')
    if (ep.ips.length && raw.node !== 'host') r.fail(ipsAt, `a port of ${n!.kind} ${n!.name} takes no address`, n!.kind === 'bridge' ? "give the bridge node ips: for the host's address on it" : 'give the addresses to the guest side')
  }
  return ep
}

function veth(r: Reader, raws: RawEndpoint[], base: { at: string; mtu?: number }, at: Path, nodes: Map<string, LabNode>): LabLink {
  const [e0, e1] = raws.map((raw) => endpoint(r, raw, nodes, 'any')) as [LabEndpoint, LabEndpoint]
  const isGuest = (e: LabEndpoint): boolean => ['linux', 'netns'].includes(nodes.get(e.node)?.kind ?? '')
  if (!isGuest(e0) && !isGuest(e1)) {
    r.fail(at, `a link between ${describe(e0, nodes)} and ${describe(e1, nodes)}: one side must be a linux or netns node`)
  }
  // The guest side is `a`; a bridge or the host is `b`.
  const [a, b] = isGuest(e0) ? [e0, e1] : [e1, e0]
  const bNode = nodes.get(b.node)
  const kind = b.node === 'host' ? 'host' : bNode!.kind === 'bridge' ? 'bridge' : bNode!.kind === 'ovs-bridge' ? 'ovs' : 'p2p'
  if (kind === 'p2p' || kind === 'host') {
    for (const e of kind === 'p2p' ? [a, b] : [a]) {
      const i = e.ips.indexOf('dhcp')
      if (i >= 0) r.fail(ipsPath(e), 'dhcp needs a DHCP server on the link: put this endpoint on a bridge', 'a point-to-point link has only the two ends')
    }
    for (const [i, s] of b.ips.entries()) {
      const ip = parseIpSpec(s)
      if (kind === 'host' && ip.kind === 'static' && ip.gateway) r.fail(ipsPath(b, i), "the host end's address takes no @gateway", "the host's default route is not the lab's to change")
    }
  }
  if (kind === 'bridge' || kind === 'ovs') {
    if (a.ips.filter((s) => s === 'dhcp').length > 1) r.fail(ipsPath(a), 'dhcp given twice')
  }
  return { ...base, kind, a, b } as LabLink
}

function pathOf(at: string, ...more: Array<string | number>): Path {
  const parts: Array<string | number> = at.split(/\.|(?=\[)/).map((p) => (p.startsWith('[') ? Number(p.slice(1, -1)) : p))
  return [...parts, ...more]
}

function describe(e: LabEndpoint, nodes: Map<string, LabNode>): string {
  const n = nodes.get(e.node)
  return n ? `${n.kind} ${n.name}` : 'the host'
}
