// The CNI plugin's input, validated before anything is touched: the CNI_* environment and the
// network config on stdin (`type: plumb`, `op` and the op's own options, ipam, runtimeConfig,
// prevResult, GC's attachment list). Pure: no I/O; table-tested in test/unit/cni-config.test.ts.

import { validateIfname } from '../parse/index.js'
import { PlumbError } from '../errors.js'
import { CNI_CODES, CniError } from './errors.js'

/** The spec versions plumb speaks, oldest first (0.3.1: chaining; 0.4.0: CHECK; 1.1.0: GC, STATUS). */
export const SUPPORTED_VERSIONS = ['0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const
export type CniVersion = (typeof SUPPORTED_VERSIONS)[number]
export const COMMANDS = ['ADD', 'DEL', 'CHECK', 'VERSION', 'STATUS', 'GC'] as const
export type CniCommand = (typeof COMMANDS)[number]

/** Where plumb keeps one record per attachment (see ./records.ts), as host-local keeps /var/lib/cni/networks. */
export const DEFAULT_DATA_DIR = '/var/lib/cni/plumb'

export interface CniEnv {
  command: CniCommand
  /** ADD, DEL, CHECK */
  containerId?: string
  /** ADD, CHECK; DEL may have none (containerd sends '' once the task is gone) */
  netns?: string
  /** ADD, DEL, CHECK */
  ifname?: string
  /** CNI_ARGS as key=value pairs (plumb uses none of them; they are parsed only to be refused when malformed) */
  args: Record<string, string>
  /** CNI_PATH: where delegated (IPAM) plugins are looked up, in order */
  path: string[]
}

export type OpConfig =
  | { op: 'attach-veth'; bridge: string; mtu?: number; mac?: string; firewall?: boolean }
  | { op: 'ovs-port'; bridge: string; mtu?: number; mac?: string; tag?: number; trunks?: number[]; createBridge?: boolean }
  | { op: 'macvlan'; parent: string; mtu?: number; mac?: string; mode?: string }
  | { op: 'vlan'; parent: string; vid: number; mtu?: number; mac?: string }
  | { op: 'move-dev'; device: string }

export type OpName = OpConfig['op']

export interface PortMapping {
  hostPort: number
  containerPort: number
  protocol: 'tcp' | 'udp'
  hostIP?: string
}

export interface Attachment {
  containerID: string
  ifname: string
}

export interface NetConf {
  cniVersion: CniVersion
  name: string
  type: string
  op: OpConfig
  /** the guest interface's name when it is not CNI_IFNAME (a plumb after another plugin in a chain) */
  ifname?: string
  /** the delegated IPAM section, as given */
  ipam?: { type: string } & Record<string, unknown>
  /** the config's own `dns`, returned when IPAM gives none */
  dns?: Record<string, unknown>
  runtimeConfig: { portMappings: PortMapping[]; mac?: string; ips: string[] }
  /** as given: its cniVersion is the config's (the runtime converts it) */
  prevResult?: unknown
  /** GC: the attachments the runtime still knows (`cni.dev/valid-attachments`, or the older `cni.dev/attachments`) */
  validAttachments?: Attachment[]
  dataDir: string
  /** each step on stderr, with its time */
  verbose: boolean
  /** the whole config object, for delegating it to the IPAM plugin */
  raw: Record<string, unknown>
}

const invalid = (msg: string, details = ''): CniError => new CniError(CNI_CODES.INVALID_CONFIG, msg, details)
const unsupportedField = (msg: string, details = ''): CniError => new CniError(CNI_CODES.UNSUPPORTED_FIELD, msg, details)
const badEnv = (msg: string, details = ''): CniError => new CniError(CNI_CODES.INVALID_ENV, msg, details)

// CNI's own rule for container ids and network names (libcni's ValidateContainerID/NetworkName).
const ID = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/

/** A well-formed version string compared numerically: '1.0.0' > '0.4.0'. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number)
  const pb = b.split('.').map(Number)
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0)
    if (d !== 0) return d
  }
  return 0
}

const isVersion = (v: unknown): v is string => typeof v === 'string' && /^\d+\.\d+\.\d+$/.test(v)

/** The spec's interface-name rule (CNI_IFNAME) on top of the kernel's. */
function cniIfname(s: string, what: string, mk: (m: string, d?: string) => CniError): string {
  if (/[/:\s]/.test(s)) throw mk(`${what} "${s}" contains "/", ":" or whitespace`, 'the CNI spec forbids them in interface names')
  try {
    return validateIfname(s, what)
  } catch (err) {
    throw err instanceof PlumbError ? mk(err.message, err.hint ?? '') : err
  }
}

/** The CNI_* variables the command needs, or error 4 naming the missing ones. */
export function parseEnv(env: Record<string, string | undefined>): CniEnv {
  const command = env.CNI_COMMAND ?? ''
  if (!(COMMANDS as readonly string[]).includes(command)) {
    throw badEnv(`unknown CNI_COMMAND "${command}"`, `plumb answers ${COMMANDS.join(', ')}`)
  }
  const cmd = command as CniCommand
  const need: Record<CniCommand, string[]> = {
    ADD: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH'],
    CHECK: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH'],
    DEL: ['CNI_CONTAINERID', 'CNI_IFNAME', 'CNI_PATH'],
    GC: ['CNI_PATH'],
    STATUS: ['CNI_PATH'],
    VERSION: [],
  }
  const missing = need[cmd].filter((k) => !env[k])
  if (missing.length) throw badEnv(`required environment variables missing: ${missing.join(', ')}`, `CNI_COMMAND=${cmd} needs ${need[cmd].join(', ')}`)
  const out: CniEnv = { command: cmd, args: {}, path: (env.CNI_PATH ?? '').split(':').filter(Boolean) }
  // The rest concerns one container; VERSION, GC and STATUS ignore it (libcni's config validation
  // asks VERSION with "dummy" in every variable).
  if (cmd !== 'ADD' && cmd !== 'DEL' && cmd !== 'CHECK') return out
  out.args = parseCniArgs(env.CNI_ARGS ?? '')
  if (env.CNI_CONTAINERID) {
    if (!ID.test(env.CNI_CONTAINERID)) throw badEnv(`invalid CNI_CONTAINERID "${env.CNI_CONTAINERID}"`, 'a container id starts with a letter or digit, then letters, digits, "_", "." or "-"')
    out.containerId = env.CNI_CONTAINERID
  }
  if (env.CNI_NETNS) {
    if (!env.CNI_NETNS.startsWith('/')) throw badEnv(`CNI_NETNS "${env.CNI_NETNS}" is not an absolute path`, 'give the netns file, e.g. /proc/1234/ns/net or /run/netns/NAME')
    out.netns = env.CNI_NETNS
  }
  if (env.CNI_IFNAME) out.ifname = cniIfname(env.CNI_IFNAME, 'CNI_IFNAME', badEnv)
  return out
}

/** `K=V;K=V` (CNI_ARGS). */
export function parseCniArgs(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const pair of text.split(';')) {
    if (pair === '') continue
    const eq = pair.indexOf('=')
    if (eq <= 0) throw badEnv(`invalid CNI_ARGS pair "${pair}"`, 'CNI_ARGS is KEY=VALUE pairs separated by ";"')
    out[pair.slice(0, eq)] = pair.slice(eq + 1)
  }
  return out
}

