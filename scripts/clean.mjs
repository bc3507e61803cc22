// Empties dist/ before a build: tsc never deletes the output of a source file that was renamed or
// removed, and ava would go on running a stale compiled test.
import { rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

rmSync(join(dirname(fileURLToPath(import.meta.url)), '..', 'dist'), { recursive: true, force: true })
