// TCP, UDP and ping between two places (the host, an ip netns, a container's netns): an echo
// server run with the host's node inside one netns, a client in the other, every byte checked on
// its way back. Ping alone proves little: OVS's userspace datapath carried ICMP while it dropped
// every TCP segment and UDP datagram (bad checksums), so each link kind is tested with all three.

import type { ExecutionContext } from 'ava'
import { randomInt } from 'node:crypto'
import { execa } from 'execa'
import { nsArgv } from './netns.js'
import type { NsTarget } from './netns.js'
import { assertTestAddress, ping } from './ping.js'

// The server: a TCP echo and a UDP echo on one port of ADDR, "ready" on stdout once both listen,
// "busy" (exit 3) when the port is taken. It ends by itself after MS, should nobody stop it.
const SERVER = `
const net = require('node:net'), dgram = require('node:dgram')
const [addr, port, ms] = process.argv.slice(1)
setTimeout(() => process.exit(0), Number(ms)).unref()
const fail = (e) => { console.log(e.code === 'EADDRINUSE' ? 'busy' : 'error ' + e.message); process.exit(e.code === 'EADDRINUSE' ? 3 : 1) }
const tcp = net.createServer((c) => { c.on('error', () => {}); c.pipe(c) })
tcp.on('error', fail)
const udp = dgram.createSocket(addr.includes(':') ? 'udp6' : 'udp4')
udp.on('error', fail)
udp.on('message', (m, r) => udp.send(m, r.port, r.address))
let up = 0
const ready = () => { if (++up === 2) console.log('ready') }
tcp.listen(Number(port), addr, ready)
udp.bind(Number(port), addr, ready)
`

// The client: TCP and UDP at once, each until its echo comes back whole or MS pass. Prints one
// JSON line: { tcp, udp, tcpError?, udpError? }.
const CLIENT = `
const net = require('node:net'), dgram = require('node:dgram'), { randomBytes } = require('node:crypto')
const [addr, port, bytes, ms] = process.argv.slice(1)
const deadline = Date.now() + Number(ms)
const tcp = new Promise((resolve) => {
  const payload = randomBytes(Number(bytes))
  const got = []
  const c = net.connect({ host: addr, port: Number(port) })
  const timer = setTimeout(() => { c.destroy(); resolve({ ok: false, error: 'no complete echo within ' + ms + ' ms (' + got.reduce((n, b) => n + b.length, 0) + ' of ' + bytes + ' bytes)' }) }, Number(ms))
  c.on('connect', () => c.end(payload))
  c.on('data', (d) => got.push(d))
  c.on('error', (e) => { clearTimeout(timer); resolve({ ok: false, error: e.code || e.message }) })
  c.on('end', () => { clearTimeout(timer); const back = Buffer.concat(got); resolve(back.equals(payload) ? { ok: true } : { ok: false, error: 'echo differs (' + back.length + ' of ' + bytes + ' bytes)' }) })
})
const udp = new Promise((resolve) => {
  const s = dgram.createSocket(addr.includes(':') ? 'udp6' : 'udp4')
  const payload = randomBytes(1200)
  let timer
  const done = (r) => { clearTimeout(timer); s.close(); resolve(r) }
  s.on('error', (e) => done({ ok: false, error: e.code || e.message }))
  s.on('message', (m) => { if (m.equals(payload)) done({ ok: true }) })
  // a datagram may go before the neighbour is resolved: resend until the echo or the deadline
  const send = () => {
    if (Date.now() >= deadline) return done({ ok: false, error: 'no echo within ' + ms + ' ms' })
    s.send(payload, Number(port), addr)
    timer = setTimeout(send, 300)
  }
  send()
})
Promise.all([tcp, udp]).then(([t, u]) => {
  console.log(JSON.stringify({ tcp: t.ok, udp: u.ok, ...(t.error ? { tcpError: t.error } : {}), ...(u.error ? { udpError: u.error } : {}) }))
})
`

export interface TrafficResult {
  ping: boolean
  tcp: boolean
  udp: boolean
  /** what failed and how, for assertion messages */
  detail: string
}

