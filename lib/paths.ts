// Where plumb's own files are: the package root, found by walking up from this module, so it
// works from dist/lib/**.js (library) and from the one-file bundle dist/plumb-cli.cjs (CLI) alike.

import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** Where plumb keeps its host-wide runtime state and locks (tmpfs: gone with a reboot, as they should be). */
export const RUN_DIR = '/run/plumb'

let root: string | undefined

export function packageRoot(): string {
  if (root) return root
  let dir = dirname(fileURLToPath(import.meta.url))
  for (;;) {
    const pj = join(dir, 'package.json')
    if (existsSync(pj)) {
      try {
        if ((JSON.parse(readFileSync(pj, 'utf8')) as { name?: string }).name === 'plumb') return (root = dir)
      } catch {
        /* not ours: keep walking */
      }
    }
    const up = dirname(dir)
    if (up === dir) throw new Error('cannot find the plumb package root')
    dir = up
  }
}

export function packageVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version
}
