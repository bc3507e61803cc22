// pipework's command lines (every form of its README), parsed into what they ask for, and the
// plumb operation each one becomes once the kind of the host interface is known. Pure.

import { md5 } from '@noble/hashes/legacy.js'
import { utf8ToBytes } from '@noble/hashes/utils.js'
import { unsupported, usageError } from '../errors.js'
import { parseIpSpec } from './ip.js'
import { validateIfname } from './ifname.js'
import { parseVid } from './link.js'
import { parseMac } from './mac.js'

export type PipeworkDhcpClient = 'auto' | 'udhcpc' | 'dhclient' | 'dhcpcd'

export type PipeworkIp =
  | { kind: 'static'; spec: string; family: 4 | 6; gateway: boolean }
  /** `0/0`: the interface without an address */
  | { kind: 'none' }
  | { kind: 'dhcp'; client: PipeworkDhcpClient; hostname?: string }

export type PipeworkCommand =
  /** `pipework --wait [-i IFNAME]`, run inside a container */
  | { kind: 'wait'; ifname: string }
  /** `pipework route|rule|tc GUEST ARGS...`: ip route / ip rule / tc in the guest's netns */
  | { kind: 'exec'; tool: 'route' | 'rule' | 'tc'; guest: string; args: string[] }
  | {
      kind: 'link'
      directPhys: boolean
      /** the host interface or bridge, by name or (mac:ADDR) by MAC */
      host: { name: string } | { mac: string }
      /** -i: the name inside the guest (pipework's default: eth1) */
      ifname: string
      /** -l: the host end's name (veth on a bridge) */
      hostIfname?: string
      guest: string
      ip: PipeworkIp
      /** MAC as given (aa:bb:... or U:STRING) and as plumb uses it */
      mac?: { given: string; mac: string }
      vlan?: number
    }

/**
 * pipework's `U:STRING` MAC: `echo $STRING | md5sum`, the first five bytes after 02 (a
 * locally administered unicast address), so a DHCP reservation made for pipework still
 * matches. `echo` of the unquoted variable collapses runs of blanks to one space and adds a
 * newline; both are part of what was hashed.
 */
export function pipeworkMac(unique: string): string {
  const echoed = `${unique.split(/[ \t\n]+/).filter(Boolean).join(' ')}\n`
  const h = md5(utf8ToBytes(echoed))
  return ['02', ...[...h.subarray(0, 5)].map((b) => b.toString(16).padStart(2, '0'))].join(':')
}

const DHCP_WORDS: Record<string, PipeworkDhcpClient> = { dhcp: 'auto', udhcpc: 'udhcpc', dhclient: 'dhclient', dhcpcd: 'dhcpcd' }

/**
 * `dhcp[:ARGS]` and the clients by name. plumb runs its own supervised client, so of the extra
 * client arguments only those it already honours are taken: -f (stay in the foreground: plumb
 * always does, and renews), -x hostname:NAME / -h NAME / -H NAME (the hostname sent).
 */
function parseDhcp(word: string, guest: string): PipeworkIp | undefined {
  const colon = word.indexOf(':')
  const head = colon < 0 ? word : word.slice(0, colon)
  const client = DHCP_WORDS[head]
  if (!client) return undefined
  const args = colon < 0 ? [] : word.slice(colon + 1).split(/\s+/).filter(Boolean)
  // pipework sent the guest's name as the DHCP hostname
  let hostname: string | undefined = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(guest) ? guest : undefined
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!
    if (a === '-f' || a === '--foreground') continue
    if ((a === '-x' && /^hostname:/.test(args[i + 1] ?? '')) || a === '-h' || a === '-H' || a === '--hostname') {
      const v = args[++i] ?? ''
      hostname = a === '-x' ? v.slice('hostname:'.length) : v
      continue
    }
    throw usageError(`plumb does not pass "${a}" to its DHCP client (in "${word}")`, 'plumb runs the client itself, in the foreground and renewing for the guest\'s life: -f and a hostname (-x hostname:NAME, -h NAME) are all it takes')
  }
  return { kind: 'dhcp', client, ...(hostname ? { hostname } : {}) }
}

function parseIp(word: string, guest: string): PipeworkIp {
  if (word === '0/0') return { kind: 'none' }
  const dhcp = parseDhcp(word, guest)
  if (dhcp) return dhcp
  const spec = parseIpSpec(word) // "did you mean 198.18.0.10/24?" for a bare address, as pipework said
  if (spec.kind !== 'static') throw usageError(`invalid pipework address "${word}"`)
  return { kind: 'static', spec: word, family: spec.family, gateway: spec.gateway !== undefined }
}

