// Reachability probes run inside a node's netns from the host, with the host's tools: the node's
// image needs none (a busybox or distroless container is graded all the same). ping is iputils'
// ping entered into the netns; a TCP connect is a tiny node script entered into it. Both retry
// until their deadline: a reachable target passes on the first answer, a must-not-reach one only
// if nothing answered within the whole window.

import { run } from '../proc.js'

export interface ProbeResult {
  ok: boolean
  /** who answered, or why nothing did */
  detail: string
}

/** argv that runs `cmd` in the netns held open by this process as `fd` (none: in ours, the host's). */
function inNetns(fd: number | undefined, cmd: string[]): [string, string[]] {
  if (fd === undefined) return [cmd[0]!, cmd.slice(1)]
  // The child opens our fd through /proc: exactly the netns we resolved, whatever happened to its process since.
  return ['nsenter', [`--net=/proc/${process.pid}/fd/${fd}`, '--', ...cmd]]
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** ping any of `addresses` until one answers (the others are stopped then) or `seconds` pass. */
export async function pingProbe(fd: number | undefined, addresses: string[], seconds: number): Promise<ProbeResult> {
  const deadline = Date.now() + seconds * 1000
  const stop = new AbortController()
  const one = async (addr: string): Promise<string | undefined> => {
    while (!stop.signal.aborted) {
      const left = Math.ceil((deadline - Date.now()) / 1000)
      if (left <= 0) return undefined
      // -c 1 -w LEFT: probes every 0.2 s until one reply or the deadline; no route is an
      // immediate error (exit 2), so that case retries here until the deadline.
      const [file, args] = inNetns(fd, ['ping', '-n', '-q', '-c', '1', '-i', '0.2', '-W', '1', '-w', String(left), addr])
      const r = await run(file, args, { timeout: (left + 2) * 1000, signal: stop.signal })
      if (r.exitCode === 0) {
        stop.abort()
        return addr
      }
      if (Date.now() >= deadline) return undefined
      await sleep(200)
    }
    return undefined
  }
  const answered = (await Promise.all(addresses.map(one))).filter((a): a is string => a !== undefined)
  return answered.length ? { ok: true, detail: `${answered.join(', ')} answered` } : { ok: false, detail: `no answer from ${addresses.join(', ')} within ${seconds} s` }
}

// Runs in the netns: connect to any of the addresses until one accepts or the deadline passes.
const TCP_SCRIPT = `
const net = require('node:net')
const [port, ms, ...addrs] = process.argv.slice(1)
const deadline = Date.now() + Number(ms)
let last = 'no attempt'
const tryOnce = (host) => new Promise((resolve) => {
  const s = net.connect({ host, port: Number(port), timeout: 1000 })
  s.on('connect', () => { s.destroy(); resolve(true) })
  s.on('timeout', () => { last = host + ': timed out'; s.destroy(); resolve(false) })
  s.on('error', (e) => { last = host + ': ' + (e.code || e.message); resolve(false) })
})
;(async () => {
  for (;;) {
    const ok = await Promise.all(addrs.map(tryOnce))
    const i = ok.indexOf(true)
    if (i >= 0) { process.stdout.write(addrs[i]); process.exit(0) }
    if (Date.now() + 200 >= deadline) { process.stderr.write(last); process.exit(1) }
    await new Promise((r) => setTimeout(r, 200))
  }
})()
`

/** A TCP connect to `port` on any of `addresses`, retried until `seconds` pass. */
export async function tcpProbe(fd: number | undefined, addresses: string[], port: number, seconds: number): Promise<ProbeResult> {
  const [file, args] = inNetns(fd, [process.execPath, '-e', TCP_SCRIPT, String(port), String(seconds * 1000), ...addresses])
  // The probe is a plain node: no CA bundle to load, no options of ours.
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && k !== 'NODE_EXTRA_CA_CERTS' && k !== 'NODE_OPTIONS') env[k] = v
  const r = await run(file, args, { timeout: (seconds + 5) * 1000, env, extendEnv: false })
  const where = addresses.map((a) => (a.includes(':') ? `[${a}]:${port}` : `${a}:${port}`)).join(', ')
  if (r.exitCode === 0) return { ok: true, detail: `${r.stdout.trim()}:${port} accepted` }
  return { ok: false, detail: `no connection to ${where} within ${seconds} s (${r.stderr.trim() || `exit ${r.exitCode}`})` }
}
