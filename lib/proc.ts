// The one way lib/ runs a program: run() waits for it and hands back its exit status and
// output (never rejecting on a non-zero exit); spawnChild() starts one that lives on (the DHCP
// supervisor, `plumb exec`'s child).
//
// node:child_process, not execa: spawning sits on the one-shot attach path (the firewall check),
// where loading execa costs ~12 ms even from the bundle (~80 ms unbundled) against a ~25 ms
// shell floor, and the few options used here need none of execa's parsing. Tests use execa.

import type { ChildProcess, SpawnOptions } from 'node:child_process'
import { accessSync, constants, existsSync, readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { PlumbError } from './errors.js'
import { errnoOf, errorCodeOf } from './kernel/errors.js'

/** Where programs are looked up when the caller hands a minimal environment. */
export const SAFE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

/** Where `bin` is on PATH (an executable), if anywhere: no spawn, looking costs microseconds. */
export function findOnPath(bin: string, envPath: string = process.env.PATH ?? ''): string | undefined {
  for (const dir of envPath.split(':')) {
    if (!dir) continue
    const p = join(dir, bin)
    // a directory without it (most of them) answers without an exception's stack trace
    if (!existsSync(p)) continue
    try {
      accessSync(p, constants.X_OK)
      return p
    } catch {
      /* not executable: next */
    }
  }
  return undefined
}

export interface RunOptions {
  /** written to the program's stdin (default: no stdin) */
  input?: string
  /** ms before SIGKILL (default 10 s); the result then has timedOut */
  timeout?: number
  /** variables added to plumb's own environment (or, with extendEnv false, the whole of it) */
  env?: Record<string, string>
  /** false: the program sees only `env`, with PATH defaulting to SAFE_PATH (as execa's extendEnv) */
  extendEnv?: boolean
  /**
   * The program works for an op's journalled step: it, and every process it starts, carries
   * CHILD_OF=this in its environment from before it runs, so that a recovery of the op (killed
   * while the program still worked) lets them finish first (see processesChildOf).
   */
  childOf?: string
  /** aborting it kills the program (SIGKILL); the result then has `aborted` */
  signal?: AbortSignal
}

export interface RunResult {
  /** the exit status; -1 when the program was killed by a signal */
  exitCode: number
  signal?: NodeJS.Signals
  stdout: string
  stderr: string
  timedOut: boolean
  /** killed because the caller's signal was aborted */
  aborted?: boolean
}

/**
 * Run `file args` to its end. A program that cannot be started (not installed, not executable)
 * is a PlumbError UNSUPPORTED naming it (exit 5); a non-zero exit is the caller's to judge.
 */
export async function run(file: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const { execFile } = await import('node:child_process')
  const timeout = opts.timeout ?? 10_000
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      { timeout, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024, env: environment(opts), ...(opts.signal ? { signal: opts.signal } : {}) },
      (err, stdout, stderr) => {
        const e = err as (NodeJS.ErrnoException & { killed?: boolean; signal?: NodeJS.Signals; code?: unknown }) | null
        if (e && e.name === 'AbortError') {
          resolve({ exitCode: -1, stdout: String(stdout), stderr: String(stderr), timedOut: false, aborted: true })
          return
        }
        if (e && typeof e.code === 'string') {
          reject(cannotStart(file, e))
          return
        }
        const signal = e?.signal ?? undefined
        resolve({
          exitCode: e ? (typeof e.code === 'number' ? e.code : -1) : 0,
          ...(signal ? { signal } : {}),
          stdout: String(stdout),
          stderr: String(stderr),
          timedOut: Boolean(e?.killed && signal === 'SIGKILL'),
        })
      },
    )
    // A program that exits without reading its input (a CNI plugin asked VERSION ignores stdin)
    // makes the write fail with EPIPE: its exit status says how it went, the pipe does not.
    child.stdin?.on('error', () => undefined)
    if (opts.input !== undefined) child.stdin?.end(opts.input)
    else child.stdin?.end()
  })
}

/** Start a program that outlives this call: the caller watches it (events, pid). */
export async function spawnChild(file: string, args: string[], opts: SpawnOptions = {}): Promise<ChildProcess> {
  const { spawn } = await import('node:child_process')
  return spawn(file, args, opts)
}

function environment(opts: RunOptions): NodeJS.ProcessEnv {
  const env = opts.childOf === undefined ? opts.env : { ...opts.env, [CHILD_OF]: opts.childOf }
  if (opts.extendEnv === false) return { PATH: SAFE_PATH, ...env }
  return env ? { ...process.env, ...env } : process.env
}

/**
 * The variable a program run for an op's step carries (RunOptions.childOf): the op's
 * `<pid>:<start time>`, as its journal entry names its writer.
 *
 * Why not record the child's pid in the journal once it is spawned: a kill between the spawn and
 * that write (CI's crash case saw it, an iptables rule added after gc had looked) leaves a
 * program at work that no entry names. The environment is the child's from its exec on (before
 * that it is plumb's copy, a few microseconds, doing nothing but exec), and its own children
 * (flock's sh, sh's iptables) inherit it.
 */
export const CHILD_OF = 'PLUMB_CHILD_OF'

/**
 * The live processes carrying CHILD_OF=`tag`: one read of /proc/PID/environ per process (3-10
 * ms for ~90), done only by a recovery of a dead op's entry that says it ran programs. A
 * zombie's environ is empty: it does nothing more.
 */
export function processesChildOf(tag: string): number[] {
  const entry = Buffer.from(`${CHILD_OF}=${tag}\0`)
  const inside = Buffer.from(`\0${CHILD_OF}=${tag}\0`)
  const out: number[] = []
  for (const name of readdirSync('/proc')) {
    const pid = Number(name)
    if (!Number.isInteger(pid) || pid === process.pid) continue
    let env: Buffer
    try {
      env = readFileSync(`/proc/${pid}/environ`)
    } catch {
      continue // gone meanwhile
    }
    if (env.subarray(0, entry.length).equals(entry) || env.includes(inside)) out.push(pid)
  }
  return out
}

/** A program that could not be started (spawn's error): UNSUPPORTED, exit 5, naming it. */
export function cannotStart(file: string, e: Error, hint = `install the package that provides ${file}`): PlumbError {
  const errno = errnoOf(e)
  const kind = errno && errorCodeOf(errno)
  const why = kind === 'NOT_FOUND' ? 'not found' : kind === 'PERMISSION' ? 'not executable' : (errno ?? e.message)
  return new PlumbError('UNSUPPORTED', `cannot run ${file}: ${why}`, { cause: e, hint })
}
