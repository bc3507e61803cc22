/*
 * killat K CMD [ARG...]: run CMD under ptrace and SIGKILL it on entry to its K-th call that can
 * change the world, before the kernel runs that call; the crash tests' kill points. Exits with
 * CMD's status (137 when killed here) and says on stderr which call it was ("killat: K=3:
 * write /run/plumb/journal/...") or, when CMD got through, how many calls it counted.
 *
 * Why not strace's `-e inject=sendmsg,write,writev:signal=SIGKILL:when=K`, which the tests used
 * before: strace counts each syscall on its own (the K-th sendmsg or the K-th write, whichever
 * comes first), so a write between two sendmsgs was a kill point only when the writes' count
 * happened to reach K first: of an attach's 30 such calls, 17 were kill points, and the journal's
 * updates after the last netlink change were not among them. It counted reads too (every netlink
 * dump, node's own wake-ups through its pipes), each a kill point whose world is the one before.
 * Here one count runs over every call that changes something outside the process, and only those:
 *
 * - write, writev, pwrite64, pwritev: to anything but an eventfd or a pipe whose both ends this
 *   process holds (node's and libuv's wake-ups), or the temporary file of an atomic write
 *   (NAME.PID.tmp, which nothing reads: its rename is the kill point); a pipe to a child
 *   (iptables-restore's input) counts, and so does output (a kill while printing the result,
 *   after the commit), but only the first of consecutive writes of output: a line of output
 *   changes nothing, so the world is the same at the next;
 * - sendmsg, sendto: but not a netlink request whose every message is an rtnetlink GET or
 *   nf_tables' GETGEN (plumb speaks no generic netlink, whose family ids could look like these);
 * - rename, unlink, mkdir (of a path not there yet), rmdir, link, symlink, truncate and their
 *   *at forms, ftruncate: a file is created by an open that this does not count, so the kill at
 *   its first write finds it there, empty;
 * - a new process (clone without CLONE_THREAD, clone3, fork, vfork): a child started before the
 *   kill runs on after it;
 * - kill, tkill, tgkill to another process; socket ioctls (0x89xx: SIOCETHTOOL's feature
 *   changes); mount, umount2.
 *
 * Only the first thread is traced (the one that execs CMD, node's main thread): plumb's netlink
 * requests, journal writes and spawns are all made there, and a count over several threads would
 * not give the same K twice.
 *
 * Written here rather than taken from a package: it is ~300 lines of ptrace, and no Debian or npm
 * package kills at the K-th call of a set counted together, or tells a read from a write.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <dirent.h>
#include <unistd.h>

/* struct ptrace_syscall_info (linux/ptrace.h), declared here: glibc's sys/ptrace.h and the
 * kernel's header cannot both be included. */
struct sc_info {
  uint8_t op;
  uint8_t pad[3];
  uint32_t arch;
  uint64_t instruction_pointer;
  uint64_t stack_pointer;
  union {
    struct {
      uint64_t nr;
      uint64_t args[6];
    } entry;
    struct {
      int64_t rval;
      uint8_t is_error;
    } exit;
  };
};
#define SC_OP_ENTRY 1

static pid_t child;

static int peek(void *dst, uint64_t addr, size_t len) {
  struct iovec local = {dst, len}, remote = {(void *)(uintptr_t)addr, len};
  return process_vm_readv(child, &local, 1, &remote, 1, 0) == (ssize_t)len ? 0 : -1;
}

/* What fd `fd` of the child is (readlink of /proc/PID/fd/FD), into buf. */
static void fd_target(int fd, char *buf, size_t len) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/fd/%d", child, fd);
  ssize_t n = readlink(path, buf, len - 1);
  buf[n < 0 ? 0 : n] = 0;
}

