// Firewall marks: the iptables comment (`-m comment --comment`) on every rule plumb adds, naming
// what the rule is for and whom (op, guest, bridge, port). They are the truth `ls`, `detach` and
// `gc` read back, and they carry the sysctl values plumb found before it changed them, so the
// last rule that needed a value can put it back.

import { usageError } from '../errors.js'

/** xt_comment keeps 256 bytes including the NUL. */
export const RULE_MARK_MAX_BYTES = 255

/**
 * What plumb found before it set a sysctl a rule needs, to restore when the last such rule
 * goes: `fwd` net.ipv4.ip_forward; `rl` net.ipv4.conf.<dev>.route_localnet; `pvlan`
 * net.ipv4.conf.<br>.proxy_arp_pvlan; `pdelay` net.ipv4.neigh.<br>.proxy_delay.
 */
export type RecordKey = 'fwd' | 'rl' | 'pvlan' | 'pdelay'
export type Records = Partial<Record<RecordKey, string>>
const RECORD_KEYS: readonly RecordKey[] = ['fwd', 'rl', 'pvlan', 'pdelay']

export type RuleMark =
  /** a published port: DNAT, its FORWARD accept, the hairpin and 127.0.0.1 masquerades */
  | {
      op: 'expose'
      guest: string
      /** the guest interface holding `to` (when plumb knows it) */
      ifname?: string
      /** guest address:port */
      to: string
      /** host address ('' for every address) and port */
      hostIp: string
      hostPort: number
      proto: 'tcp' | 'udp'
      /** the host interface the guest is reached through */
      dev: string
      /** the host port was chosen by plumb (PORTSPEC without one) */
      auto: boolean
      lab?: string
      rec: Records
    }
  /** outbound NAT of a bridge's subnets (src is the bridge) or of a CIDR */
  | { op: 'masquerade'; src: string; bridge?: string; out?: string; lab?: string; rec: Records }
  /** a bridge whose guest ports are isolated: the record, and the DROP of routed guest-to-guest traffic */
  | { op: 'isolate'; bridge: string; lab?: string; rec: Records }
  /** one pair let through an isolated bridge (Docker's --link) */
  | { op: 'allow'; bridge: string; a: string; b: string; lab?: string; rec: Records }
  /** attach-veth's ACCEPT for a bridge under Docker's FORWARD DROP: the comment is `plumb:BRIDGE` */
  | { op: 'bridge'; bridge: string }

export type RuleOp = RuleMark['op']
/** The marks that can carry the lab (`lab=NAME`) whose `nat:` made the rule: all but attach-veth's. */
export type NatMark = Exclude<RuleMark, { op: 'bridge' }>
const RULE_MARK_PREFIX = 'plumb:'

// Field -> key, in the order they are written, per op.
const FIELDS: Record<Exclude<RuleOp, 'bridge'>, ReadonlyArray<readonly [string, string]>> = {
  expose: [
    ['guest', 'guest'],
    ['ifname', 'if'],
    ['to', 'to'],
    ['host', 'host'],
    ['proto', 'proto'],
    ['dev', 'dev'],
    ['auto', 'auto'],
    ['lab', 'lab'],
  ],
  masquerade: [
    ['src', 'src'],
    ['bridge', 'br'],
    ['out', 'out'],
    ['lab', 'lab'],
  ],
  isolate: [
    ['bridge', 'br'],
    ['lab', 'lab'],
  ],
  allow: [
    ['bridge', 'br'],
    ['a', 'a'],
    ['b', 'b'],
    ['lab', 'lab'],
  ],
}

