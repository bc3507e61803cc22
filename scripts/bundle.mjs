// Bundles the CLI into one CommonJS file plus V8's code cache for it, and makes the start-up
// snapshot the `plumb` command starts from: a one-shot command is dominated by node's start-up
// and module loading (yargs unbundled ~50-180 ms, bundled ~30 ms; see KERNEL-NOTES.md), and by
// compiling and initialising what it loads. CommonJS because only a classic script can be run
// from a code cache on Node 20 (vm.Script cachedData; see bin/plumb.cts), and only one file of
// it can be a snapshot's entry (bin/snapshot.ts). native/launcher.c picks between the two at run time.
import { spawn, spawnSync } from 'node:child_process'
import { createServer } from 'node:net'
import { chmod, copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { basename, join, relative, resolve } from 'node:path'
import { createRequire } from 'node:module'
import { build } from 'esbuild'
import { SNAPSHOT_BLOB, SNAPSHOT_CNI_BLOB, SNAPSHOT_NODE_FLAGS, SNAPSHOT_OPS_BLOB, SNAPSHOT_STAMP, SNAPSHOT_TRAINED_DRY, SNAPSHOT_TRAINED_REAL, cpuIdentity } from '../dist/lib/snapshot.js'
import { LAZY_BUILTINS, SNAPSHOT_MODULES_ENV, builtinIds, trimBuiltinCodeCache } from '../dist/lib/snapshot-blob.js'

const require = createRequire(import.meta.url)

const escapeRegExp = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

/**
 * A plugin that edits one file of a pinned dependency as it is bundled: `file` is its path under
 * node_modules, each [from, to] must match exactly once more (a dependency that changed fails the
 * build instead of shipping unpatched).
 */
function patchDependency(name, file, edits) {
  const filter = new RegExp(`node_modules[\\\\/]${file.split('/').map(escapeRegExp).join('[\\\\/]')}$`)
  return {
    name,
    setup(b) {
      b.onLoad({ filter }, async (args) => {
        let src = await readFile(args.path, 'utf8')
        for (const [from, to] of edits) {
          if (!src.includes(from)) throw new Error(`${file} changed: update the bundle plugin ${name}`)
          src = src.replace(from, () => to)
        }
        return { contents: src, loader: 'js' }
      })
    },
  }
}

// netlink is bundled too (its ~40 CJS files cost ~27 ms to load one by one): the message formats
// only. Its native socket is not used (lib/kernel/socket.ts): nothing loads its binding.

// yargs takes strictEqual/notStrictEqual from node:assert for its own invariants; loading
// node:assert pulls in streams and colour detection (~7 ms of every start). Two lines do the job.
const yargsAssert = {
  name: 'yargs-assert',
  setup(b) {
    b.onResolve({ filter: /^(node:)?assert$/ }, (args) => (/[\\/]node_modules[\\/]yargs[\\/]/.test(args.importer) ? { path: 'assert', namespace: 'yargs-assert' } : undefined))
    b.onLoad({ filter: /.*/, namespace: 'yargs-assert' }, () => ({
      contents: [
        'export function strictEqual(a, b, m) { if (a !== b) throw new Error(m ?? `${String(a)} !== ${String(b)}`) }',
        'export function notStrictEqual(a, b, m) { if (a === b) throw new Error(m ?? `${String(a)} === ${String(b)}`) }',
      ].join('\n'),
      loader: 'js',
    }))
  },
}

// yargs's ESM build (what `import yargs` bundles) takes cliui's ESM entry, made for Deno and
// browsers: its wrap cuts every N characters, mid-word ("inter" / "face"), and counts UTF-16
// units as columns. cliui's CommonJS entry wraps at word boundaries (wrap-ansi) and measures
// with string-width: the same cliui, given the real helpers. One fix in it: a right-aligned
// column ("[boolean]") is put on the previous line when its padding is at least as wide as that
// line's text, so a description that fills its column exactly runs into it with no space
// ("in the guest[boolean]"); it must be wider. And its default width (help unwrapped: to a pipe
// without $COLUMNS) reads process.stdout.columns only where fd 1 can be a terminal: the first
// touch of process.stdout builds a net.Socket for a pipe (~2 ms of a `plumb --help | less`).
const cliuiCjs = { name: 'cliui-cjs', setup: (b) => void b.onResolve({ filter: /^cliui$/ }, () => ({ path: require.resolve('cliui') })) }
const cliuiFit = patchDependency('cliui-fit', 'cliui/build/index.cjs', [
  ['if (leadingWhitespace < targetTextWidth) {', 'if (leadingWhitespace <= targetTextWidth) {'],
  [
    "if (typeof process === 'object' && process.stdout && process.stdout.columns) {",
    "if (typeof process === 'object' && (() => { try { return require('node:fs').fstatSync(1).isCharacterDevice() } catch { return false } })() && process.stdout && process.stdout.columns) {",
  ],
])

// Two edits of yargs' command module (one plugin: esbuild loads a file through the first plugin
// that answers). yargs renders the full help of the command that ran, right after its handler
// starts, and keeps it for a later showHelp() (cacheHelpMessage): ~5 ms of every run (12-19 M of
// ~250 M instructions for a dry-run attach) for a text plumb never shows (its fail handler throws;
// nothing calls showHelp). The call goes. And it parses the positionals a second time, as
// `--NAME VALUE` pairs, to give them their types and aliases, handing yargs-parser every option
// of the command: yargs-parser's set-up walks each one (aliases, camel-case forms, defaults), ~0.6
// ms of a one-shot attach, and yargs keeps only the positionals' keys from the result. The
// second parse gets the positionals' own options (and their aliases): the same values.
const yargsCommand = patchDependency('yargs-command', 'yargs/build/lib/command.js', [
  ['yargs.getInternalMethods().getUsageInstance().cacheHelpMessage();', '/* plumb: no help rendered after the handler (scripts/bundle.mjs) */'],
  [
    "        const config = Object.assign({}, options.configuration, {\n            'populate--': false,",
    [
      '        /* plumb: the positionals\' own options only (scripts/bundle.mjs) */',
      '        const keep = new Set(Object.keys(positionalMap));',
      '        for (let grew = true; grew;) {',
      '            grew = false;',
      '            for (const [k, als] of Object.entries(options.alias)) {',
      '                const group = [k, ...als];',
      '                if (group.some((a) => keep.has(a)) && !group.every((a) => keep.has(a))) { group.forEach((a) => keep.add(a)); grew = true; }',
      '            }',
      '        }',
      "        const kept = (k) => keep.has(typeof k === 'object' ? k.key : k);",
      "        for (const list of ['array', 'boolean', 'string', 'number', 'count', 'normalize']) if (Array.isArray(options[list])) options[list] = options[list].filter(kept);",
      "        for (const map of ['alias', 'default', 'coerce', 'narg', 'key']) if (options[map]) options[map] = Object.fromEntries(Object.entries(options[map]).filter(([k]) => keep.has(k)));",
      "        const config = Object.assign({}, options.configuration, {\n            'populate--': false,",
    ].join('\n'),
  ],
])

// Two edits of yargs' factory (one plugin: esbuild loads a file through the first plugin that
// answers). It sets a default version guessed from the package.json it finds walking up from
// the main module (two directory reads and a parse, ~0.8 ms of every run); createCli sets
// plumb's own right after. The guess goes. And it hands its internals to its usage, validation
// and command modules through getInternalMethods(), which binds 16 methods into a fresh object
// at each of its ~40 calls of a run (~0.5 ms of every command in CPU profiles of ls): the object,
// the same bindings of the same instance, is made once per instance (nothing in yargs changes it).
const yargsFactory = patchDependency('yargs-factory', 'yargs/build/lib/yargs-factory.js', [
  ['yargs.help();\n        yargs.version();', 'yargs.help();'],
  ["const kCopyDoubleDash = Symbol('copyDoubleDash');", "const internalMethods = new WeakMap();\nconst kCopyDoubleDash = Symbol('copyDoubleDash');"],
  ['    getInternalMethods() {\n        return {', '    getInternalMethods() {\n        const made = internalMethods.get(this);\n        if (made) return made;\n        const methods = {'],
  ['            setHasOutput: this[kSetHasOutput].bind(this),\n        };\n    }', '            setHasOutput: this[kSetHasOutput].bind(this),\n        };\n        internalMethods.set(this, methods);\n        return methods;\n    }'],
])

// yargs checks every call of its API against a usage string ("<string> [object]"): ~150 calls a
// run (createCli and a command's builder), each parsing its string and typing each argument, and
// a mismatch only prints a warning (argsert catches its own error): it checks plumb's code, not
// the user's input. In the bundle the check goes (~0.3 ms of a one-shot; it was ~1 ms before its
// strings were parsed once each); the unit tests run yargs unpatched, where a wrong call still warns.
const yargsArgsertOff = patchDependency('yargs-argsert-off', 'yargs/build/lib/argsert.js', [
  ['export function argsert(arg1, arg2, arg3) {', 'export function argsert(arg1, arg2, arg3) {\n    return; /* plumb: no check of plumb\'s own calls in the bundle (scripts/bundle.mjs) */'],
])

// string-width (cliui's and wrap-ansi's measure of every cell of a help text) builds a fresh ANSI
// regex and runs the emoji regex over each string: ~3 ms of `plumb --help`. Printable ASCII, all
// of plumb's help but a few cells, holds no escape, no wide and no combining character: its
// width is its length.
const stringWidthAscii = patchDependency('string-width-ascii', 'string-width/index.js', [
  ['\tstring = stripAnsi(string);', '\tif (/^[\\x20-\\x7e]*$/.test(string)) return string.length;\n\tstring = stripAnsi(string);'],
])

// yargs' platform shim reads process.stdout.columns when it loads, for a default wrap width plumb
// never uses (createCli always sets .wrap): the first touch of process.stdout builds a net.Socket
// for a pipe or a terminal (node:net and node:tty, ~2 ms of every run from the code cache). Read
// when asked, as a getter.
const yargsLazyColumns = patchDependency('yargs-lazy-columns', 'yargs/lib/platform-shims/esm.mjs', [
  ["stdColumns: typeof process.stdout.columns !== 'undefined' ? process.stdout.columns : null", "get stdColumns() { return typeof process.stdout.columns !== 'undefined' ? process.stdout.columns : null }"],
])

await rm('dist/plumb.mjs', { force: true }) // the ESM bundle of earlier builds
await rm('dist/plumb.mjs.map', { force: true })

const bundled = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: 'linked',
  // Everything is inside, execa too: its import() sites become lazy requires of bundled modules
  // (an import() cannot run from vm.Script on Node 20), so only the paths that spawn load it.
  supported: { 'dynamic-import': false },
  define: { 'import.meta.url': '__plumbModuleUrl' },
  // let: a start-up snapshot holding the ops bundle moves it to where the run found it (lib/cli/ops.ts's relocate)
  banner: { js: "let __plumbModuleUrl = require('node:url').pathToFileURL(__filename).href;" },
  plugins: [yargsAssert, cliuiCjs, cliuiFit, yargsCommand, yargsFactory, yargsArgsertOff, stringWidthAscii, yargsLazyColumns],
  logLevel: 'warning',
  // ASCII only (non-ASCII escaped): lib/cli/bundle.ts reads the bundles as latin1, ~10x faster than UTF-8
  charset: 'ascii',
  // Whitespace and syntax minified, names kept (stack traces still name every function; the linked
  // source map gives lines back to `node --enable-source-maps`). A start-up snapshot holds its
  // bundles' source text for V8's lazy compiler, and a run reads, checksums and copies the whole
  // blob before it deserialises it: ~2-2.5 ms a megabyte here (a blob holding a bare string of
  // 1.3 and 4 MB against none, 60-80 runs). The ops blob 7.31 -> 6.90 MB; paired, 100 rounds
  // twice: `ls` 49.5 -> 47.8 ms; 60 rounds: a netns attach 56.0 -> 55.0. Renaming the identifiers
  // too (with keepNames) made the blob 0.1 MB smaller and the runs no faster.
  minifyWhitespace: true,
  minifySyntax: true,
}
// The CLI is two bundles: the command line (yargs, the commands' flags and help: dist/plumb-cli.cjs,
// and the start-up snapshot) and what the commands call (lib/cli/ops.ts: dist/plumb-ops.cjs),
// which a handler loads from its own code cache when it runs. --help, --version, completion and
// usage errors then start and deserialise only the command line (~300 kB of the 1.5 MB), and an
// op pays for the rest once. The modules both halves use are the command line's, handed to the
// ops bundle when it loads (lib/cli/bundle.ts): one error class for renderError's instanceof, one
// configuration for configure(), one package root.
// The bundle loader too: the build's training writes a code cache for every bundle it records.
const SHARED = { errors: 'lib/errors.ts', config: 'lib/config.ts', paths: 'lib/paths.ts', bundle: 'lib/cli/bundle.ts' }
const sharedPath = (name) => resolve(SHARED[name])
/** `target` (a .ts file) as a require() from lib/cli, where the stubs below are resolved. */
const fromCli = (target) => `./${relative(resolve('lib/cli'), target).replace(/\.ts$/, '.js')}`
/**
 * A plugin that answers `importer`'s import of `spec` with the bundle `file` (beside the one
 * running, in dist/), loaded when first imported by lib/cli/bundle.ts's loadBundle, which hands it
 * the modules it shares: `provided()` gives [id, .ts file] pairs, read when the stub is made.
 */
