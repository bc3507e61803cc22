// A command run inside a lab node: with its own image's tools in a container (the Engine API's
// exec, with the capabilities the lab's privileged container has), with the host's tools in an ip netns (`ip netns exec`, so
// /etc/netns/NAME applies). Deploy's exec lines and the exec checks both run through here.

import { execInContainer } from '../guest/containers.js'
import { run } from '../proc.js'
import { shellWords } from './parse.js'
import type { LabNode } from './types.js'

export async function execInNode(node: LabNode, command: string, timeoutMs = 30_000): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  // Split as containerlab does (a shell's quoting, no expansion): `sh -c '...'` for a pipeline.
  const argv = shellWords(command)
  if (node.kind === 'linux') return execInContainer(node.runtime, argv, { timeoutMs })
  const r = await run('ip', ['netns', 'exec', node.runtime, ...argv], { timeout: timeoutMs })
  return { exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr }
}
