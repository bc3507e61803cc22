// A fake container engine on a unix socket for the Engine API client's tests: every request is
// answered by writing `pieces` a few ms apart (so a reader meets answers cut anywhere), then,
// if asked, closing the connection (`end`, or `destroy`: an engine dying mid-stream).

import type { ExecutionContext } from 'ava'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import type { Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { EngineEndpoint } from '../../lib/guest/endpoint.js'

export interface FakeEngineOptions {
  /** close after the last piece: `end` (a FIN) or `destroy` (a reset, as a dying engine) */
  close?: 'end' | 'destroy'
  /** ms between pieces (default 3) */
  intervalMs?: number
}

export async function fakeEngine(t: ExecutionContext, pieces: Array<string | Buffer>, opts: FakeEngineOptions = {}): Promise<{ ep: EngineEndpoint; requests: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'pt-engine-'))
  const path = join(dir, 'engine.sock')
  const requests: string[] = []
  const open = new Set<Socket>()
  const interval = opts.intervalMs ?? 3
  const close = (sock: Socket): void => {
    if (opts.close === 'end') sock.end()
    else if (opts.close === 'destroy') sock.destroy()
  }
  const server = createServer((sock) => {
    open.add(sock)
    sock.on('close', () => open.delete(sock))
    sock.on('error', () => undefined)
    let req = ''
    sock.on('data', (c: Buffer) => {
      req += c.toString('latin1')
      if (!req.includes('\r\n\r\n')) return
      requests.push(req)
      if (pieces.length === 0) return close(sock)
      // Each piece's timer set once the one before it is written: timers of different durations
      // set together (0, 5, 10 ms) may run out of order once overdue (node runs each duration's
      // list in turn), and a loaded machine wrote a stream's end before its last event.
      const write = (i: number): void => {
        if (!sock.writable) return
        sock.write(pieces[i]!)
        if (i === pieces.length - 1) close(sock)
        else setTimeout(() => write(i + 1), interval)
      }
      setTimeout(() => write(0), 0)
    })
  })
  await new Promise<void>((resolve) => server.listen(path, resolve))
  t.teardown(async () => {
    for (const s of open) s.destroy()
    await new Promise((r) => server.close(r))
    rmSync(dir, { recursive: true, force: true })
  })
  return { ep: { engine: 'docker', socketPath: path }, requests }
}