/* Whether fd `fd` of the child is open for reading only (its fdinfo's flags: O_ACCMODE 0). */
static int reads_only(const char *fd) {
  char path[320], line[128];
  snprintf(path, sizeof path, "/proc/%d/fdinfo/%s", child, fd);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  int found = 0;
  while (fgets(line, sizeof line, f)) {
    unsigned long flags;
    if (sscanf(line, "flags: %lo", &flags) == 1) {
      found = (flags & O_ACCMODE) == O_RDONLY;
      break;
    }
  }
  fclose(f);
  return found;
}

/* Whether the child also holds the read end of this pipe (a wake-up of its own, not a child's input). */
static int pipe_held_twice(int fd, const char *target) {
  char dir[64], path[320], other[256];
  snprintf(dir, sizeof dir, "/proc/%d/fd", child);
  DIR *d = opendir(dir);
  if (!d) return 0;
  int found = 0;
  for (struct dirent *e; !found && (e = readdir(d));) {
    if (e->d_name[0] == '.' || atoi(e->d_name) == fd) continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    ssize_t n = readlink(path, other, sizeof other - 1);
    if (n > 0) {
      other[n] = 0;
      found = strcmp(other, target) == 0 && reads_only(e->d_name);
    }
  }
  closedir(d);
  return found;
}

/* What counts() answers: not a kill point, one, or one that is a write of output (fd 1 or 2).
 * SKIP is 0 and COUNT 1, so a truth value answers too. */
enum { SKIP = 0, COUNT = 1, OUTPUT = 2 };

/* Whether the last counted call was a write of output. */
static int after_output;

/* A write to fd: counted unless it is one of the process's own wake-ups, the temporary file of an
 * atomic write, or output right after output. */
static int write_counts(int fd, char *what, size_t len, const char *name) {
  char target[256], tmp[32];
  fd_target(fd, target, sizeof target);
  snprintf(what, len, "%s %s", name, target);
  if (strncmp(target, "anon_inode:[eventfd]", 20) == 0) return SKIP;
  if (strncmp(target, "pipe:", 5) == 0 && pipe_held_twice(fd, target)) return SKIP;
  // plumb's atomic writes go to NAME.PID.tmp, which nothing reads: its rename is the kill point
  // (a kill before the write leaves the same stale file as one before the rename, emptier)
  int n = snprintf(tmp, sizeof tmp, ".%d.tmp", child);
  size_t t = strlen(target);
  if (target[0] == '/' && t > (size_t)n && strcmp(target + t - n, tmp) == 0) return SKIP;
  // a line of output changes nothing: after one, the world is the same at the next
  if (fd == 1 || fd == 2) return after_output ? SKIP : OUTPUT;
  return COUNT;
}

/* Whether the netlink messages in buf[0..n) are all requests that only read. */
static int netlink_reads_only(const unsigned char *buf, size_t n, char *what, size_t len) {
  size_t off = 0;
  int msgs = 0;
  while (off + sizeof(struct nlmsghdr) <= n) {
    struct nlmsghdr h;
    memcpy(&h, buf + off, sizeof h);
    if (h.nlmsg_len < sizeof h) break;
    if (msgs++ == 0) snprintf(what, len, "netlink type %u flags 0x%x", h.nlmsg_type, h.nlmsg_flags);
    int rt_get = h.nlmsg_type >= 16 && h.nlmsg_type < 0x100 && (h.nlmsg_type & 3) == 2;
    int nft_getgen = h.nlmsg_type == ((10 << 8) | 16);
    if (!rt_get && !nft_getgen) return 0;
    off += NLMSG_ALIGN(h.nlmsg_len);
  }
  return msgs > 0;
}

