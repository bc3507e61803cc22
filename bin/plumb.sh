#!/bin/sh
# plumb's command (dist/plumb, package.json's bin): starts node from the CLI's V8 start-up
# snapshot (dist/plumb.blob, or dist/plumb-ops.blob for an op: bin/snapshot.ts, the CLI and its
# ops already loaded and initialised; dist/plumb-cni.blob for a CNI call) when the
# build vouched for it on this node and this CPU, else from the code cache (dist/plumb.cjs).
# node refuses a snapshot made by another node binary, under other V8 flags (NODE_OPTIONS) or on
# a CPU with other features, and exits 14 before running anything; so the blob is offered only
# when the stamp (dist/plumb.blob.ok: the CPU's features, node's mtime) matches, and
# lib/snapshot.ts tells `plumb doctor` why it was not. Builtins only, and exec: no fork on the way.

# where plumb is: through npm's bin symlinks (a readlink only then)
f=$0
while [ -L "$f" ]; do
  l=$(readlink "$f")
  case $l in /*) f=$l ;; *) f=${f%/*}/$l ;; esac
done
case $f in */*) d=${f%/*} ;; *) d=. ;; esac

# the node that `env node` would run, or the one PLUMB_NODE names: the CNI launcher `plumb cni
# install` writes finds one itself (runtimes start plugins with a bare PATH)
node=${PLUMB_NODE-}
unset PLUMB_NODE
if [ -n "$node" ]; then
  [ -f "$node" ] && [ -x "$node" ] || { echo "plumb: PLUMB_NODE=$node is not an executable node" >&2; exit 127; }
else
  p=${PATH:-/usr/bin:/bin}:
  while [ -n "$p" ]; do
    dir=${p%%:*} p=${p#*:}
    if [ -f "${dir:-.}/node" ] && [ -x "${dir:-.}/node" ]; then node=${dir:-.}/node; break; fi
  done
  [ -n "$node" ] || { echo 'plumb: node not found on PATH' >&2; exit 127; }
fi

# plumb makes no TLS connection: a CA bundle the environment names would only cost node's start
# (~30 ms, read before any of plumb runs). It goes under another name, and plumb puts it back for
# the programs it runs (plumb exec) once node has started (lib/cli/index.ts).
if [ -n "${NODE_EXTRA_CA_CERTS+set}" ]; then
  PLUMB_NODE_EXTRA_CA_CERTS=$NODE_EXTRA_CA_CERTS
  export PLUMB_NODE_EXTRA_CA_CERTS
  unset NODE_EXTRA_CA_CERTS
fi

stamp=$d/plumb.blob.ok
if [ -z "$NODE_OPTIONS" ] && [ -f "$stamp" ] && ! [ "$node" -nt "$stamp" ] && ! [ "$node" -ot "$stamp" ]; then
  IFS= read -r want <"$stamp"
  line=
  IFS= read -r line 2>/dev/null </sys/devices/system/cpu/modalias
  if [ -n "${CNI_COMMAND-}" ]; then
    # a runtime calling plumb as a CNI plugin (`plumb cni install`'s launcher runs this): the CNI
    # plugin's own blob, or its code cache (dist/plumb.cjs answers CNI_COMMAND too)
    blob=plumb-cni.blob
    [ -f "$d/$blob" ] || blob=
  else
    # An op starts from the blob that holds the ops too; help, version, completion and no command
    # from the command line's alone, whose smaller heap starts faster (lib/snapshot.ts).
    blob=plumb-ops.blob cmd=
    [ $# -eq 0 ] && blob=plumb.blob
    for a; do
      case $a in
        --) break ;;
        -h | --help | --version | completion | --get-yargs-completions) blob=plumb.blob; break ;;
        -*) ;;
        *) [ -n "$cmd" ] || cmd=$a ;;
      esac
    done
    # The watch daemon runs for days: it keeps V8's compilers (the code cache), which a snapshot
    # run gives up (--jitless) for a one-shot's start.
    [ "$cmd" = watch ] && [ "$blob" = plumb-ops.blob ] && blob=
    [ -z "$blob" ] || [ -f "$d/$blob" ] || blob=plumb.blob
  fi
  # argv[1] tells the snapshot's main where the package is; the V8 flags are the build's
  # (SNAPSHOT_NODE_FLAGS in lib/snapshot.ts)
  if [ -n "$blob" ] && [ "$line" = "$want" ]; then
    # glibc's malloc for a start from a blob: node reads the blob (2-4 MB) into one buffer and
    # copies V8's part into a second, touching every page of both, each a page fault; and a fault
    # is dear in a VM (~12-18 us each on this project's PVM guest, ~1,900 of an op's ~5,000).
    # Allocations that size from the heap (not an mmap each), kept (not trimmed), in pages glibc
    # asks the kernel to back with huge ones (THP in "madvise" or "always" mode; ignored under
    # "never"): --version from the ops blob 140.8 -> 113.2 ms there (bench/README.md). Only node's
    # start: lib/cli/launcher-env.ts puts the caller's value back for the programs plumb runs.
    t=glibc.malloc.hugetlb=1:glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=67108864
    if [ -n "${GLIBC_TUNABLES+set}" ]; then
      PLUMB_GLIBC_TUNABLES=$GLIBC_TUNABLES
      export PLUMB_GLIBC_TUNABLES
      t=$t:$GLIBC_TUNABLES # the caller's after plumb's: glibc takes the last of a name
    fi
    GLIBC_TUNABLES=$t
    export GLIBC_TUNABLES
    exec "$node" --no-rehash-snapshot --no-sparkplug --no-flush-bytecode --jitless --no-expose-wasm --snapshot-blob "$d/$blob" "$d/plumb.cjs" "$@"
  fi
fi
exec "$node" "$d/plumb.cjs" "$@"
