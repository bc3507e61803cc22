// Bundles the CLI into one ESM file: a one-shot command is dominated by node's start-up and
// module loading (yargs unbundled ~50-180 ms, bundled ~30 ms; see KERNEL-NOTES.md).
import { build } from 'esbuild'

await build({
  entryPoints: ['bin/plumb.ts'],
  outfile: 'dist/plumb.mjs',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  sourcemap: 'linked',
  // netlink loads a prebuilt .node; the addon is found relative to the package root; execa is
  // imported lazily only by the paths that spawn (OVS, DHCP, firewall, exec).
  external: ['netlink', 'execa'],
  banner: {
    js: "#!/usr/bin/env node\nimport { createRequire as __plumbCreateRequire } from 'node:module'; const require = __plumbCreateRequire(import.meta.url);",
  },
  logLevel: 'warning',
})