function bundleStub(name, importer, spec, file, provided) {
  return {
    name,
    setup(b) {
      b.onResolve({ filter: new RegExp(`^${escapeRegExp(spec)}$`) }, (args) => (args.importer === resolve(importer) ? { path: file, namespace: name } : undefined))
      b.onLoad({ filter: /.*/, namespace: name }, () => ({
        contents: [
          "const { loadBundle } = require('./bundle.js')",
          "const { dirname, join } = require('node:path')",
          "const { fileURLToPath } = require('node:url')",
          `module.exports = loadBundle(join(dirname(fileURLToPath(__plumbModuleUrl)), ${JSON.stringify(file)}), {`,
          ...provided().map(([id, target]) => `  ${JSON.stringify(id)}: require(${JSON.stringify(fromCli(target))}),`),
          '})',
        ].join('\n'),
        resolveDir: resolve('lib/cli'),
        loader: 'js',
      }))
    },
  }
}
const opsBundle = bundleStub('ops-bundle', 'lib/cli/common.ts', './ops.js', 'plumb-ops.cjs', () => Object.keys(SHARED).map((name) => [`plumb:${name}`, sharedPath(name)]))
const sharedModules = {
  name: 'shared-modules',
  setup(b) {
    b.onResolve({ filter: /^\.\.?\/.*\.js$/ }, (args) => {
      const target = resolve(args.resolveDir, args.path).replace(/\.js$/, '.ts')
      const name = Object.keys(SHARED).find((n) => sharedPath(n) === target)
      return name ? { path: `plumb:${name}`, external: true } : undefined
    })
  },
}
// Lab files (lib/lab and the YAML parser: ~30 % of the ops) are a third bundle, dist/plumb-lab.cjs,
// which a lab command's first call loads from its own code cache (lib/cli/ops.ts's lab()). The ops
// blob every other op starts from then holds neither their source nor the parser's (6.90 -> 6.62
// MB; paired, 100 rounds twice: `ls` 48.7 -> 47.7 and 50.0 -> 48.8 ms; 60 rounds: a netns attach
// 56.8 -> 56.1). What the lab takes from the rest of plumb (the ops, the kernel
// layer, the parsers) it takes from the ops bundle that loads it: one copy of each module, with
// its caches, locks and error classes, as the ops bundle takes the command line's.
const LAB = resolve('lib/lab')
/** The modules outside lib/lab that the lab bundle requires, by path: their ids in it. */
const labImports = new Map()
const labDeps = {
  name: 'lab-deps',
  setup(b) {
    b.onResolve({ filter: /^\.\.?\/.*\.js$/ }, (args) => {
      if (!args.importer.startsWith(`${LAB}/`)) return undefined
      const target = resolve(args.resolveDir, args.path).replace(/\.js$/, '.ts')
      if (target.startsWith(`${LAB}/`)) return undefined
      const id = `plumb:${relative(resolve('.'), target)}`
      labImports.set(target, id)
      return { path: id, external: true }
    })
  },
}
const opsLab = bundleStub('ops-lab', 'lib/cli/ops.ts', '../lab/index.js', 'plumb-lab.cjs', () => [...labImports].map(([target, id]) => [id, target]))
// What each bundle holds (the source files esbuild put in it: minified, the bundles no longer name
// them), for the build's checks and the tests': dist/bundles.json.
const inputs = {}
const bundle = async (options) => {
  const made = await build({ ...bundled, ...options, metafile: true })
  inputs[options.outfile.replace(/^dist\//, '')] = Object.keys(made.metafile.inputs).sort()
}
await bundle({ entryPoints: ['bin/cli.ts'], outfile: 'dist/plumb-cli.cjs', plugins: [...bundled.plugins, opsBundle] })
await bundle({ entryPoints: ['lib/lab/index.ts'], outfile: 'dist/plumb-lab.cjs', plugins: [...bundled.plugins, labDeps] })
await bundle({ entryPoints: ['lib/cli/ops.ts'], outfile: 'dist/plumb-ops.cjs', plugins: [...bundled.plugins, sharedModules, opsLab] })
const labInOps = inputs['plumb-ops.cjs'].filter((f) => f.startsWith('lib/lab/') || f.includes('node_modules/yaml/'))
if (labInOps.length) throw new Error(`the ops bundle holds lab modules (${labInOps.slice(0, 3).join(', ')}): import them through lib/cli/ops.ts's lab() only`)
// The CNI plugin's face: its own bundle without yargs and the CLI commands (bin/cni.ts).
await bundle({ entryPoints: ['bin/cni.ts'], outfile: 'dist/plumb-cni.cjs' })
await writeFile('dist/bundles.json', `${JSON.stringify(inputs, null, 1)}\n`)
// The start-up snapshot's script: its import.meta.url is set at run time by its deserialised main (bin/snapshot.ts).
await build({ ...bundled, entryPoints: ['bin/snapshot.ts'], outfile: 'dist/plumb-snapshot.cjs', sourcemap: false, banner: { js: "let __plumbModuleUrl = '';" }, plugins: [...bundled.plugins, opsBundle] })
// The CNI plugin's: the CNI bundle loaded from its code cache (bin/cni-snapshot.ts).
await build({ ...bundled, entryPoints: ['bin/cni-snapshot.ts'], outfile: 'dist/plumb-cni-snapshot.cjs', sourcemap: false, banner: { js: "let __plumbModuleUrl = '';" } })
await build({
  entryPoints: ['bin/plumb.cts'],
  outfile: 'dist/plumb.cjs',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  logLevel: 'warning',
})
for (const file of ['dist/plumb-cli.cjs', 'dist/plumb-ops.cjs', 'dist/plumb-lab.cjs', 'dist/plumb-cni.cjs']) {
  if (/[^\x00-\x7f]/.test(await readFile(file, 'latin1'))) throw new Error(`${file} is not ASCII: lib/cli/bundle.ts reads it as latin1`)
}
// The CLI's training writes the ops bundle's cache too, once more under the snapshot's V8 flags (a
// run from the snapshot loads the ops with them: lib/cli/bundle.ts's codeCacheFile).
// That one (the cache the start-up snapshot loads the ops from, and whose bytecode its heap keeps)
// is trained on real ops too where the build can make a mount namespace (root, util-linux's
// unshare): plumb's run dir (journal, locks, firewall cache) and /run/netns on a tmpfs only it
// sees, and the real ops in a throwaway netns the training enters after its other runs
// (scripts/code-cache.cjs); nothing of the host's is touched but two empty directories made if
// missing. A real op then runs less code for the first time (paired, 60 rounds twice: a netns
// attach 50.9 -> 49.1 and 51.4 -> 48.9 ms, a macvlan 47.0 -> 44.5; ls +0.2 and +0.7, the noise,
// for the 0.1 MB more the ops blob holds). Elsewhere: dry runs only.
const SANDBOX = ['set -e', 'mkdir -p /run/plumb /run/netns', 'mount -t tmpfs plumb-train /run/plumb', 'mount -t tmpfs plumb-train /run/netns', 'exec "$@"'].join('\n')
// The CNI bundle's cache under the snapshot's flags is what the CNI snapshot loads it from.
const trainings = [[[], 'dist/plumb-cli.cjs'], [SNAPSHOT_NODE_FLAGS, 'dist/plumb-cli.cjs', 'real'], [[], 'dist/plumb-cni.cjs'], [SNAPSHOT_NODE_FLAGS, 'dist/plumb-cni.cjs', 'real']]
// the real trainings that ran, and those that failed (the bundle and why)
let realRan = false
const realFailed = []
for (const [flags, bundle, real] of trainings) {
  const argv = [...flags, 'scripts/code-cache.cjs', bundle]
  if (real && process.getuid?.() === 0) {
    const sandboxed = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', SANDBOX, 'sh', process.execPath, ...argv], {
      stdio: 'inherit',
      env: { ...process.env, PLUMB_TRAIN_REAL: '1', PLUMB_RECORDS_DIR: '/run/plumb/train-records', PLUMB_DHCP_STATE_DIR: '/run/plumb/train-dhcp' },
    })
    realRan = true
    if (sandboxed.status === 0) continue
    const failure = sandboxed.error?.message ?? `exit ${sandboxed.status}`
    realFailed.push(`${basename(bundle)}: ${failure}`)
    console.warn(`code cache: not trained on real ops (${failure}): dry runs only`)
  }
  const cache = spawnSync(process.execPath, argv, { stdio: 'inherit' })
  if (cache.status !== 0) throw new Error(`writing the code cache of ${bundle} ${flags.join(' ')} failed`)
}
// how the ops and CNI blobs' code was trained, for the stamp's second line (doctor says it: lib/snapshot.ts)
const trainedOn = realFailed.length
  ? `${SNAPSHOT_TRAINED_DRY}: the real ones failed (${realFailed.join('; ')})`
  : realRan
    ? SNAPSHOT_TRAINED_REAL
    : `${SNAPSHOT_TRAINED_DRY}: the build did not run as root`
