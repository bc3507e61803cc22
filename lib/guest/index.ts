// lib/guest: from a guest reference to an open netns handle (Docker/Podman Engine API, pid, ip netns, path, host, self).

export type { ContainerInfo, ContainerSummary, EngineName, GuestRef, Netns, NetnsContainer, PublishedPort, ResolveOptions } from './types.js'
export { resolveGuest } from './resolve.js'
export { containerFate, guestProbe, guestVerdict } from './probe.js'
export type { ContainerFate, GuestProbe, GuestState, GuestVerdict } from './probe.js'
export { engineStatus, inspectContainer, listContainers, publishedPorts } from './engine.js'
export { DOCKER_SOCKET, PODMAN_SOCKET, endpointUrl, engineEndpoint, parseEngineHost } from './endpoint.js'
export type { EngineEndpoint } from './endpoint.js'
export { containerFromInspect, netnsPathsOf, publishedFromList, sharedNetnsOf, summaryFromList } from './inspect.js'
export { INIT_NET_INO, hostNetnsId, hostNetnsIno, isHostNs } from './nsfile.js'
