// `plumb sysctl` keys: which sysctls belong to a network namespace (so that setting one on a
// guest cannot touch the host), parsed from sysctl(8)'s dotted or slashed spelling.

import { usageError } from '../errors.js'

export interface SysctlKey {
  /** sysctl(8)'s dotted form; dots inside an interface name become '/' (net.ipv4.conf.eth0/10.rp_filter) */
  key: string
  /** the path under /proc/sys/net (ipv4/conf/eth0.10/rp_filter) */
  path: string
  /** the interface a per-interface key is about ('all' and 'default' included) */
  ifname?: string
}

export interface SysctlSetting extends SysctlKey {
  value: string
}

/**
 * The per-netns families plumb accepts. Every key under net.ipv4 and net.ipv6 lives in the
 * netns it is read from, except the few the kernel registers for the initial netns only
 * (GLOBAL below): a guest's netns does not even show those. Of net.core only somaxconn is per
 * netns, of net.unix only max_dgram_qlen; net.netfilter's conntrack keys are per netns.
 * Everything else (kernel.*, vm.*, fs.*, the rest of net.core, net.bridge) is host-wide.
 */
const FAMILIES = ['ipv4', 'ipv6', 'netfilter']
const SINGLE = new Set(['core/somaxconn', 'unix/max_dgram_qlen'])
/** net.ipv4 keys of the initial netns only (linux/net/ipv4/sysctl_net_ipv4.c, ipv4_table). */
const GLOBAL = new Set(['ipv4/tcp_mem', 'ipv4/udp_mem', 'ipv4/inet_peer_threshold', 'ipv4/inet_peer_minttl', 'ipv4/inet_peer_maxttl', 'ipv4/tcp_low_latency', 'ipv4/ipfrag_secret_interval', 'ipv4/route/flush'])
const PER_IF = new Set(['conf', 'neigh'])
const SEGMENT = /^[A-Za-z0-9_:@+-][A-Za-z0-9_.:@+-]*$/

const HINT = 'per-netns keys: net.ipv4.ip_forward, net.ipv4.conf.IF.KEY, net.ipv6.conf.IF.KEY, net.ipv4.neigh.IF.KEY, other net.ipv4.* / net.ipv6.* keys, net.netfilter.*, net.core.somaxconn'

/** Parse a key (net.ipv4.ip_forward, net/ipv4/conf/eth1/forwarding); exit 2 for anything that is not per-netns. */
export function parseSysctlKey(s: string): SysctlKey {
  const text = s.trim()
  if (text === '' || /[\u0000-\u001f\u007f\s=]/.test(text)) throw usageError(`invalid sysctl key "${s}"`, HINT)
  // sysctl(8) takes both spellings; in the dotted one a '/' belongs to an interface name
  const slashed = /^(\/proc\/sys\/)?net\//.test(text)
  const parts = slashed ? text.replace(/^\/?(proc\/sys\/)?/, '').split('/') : text.split('.')
  if (parts[0] !== 'net') throw usageError(`sysctl "${text}" is not per network namespace: plumb sets only a guest's own net.* keys, never the host's`, HINT)
  const rest = parts.slice(1)
  const family = rest[0] ?? ''
  let segs: string[]
  let ifname: string | undefined
  if (PER_IF.has(rest[1] ?? '') && (family === 'ipv4' || family === 'ipv6')) {
    if (rest.length < 4) throw usageError(`sysctl "${text}" needs an interface and a key: net.${family}.${rest[1]}.IF.KEY`, HINT)
    // In the dotted form an interface's own dots are written '/' (sysctl(8)); a dotted
    // interface typed with dots (eth0.10) leaves its pieces between the table and the key.
    ifname = slashed ? rest.slice(2, -1).join('/') : rest.slice(2, -1).join('.').replace(/\//g, '.')
    if (slashed && rest.length !== 4) throw usageError(`invalid sysctl key "${text}"`, HINT)
    segs = [family, rest[1]!, ifname, rest[rest.length - 1]!]
  } else {
    segs = rest
  }
  if (segs.length < 2 || !segs.every((p) => SEGMENT.test(p)) || segs.some((p) => p === '.' || p === '..')) throw usageError(`invalid sysctl key "${text}"`, HINT)
  const path = segs.join('/')
  if (!(FAMILIES.includes(family) || SINGLE.has(path)) || GLOBAL.has(path)) {
    throw usageError(`sysctl "${text}" is not per network namespace: setting it on a guest would change the host`, HINT)
  }
  const key = ['net', ...segs.map((p, i) => (ifname !== undefined && i === 2 ? p.replace(/\./g, '/') : p))].join('.')
  return { key, path, ...(ifname !== undefined ? { ifname } : {}) }
}

/** KEY=VALUE, as sysctl -w takes it (the value may hold spaces: ip_local_port_range="32768 60999"). */
export function parseSysctlSetting(s: string): SysctlSetting {
  const eq = s.indexOf('=')
  if (eq <= 0) throw usageError(`invalid setting "${s}": expected KEY=VALUE`, 'e.g. net.ipv4.ip_forward=1')
  const k = parseSysctlKey(s.slice(0, eq))
  const value = s.slice(eq + 1).trim()
  if (value === '' || /[\u0000-\u0008\u000a-\u001f\u007f]/.test(value) || value.length > 256) throw usageError(`invalid value for ${k.key}: "${s.slice(eq + 1)}"`, 'a number or a few words, e.g. 1 or "32768 60999"')
  return { ...k, value }
}

/** The kernel prints multi-valued sysctls tab-separated: compare values as sysctl(8) users write them. */
export function sameSysctlValue(a: string, b: string): boolean {
  return a.trim().split(/\s+/).join(' ') === b.trim().split(/\s+/).join(' ')
}
