// lib/dhcp: real DHCP clients run inside a guest's netns, supervised for the guest's life.

export { startDhcp, stopDhcp, dhcpArgv, undoLines } from './run.js'
export type { StartDhcpOptions, StopDhcpOptions, StopResult } from './run.js'
export { detectClients, resolveClient, clientArgv, dhclientConf } from './clients.js'
export type { DhcpClientChoice, DhcpClientKind, ResolvedClient } from './clients.js'
export { listLeases, statePaths, stateDirName } from './state.js'
export type { Lease, LeaseState, LeaseMeta, StatePaths } from './state.js'
export { hookScript, SUPERVISOR_SCRIPT } from './scripts.js'
