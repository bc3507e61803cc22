// Assertions shared by the unit tables: a usage error (exit 2) naming the problem, with its hint.

import type { ExecutionContext } from 'ava'
import { PlumbError } from '../../lib/errors.js'

export type Want = { message: RegExp; hint?: RegExp }

export function usage(t: ExecutionContext, fn: () => unknown, want: Want): void {
  const err = t.throws(fn, { instanceOf: PlumbError }) as PlumbError
  t.is(err.code, 'USAGE')
  t.is(err.exitCode, 2)
  t.regex(err.message, want.message)
  if (want.hint) t.regex(err.hint ?? '', want.hint)
}
