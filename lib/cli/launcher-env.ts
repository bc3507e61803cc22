// What bin/plumb.sh changes in node's environment for its start only, undone once node runs: by the
// CLI (lib/cli/index.ts) and the CNI plugin (bin/cni.ts) alike.

/**
 * What the launcher (bin/plumb.sh) set for node's start only, put back now that node has
 * started, for the programs plumb runs (plumb exec, a hook, a DHCP client): NODE_EXTRA_CA_CERTS,
 * kept from node's start under another name (node reads the bundle before anything runs, and
 * plumb makes no TLS connection).
 */
export function restoreLauncherEnv(env: NodeJS.ProcessEnv): void {
  const ca = env.PLUMB_NODE_EXTRA_CA_CERTS
  if (ca !== undefined) {
    env.NODE_EXTRA_CA_CERTS = ca
    delete env.PLUMB_NODE_EXTRA_CA_CERTS
  }
}