const SYNTAX = [
  'pipework [--direct-phys] HOSTIF|BRIDGE|mac:ADDR [-i IFNAME] [-l HOSTIF] GUEST IP/PREFIX[@GW]|0/0|dhcp[:ARGS] [MAC|U:STRING][@VLAN]',
  'pipework --wait [-i IFNAME]',
  'pipework route|rule|tc GUEST ARGS...',
].join('; ')

/** Parse one pipework command line (the words after `pipework`). */
export function parsePipework(argv: string[]): PipeworkCommand {
  const words = [...argv]
  if (words[0] === '--wait') {
    words.shift()
    let ifname = 'eth1'
    if ((words[0] as string | undefined) === '-i') {
      ifname = validateIfname(words[1] ?? '', 'interface name (-i)')
      words.splice(0, 2)
    }
    if (words.length) throw usageError(`unexpected "${words.join(' ')}" after pipework --wait`, SYNTAX)
    return { kind: 'wait', ifname }
  }
  let directPhys = false
  if (words[0] === '--direct-phys') {
    directPhys = true
    words.shift()
  }
  if (words[0] === '--save' || words[0] === '--restore') {
    throw usageError(`pipework's ${words[0]} is not supported`, 'plumb records nothing to replay from a file: put the plumb commands in a script (or a lab file) instead')
  }
  const first = words.shift()
  if (first === undefined || first === '') throw usageError('pipework needs a host interface or bridge, a guest and an address', SYNTAX)
  if (first === 'route' || first === 'rule' || first === 'tc') {
    const guest = words.shift()
    if (!guest || words.length === 0) throw usageError(`pipework ${first} needs a guest and the arguments for ${first === 'tc' ? 'tc' : `ip ${first}`}`, `e.g. pipework ${first} web ${first === 'tc' ? 'qdisc add dev eth1 root netem delay 100ms' : first === 'route' ? 'add 198.19.0.0/16 via 198.18.0.1' : 'add from 198.18.0.10 table 100'}`)
    if (directPhys) throw usageError(`--direct-phys makes no sense with pipework ${first}`)
    return { kind: 'exec', tool: first, guest, args: words }
  }
  if (first === 'dummy') {
    throw unsupported('plumb has no dummy interface operation (and this kernel has no dummy link type)', 'give the guest a veth on a bridge of its own instead: pipework brX GUEST IP/PREFIX')
  }
  let host: { name: string } | { mac: string }
  if (first.startsWith('mac:')) host = { mac: parseMac(first.slice(4)) }
  else host = { name: validateIfname(first, 'host interface') }
  let ifname = 'eth1'
  let hostIfname: string | undefined
  let family: 4 | 6 | undefined
  // pipework's flags come between the host interface and the guest, -i then -l then -a
  for (;;) {
    const flag = words[0]
    if (flag === '-i') ifname = validateIfname(words[1] ?? '', 'guest interface name (-i)')
    else if (flag === '-l') hostIfname = validateIfname(words[1] ?? '', 'host interface name (-l)')
    else if (flag === '-a') {
      const f = words[1]
      if (f !== '4' && f !== '6' && f !== 'inet' && f !== 'inet6') throw usageError(`invalid address family "${f ?? ''}" (-a)`, '4 or 6')
      family = f === '6' || f === 'inet6' ? 6 : 4
    } else break
    words.splice(0, 2)
  }
  const guest = words.shift()
  const ipWord = words.shift()
  if (!guest || !ipWord) throw usageError('pipework needs a guest and an address (IP/PREFIX[@GW], 0/0 or dhcp)', SYNTAX)
  const macWord = words.shift()
  if (words.length) throw usageError(`unexpected "${words.join(' ')}" at the end of the pipework command`, SYNTAX)
  const ip = parseIp(ipWord, guest)
  if (family !== undefined && ip.kind === 'static' && ip.family !== family) throw usageError(`-a ${family} but ${ip.spec} is an IPv${ip.family} address`)
  const out: PipeworkCommand = { kind: 'link', directPhys, host, ifname, guest, ip, ...(hostIfname ? { hostIfname } : {}) }
  if (macWord !== undefined && macWord !== '') {
    const at = macWord.indexOf('@')
    const macPart = at < 0 ? macWord : macWord.slice(0, at)
    if (at >= 0) out.vlan = parseVid(macWord.slice(at + 1).split('@')[0]!)
    if (macPart.startsWith('U:')) {
      if (macPart.length === 2) throw usageError('empty U: MAC seed', 'write U:STRING, e.g. U:web-eth1')
      out.mac = { given: macPart, mac: pipeworkMac(macPart.slice(2)) }
    } else if (macPart !== '') {
      out.mac = { given: macPart, mac: parseMac(macPart) }
    }
  }
  return out
}

