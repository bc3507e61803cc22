// The CLI bundle's entry (dist/plumb-cli.cjs): main() for the executable (bin/plumb.cts), and
// bufferIo and loadedBundles for the build's code-cache training run (scripts/code-cache.cjs:
// the ops bundle's cache is written from the script this bundle loaded).
export { main } from '../lib/cli/index.js'
export { bufferIo } from '../lib/cli/io.js'
export { loadedBundles } from '../lib/cli/bundle.js'
export { codeCacheFile } from '../lib/snapshot.js'
