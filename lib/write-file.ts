// One way to replace a file's contents so that a reader (or a plumb killed half-way) never sees
// half of it: write `FILE.PID.tmp`, then rename it over FILE. A killed writer leaves only its
// temporary file, which removeDeadTemps takes away once that pid is gone (gc for plumb's own
// dirs, a CNI DEL or GC for a network's records); the pid in the name keeps two writers of one
// file off each other's temporary file.

import { closeSync, existsSync, fsyncSync, openSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'

export interface WriteOptions {
  /** the file's mode when it is created (default 0o644) */
  mode?: number
  /** also survive a power cut once this returns: fsync the file, and its directory after the rename */
  durable?: boolean
}

/** The temporary name `writeFileAtomic` uses for `file`. */
export const tempNameOf = (file: string): string => `${file}.${process.pid}.tmp`

export function writeFileAtomic(file: string, data: string, opts: WriteOptions = {}): void {
  const tmp = tempNameOf(file)
  const fd = openSync(tmp, 'w', opts.mode ?? 0o644)
  try {
    try {
      writeFileSync(fd, data)
      if (opts.durable) fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    renameSync(tmp, file)
  } catch (err) {
    rmSync(tmp, { force: true })
    throw err
  }
  if (opts.durable) {
    const dfd = openSync(dirname(file), 'r')
    try {
      fsyncSync(dfd)
    } finally {
      closeSync(dfd)
    }
  }
}

/**
 * Remove the temporary files in `dir` (only those of the file named `of` there, when given) whose
 * writer is gone: what a writeFileAtomic killed before its rename left. The write they belonged
 * to never happened; a live writer's are left alone. A missing dir has none.
 */
export function removeDeadTemps(dir: string, of?: string): void {
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch {
    return
  }
  for (const name of names) {
    const m = /\.(\d+)\.tmp$/.exec(name)
    if (!m || (of !== undefined && name !== `${of}.${m[1]}.tmp`)) continue
    if (!existsSync(`/proc/${m[1]}`)) rmSync(join(dir, name), { force: true })
  }
}
