// guestProbe against a fake Docker API: found, gone (the engine said so), and unknown (the engine
// could not be asked: no socket, a dead socket, a hung one, a connection dropped mid-lookup).

import test from 'ava'
import { mkdtempSync, rmSync } from 'node:fs'
import http from 'node:http'
import { join } from 'node:path'
import { EngineUnreachable } from '../../lib/guest/engine.js'
import { guestProbe } from '../../lib/guest/index.js'
import type { GuestState } from '../../lib/guest/index.js'
import { deadSocket, hungSocket } from '../helpers/index.js'

const running = (id: string, name: string) => ({
  Id: id,
  Name: `/${name}`,
  State: { Status: 'running', Running: true, Paused: false, Pid: process.pid },
  HostConfig: { NetworkMode: 'none' },
  // no SandboxKey: the netns is opened through /proc/PID/ns/net, then the pid is checked by id
  NetworkSettings: { SandboxKey: '' },
})
const ID_WEB = 'a'.repeat(64)
const ID_FLAKY = 'f'.repeat(64)
const containers: Record<string, unknown> = {
  'pt-web': running(ID_WEB, 'pt-web'),
  [ID_WEB]: running(ID_WEB, 'pt-web'),
  'pt-flaky': running(ID_FLAKY, 'pt-flaky'),
  'pt-stopped': { Id: 'b'.repeat(64), Name: '/pt-stopped', State: { Running: false, Pid: 0 }, HostConfig: { NetworkMode: 'none' }, NetworkSettings: { SandboxKey: '' } },
}

const requests: string[] = []
const dir = mkdtempSync('/tmp/pt-probe-')
const sock = join(dir, 'engine.sock')
const server = http.createServer((req, res) => {
  const url = req.url ?? ''
  requests.push(url)
  const name = decodeURIComponent(/^\/v1\.41\/containers\/([^/]+)\/json$/.exec(url)?.[1] ?? '')
  // pt-flaky's second look (by id, after its netns was opened through its pid) gets no answer
  if (name === ID_FLAKY) return res.destroy()
  res.writeHead(containers[name] ? 200 : 404, { 'Content-Type': 'application/json' })
  res.end(JSON.stringify(containers[name] ?? { message: `No such container: ${name}` }))
})
test.before(async () => {
  await new Promise<void>((resolve) => server.listen(sock, resolve))
})
test.after.always(() => {
  server.closeAllConnections()
  server.close()
  rmSync(dir, { recursive: true, force: true })
})

const docker = (name: string) => ({ kind: 'container' as const, engine: 'docker' as const, name })
const at = (socketPath: string) => ({ env: { DOCKER_HOST: `unix://${socketPath}`, PATH: process.env.PATH ?? '' } })

function unknownOf(t: import('ava').ExecutionContext, s: GuestState) {
  if (s.state !== 'unknown') return t.fail(`expected unknown, got ${s.state}`)
  return s
}

test('found, gone (404, stopped, no such netns or pid): only what an engine or the kernel answered is "gone"', async (t) => {
  const probe = guestProbe(at(sock))
  const web = await probe(docker('pt-web'))
  t.is(web.state, 'found')
  if (web.state === 'found') {
    t.is(web.netns.label, 'docker:pt-web')
    web.netns.close()
  }
  const nope = await probe(docker('pt-nope'))
  t.like(nope, { state: 'gone' })
  t.regex((nope as { reason: string }).reason, /no such container "pt-nope"/)
  t.like(await probe(docker('pt-stopped')), { state: 'gone' })
  t.like(await probe({ kind: 'netns', name: 'pt-no-such-netns' }), { state: 'gone' })
  t.like(await probe({ kind: 'pid', pid: 0x3fffffff }), { state: 'gone' })
})

test('a connection dropped during the pid re-check is unknown, not "stopped"', async (t) => {
  const s = unknownOf(t, await guestProbe(at(sock))(docker('pt-flaky')))
  t.not(s?.error.code, 'NOT_FOUND')
})

for (const [what, socketPath, errno] of [
  ['no socket at all', () => join(dir, 'missing.sock'), 'ENOENT'],
  ['a socket nobody listens on', (t: import('ava').ExecutionContext) => deadSocket(t), 'ECONNREFUSED'],
] as const) {
  test(`Docker unreachable (${what}): unknown, UNSUPPORTED (exit 5) naming the Docker API and ${errno}`, async (t) => {
    const probe = guestProbe(at(socketPath(t)))
    const s = unknownOf(t, await probe(docker('pt-web')))
    t.is(s?.error.code, 'UNSUPPORTED')
    t.is(s?.error.exitCode, 5)
    t.regex(s?.reason ?? '', new RegExp(`Docker API not reachable at unix://.*: ${errno}`))
    t.regex(s?.error.hint ?? '', /is dockerd running/)
  })
}

test('a hung Docker: unknown after the timeout, and the engine is not asked again in the same run', async (t) => {
  const probe = guestProbe(at(await hungSocket(t)))
  const started = Date.now()
  const s = unknownOf(t, await probe(docker('pt-web')))
  t.regex(s?.reason ?? '', /Docker API at unix:\/\/.* did not answer within 5 s/)
  t.is(s?.error.exitCode, 5)
  t.regex(s?.error.hint ?? '', /is dockerd hung/)
  t.true(Date.now() - started >= 4_500)
  const again = Date.now()
  t.like(await probe(docker('pt-other')), { state: 'unknown', reason: s?.reason })
  t.true(Date.now() - again < 500, 'the second guest of the hung engine is unknown at once')
  // a guest that is not the engine's is still asked
  t.like(await probe({ kind: 'netns', name: 'pt-no-such-netns' }), { state: 'gone' })
})

test('engineDown: a failure seen elsewhere (a container listing) makes that engine\'s guests unknown without a request', async (t) => {
  const probe = guestProbe(at(sock))
  probe.engineDown('docker', new EngineUnreachable({ engine: 'docker', socketPath: sock }, 'ECONNREFUSED'))
  const before = requests.length
  t.like(await probe(docker('pt-web')), { state: 'unknown' })
  t.is(requests.length, before)
})
