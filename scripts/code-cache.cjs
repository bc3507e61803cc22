// Writes V8's code cache for the CLI bundle (argv[2]) to argv[2].cache. The cache holds the
// functions compiled so far, so the bundle first runs a few commands that change nothing (help
// texts, a usage error, and a --dry-run attach-veth planned against this process's own netns):
// the common paths then start compiled. An eager (--no-lazy) cache of everything was measured:
// 1.8 MB that takes ~23 ms to deserialise, against ~8 ms for this one. Training is best-effort:
// a command that fails here still leaves what it compiled in the cache.
'use strict'
const { readFileSync, renameSync, writeFileSync } = require('node:fs')
const { createRequire, wrap } = require('node:module')
const { dirname, resolve } = require('node:path')
const { Script } = require('node:vm')

const file = resolve(process.argv[2])
const script = new Script(wrap(readFileSync(file, 'utf8')), { filename: file })
const mod = { exports: {} }
script.runInThisContext().call(mod.exports, mod.exports, createRequire(file), mod, file, dirname(file))
const { main, bufferIo } = mod.exports

const self = `pid:${process.pid}`
const runs = [
  ['--version'],
  ['--help'],
  ['attach-veth', '--help'],
  ['attach-veth', self, 'pt-train0', '300.1.1.1/24'],
  ['attach-veth', '--dry-run', '--allow-host', self, 'pt-train0', '198.18.0.2/24@198.18.0.1', '--route', '198.19.0.0/16'],
  ['attach-veth', '--dry-run', '--json', '--allow-host', self, 'pt-train0', '198.18.0.2/24', '2001:db8::2/64', '--mac', 'seed:train'],
  ['set-ip', '--dry-run', '--allow-host', self, 'lo', '198.18.0.3/32'],
]

async function train() {
  for (const argv of runs) await main(argv, bufferIo()).catch(() => undefined)
  writeFileSync(`${file}.cache.tmp`, script.createCachedData())
  renameSync(`${file}.cache.tmp`, `${file}.cache`)
}
train().then(
  () => process.exit(0), // sockets or timers a dry run left open must not hold the build
  (err) => {
    console.error(`code cache: ${err instanceof Error ? err.message : String(err)}`)
    process.exit(1)
  },
)