/* sendmsg(fd, msg, flags) or sendto(fd, buf, len, flags, addr, addrlen): counted unless netlink reads. */
static int send_counts(const uint64_t *a, int is_msg, char *what, size_t len) {
  unsigned char buf[4096];
  uint64_t base, size, name, namelen;
  snprintf(what, len, "%s fd %d", is_msg ? "sendmsg" : "sendto", (int)a[0]);
  if (is_msg) {
    struct msghdr m;
    struct iovec iov;
    if (peek(&m, a[1], sizeof m) < 0 || m.msg_iovlen != 1 || peek(&iov, (uint64_t)(uintptr_t)m.msg_iov, sizeof iov) < 0) return COUNT;
    base = (uint64_t)(uintptr_t)iov.iov_base, size = iov.iov_len;
    name = (uint64_t)(uintptr_t)m.msg_name, namelen = m.msg_namelen;
  } else {
    base = a[1], size = a[2], name = a[4], namelen = a[5];
  }
  sa_family_t family = 0;
  if (name && namelen >= sizeof family && peek(&family, name, sizeof family) < 0) return COUNT;
  if (family != AF_NETLINK) return COUNT;
  if (size > sizeof buf) size = sizeof buf;
  if (peek(buf, base, size) < 0) return COUNT;
  char nl[96] = "";
  int reads = netlink_reads_only(buf, size, nl, sizeof nl);
  snprintf(what, len, "%s %s", is_msg ? "sendmsg" : "sendto", nl);
  return reads ? SKIP : COUNT;
}

/* mkdir of an absolute path that is there already fails with EEXIST and changes nothing: not counted. */
static int mkdir_counts(uint64_t addr, char *what, size_t len) {
  char path[4096];
  size_t got = 0;
  int ended = 0;
  // a page at a time: a read may not cross into an unmapped page
  while (!ended && got < sizeof path - 1) {
    size_t chunk = 4096 - ((addr + got) & 4095);
    if (chunk > sizeof path - 1 - got) chunk = sizeof path - 1 - got;
    if (peek(path + got, addr + got, chunk) < 0) break;
    ended = memchr(path + got, 0, chunk) != NULL;
    got += chunk;
  }
  if (!ended) path[got] = 0; // a read that stopped short, or a path longer than the buffer
  snprintf(what, len, "mkdir %.300s", path);
  struct stat st;
  return !(path[0] == '/' && lstat(path, &st) == 0);
}

/* The calls that count whatever their arguments, with their names. */
static const struct {
  long nr;
  const char *name;
} ALWAYS[] = {
    {SYS_sendmmsg, "sendmmsg"},
#ifdef SYS_fork
    {SYS_fork, "fork"},
    {SYS_vfork, "vfork"},
#endif
#ifdef SYS_rename
    {SYS_rename, "rename"},
    {SYS_unlink, "unlink"},
    {SYS_rmdir, "rmdir"},
    {SYS_link, "link"},
    {SYS_symlink, "symlink"},
#endif
    {SYS_renameat, "renameat"},
    {SYS_renameat2, "renameat2"},
    {SYS_unlinkat, "unlinkat"},
    {SYS_linkat, "linkat"},
    {SYS_symlinkat, "symlinkat"},
    {SYS_truncate, "truncate"},
    {SYS_ftruncate, "ftruncate"},
    {SYS_mount, "mount"},
    {SYS_umount2, "umount2"},
};