/** What the host interface of a link command turned out to be (found by the op). */
export type PipeworkHostKind = 'linux-bridge' | 'ovs-bridge' | 'nic' | 'missing'

export type PipeworkPlan =
  | { op: 'attach-veth'; bridge: string }
  | { op: 'ovs-port'; bridge: string; createBridge: boolean }
  | { op: 'macvlan'; parent: string }
  | { op: 'vlan'; parent: string; vid: number }
  | { op: 'move-dev'; device: string }

/**
 * The plumb operation for a link command on a host interface of `kind` (named `name`), as
 * pipework decided it: a Linux bridge gets a veth (pipework creates a missing `br*` one), an
 * OVS bridge a port (a missing `ovs*` one is created), a NIC a macvlan child, --direct-phys
 * moves the NIC itself, and @VLAN on a NIC puts the guest on that VLAN of it.
 */
export function planPipework(cmd: Extract<PipeworkCommand, { kind: 'link' }>, name: string, kind: PipeworkHostKind): PipeworkPlan {
  let k = kind
  if (k === 'missing') {
    if (cmd.directPhys) throw usageError(`--direct-phys needs an existing host interface; there is no "${name}"`)
    if (name.startsWith('br')) k = 'linux-bridge'
    else if (name.startsWith('ovs')) return { op: 'ovs-port', bridge: name, createBridge: true }
    else throw usageError(`there is no interface "${name}" on the host, and pipework creates only bridges named br* (Linux) or ovs* (Open vSwitch)`, `for a new Linux bridge of another name: plumb attach-veth ${cmd.guest} ${name} ...`)
  }
  if (k === 'linux-bridge') {
    if (cmd.directPhys) throw usageError(`--direct-phys moves a NIC into the guest; "${name}" is a bridge`)
    return { op: 'attach-veth', bridge: name }
  }
  if (k === 'ovs-bridge') {
    if (cmd.directPhys) throw usageError(`--direct-phys moves a NIC into the guest; "${name}" is an Open vSwitch bridge`)
    return { op: 'ovs-port', bridge: name, createBridge: false }
  }
  if (cmd.vlan !== undefined) return { op: 'vlan', parent: name, vid: cmd.vlan }
  if (cmd.directPhys) {
    // pipework set the MAC of the NIC it moved; detach gives a NIC back as it was, so plumb leaves its MAC alone
    if (cmd.mac) throw usageError(`--direct-phys with a MAC (${cmd.mac.given}): plumb moves a NIC with its own MAC`, 'drop the MAC, or use a macvlan child (no --direct-phys), which takes one')
    return { op: 'move-dev', device: name }
  }
  return { op: 'macvlan', parent: name }
}

/** The plumb command line a pipework command becomes (shown by plumb pipework, and in the README's table). */
export function plumbLine(cmd: Extract<PipeworkCommand, { kind: 'link' }>, plan: PipeworkPlan): string {
  const ips = cmd.ip.kind === 'static' ? [cmd.ip.spec] : cmd.ip.kind === 'dhcp' ? ['dhcp'] : []
  const parts = ['plumb']
  switch (plan.op) {
    case 'attach-veth':
      parts.push('attach-veth', cmd.guest, plan.bridge, ...ips)
      // pipework refused a VLAN on a Linux bridge; attach-veth refuses it too (exit 5)
      if (cmd.vlan !== undefined) parts.push('--vlan', String(cmd.vlan))
      break
    case 'ovs-port':
      parts.push('ovs-port', cmd.guest, plan.bridge, ...ips)
      if (cmd.vlan !== undefined) parts.push('--tag', String(cmd.vlan))
      if (plan.createBridge) parts.push('--create-bridge')
      break
    case 'macvlan':
      parts.push('macvlan', cmd.guest, plan.parent, ...ips)
      break
    case 'vlan':
      parts.push('vlan', cmd.guest, plan.parent, String(plan.vid), ...ips)
      break
    case 'move-dev':
      parts.push('move-dev', cmd.guest, plan.device, ...ips)
      break
  }
  parts.push('-i', cmd.ifname)
  if (cmd.hostIfname && (plan.op === 'attach-veth' || plan.op === 'ovs-port')) parts.push('-l', cmd.hostIfname)
  if (cmd.mac && plan.op !== 'move-dev') parts.push('--mac', cmd.mac.mac)
  if (cmd.ip.kind === 'static' && cmd.ip.gateway) parts.push('--replace-gateway')
  if (cmd.ip.kind === 'dhcp') {
    if (cmd.ip.client !== 'auto') parts.push('--dhcp-client', cmd.ip.client)
    if (cmd.ip.hostname) parts.push('--hostname', cmd.ip.hostname)
  }
  return parts.join(' ')
}