type Kind = 'string' | 'number' | 'boolean' | 'number[]'
/** Each op's own options (CLI.md's flags, camelCased), with their JSON types. */
const OP_FIELDS: Record<OpName, Record<string, Kind>> = {
  'attach-veth': { bridge: 'string', mtu: 'number', mac: 'string', firewall: 'boolean' },
  'ovs-port': { bridge: 'string', mtu: 'number', mac: 'string', tag: 'number', trunks: 'number[]', createBridge: 'boolean' },
  macvlan: { parent: 'string', mtu: 'number', mac: 'string', mode: 'string' },
  vlan: { parent: 'string', vid: 'number', mtu: 'number', mac: 'string' },
  'move-dev': { device: 'string' },
}
const REQUIRED: Record<OpName, string[]> = { 'attach-veth': ['bridge'], 'ovs-port': ['bridge'], macvlan: ['parent'], vlan: ['parent', 'vid'], 'move-dev': ['device'] }
/** Keys of the config itself and those runtimes add (libcni, Multus, containerd, CRI-O, Podman). */
const CONFIG_FIELDS = new Set([
  'cniVersion', 'cniVersions', 'name', 'type', 'op', 'ifname', 'ipam', 'dns', 'args', 'capabilities', 'runtimeConfig',
  'prevResult', 'disableCheck', 'disableGC', 'dataDir', 'verbose',
])

function typeOk(v: unknown, kind: Kind): boolean {
  if (kind === 'number[]') return Array.isArray(v) && v.every((x) => Number.isInteger(x))
  if (kind === 'number') return typeof v === 'number' && Number.isFinite(v)
  return typeof v === kind
}