/* Whether the call entered with `nr` and args `a` counts (SKIP, COUNT, OUTPUT); what it is, into `what`. */
static int counts(uint64_t nr, const uint64_t *a, char *what, size_t len) {
  snprintf(what, len, "syscall %llu", (unsigned long long)nr);
  switch (nr) {
    case SYS_write: return write_counts((int)a[0], what, len, "write");
    case SYS_writev: return write_counts((int)a[0], what, len, "writev");
    case SYS_pwrite64: return write_counts((int)a[0], what, len, "pwrite64");
    case SYS_pwritev: return write_counts((int)a[0], what, len, "pwritev");
    case SYS_sendmsg: return send_counts(a, 1, what, len);
    case SYS_sendto: return send_counts(a, 0, what, len);
    case SYS_clone:
      snprintf(what, len, "clone");
      return !(a[0] & CLONE_THREAD);
    case SYS_clone3: {
      uint64_t flags = 0;
      snprintf(what, len, "clone3");
      return peek(&flags, a[0], sizeof flags) < 0 || !(flags & CLONE_THREAD);
    }
    case SYS_kill:
    case SYS_tkill:
    case SYS_tgkill:
      snprintf(what, len, "%s %d", nr == SYS_tgkill ? "tgkill" : "kill", (int)a[0]);
      return (pid_t)a[0] != child;
    case SYS_ioctl:
      snprintf(what, len, "ioctl 0x%llx", (unsigned long long)a[1]);
      return (a[1] & 0xff00) == 0x8900;
#ifdef SYS_mkdir
    case SYS_mkdir: return mkdir_counts(a[0], what, len);
#endif
    case SYS_mkdirat: return mkdir_counts(a[1], what, len);
  }
  for (size_t i = 0; i < sizeof ALWAYS / sizeof ALWAYS[0]; i++) {
    if ((uint64_t)ALWAYS[i].nr == nr) {
      snprintf(what, len, "%s", ALWAYS[i].name);
      return COUNT;
    }
  }
  return SKIP;
}

int main(int argc, char **argv) {
  if (argc < 3 || atol(argv[1]) < 1) {
    fprintf(stderr, "usage: killat K CMD [ARG...]  (K >= 1: SIGKILL CMD on entry to its K-th call that changes something)\n");
    return 2;
  }
  long k = atol(argv[1]);
  // KILLAT_VERBOSE=1: every counted call before the K-th on stderr too
  int verbose = getenv("KILLAT_VERBOSE") != NULL;
  child = fork();
  if (child < 0) return perror("killat: fork"), 1;
  if (child == 0) {
    if (ptrace(PTRACE_TRACEME, 0, 0, 0) < 0) _exit(126);
    raise(SIGSTOP);
    execvp(argv[2], argv + 2);
    fprintf(stderr, "killat: %s: %s\n", argv[2], strerror(errno));
    _exit(127);
  }
  int st;
  if (waitpid(child, &st, 0) < 0 || !WIFSTOPPED(st)) return perror("killat: the child did not stop"), 1;
  // EXITKILL: a killat killed by a timeout takes its tracee with it
  ptrace(PTRACE_SETOPTIONS, child, 0, PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL);
  long n = 0;
  // only CMD's own calls count, from its exec on (not this child's own, such as a failed exec's message)
  int sig = 0, killed = 0, execed = 0;
  for (;;) {
    ptrace(PTRACE_SYSCALL, child, 0, sig);
    sig = 0;
    if (waitpid(child, &st, 0) < 0) {
      if (errno == EINTR) continue;
      return perror("killat: waitpid"), 1;
    }
    if (WIFEXITED(st)) {
      if (!killed && execed) fprintf(stderr, "killat: got through after %ld counted calls\n", n);
      return WEXITSTATUS(st);
    }
    if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
    if (!WIFSTOPPED(st)) continue;
    if (WSTOPSIG(st) == (SIGTRAP | 0x80)) {
      struct sc_info info;
      if (killed || !execed || ptrace(PTRACE_GET_SYSCALL_INFO, child, sizeof info, &info) <= 0 || info.op != SC_OP_ENTRY) continue;
      char what[384];
      int counted = counts(info.entry.nr, info.entry.args, what, sizeof what);
      if (counted == SKIP) continue;
      after_output = counted == OUTPUT;
      if (++n < k) {
        if (verbose) fprintf(stderr, "killat: %ld: %s\n", n, what);
        continue;
      }
      // SIGKILL pending at the entry stop: the kernel skips the call (a fatal signal there ends the task)
      fprintf(stderr, "killat: K=%ld: %s\n", k, what);
      kill(child, SIGKILL);
      killed = 1;
    } else if (st >> 8 == (SIGTRAP | (PTRACE_EVENT_EXEC << 8))) {
      execed = 1; // the exec itself: nothing to pass on
    } else {
      sig = WSTOPSIG(st);
    }
  }
}
