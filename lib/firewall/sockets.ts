// Who holds a host port: the host's own sockets, read from /proc/net/{tcp,udp}{,6} of plumb's
// netns (the parser is pure), and the process owning one, found by its socket inode.

import { readFileSync, readdirSync, readlinkSync } from 'node:fs'

export interface HostSocket {
  proto: 'tcp' | 'udp'
  /** canonical address text; '0.0.0.0' / '::' for a wildcard */
  address: string
  port: number
  /** TCP LISTEN, or a bound UDP socket */
  listening: boolean
  inode: number
}

const TCP_LISTEN = 0x0a
const UDP_UNCONNECTED = 0x07

function v4FromHex(hex: string): string {
  // /proc prints the address as the host's u32: little-endian bytes on every Linux arch plumb runs on
  const n = parseInt(hex, 16)
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff].join('.')
}

function v6FromHex(hex: string): string {
  const bytes: number[] = []
  for (let w = 0; w < 4; w++) {
    const word = hex.slice(w * 8, w * 8 + 8)
    for (let i = 3; i >= 0; i--) bytes.push(parseInt(word.slice(i * 2, i * 2 + 2), 16))
  }
  // ::ffff:a.b.c.d is an IPv4 socket on a dual-stack one: say it as IPv4
  if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) return bytes.slice(12).join('.')
  if (bytes.every((b) => b === 0)) return '::'
  const groups: string[] = []
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16))
  return groups.join(':')
}

/** One /proc/net/{tcp,udp}{,6} file's sockets (pure). */
export function parseProcNet(text: string, proto: 'tcp' | 'udp', v6: boolean): HostSocket[] {
  const out: HostSocket[] = []
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/)
    if (f.length < 10) continue
    const [addr, portHex] = (f[1] ?? '').split(':')
    if (!addr || !portHex) continue
    const st = parseInt(f[3] ?? '', 16)
    out.push({
      proto,
      address: v6 ? v6FromHex(addr) : v4FromHex(addr),
      port: parseInt(portHex, 16),
      listening: proto === 'tcp' ? st === TCP_LISTEN : st === UDP_UNCONNECTED,
      inode: Number(f[9]),
    })
  }
  return out
}

/** The sockets of plumb's own netns (the host's; a netns's when plumb runs in one). */
export function hostSockets(): HostSocket[] {
  const out: HostSocket[] = []
  for (const proto of ['tcp', 'udp'] as const) {
    for (const v6 of [false, true]) {
      let text: string
      try {
        text = readFileSync(`/proc/self/net/${proto}${v6 ? '6' : ''}`, 'utf8')
      } catch {
        continue // no IPv6 in this kernel
      }
      out.push(...parseProcNet(text, proto, v6))
    }
  }
  return out
}

/** Whether a socket bound to `address` takes host port traffic for `hostIp` ('' = every address). */
export function covers(address: string, hostIp: string): boolean {
  if (address === '0.0.0.0' || address === '::' || hostIp === '') return address.includes('.') || address === '::'
  return address === hostIp
}

/** `pid 1234 (nginx)` for the process holding socket `inode`, or undefined when none is found. */
export function socketHolder(inode: number): string | undefined {
  if (!inode) return undefined
  const want = `socket:[${inode}]`
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let fds: string[]
    try {
      fds = readdirSync(`/proc/${pid}/fd`)
    } catch {
      continue
    }
    for (const fd of fds) {
      let target: string
      try {
        target = readlinkSync(`/proc/${pid}/fd/${fd}`)
      } catch {
        continue
      }
      if (target !== want) continue
      let comm = '?'
      try {
        comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim()
      } catch {
        // it exited meanwhile: the pid still says who it was
      }
      return `pid ${pid} (${comm})`
    }
  }
  return undefined
}

/** The host's ip_local_port_range: where plumb picks a host port, as the kernel picks ephemeral ones. */
export function localPortRange(): [number, number] {
  try {
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number)
    if (lo && hi && lo <= hi) return [lo, hi]
  } catch {
    // fall through to the kernel's default
  }
  return [32768, 60999]
}
