// Bundles the CLI into one ESM file: a one-shot command is dominated by node's start-up and
// module loading (yargs unbundled ~50-180 ms, bundled ~30 ms; see KERNEL-NOTES.md).
import { readFile } from 'node:fs/promises'
import { build } from 'esbuild'

// netlink is bundled too (its ~40 CJS files cost ~27 ms to load one by one); only its native
// binding is found at run time, from the installed package, instead of from __dirname.
const netlinkBinding = {
  name: 'netlink-binding',
  setup(b) {
    b.onLoad({ filter: /node_modules[\\/]netlink[\\/]dist[\\/]raw\.js$/ }, async (args) => {
      const src = await readFile(args.path, 'utf8')
      const patched = src.replace("require('node-gyp-build')(__dirname + '/..')", "require('node-gyp-build')(require('node:path').dirname(require.resolve('netlink/package.json')))")
      if (patched === src) throw new Error('netlink/dist/raw.js changed: update the bundle plugin')
      return { contents: patched, loader: 'js' }
    })
  },
}

await build({
  entryPoints: ['bin/plumb.ts'],
  outfile: 'dist/plumb.mjs',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  sourcemap: 'linked',
  // The setns addon is found relative to the package root; execa is imported lazily, only by the
  // paths that spawn (OVS, DHCP), and stays outside.
  external: ['execa'],
  plugins: [netlinkBinding],
  banner: {
    js: "#!/usr/bin/env node\nimport { createRequire as __plumbCreateRequire } from 'node:module'; const require = __plumbCreateRequire(import.meta.url);",
  },
  logLevel: 'warning',
})
