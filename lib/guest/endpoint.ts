// Where a container engine's API lives: DOCKER_HOST / CONTAINER_HOST parsed to a unix socket path (pure).

import { usageError } from '../errors.js'
import type { EngineName } from './types.js'

export const DOCKER_SOCKET = '/var/run/docker.sock'
export const PODMAN_SOCKET = '/run/podman/podman.sock'

export interface EngineEndpoint {
  engine: EngineName
  /** absolute path of the unix socket */
  socketPath: string
  /** the environment variable it came from, or undefined for the default */
  fromEnv?: 'DOCKER_HOST' | 'CONTAINER_HOST'
}

export function envVarOf(engine: EngineName): 'DOCKER_HOST' | 'CONTAINER_HOST' {
  return engine === 'docker' ? 'DOCKER_HOST' : 'CONTAINER_HOST'
}

/** The socket an engine listens on when no environment variable says otherwise. */
export function defaultSocket(engine: EngineName, env: NodeJS.ProcessEnv = process.env, uid: number = process.getuid?.() ?? 0): string {
  if (engine === 'docker') return DOCKER_SOCKET
  // Rootless Podman puts its socket under the user's runtime dir; root's is system-wide.
  if (uid !== 0 && env.XDG_RUNTIME_DIR) return `${env.XDG_RUNTIME_DIR}/podman/podman.sock`
  return PODMAN_SOCKET
}

/**
 * Parse a DOCKER_HOST / CONTAINER_HOST value. Only local unix sockets make sense: a remote
 * engine's containers live on another machine, whose namespaces we cannot open.
 * Accepts `unix:///abs/path` (and the `unix:/abs/path` shorthand); empty or unset = the default.
 */
export function parseEngineHost(value: string | undefined, engine: EngineName, env: NodeJS.ProcessEnv = process.env): EngineEndpoint {
  const v = value?.trim() ?? ''
  if (v === '') return { engine, socketPath: defaultSocket(engine, env) }
  const fromEnv = envVarOf(engine)
  // unix:///abs or unix:/abs; not unix://host/... (that "host" would be a relative path).
  const m = /^unix:(?:\/\/(\/.*)|(\/(?!\/).*))$/.exec(v)
  if (!m) {
    const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(v)?.[1]
    const why = scheme && scheme !== 'unix' ? `plumb only supports unix sockets, not ${scheme}://` : 'expected unix:///path/to/socket'
    throw usageError(
      `unsupported ${fromEnv} "${v}": ${why}`,
      `plumb opens the container's network namespace on this machine, so it talks to a local engine: set ${fromEnv}=unix://${defaultSocket(engine, env)} or unset it`,
    )
  }
  const socketPath = (m[1] ?? m[2])!
  if (socketPath.length < 2 || socketPath.endsWith('/')) {
    throw usageError(`unsupported ${fromEnv} "${v}": "${socketPath}" is not a socket path`, `e.g. ${fromEnv}=unix://${defaultSocket(engine, env)}`)
  }
  return { engine, socketPath, fromEnv }
}

/** The endpoint to use for `engine`, from the environment. */
export function engineEndpoint(engine: EngineName, env: NodeJS.ProcessEnv = process.env): EngineEndpoint {
  return parseEngineHost(env[envVarOf(engine)], engine, env)
}

/** `unix:///var/run/docker.sock`, as users write it. */
export function endpointUrl(ep: EngineEndpoint): string {
  return `unix://${ep.socketPath}`
}