/** The op section: `op` and only that op's options, each of its JSON type. */
function parseOp(c: Record<string, unknown>): OpConfig {
  const op = c.op
  if (op === undefined) throw invalid('the config has no "op"', `set "op" to one of ${Object.keys(OP_FIELDS).join(', ')}`)
  if (typeof op !== 'string' || !(op in OP_FIELDS)) throw invalid(`unknown op ${JSON.stringify(op)}`, `plumb's CNI ops: ${Object.keys(OP_FIELDS).join(', ')}`)
  const name = op as OpName
  const fields = OP_FIELDS[name]
  const out: Record<string, unknown> = { op: name }
  for (const [key, kind] of Object.entries(fields)) {
    if (c[key] === undefined) continue
    if (!typeOk(c[key], kind)) throw invalid(`"${key}" must be a ${kind.replace('[]', ' array')}, not ${JSON.stringify(c[key])}`)
    out[key] = c[key]
  }
  for (const key of REQUIRED[name]) if (out[key] === undefined) throw invalid(`op ${name} needs "${key}"`, `e.g. ${JSON.stringify({ op: name, [key]: fields[key] === 'number' ? 10 : 'br0' })}`)
  for (const key of Object.keys(c)) {
    if (CONFIG_FIELDS.has(key) || key in fields || key.includes('/')) continue
    const owner = (Object.keys(OP_FIELDS) as OpName[]).find((o) => key in OP_FIELDS[o])
    throw unsupportedField(
      owner ? `"${key}" is an option of op ${owner}, not of ${name}` : `unknown field "${key}" in the network config`,
      `op ${name} takes ${Object.keys(fields).join(', ')}`,
    )
  }
  return out as OpConfig
}

function parsePortMappings(v: unknown): PortMapping[] {
  if (v === undefined || v === null) return []
  if (!Array.isArray(v)) throw invalid('runtimeConfig.portMappings must be an array')
  return v.map((m: unknown, i) => {
    const o = (m ?? {}) as Record<string, unknown>
    const port = (k: string): number => {
      const p = o[k]
      if (!Number.isInteger(p) || (p as number) < 1 || (p as number) > 65535) throw invalid(`runtimeConfig.portMappings[${i}].${k} must be a port 1-65535, not ${JSON.stringify(p)}`)
      return p as number
    }
    const protocol = o.protocol === undefined || o.protocol === '' ? 'tcp' : String(o.protocol).toLowerCase()
    if (protocol !== 'tcp' && protocol !== 'udp') throw unsupportedField(`runtimeConfig.portMappings[${i}]: protocol "${protocol}" is not supported`, 'plumb publishes tcp and udp')
    const hostIP = o.hostIP === undefined || o.hostIP === '' ? undefined : o.hostIP
    if (hostIP !== undefined && typeof hostIP !== 'string') throw invalid(`runtimeConfig.portMappings[${i}].hostIP must be a string`)
    return { hostPort: port('hostPort'), containerPort: port('containerPort'), protocol, ...(hostIP ? { hostIP } : {}) }
  })
}

function parseAttachments(v: unknown, key: string): Attachment[] {
  if (!Array.isArray(v)) throw invalid(`"${key}" must be an array of {containerID, ifname}`)
  return v.map((a: unknown, i) => {
    const o = (a ?? {}) as Record<string, unknown>
    if (typeof o.containerID !== 'string' || typeof o.ifname !== 'string') throw invalid(`"${key}"[${i}] must be {"containerID": "...", "ifname": "..."}`)
    return { containerID: o.containerID, ifname: o.ifname }
  })
}

/** The config's cniVersion, checked against what plumb speaks (error 1 otherwise). */
export function configVersion(c: Record<string, unknown>): CniVersion {
  // libcni reads a config without cniVersion as 0.1.0.
  const v = c.cniVersion ?? '0.1.0'
  if (!isVersion(v)) throw new CniError(CNI_CODES.DECODING_FAILURE, `invalid cniVersion ${JSON.stringify(v)}`, 'write e.g. "cniVersion": "1.0.0"')
  if (!(SUPPORTED_VERSIONS as readonly string[]).includes(v)) {
    throw new CniError(CNI_CODES.INCOMPATIBLE_VERSION, `incompatible CNI versions: the config is ${v}`, `plumb speaks ${SUPPORTED_VERSIONS.join(', ')}`)
  }
  return v as CniVersion
}

