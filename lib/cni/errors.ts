// CNI error objects: the spec's well-known codes, plumb's own (100+), and how a PlumbError maps
// onto them. A plugin prints `{cniVersion, code, msg, details}` on stdout and exits non-zero.

import { PlumbError } from '../errors.js'
import type { ErrorCode } from '../errors.js'

/** The spec's well-known codes (0-99 are reserved for the spec). */
export const CNI_CODES = {
  INCOMPATIBLE_VERSION: 1,
  UNSUPPORTED_FIELD: 2,
  UNKNOWN_CONTAINER: 3,
  INVALID_ENV: 4,
  IO_FAILURE: 5,
  DECODING_FAILURE: 6,
  INVALID_CONFIG: 7,
  TRY_AGAIN_LATER: 11,
  /** STATUS (1.1.0): the plugin cannot serve ADD now */
  NOT_AVAILABLE: 50,
  /** STATUS (1.1.0): not available, and existing attachments may have lost connectivity */
  LIMITED_CONNECTIVITY: 51,
} as const

/**
 * plumb's own codes are 100 + the CLI's exit code, so a runtime's log and `plumb`'s exit code
 * name a failure alike: 101 failed (rolled back), 103 not found (bridge, parent, device), 104
 * conflict, 105 unsupported here, 106 permission. Invalid input is the spec's 7.
 */
export const PLUMB_CODE_BASE = 100

export class CniError extends Error {
  readonly code: number
  readonly details: string

  constructor(code: number, msg: string, details = '', opts: { cause?: unknown } = {}) {
    super(msg, opts.cause === undefined ? undefined : { cause: opts.cause })
    this.name = 'CniError'
    this.code = code
    this.details = details
  }

  /** The error object of the spec, in the version the config asked for. */
  toJSON(cniVersion: string): { cniVersion: string; code: number; msg: string; details?: string } {
    return { cniVersion, code: this.code, msg: this.message, ...(this.details ? { details: this.details } : {}) }
  }
}

const FROM_PLUMB: Record<ErrorCode, number> = {
  USAGE: CNI_CODES.INVALID_CONFIG,
  FAILED: PLUMB_CODE_BASE + 1,
  NOT_FOUND: PLUMB_CODE_BASE + 3,
  CONFLICT: PLUMB_CODE_BASE + 4,
  UNSUPPORTED: PLUMB_CODE_BASE + 5,
  PERMISSION: PLUMB_CODE_BASE + 6,
}

/** Any thrown value as a CniError: PlumbErrors keep their message, hint and rollback report. */
export function asCniError(err: unknown): CniError {
  if (err instanceof CniError) return err
  if (err instanceof PlumbError) {
    const details = [err.hint, ...(err.rolledBack?.length ? [`rolled back: ${err.rolledBack.join('; ')}`] : [])].filter(Boolean).join('; ')
    return new CniError(FROM_PLUMB[err.code], err.message, details, { cause: err })
  }
  return new CniError(PLUMB_CODE_BASE + 1, err instanceof Error ? err.message : String(err), '', { cause: err })
}
