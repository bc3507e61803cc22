// The CLI bundle's entry (dist/plumb-cli.cjs): main() for the executable (bin/plumb.cts), and
// bufferIo for the build's code-cache training run (scripts/code-cache.cjs).
export { main } from '../lib/cli/index.js'
export { bufferIo } from '../lib/cli/io.js'