/** Decode stdin's JSON (error 6 when it is not a JSON object). */
export function decodeConfig(stdin: string): Record<string, unknown> {
  let c: unknown
  try {
    c = JSON.parse(stdin)
  } catch (err) {
    throw new CniError(CNI_CODES.DECODING_FAILURE, `the network config on stdin is not JSON: ${(err as Error).message}`)
  }
  if (typeof c !== 'object' || c === null || Array.isArray(c)) throw new CniError(CNI_CODES.DECODING_FAILURE, 'the network config on stdin is not a JSON object')
  return c as Record<string, unknown>
}

/** The whole network config for `command` (not VERSION), validated. */
export function parseNetConf(c: Record<string, unknown>, command: CniCommand): NetConf {
  const cniVersion = configVersion(c)
  if (command === 'CHECK' && compareVersions(cniVersion, '0.4.0') < 0) throw new CniError(CNI_CODES.INCOMPATIBLE_VERSION, `config version ${cniVersion} does not allow CHECK`, 'CHECK is CNI 0.4.0 and later')
  if ((command === 'GC' || command === 'STATUS') && compareVersions(cniVersion, '1.1.0') < 0) {
    throw new CniError(CNI_CODES.INCOMPATIBLE_VERSION, `config version ${cniVersion} does not allow ${command}`, `${command} is CNI 1.1.0 and later`)
  }
  if (typeof c.name !== 'string' || c.name === '') throw invalid('the config has no network "name"')
  if (!ID.test(c.name)) throw invalid(`invalid network name "${c.name}"`, 'a network name starts with a letter or digit, then letters, digits, "_", "." or "-"')
  const op = parseOp(c)
  const out: NetConf = { cniVersion, name: c.name, type: typeof c.type === 'string' ? c.type : 'plumb', op, runtimeConfig: { portMappings: [], ips: [] }, dataDir: DEFAULT_DATA_DIR, verbose: false, raw: c }
  if (c.ifname !== undefined) {
    if (typeof c.ifname !== 'string') throw invalid('"ifname" must be a string')
    out.ifname = cniIfname(c.ifname, 'ifname', invalid)
  }
  if (c.ipam !== undefined) {
    const ipam = c.ipam as Record<string, unknown>
    if (typeof ipam !== 'object' || ipam === null || Array.isArray(ipam)) throw invalid('"ipam" must be an object')
    // An empty ipam section ({}) is how some runtimes write "no IPAM".
    if (Object.keys(ipam).length > 0) {
      if (typeof ipam.type !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(ipam.type)) throw invalid(`ipam.type must name an IPAM plugin, not ${JSON.stringify(ipam.type)}`, 'e.g. "host-local" or "static"')
      out.ipam = ipam as NetConf['ipam']
    }
  }
  if (c.dns !== undefined) {
    if (typeof c.dns !== 'object' || c.dns === null) throw invalid('"dns" must be an object')
    out.dns = c.dns as Record<string, unknown>
  }
  if (c.dataDir !== undefined) {
    if (typeof c.dataDir !== 'string' || !c.dataDir.startsWith('/')) throw invalid('"dataDir" must be an absolute path')
    out.dataDir = c.dataDir.replace(/\/+$/, '') || '/'
  }
  if (c.verbose !== undefined) {
    if (typeof c.verbose !== 'boolean') throw invalid('"verbose" must be true or false')
    out.verbose = c.verbose
  }
  const rc = c.runtimeConfig as Record<string, unknown> | undefined
  if (rc !== undefined) {
    if (typeof rc !== 'object' || rc === null) throw invalid('"runtimeConfig" must be an object')
    out.runtimeConfig.portMappings = parsePortMappings(rc.portMappings)
    if (rc.mac !== undefined && rc.mac !== '') {
      if (typeof rc.mac !== 'string') throw invalid('runtimeConfig.mac must be a string')
      out.runtimeConfig.mac = rc.mac
    }
    if (rc.ips !== undefined && rc.ips !== null) {
      if (!Array.isArray(rc.ips) || !rc.ips.every((x) => typeof x === 'string')) throw invalid('runtimeConfig.ips must be an array of CIDR strings')
      out.runtimeConfig.ips = rc.ips as string[]
    }
  }
  if (c.prevResult !== undefined) out.prevResult = c.prevResult
  if (command === 'GC') {
    // The spec's key, and the one its first drafts (and libcni, which sends both) used.
    const key = c['cni.dev/valid-attachments'] !== undefined ? 'cni.dev/valid-attachments' : c['cni.dev/attachments'] !== undefined ? 'cni.dev/attachments' : undefined
    if (!key) throw invalid('GC needs the list of valid attachments', 'the runtime passes "cni.dev/valid-attachments": [{"containerID": ..., "ifname": ...}]')
    out.validAttachments = parseAttachments(c[key], key)
  }
  return out
}
