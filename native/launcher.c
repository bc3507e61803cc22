/* plumb's command (dist/plumb, package.json's bin; built with the addon, binding.gyp): starts
 * node from the CLI's V8 start-up snapshot (dist/plumb.blob, or dist/plumb-ops.blob for an op:
 * bin/snapshot.ts, the CLI and its ops already loaded and initialised; dist/plumb-cni.blob for a
 * CNI call) when the build vouched for it on this node and this CPU, else from the code cache
 * (dist/plumb.cjs). node refuses a snapshot made by another node binary, under other V8 flags
 * (NODE_OPTIONS) or on a CPU with other features, and exits 14 before running anything; so the
 * blob is offered only when the stamp (dist/plumb.blob.ok: the CPU's features, node's mtime)
 * matches, and lib/snapshot.ts tells `plumb doctor` why it was not.
 *
 * Why C and not a shell script: a one-shot is mostly start-up, and starting dash to run a
 * script cost ~3-5 ms of every command on this project's machine (bench/README.md); this
 * program, linked statically (no dynamic loader), costs well under one. It makes a few stat()s
 * and two reads, then exec()s node: no fork on the way. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* lib/snapshot.ts's SNAPSHOT_NODE_FLAGS (test/unit/launcher.test.ts checks node's argv against it) */
static const char *const SNAPSHOT_NODE_FLAGS[] = {"--no-rehash-snapshot", "--no-sparkplug", "--no-flush-bytecode", "--jitless", "--no-expose-wasm"};
#define NFLAGS (sizeof SNAPSHOT_NODE_FLAGS / sizeof SNAPSHOT_NODE_FLAGS[0])

/* glibc's malloc for a start from a blob: node reads the blob (2-4 MB) into one buffer and copies
 * V8's part into a second, touching every page of both, each a page fault; and a fault is dear in
 * a VM (~12-18 us each on this project's PVM guest, ~1,900 of an op's ~5,000). Allocations that
 * size from the heap (not an mmap each), kept (not trimmed), in pages glibc asks the kernel to back
 * with huge ones (THP in "madvise" or "always" mode; ignored under "never"): --version from the ops
 * blob 140.8 -> 113.2 ms there (bench/README.md). Only node's start: lib/cli/launcher-env.ts
 * (LAUNCHER_GLIBC_TUNABLES, the same text) puts the caller's value back for the programs plumb runs. */
static const char TUNABLES[] = "glibc.malloc.hugetlb=1:glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=67108864";

static char *join(const char *dir, const char *name) {
  size_t a = strlen(dir), b = strlen(name);
  char *p = malloc(a + b + 2);
  if (!p) {
    fputs("plumb: out of memory\n", stderr);
    exit(127);
  }
  memcpy(p, dir, a);
  p[a] = '/';
  memcpy(p + a + 1, name, b + 1);
  return p;
}

static int is_file(const char *path, struct stat *st) {
  struct stat own;
  if (!st) st = &own;
  return stat(path, st) == 0 && S_ISREG(st->st_mode);
}

/* what `[ -f P ] && [ -x P ]` says: a regular file this user may run */
static int is_program(const char *path) {
  return is_file(path, NULL) && access(path, X_OK) == 0;
}

/* the first line of `path` without its newline, as sh's `IFS= read -r` reads it ("" when there is
 * none); `buf` holds `size` bytes */
static const char *first_line(const char *path, char *buf, size_t size) {
  size_t got = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    while (got < size - 1) {
      ssize_t n = read(fd, buf + got, size - 1 - got);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      if (memchr(buf + got, '\n', (size_t)n)) {
        got += (size_t)n;
        break;
      }
      got += (size_t)n;
    }
    close(fd);
  }
  buf[got] = '\0';
  char *nl = memchr(buf, '\n', got);
  if (nl) *nl = '\0';
  return buf;
}

/* the node that `env node` would run: the first executable `node` on PATH (an empty entry is the
 * current directory, as sh has it) */
static char *node_on_path(void) {
  const char *path = getenv("PATH");
  if (!path || !*path) path = "/usr/bin:/bin";
  for (const char *p = path;;) {
    const char *end = strchr(p, ':');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    char *dir = strndup(len ? p : ".", len ? len : 1);
    char *node = dir ? join(dir, "node") : NULL;
    free(dir);
    if (node && is_program(node)) return node;
    free(node);
    if (!end) return NULL;
    p = end + 1;
  }
}

/* the blob for this command line (a name in dist/), or NULL for the code cache: what can run
 * where, before asking whether the build vouched for any */
