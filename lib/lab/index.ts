// Labs in the library API: a lab file (a path, its text, or an already parsed Lab) to deploy,
// check, destroy, inspect or draw, for zx scripts as for `plumb lab`.

import { usageError } from '../errors.js'
import { runChecks } from './check.js'
import type { CheckOptions, CheckReport } from './check.js'
import { deploy, destroy } from './deploy.js'
import type { LabResult, LabRunOptions } from './deploy.js'
import { drawLab } from './graph.js'
import type { GraphFormat } from './graph.js'
import { inspect } from './inspect.js'
import type { InspectResult } from './inspect.js'
import { parseLab } from './parse.js'
import type { Lab } from './types.js'

/** A lab file's path, or a Lab from parseLab(). */
export type LabInput = string | Lab

/** Read and validate a lab file (exit 2 on anything wrong in it, naming the path in the file). */
export async function loadLab(file: string): Promise<Lab> {
  const { readFile } = await import('node:fs/promises')
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw usageError(`cannot read lab file "${file}": ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : ((err as Error).message)}`, 'give the path of a lab file (YAML, LAB.md)')
  }
  return parseLab(text, file)
}

const asLab = (input: LabInput): Promise<Lab> => (typeof input === 'string' ? loadLab(input) : Promise.resolve(input))

/** Build the lab; a second deploy of the same file changes nothing. */
export async function deployLab(input: LabInput, opts: LabRunOptions = {}): Promise<LabResult> {
  return deploy(await asLab(input), opts)
}

/** Remove everything the lab made, and nothing else; idempotent. */
export async function destroyLab(input: LabInput, opts: LabRunOptions = {}): Promise<LabResult> {
  return destroy(await asLab(input), opts)
}

/** Grade the lab as it is (deployed or built by hand): a report with every check, the score and the total. */
export async function checkLab(input: LabInput, opts: CheckOptions = {}): Promise<CheckReport> {
  return runChecks(await asLab(input), opts)
}

/** The lab's nodes as they are on the host now. */
export async function inspectLab(input: LabInput): Promise<InspectResult> {
  return inspect(await asLab(input))
}

/** The lab's topology as Mermaid, DOT or SVG text. */
export async function graphLab(input: LabInput, format: GraphFormat = 'mermaid'): Promise<string> {
  return drawLab(await asLab(input), format)
}

export { parseLab, shellWords } from './parse.js'
export { formatReport, CHECK_FORMATS } from './report.js'
export type { CheckFormat } from './report.js'
export { formatInspect } from './inspect.js'
export { GRAPH_FORMATS } from './graph.js'
export { barRenderer, lineRenderer } from './progress.js'
export type { GraphFormat, CheckOptions, CheckReport, InspectResult, LabResult, LabRunOptions }
export type { CheckOutcome } from './check.js'
export type { InspectNode, InspectInterface, InspectNat } from './inspect.js'
export type { LabProgress, ProgressFn } from './progress.js'
export type * from './types.js'
