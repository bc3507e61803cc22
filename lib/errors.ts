// Typed errors with the exit codes of CLI.md; every failure a user sees is one of these.

export type ErrorCode = 'FAILED' | 'USAGE' | 'NOT_FOUND' | 'CONFLICT' | 'UNSUPPORTED' | 'PERMISSION'

export const EXIT_CODES: Record<ErrorCode, number> = {
  FAILED: 1,
  USAGE: 2,
  NOT_FOUND: 3,
  CONFLICT: 4,
  UNSUPPORTED: 5,
  PERMISSION: 6,
}

export interface PlumbErrorOptions {
  hint?: string
  cause?: unknown
  /** what a rollback undid before this error was re-thrown (ip-style lines) */
  rolledBack?: string[]
}

export class PlumbError extends Error {
  readonly code: ErrorCode
  readonly hint?: string
  rolledBack?: string[]

  constructor(code: ErrorCode, message: string, opts: PlumbErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause })
    this.name = 'PlumbError'
    this.code = code
    if (opts.hint !== undefined) this.hint = opts.hint
    if (opts.rolledBack !== undefined) this.rolledBack = opts.rolledBack
  }

  get exitCode(): number {
    return EXIT_CODES[this.code]
  }

  toJSON(): { code: ErrorCode; message: string; hint?: string; rolledBack?: string[] } {
    return {
      code: this.code,
      message: this.message,
      ...(this.hint ? { hint: this.hint } : {}),
      ...(this.rolledBack?.length ? { rolledBack: this.rolledBack } : {}),
    }
  }
}

export const usageError = (message: string, hint?: string): PlumbError =>
  new PlumbError('USAGE', message, hint === undefined ? {} : { hint })
export const notFound = (message: string, hint?: string): PlumbError =>
  new PlumbError('NOT_FOUND', message, hint === undefined ? {} : { hint })
export const conflict = (message: string, hint?: string): PlumbError =>
  new PlumbError('CONFLICT', message, hint === undefined ? {} : { hint })
export const unsupported = (message: string, hint?: string): PlumbError =>
  new PlumbError('UNSUPPORTED', message, hint === undefined ? {} : { hint })

/** Any thrown value as a PlumbError: unknown errors become FAILED (exit 1). */
export function asPlumbError(err: unknown): PlumbError {
  if (err instanceof PlumbError) return err
  const message = err instanceof Error ? err.message : String(err)
  return new PlumbError('FAILED', message, { cause: err })
}