await chmod('dist/plumb.cjs', 0o755)
// The `plumb` command: native/launcher.c, which the install step builds with the addon
// (native/binding.gyp) and which reads this directory's stamp and blobs (below) at every start.
const LAUNCHER = 'native/build/Release/plumb'
try {
  await copyFile(LAUNCHER, 'dist/plumb')
} catch (err) {
  throw new Error(`${LAUNCHER} is missing (${err.code}): the native parts are built by npm install; run \`npx node-gyp rebuild --directory native\` (it needs a C compiler: build-essential)`)
}
await chmod('dist/plumb', 0o755)

// The V8 start-up snapshot (native/launcher.c says when it is used): made by this node, then vouched
// for only once a run from it worked. A node that cannot make or load one leaves the CLI on the
// code-cache path, which doctor reports; the build still succeeds.
// Two blobs from one entry: the command line alone (help, version, usage errors: the smaller heap
// starts faster) and the command line with the ops loaded (PLUMB_SNAPSHOT_OPS at build time: an
// op then does not load dist/plumb-ops.cjs from its code cache, ~3-4 ms). A third from its own
// entry for the CNI plugin (bin/cni-snapshot.ts: no command line). One stamp vouches for all;
// without the second the launcher offers the first for every command, without the third a CNI
// call runs from the code cache.
const version = JSON.parse(await readFile('package.json', 'utf8')).version
/** A program run to its end without blocking this process (the echo below answers meanwhile): spawnSync's result's shape. */
const spawnAsync = (file, args, opts) =>
  new Promise((resolve) => {
    const child = spawn(file, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d))
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d))
    child.on('error', (error) => resolve({ status: null, error, stdout, stderr }))
    child.on('close', (status) => resolve({ status, stdout, stderr }))
  })
