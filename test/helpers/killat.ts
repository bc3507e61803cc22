// The crash tests' killer: test/helpers/killat.c (why it is not strace is said there), built once
// per build of the tests beside this module, as dist/test/helpers/killat.

import { execFileSync } from 'node:child_process'
import { renameSync, statSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { hasBinary } from './env.js'

const SOURCE = fileURLToPath(new URL('../../../test/helpers/killat.c', import.meta.url))
const BINARY = fileURLToPath(new URL('./killat', import.meta.url))

/** Whether killat can be built here (a C compiler and its source). */
export const canBuildKillAt = hasBinary('cc') && statSync(SOURCE, { throwIfNoEntry: false }) !== undefined

let built: string | undefined

/**
 * killat's path (`killat K CMD...`: CMD SIGKILLed on entry to its K-th call that changes
 * something, exit 137, or CMD's own exit status), compiled first when it is missing or older
 * than its source. Test files in other workers may build it at the same moment: each compiles
 * to a file of its own and renames it in.
 */
export function killAt(): string {
  if (built) return built
  const binary = statSync(BINARY, { throwIfNoEntry: false })
  if (!binary || binary.mtimeMs < statSync(SOURCE).mtimeMs) {
    const tmp = `${BINARY}.${process.pid}.tmp`
    execFileSync('cc', ['-O2', '-Wall', '-o', tmp, SOURCE], { stdio: ['ignore', 'ignore', 'inherit'] })
    renameSync(tmp, BINARY)
  }
  return (built = BINARY)
}
