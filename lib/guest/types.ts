// lib/guest's vocabulary: an open handle on a guest's network namespace, and what the container engines tell us.

import type { GuestRef } from '../parse/index.js'

export type { GuestRef }

/** A container engine plumb can ask for a container's netns. */
export type EngineName = 'docker' | 'podman'

/** The parts of a container's inspect JSON that plumb uses. */
export interface ContainerInfo {
  engine: EngineName
  /** full container id (64 hex) */
  id: string
  /** name without Docker's leading '/' */
  name: string
  running: boolean
  paused: boolean
  /** State.Pid: 0 when stopped */
  pid: number
  /** NetworkSettings.SandboxKey: the netns bind mount, '' when the engine has none (--net=container:X, stopped) */
  sandboxKey: string
  /** HostConfig.NetworkMode: 'none', 'bridge', 'default', 'host', 'container:<id>', a network name, ... */
  networkMode: string
  /** Config.ExposedPorts ('80/tcp', '53/udp'): the image's EXPOSE list and --expose, what -P publishes */
  exposedPorts?: string[]
}

/** A host port an engine publishes for a container (-p), from its container list. */
export interface PublishedPort {
  container: string
  /** '' for every address */
  hostIp: string
  hostPort: number
  proto: string
  port: number
}

/**
 * One row of listContainers(): enough for `ls` to name the running guests. Where a container's
 * netns is comes from an inspect of it (resolveGuest), made only for what is then looked at.
 */
export interface ContainerSummary {
  engine: EngineName
  id: string
  name: string
  running: boolean
}

/** What Netns.container holds when the guest is a container. */
export interface NetnsContainer {
  engine: EngineName
  id: string
  name: string
  networkMode: string
  /** name of the container whose netns this is (--net=container:X) */
  sharedWith?: string
}

/**
 * A guest's network namespace, opened once. `fd` stays valid (and keeps naming the same netns,
 * whatever happens to the process or container) until close(): no PID-reuse race.
 */
export interface Netns {
  ref: GuestRef
  /** canonical, for messages and owner marks: 'docker:web', 'podman:x', 'pid:123', 'netns:blue', '/path', 'host', 'self' */
  label: string
  /** stable identity for deriving names: the container id, or 'ino:<inode>' */
  key: string
  /** O_RDONLY fd on the netns file (setns(2) / IFLA_NET_NS_FD take it) */
  fd: number
  /** the file that was opened (for nsenter --net=PATH and dry-run plans) */
  path: string
  /** nsfs inode and device: two Netns open at once are the same namespace iff both are equal */
  ino: number
  dev: number
  /** the netns's cookie, read on first need (lib/ops/context.ts cookieOf): what tells it from a later netns given the same inode */
  cookie?: number
  /** this is the host's own netns (only returned with allowHost, or for ref kind 'host') */
  isHost: boolean
  /** a process in the netns, when known (containers, pid refs, /proc/PID/ns/net paths, self) */
  pid?: number
  container?: NetnsContainer
  /** close the fd; idempotent */
  close(): void
}

export interface ResolveOptions {
  /** accept a guest whose netns is the host's own (--allow-host) */
  allowHost?: boolean
  /** where DOCKER_HOST, CONTAINER_HOST and PATH are read (default process.env) */
  env?: NodeJS.ProcessEnv
}
