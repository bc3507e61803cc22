// Where the CLI writes: data to stdout, diagnostics to stderr; swappable so tests drive the
// real argument parsing without spawning a process.

export interface CliIo {
  out(text: string): void
  err(text: string): void
}

export const processIo: CliIo = {
  out: (text) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`),
  err: (text) => process.stderr.write(text.endsWith('\n') ? text : `${text}\n`),
}

/** An in-memory sink, for tests of the CLI through its factory. */
export function bufferIo(): CliIo & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = []
  const stderr: string[] = []
  return { stdout, stderr, out: (t) => void stdout.push(t), err: (t) => void stderr.push(t) }
}