/** Percent-encode what would break `k=v k=v`, the quoting of iptables-save/-restore, or a dry-run line in a shell. */
function enc(v: string): string {
  return v.replace(/[%= "'\\$`\u0000-\u001f\u007f]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0').toUpperCase()}`)
}

function dec(v: string): string | undefined {
  if (/%(?![0-9A-Fa-f]{2})/.test(v)) return undefined
  return v.replace(/%([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)))
}

function fieldsOf(m: RuleMark): Record<string, string | undefined> {
  switch (m.op) {
    case 'expose':
      return { guest: m.guest, ifname: m.ifname, to: m.to, host: `${m.hostIp}:${m.hostPort}`, proto: m.proto, dev: m.dev, auto: m.auto ? '1' : undefined, lab: m.lab }
    case 'masquerade':
      return { src: m.src, bridge: m.bridge, out: m.out, lab: m.lab }
    case 'isolate':
      return { bridge: m.bridge, lab: m.lab }
    case 'allow':
      return { bridge: m.bridge, a: m.a, b: m.b, lab: m.lab }
    case 'bridge':
      return {}
  }
}

/** The comment's text, unchecked (a lab file's worst case is measured with it: lib/lab/parse-extras.ts). */
export function ruleMarkText(m: RuleMark): string {
  if (m.op === 'bridge') return `${RULE_MARK_PREFIX}${m.bridge}`
  const parts = [`${RULE_MARK_PREFIX}${m.op}`]
  const values = fieldsOf(m)
  for (const [field, key] of FIELDS[m.op]) {
    const v = values[field]
    if (v !== undefined) parts.push(`${key}=${enc(v)}`)
  }
  for (const k of RECORD_KEYS) {
    const v = m.rec[k]
    if (v !== undefined) parts.push(`${k}=${enc(v)}`)
  }
  return parts.join(' ')
}

/** `plumb:expose guest=docker:web if=eth1 to=198.18.0.10:80 host=:8080 proto=tcp dev=br0 lab=l1 fwd=0`. */
export function formatRuleMark(m: RuleMark): string {
  const text = ruleMarkText(m)
  const bytes = Buffer.byteLength(text, 'utf8')
  if (bytes > RULE_MARK_MAX_BYTES) {
    throw usageError(`the firewall mark is ${bytes} bytes, an iptables comment holds at most ${RULE_MARK_MAX_BYTES}: ${text.slice(0, 60)}...`, 'use shorter names (guest, bridge, interface)')
  }
  return text
}

const PORT = /^(\d{1,5})$/

/** The inverse of formatRuleMark; undefined for anything else (plumb never claims a rule it cannot read). */
export function parseRuleMark(comment: string | undefined): RuleMark | undefined {
  if (typeof comment !== 'string' || !comment.startsWith(RULE_MARK_PREFIX)) return undefined
  const [head, ...tokens] = comment.slice(RULE_MARK_PREFIX.length).split(' ')
  if (!head) return undefined
  if (tokens.length === 0) {
    // attach-veth's rule: `plumb:BRIDGE`, the bridge name is all there is
    return head.includes('=') ? undefined : { op: 'bridge', bridge: head }
  }
  if (!(head in FIELDS)) return undefined
  const op = head as Exclude<RuleOp, 'bridge'>
  const byKey = new Map<string, string>()
  for (const tok of tokens) {
    const eq = tok.indexOf('=')
    if (eq <= 0) return undefined
    const v = dec(tok.slice(eq + 1))
    if (v === undefined) return undefined
    byKey.set(tok.slice(0, eq), v)
  }
  const rec: Records = {}
  for (const k of RECORD_KEYS) {
    const v = byKey.get(k)
    if (v !== undefined) rec[k] = v
  }
  const known = new Set<string>([...FIELDS[op].map(([, k]) => k), ...RECORD_KEYS])
  if ([...byKey.keys()].some((k) => !known.has(k))) return undefined
  const need = (k: string): string | undefined => byKey.get(k)
  const labName = need('lab')
  const lab = labName ? { lab: labName } : {}
  switch (op) {
    case 'expose': {
      const guest = need('guest')
      const to = need('to')
      const host = need('host')
      const proto = need('proto')
      const dev = need('dev')
      if (!guest || !to || !host || !dev || (proto !== 'tcp' && proto !== 'udp')) return undefined
      const colon = host.lastIndexOf(':')
      const port = PORT.exec(host.slice(colon + 1))
      if (colon < 0 || !port) return undefined
      const ifname = need('if')
      return { op, guest, ...(ifname ? { ifname } : {}), to, hostIp: host.slice(0, colon), hostPort: Number(port[1]), proto, dev, auto: need('auto') === '1', ...lab, rec }
    }
    case 'masquerade': {
      const src = need('src')
      if (!src) return undefined
      const bridge = need('br')
      const out = need('out')
      return { op, src, ...(bridge ? { bridge } : {}), ...(out ? { out } : {}), ...lab, rec }
    }
    case 'isolate': {
      const bridge = need('br')
      return bridge ? { op, bridge, ...lab, rec } : undefined
    }
    case 'allow': {
      const bridge = need('br')
      const a = need('a')
      const b = need('b')
      return bridge && a && b ? { op, bridge, a, b, ...lab, rec } : undefined
    }
  }
}

/**
 * What a mark stands for, without its records and its lab: all the rules of one expose (its DNAT,
 * its FORWARD accept, its masquerades) share a key, and so do both directions of an allowed pair.
 * The lab is who made it, not what it is: a lab asking for a rule that is in place (by hand, or
 * another lab's) finds it "already" there, and leaves it to whoever made it.
 */
export function ruleKey(m: RuleMark): string {
  switch (m.op) {
    case 'expose':
      return `expose ${m.proto} ${m.hostIp}:${m.hostPort}`
    case 'masquerade':
      return `masquerade ${m.src}${m.out ? ` out ${m.out}` : ''}`
    case 'isolate':
      return `isolate ${m.bridge}`
    case 'allow':
      return `allow ${m.bridge} ${[m.a, m.b].sort().join(',')}`
    case 'bridge':
      return `bridge ${m.bridge}`
  }
}

/** The lab whose `nat:` made the rule (its mark's `lab=`), if a lab did. */
export const ruleLab = (m: RuleMark): string | undefined => (m.op === 'bridge' ? undefined : m.lab)

/** The guests a mark names (gc removes the rule when one of them is gone). */
export function ruleGuests(m: RuleMark): string[] {
  if (m.op === 'expose') return [m.guest]
  if (m.op === 'allow') return [m.a, m.b]
  return []
}

/** The bridge or host interface a mark depends on (gc removes the rule when it is gone). */
export function ruleDevice(m: RuleMark): string | undefined {
  return m.op === 'expose' ? m.dev : m.bridge
}