// The ops blob's builder makes one request over a unix socket (bin/snapshot.ts's
// unixSocketRoundTrip): this process answers it, so that the builder does not listen itself.
const echoDir = await mkdtemp('/tmp/plumb-snapshot-') // a socket path must stay short (108 bytes)
const echo = createServer((c) => c.on('data', () => c.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]')))
await new Promise((resolve) => echo.listen(join(echoDir, 'sock'), resolve))
/**
 * Build `blob` from the entry `entry` (in dist/, with `env` added), then run node from it once as
 * `tryIt` says: the result of whichever failed, or of the run, whose status says whether node
 * accepts the blob and answers from it.
 */
const makeBlob = async (blob, entry, env, tryIt) => {
  const heapList = join(echoDir, `${blob}.modules`)
  const made = await spawnAsync(process.execPath, [...SNAPSHOT_NODE_FLAGS, '--snapshot-blob', blob, '--build-snapshot', entry], { cwd: 'dist', env: { ...process.env, ...env, [SNAPSHOT_MODULES_ENV]: heapList } })
  if (made.status !== 0) return made
  const argv = [...SNAPSHOT_NODE_FLAGS, '--snapshot-blob', `dist/${blob}`, 'dist/plumb.cjs']
  const whole = await readFile(`dist/${blob}`)
  if (await trimBlob(`dist/${blob}`, whole, heapList)) {
    const tried = tryIt(argv)
    if (tried.status === 0) return tried
    // node refused the trimmed blob: the whole one, as node wrote it, is tried instead
    console.warn(`${blob}: node's code cache kept whole, the trimmed blob failed: ${why(tried)}`)
    await writeFile(`dist/${blob}`, whole)
  }
  return tryIt(argv)
}
/**
 * The built-ins a run may load lazily (LAZY_BUILTINS), as a plain node with its stderr on a file
 * loads them: the only ones whose code cache the blobs keep, when their heap lacks them.
 */
const lazyBuiltins = (() => {
  const script = `const a = new Set(process.moduleLoadList); ${LAZY_BUILTINS}; process.stdout.write(JSON.stringify(process.moduleLoadList.filter((m) => !a.has(m))))`
  const asked = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
  if (asked.status !== 0) throw new Error(`listing the built-ins ${LAZY_BUILTINS} loads failed: exit ${asked.status}`)
  return new Set(builtinIds(JSON.parse(asked.stdout)))
})()
/**
 * node's code cache in `file` (whose bytes are `whole`) cut to the lazy built-ins its heap lacks
 * (lib/snapshot-blob.ts: the rest is ~2.6 MB every run reads and copies for modules that never
 * compile again); the whole cache stays, with a warning, when the builder listed no heap or the
 * blob's layout is not known. Whether it trimmed.
 */
const trimBlob = async (file, whole, heapList) => {
  const heap = new Set((await readFile(heapList, 'utf8').catch(() => '')).split('\n').filter(Boolean))
  const trimmed = heap.size ? trimBuiltinCodeCache(whole, (id) => lazyBuiltins.has(id) && !heap.has(id)) : undefined
  if (trimmed) {
    await writeFile(file, trimmed.blob)
    console.log(`${basename(file)}: node's code cache kept for the ${trimmed.kept.length} built-ins its heap lacks that a run may load (${trimmed.kept.join(', ')}), ${trimmed.dropped.length} dropped`)
  } else console.warn(`${basename(file)}: node's code cache of its built-ins kept whole (${heap.size ? "the blob's layout is not node 20's as lib/snapshot-blob.ts knows it" : 'the builder listed no built-ins'})`)
  return trimmed !== undefined
}
/** The command line's blobs, tried with --version: it must say this package's. */
const tryVersion = (argv) => {
  const run = spawnSync(process.execPath, [...argv, '--version'], { encoding: 'utf8' })
  return run.status === 0 && run.stdout.trim() !== version ? { ...run, status: 1, stderr: `--version said "${run.stdout.trim()}"` } : run
}
/** The CNI blob, tried as a runtime's VERSION call: its answer must name the versions plumb speaks. */
const tryCniVersion = (argv) => {
  const run = spawnSync(process.execPath, argv, { encoding: 'utf8', env: { ...process.env, CNI_COMMAND: 'VERSION' }, input: '' })
  return run.status === 0 && !run.stdout.includes('"supportedVersions"') ? { ...run, status: 1, stderr: `VERSION said "${run.stdout.trim()}"` } : run
}
/** What a failed build or run of a blob said, in one line. */
const why = (r) => (r.stderr || r.stdout || (r.signal ? `killed by ${r.signal}` : `exit ${r.status}`)).trim().split('\n')[0]
await rm(`dist/${SNAPSHOT_OPS_BLOB}`, { force: true })
await rm(`dist/${SNAPSHOT_CNI_BLOB}`, { force: true })
try {
  const tried = await makeBlob(SNAPSHOT_BLOB, 'plumb-snapshot.cjs', {}, tryVersion)
  if (tried.status === 0) {
    const triedOps = await makeBlob(SNAPSHOT_OPS_BLOB, 'plumb-snapshot.cjs', { PLUMB_SNAPSHOT_ECHO: join(echoDir, 'sock'), PLUMB_SNAPSHOT_OPS: '1' }, tryVersion)
    if (triedOps.status !== 0) {
      await rm(`dist/${SNAPSHOT_OPS_BLOB}`, { force: true })
      console.warn(`no start-up snapshot with the ops (ops load from their code cache): ${why(triedOps)}`)
    }
    const triedCni = await makeBlob(SNAPSHOT_CNI_BLOB, 'plumb-cni-snapshot.cjs', {}, tryCniVersion)
    if (triedCni.status !== 0) {
      await rm(`dist/${SNAPSHOT_CNI_BLOB}`, { force: true })
      console.warn(`no start-up snapshot for the CNI plugin (its calls load it from its code cache): ${why(triedCni)}`)
    }
    await writeFile(`dist/${SNAPSHOT_STAMP}`, `${cpuIdentity()}\n${trainedOn}\n`)
    // node's mtime to the nanosecond, which utimes from JS cannot copy
    const touch = spawnSync('touch', ['-r', process.execPath, `dist/${SNAPSHOT_STAMP}`], { stdio: 'inherit' })
    if (touch.status !== 0) throw new Error(`touch -r ${process.execPath} dist/${SNAPSHOT_STAMP} failed`)
  } else {
    console.warn(`no start-up snapshot (the CLI starts from its code cache): ${why(tried)}`)
  }
} finally {
  echo.close()
  await rm(echoDir, { recursive: true, force: true })
}
