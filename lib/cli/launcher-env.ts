// What native/launcher.c changes in node's environment for its start only, undone once node runs: by the
// CLI (lib/cli/index.ts) and the CNI plugin (bin/cni.ts) alike.

/** glibc's malloc tunables native/launcher.c gives node's start from a blob (why: there). */
export const LAUNCHER_GLIBC_TUNABLES = 'glibc.malloc.hugetlb=1:glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=67108864'

/**
 * What the launcher (native/launcher.c) set for node's start only, put back now that node has
 * started, for the programs plumb runs (plumb exec, a hook, a DHCP client, ip, iptables):
 * NODE_EXTRA_CA_CERTS, kept from node's start under another name (node reads the bundle before
 * anything runs, and plumb makes no TLS connection); GLIBC_TUNABLES, the caller's value (kept
 * under another name) or none, in place of the one node started with.
 */
export function restoreLauncherEnv(env: NodeJS.ProcessEnv): void {
  const ca = env.PLUMB_NODE_EXTRA_CA_CERTS
  if (ca !== undefined) {
    env.NODE_EXTRA_CA_CERTS = ca
    delete env.PLUMB_NODE_EXTRA_CA_CERTS
  }
  const tunables = env.PLUMB_GLIBC_TUNABLES
  if (tunables !== undefined) {
    env.GLIBC_TUNABLES = tunables
    delete env.PLUMB_GLIBC_TUNABLES
  } else if (env.GLIBC_TUNABLES === LAUNCHER_GLIBC_TUNABLES) {
    delete env.GLIBC_TUNABLES
  }
}
