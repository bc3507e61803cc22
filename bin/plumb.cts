#!/usr/bin/env node
// plumb's executable (dist/plumb.cjs): runs the CLI bundle (dist/plumb-cli.cjs) from its V8 code
// cache (lib/cli/bundle.ts); native/launcher.c runs it from the start-up snapshot instead when it can.
// With CNI_COMMAND set, a container runtime is calling plumb as a CNI plugin: the CNI bundle
// (dist/plumb-cni.cjs, no yargs) answers instead.

import { join } from 'node:path'
import { exitNow, loadBundle } from '../lib/cli/bundle.js'

interface CliBundle {
  main(argv: string[]): Promise<number>
}

const bundle = loadBundle<CliBundle>(join(__dirname, process.env.CNI_COMMAND ? 'plumb-cni.cjs' : 'plumb-cli.cjs'))
void bundle.main(process.argv.slice(2)).then(exitNow)
