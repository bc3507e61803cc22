// Traffic through what plumb publishes and NATs: servers in a guest (busybox httpd for TCP, a small UDP echo run
// in its netns; an echo that reports the peer's address for the "far end"), and TCP/UDP clients
// run in any netns with the host's node. Every server is stopped in teardown; a client answers
// the reply's text, or undefined when nothing answered in time.

import { execa } from 'execa'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { waitFor } from './env.js'
import type { Teardown } from './env.js'
import { nsArgv, sh, shQuiet } from './netns.js'
import type { NsTarget } from './netns.js'
import { assertTestAddress } from './ping.js'
import { spawnIn } from './process.js'

// NAME PORT PROTO: answers every TCP connection / UDP datagram with "NAME PEERADDR".
const ECHO = `
const [name, port, proto] = process.argv.slice(1)
const reply = (addr) => name + ' ' + addr.replace(/^::ffff:/, '')
if (proto === 'udp') {
  const s = require('node:dgram').createSocket('udp4')
  s.on('message', (m, r) => s.send(reply(r.address), r.port, r.address))
  s.bind(Number(port), () => console.log('ready'))
} else {
  require('node:net').createServer((c) => c.end(reply(c.remoteAddress) + '\\n')).listen(Number(port), () => console.log('ready'))
}`

// MODE ADDR PORT TIMEOUT_MS [SRCPORT]: prints what the server answered; exit 1 on no answer.
const CLIENT = `
const [mode, addr, port, ms, src] = process.argv.slice(1)
const done = (text) => { process.stdout.write(String(text)); process.exit(0) }
setTimeout(() => process.exit(1), Number(ms)).unref()
if (mode === 'udp') {
  const s = require('node:dgram').createSocket('udp4')
  s.on('message', (m) => done(m))
  s.bind(src ? Number(src) : 0, () => s.send('ping', Number(port), addr))
} else {
  const c = require('node:net').connect({ host: addr, port: Number(port) })
  let got = ''
  c.on('connect', () => { if (mode === 'http') c.write('GET / HTTP/1.0\\r\\nHost: x\\r\\n\\r\\n') })
  c.on('data', (d) => (got += d))
  c.on('end', () => done(mode === 'http' ? got.slice(got.indexOf('\\r\\n\\r\\n') + 4) : got))
  c.on('error', () => process.exit(1))
}`

async function client(from: NsTarget, mode: 'http' | 'tcp' | 'udp', addr: string, port: number, opts: { timeout?: number; srcPort?: number }): Promise<string | undefined> {
  assertTestAddress(addr)
  const ms = opts.timeout ?? 2000
  const [cmd, args] = nsArgv(from, process.execPath, ['-e', CLIENT, mode, addr, String(port), String(ms), ...(opts.srcPort ? [String(opts.srcPort)] : [])])
  const r = await execa(cmd, args, { reject: false, timeout: ms + 5000 })
  return r.exitCode === 0 ? String(r.stdout).trim() : undefined
}

/** The body of `GET /` from ADDR:PORT (busybox httpd serves the guest's name), or undefined. */
export const httpGet = (from: NsTarget, addr: string, port: number, opts: { timeout?: number } = {}): Promise<string | undefined> => client(from, 'http', addr, port, opts)
/** What a TCP echo server answers (`NAME PEERADDR`), or undefined. */
export const tcpAsk = (from: NsTarget, addr: string, port: number, opts: { timeout?: number } = {}): Promise<string | undefined> => client(from, 'tcp', addr, port, opts)
/** What a UDP echo server answers (`NAME PEERADDR`), or undefined; `srcPort` keeps one flow (one conntrack entry). */
export const udpAsk = (from: NsTarget, addr: string, port: number, opts: { timeout?: number; srcPort?: number } = {}): Promise<string | undefined> => client(from, 'udp', addr, port, opts)

/** An echo server (TCP or UDP) in a netns or container's netns (undefined: here), answering "NAME PEERADDR"; ready when this resolves. */
export async function startEcho(t: Teardown, where: NsTarget, port: number, name: string, proto: 'tcp' | 'udp'): Promise<void> {
  const proc = spawnIn(t, where, process.execPath, ['-e', ECHO, name, String(port), proto])
  await waitFor(() => readyOf(proc), { timeout: 10_000, what: `the ${proto} echo ${name} to listen` })
}

const ready = new WeakMap<object, boolean>()
function readyOf(proc: ReturnType<typeof spawnIn>): boolean {
  if (!ready.has(proc)) {
    ready.set(proc, false)
    proc.stdout?.on('data', (d: Buffer) => {
      if (String(d).includes('ready')) ready.set(proc, true)
    })
  }
  if (proc.exitCode !== null && proc.exitCode !== undefined) throw new Error(`the echo server exited (${proc.exitCode})`)
  return ready.get(proc) ?? false
}

/**
 * busybox httpd on PORT serving "NAME" at /: inside a container with its own busybox (docker
 * exec; it goes with the container), or in a netns with the host's busybox (stopped by pid).
 */
export async function startHttpd(t: Teardown, where: NonNullable<NsTarget>, port: number, name: string): Promise<void> {
  if (typeof where === 'object' && where.container) {
    await sh('docker', ['exec', where.container, 'sh', '-c', `mkdir -p /tmp/www && echo ${name} > /tmp/www/index.html && busybox httpd -p ${port} -h /tmp/www`])
  } else {
    const dir = mkdtempSync('/tmp/pt-www-')
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    writeFileSync(join(dir, 'index.html'), `${name}\n`)
    spawnIn(t, where, 'busybox', ['httpd', '-f', '-p', String(port), '-h', dir])
  }
  await waitFor(async () => (await httpGet(where, '127.0.0.1', port, { timeout: 500 })) === name, { timeout: 10_000, what: `httpd ${name} to answer` })
}

/** `conntrack -L` lines (of the netns `where`, or the host) whose original destination port is `port`. */
export async function conntrackEntries(where: NsTarget, proto: 'tcp' | 'udp', port: number): Promise<string[]> {
  const [cmd, args] = nsArgv(where, 'conntrack', ['-L', '-p', proto, '--orig-port-dst', String(port)])
  const r = await shQuiet(cmd, args)
  return r.stdout.split('\n').filter((l) => l.startsWith(proto))
}
