// The library's host-wide settings (where ovsdb-server listens, where DHCP leases are kept): set by
// the program through configure(), the CLI from its environment at start; library code never reads PLUMB_*.

import { RUN_DIR, STATE_DIR } from './paths.js'

export interface PlumbConfig {
  /** ovsdb-server's unix socket; default `$OVS_RUNDIR/db.sock` (/var/run/openvswitch/db.sock), where ovs-vsctl looks */
  ovsdbSocket?: string
  /** where the DHCP clients' state dirs live; default /run/plumb/dhcp */
  dhcpStateDir?: string
  /** where the durable records of what plumb did to each container live (replayed after a restart); default /var/lib/plumb/records */
  recordsDir?: string
}

let current: PlumbConfig = {}

/**
 * Replace the settings: a setting left out goes back to its default. Returns the previous ones
 * (to restore them). Every op reads them when it runs, so a change applies to the next op.
 */
export function configure(config: PlumbConfig): PlumbConfig {
  const before = current
  current = { ...config }
  return before
}

/** Where Open vSwitch keeps its sockets and pid files (OVS_RUNDIR is its own variable; ovs-ctl creates the dir, and it stays when OVS stops). */
export const ovsRunDir = (): string => process.env.OVS_RUNDIR ?? '/var/run/openvswitch'

/** ovsdb-server's socket: the configured one, else ovs-vsctl's own default. */
export const ovsdbSocket = (): string => current.ovsdbSocket || `${ovsRunDir()}/db.sock`

/** The root of the DHCP state dirs. */
export const dhcpStateDir = (): string => current.dhcpStateDir || `${RUN_DIR}/dhcp`

/**
 * The settings plumb's programs (the CLI, the CNI plugin) take from their environment, there
 * and nowhere else: PLUMB_OVSDB (ovsdb-server's socket), PLUMB_DHCP_STATE_DIR and
 * PLUMB_RECORDS_DIR (the records `replay` and `watch` re-apply).
 */
export function configFromEnv(env: NodeJS.ProcessEnv): PlumbConfig {
  return {
    ...(env.PLUMB_OVSDB ? { ovsdbSocket: env.PLUMB_OVSDB } : {}),
    ...(env.PLUMB_DHCP_STATE_DIR ? { dhcpStateDir: env.PLUMB_DHCP_STATE_DIR } : {}),
    ...(env.PLUMB_RECORDS_DIR ? { recordsDir: env.PLUMB_RECORDS_DIR } : {}),
  }
}
/** The durable record store (not tmpfs: it must outlive a reboot, as the containers' restart policies do). */
export const recordsDir = (): string => current.recordsDir || `${STATE_DIR}/records`