static const char *pick_blob(const char *dist, int argc, char **argv) {
  const char *cni = getenv("CNI_COMMAND");
  if (cni && *cni) {
    /* a runtime calling plumb as a CNI plugin (`plumb cni install`'s launcher runs this): the CNI
     * plugin's own blob, or its code cache (dist/plumb.cjs answers CNI_COMMAND too) */
    char *p = join(dist, "plumb-cni.blob");
    int there = is_file(p, NULL);
    free(p);
    return there ? "plumb-cni.blob" : NULL;
  }
  /* An op starts from the blob that holds the ops too; help, version, completion and no command
   * from the command line's alone, whose smaller heap starts faster (lib/snapshot.ts). */
  const char *blob = argc <= 1 ? "plumb.blob" : "plumb-ops.blob";
  const char *cmd = NULL;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0) break;
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0 || strcmp(a, "--version") == 0 || strcmp(a, "completion") == 0 || strcmp(a, "--get-yargs-completions") == 0) {
      blob = "plumb.blob";
      break;
    }
    if (a[0] == '-') continue;
    if (!cmd || !*cmd) cmd = a;
  }
  /* The watch daemon runs for days: it keeps V8's compilers (the code cache), which a snapshot
   * run gives up (--jitless) for a one-shot's start. */
  if (cmd && strcmp(cmd, "watch") == 0 && strcmp(blob, "plumb-ops.blob") == 0) return NULL;
  char *p = join(dist, blob);
  int there = is_file(p, NULL);
  free(p);
  return there ? blob : "plumb.blob";
}

int main(int argc, char **argv) {
  /* where plumb is: the directory of this program, npm's bin symlinks resolved */
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) {
    fprintf(stderr, "plumb: cannot tell where plumb is installed (/proc/self/exe: %s): is /proc mounted?\n", strerror(errno));
    return 127;
  }
  self[n] = '\0';
  char *slash = strrchr(self, '/');
  if (slash == self) slash[1] = '\0';
  else *slash = '\0';
  const char *dist = self;

  /* the node that `env node` would run, or the one PLUMB_NODE names: the CNI launcher `plumb cni
   * install` writes finds one itself (runtimes start plugins with a bare PATH) */
  char *node = NULL;
  const char *named = getenv("PLUMB_NODE");
  if (named && *named) {
    node = strdup(named);
    if (!node || !is_program(node)) {
      fprintf(stderr, "plumb: PLUMB_NODE=%s is not an executable node\n", named);
      return 127;
    }
  }
  unsetenv("PLUMB_NODE");
  if (!node && !(node = node_on_path())) {
    fputs("plumb: node not found on PATH\n", stderr);
    return 127;
  }

  /* plumb makes no TLS connection: a CA bundle the environment names would only cost node's start
   * (~30 ms, read before any of plumb runs). It goes under another name, and plumb puts it back for
   * the programs it runs (plumb exec) once node has started (lib/cli/index.ts). */
  const char *ca = getenv("NODE_EXTRA_CA_CERTS");
  if (ca) {
    setenv("PLUMB_NODE_EXTRA_CA_CERTS", ca, 1);
    unsetenv("NODE_EXTRA_CA_CERTS");
  }

  char *cjs = join(dist, "plumb.cjs");
  const char *options = getenv("NODE_OPTIONS");
  char *stamp = join(dist, "plumb.blob.ok");
  struct stat st_stamp, st_node;
  const char *blob = NULL;
  /* the stamp's mtime is node's, to the nanosecond (`touch -r` at build time) */
  if ((!options || !*options) && is_file(stamp, &st_stamp) && stat(node, &st_node) == 0 && st_node.st_mtim.tv_sec == st_stamp.st_mtim.tv_sec && st_node.st_mtim.tv_nsec == st_stamp.st_mtim.tv_nsec) {
    blob = pick_blob(dist, argc, argv);
    if (blob) {
      static char want[65536], line[65536];
      first_line(stamp, want, sizeof want);
      first_line("/sys/devices/system/cpu/modalias", line, sizeof line);
      if (strcmp(want, line) != 0) blob = NULL;
    }
  }

  /* node's argv: the snapshot's V8 flags and blob, then dist/plumb.cjs (which tells the snapshot's
   * main where the package is) and the command line */
  char **args = calloc((size_t)argc + NFLAGS + 4, sizeof *args);
  if (!args) {
    fputs("plumb: out of memory\n", stderr);
    return 127;
  }
  size_t k = 0;
  args[k++] = node;
  if (blob) {
    for (size_t i = 0; i < NFLAGS; i++) args[k++] = (char *)SNAPSHOT_NODE_FLAGS[i];
    args[k++] = "--snapshot-blob";
    args[k++] = join(dist, blob);
    const char *theirs = getenv("GLIBC_TUNABLES");
    if (theirs) {
      /* the caller's after plumb's: glibc takes the last of a name */
      setenv("PLUMB_GLIBC_TUNABLES", theirs, 1);
      char *both = malloc(sizeof TUNABLES + 1 + strlen(theirs));
      if (!both) {
        fputs("plumb: out of memory\n", stderr);
        return 127;
      }
      sprintf(both, "%s:%s", TUNABLES, theirs);
      setenv("GLIBC_TUNABLES", both, 1);
    } else setenv("GLIBC_TUNABLES", TUNABLES, 1);
  }
  args[k++] = cjs;
  for (int i = 1; i < argc; i++) args[k++] = argv[i];
  args[k] = NULL;
  execv(node, args);
  int err = errno;
  fprintf(stderr, "plumb: cannot run %s: %s\n", node, strerror(err));
  return err == ENOENT ? 127 : 126;
}