export interface TrafficOptions {
  /** bytes sent over TCP and checked on the echo (default 256 KiB: many segments, not one) */
  bytes?: number
  /** how long TCP and UDP each get (default 4 s) */
  timeoutMs?: number
}

/** Start the echo server on addr in `to`; resolves to it once it listens (retrying a taken port). */
async function startServer(to: NsTarget, addr: string, lifeMs: number): Promise<{ port: number; stop: () => Promise<void> }> {
  for (let attempt = 0; ; attempt++) {
    const port = randomInt(20_000, 60_000)
    const [cmd, args] = nsArgv(to, process.execPath, ['-e', SERVER, addr, String(port), String(lifeMs)])
    const proc = execa(cmd, args, { reject: false, stdin: 'ignore', forceKillAfterDelay: 2_000 })
    // nsenter execs node: this pid is the server's own, stopped by it
    const stop = async (): Promise<void> => {
      if (proc.exitCode === null) proc.kill('SIGTERM')
      await proc
    }
    const said = await new Promise<string>((resolve) => {
      let out = ''
      proc.stdout!.on('data', (d: Buffer) => {
        out += d.toString()
        if (/^(ready|busy|error.*)$/m.test(out)) resolve(out.trim())
      })
      void proc.then((r) => resolve(`${out}${String(r.stderr ?? '')}`.trim() || `exited with ${r.exitCode}`))
    })
    if (said === 'ready') return { port, stop }
    await stop()
    if (said !== 'busy' || attempt >= 5) throw new Error(`the echo server on ${addr} did not start: ${said}`)
  }
}

/**
 * Ping, a TCP echo of `bytes` random bytes and a UDP echo, from `from` to `addr` (an address of
 * `to`, where the server runs). Never throws for traffic that does not pass: it says so.
 */
export async function traffic(from: NsTarget, to: NsTarget, addr: string, opts: TrafficOptions = {}): Promise<TrafficResult> {
  assertTestAddress(addr)
  const { bytes = 256 * 1024, timeoutMs = 4_000 } = opts
  // one echo may be lost to a neighbour resolution racing the first probe: a second try, not a pass
  const pinged = ping(from, addr).then((ok) => ok || ping(from, addr, { count: 2 }))
  const server = await startServer(to, addr, timeoutMs * 3 + 10_000)
  try {
    const [cmd, args] = nsArgv(from, process.execPath, ['-e', CLIENT, addr, String(server.port), String(bytes), String(timeoutMs)])
    const res = await execa(cmd, args, { reject: false, stdin: 'ignore', timeout: timeoutMs + 10_000 })
    let out: { tcp?: boolean; udp?: boolean; tcpError?: string; udpError?: string } = {}
    try {
      out = JSON.parse(String(res.stdout ?? '').trim().split('\n').pop() ?? '{}')
    } catch {
      out = { tcpError: `client said: ${String(res.stdout ?? '')} ${String(res.stderr ?? '')}`.trim() }
    }
    const r = { ping: await pinged, tcp: out.tcp === true, udp: out.udp === true }
    const detail = [r.ping ? '' : 'ping: no answer', out.tcpError ? `tcp: ${out.tcpError}` : '', out.udpError ? `udp: ${out.udpError}` : ''].filter(Boolean).join('; ')
    return { ...r, detail: detail || 'all passed' }
  } finally {
    await server.stop()
  }
}

/** [ping, TCP, UDP] from `from` to `addr` in `to`, quickly (short timeouts, a small TCP echo): for paths expected to be cut as often as open. */
export async function reach(from: NsTarget, to: NsTarget, addr: string): Promise<boolean[]> {
  const r = await traffic(from, to, addr, { timeoutMs: 1500, bytes: 4096 })
  return [r.ping, r.tcp, r.udp]
}

/** Assert that ping, TCP and UDP all pass from `from` to `addr` in `to`; `what` names the path. */
export async function assertTraffic(t: ExecutionContext, from: NsTarget, to: NsTarget, addr: string, what: string, opts: TrafficOptions = {}): Promise<void> {
  const r = await traffic(from, to, addr, opts)
  t.deepEqual({ ping: r.ping, tcp: r.tcp, udp: r.udp }, { ping: true, tcp: true, udp: true }, `${what}: ${r.detail}`)
}
