// Unix sockets that stand in for a daemon that cannot be asked: one nobody listens on, one that accepts and never answers.

import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import { join } from 'node:path'
import type { Teardown } from './env.js'

function tempDir(t: Teardown): string {
  const dir = mkdtempSync('/tmp/pt-sock-')
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/**
 * A socket file with nothing listening (a daemon that died without cleaning up): connect(2)
 * gets ECONNREFUSED. Bound by a process that exits at once; node would unlink its own on close.
 */
export function deadSocket(t: Teardown): string {
  const path = join(tempDir(t), 'dead.sock')
  execFileSync('python3', ['-c', 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', path])
  return path
}

/** A socket that accepts connections and reads requests but never answers (a hung daemon). */
export async function hungSocket(t: Teardown): Promise<string> {
  const path = join(tempDir(t), 'hung.sock')
  const held: net.Socket[] = []
  const server = net.createServer((c) => {
    held.push(c)
    c.on('error', () => undefined)
    c.resume()
  })
  await new Promise<void>((resolve) => server.listen(path, resolve))
  t.teardown(async () => {
    for (const c of held) c.destroy()
    await new Promise((resolve) => server.close(resolve))
  })
  return path
}
