// Where the CLI writes: data to stdout, diagnostics to stderr; swappable so tests drive the
// real argument parsing without spawning a process.
//
// Straight to fds 1 and 2 with write(2), not through process.stdout/stderr: a one-shot run says
// a line or two, and the first touch of process.stdout builds a net.Socket for a pipe or a
// terminal (loading node:net and node:tty, ~2 ms of every run whose output is read by a
// program, against ~0.05 ms for the write). Synchronous, as node's own stdout is for pipes and
// terminals on Linux, so nothing is lost at process.exit.

import { writeSync } from 'node:fs'

export interface CliIo {
  out(text: string): void
  err(text: string): void
}

export const processIo: CliIo = {
  out: (text) => writeAll(1, text.endsWith('\n') ? text : `${text}\n`),
  err: (text) => writeAll(2, text.endsWith('\n') ? text : `${text}\n`),
}

/** A moment's wait without the event loop (a full non-blocking pipe); made when first needed
 *  (the start-up snapshot's builder has no SharedArrayBuffer). */
let pause: Int32Array | undefined

/**
 * All of `text` to `fd`: a short write goes on from where it stopped; a non-blocking pipe left
 * full by a slow reader (O_NONBLOCK inherited from a parent) is waited on; a reader gone
 * (EPIPE: `plumb ls | head -1`) ends the output quietly, the exit code still the command's.
 */
export function writeAll(fd: number, text: string): void {
  let buf = Buffer.from(text)
  while (buf.length > 0) {
    try {
      buf = buf.subarray(writeSync(fd, buf))
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'EAGAIN') Atomics.wait((pause ??= new Int32Array(new SharedArrayBuffer(4))), 0, 0, 1)
      else if (code === 'EPIPE') return
      else throw err
    }
  }
}

/** An in-memory sink, for tests of the CLI through its factory. */
export function bufferIo(): CliIo & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = []
  const stderr: string[] = []
  return { stdout, stderr, out: (t) => void stdout.push(t), err: (t) => void stderr.push(t) }
}
