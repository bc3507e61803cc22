// plumb cni install

import type { Argv, CommandModule } from 'yargs'
import { ops, runOp, sharedFlags } from '../common.js'
import type { CliState, GlobalArgs } from '../common.js'
import { DEFAULT_CNI_BIN_DIR } from '../../paths.js'

interface CniInstallArgs extends GlobalArgs {
  dir?: string
  del: boolean
}

export const cniCommand = (state: CliState): CommandModule<GlobalArgs, GlobalArgs> => ({
  command: 'cni <action>',
  describe: 'plumb as a CNI plugin: `install` puts it where container runtimes look and prints a sample conflist',
  builder: (y: Argv<GlobalArgs>) =>
    sharedFlags(y, ['json', 'dry-run', 'quiet'])
      .positional('action', { type: 'string', choices: ['install'], describe: 'install (or with --del remove) the plugin launcher' })
      .option('dir', { type: 'string', describe: `the runtime's CNI plugin dir (default ${DEFAULT_CNI_BIN_DIR})` })
      .option('del', { type: 'boolean', default: false, describe: 'remove the launcher plumb wrote' })
      .example('$0 cni install', `write ${DEFAULT_CNI_BIN_DIR}/plumb and print a conflist using it`)
      .example('$0 cni install --dir /usr/lib/cni', "Debian's plugin dir (Podman and containerd look there too)") as unknown as Argv<GlobalArgs>,
  handler: (args) => {
    const a = args as unknown as CniInstallArgs
    return runOp(state, args, async () => (await ops()).cniInstall({ ...(a.dir !== undefined ? { dir: a.dir } : {}), del: a.del, dryRun: args.dryRun }))
  },
})
