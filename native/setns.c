/* The setns addon: run a synchronous JS callback with the calling thread inside another
 * network namespace, so that sockets and files opened in the callback belong to that netns
 * for life (Go's netns.Set + netlink.NewHandleAt, for Node). Plain node_api.h, no C++. */

#define _GNU_SOURCE
#include <node_api.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/ethtool.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/net_namespace.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif
#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#ifndef NETLINK_GET_STRICT_CHK
#define NETLINK_GET_STRICT_CHK 12
#endif
#ifndef NETLINK_LISTEN_ALL_NSID
#define NETLINK_LISTEN_ALL_NSID 8
#endif
#ifndef RTNLGRP_NSID
#define RTNLGRP_NSID 28
#endif

/* errno names rather than strerror text: callers match on them and users grep for them. */
static const char *errno_name(int e) {
  switch (e) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case ESRCH: return "ESRCH";
    case EBADF: return "EBADF";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EFAULT: return "EFAULT";
    case EINVAL: return "EINVAL";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case ENOSYS: return "ENOSYS";
    case ENOTSOCK: return "ENOTSOCK";
    case EUSERS: return "EUSERS";
    case EWOULDBLOCK: return "EWOULDBLOCK";
    case EINTR: return "EINTR";
    case ENODEV: return "ENODEV";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case ENOTTY: return "ENOTTY";
    case ENOBUFS: return "ENOBUFS";
    default: return "EUNKNOWN";
  }
}

/* Throws Error(`${what}: ${ENAME}: ${strerror}`) with .code = ENAME and .errno = -e. */
static void throw_errno(napi_env env, const char *what, int e) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s: %s", what, errno_name(e), strerror(e));
  napi_value code, text, err, num, sys;
  napi_create_string_utf8(env, errno_name(e), NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text);
  napi_create_string_utf8(env, what, NAPI_AUTO_LENGTH, &sys);
  napi_create_error(env, code, text, &err);
  napi_create_int32(env, -e, &num);
  napi_set_named_property(env, err, "errno", num);
  napi_set_named_property(env, err, "syscall", sys);
  napi_throw(env, err);
}

static int get_int_arg(napi_env env, napi_value v, const char *name, int32_t *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number || napi_get_value_int32(env, v, out) != napi_ok) {
    char msg[96];
    snprintf(msg, sizeof msg, "%s must be a number", name);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return -1;
  }
  return 0;
}

/* The call's arguments into argv (room for `max`): how many were given, or -1 with a TypeError
 * (`usage`) thrown when fewer than `min`. */
static int get_args(napi_env env, napi_callback_info info, size_t min, size_t max, napi_value *argv, const char *usage) {
  size_t argc = max;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < min) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", usage);
    return -1;
  }
  return (int)argc;
}

/* with_ns(fd, fn) for one namespace type: setns(fd), fn(), setns(back). The thread is restored
 * even when fn throws; if restoring fails we abort(), since a main thread left in a guest's
 * namespace would silently create every later socket and file (or read every hostname) in the
 * wrong place. */
static napi_value with_ns(napi_env env, napi_callback_info info, int nstype, const char *self_path, const char *usage) {
  napi_value argv[2], global, result = NULL;
  napi_valuetype t;
  int32_t target;

  if (get_args(env, info, 2, 2, argv, usage) < 0) return NULL;
  if (get_int_arg(env, argv[0], "fd", &target) < 0) return NULL;
  if (napi_typeof(env, argv[1], &t) != napi_ok || t != napi_function) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "fn must be a function");
    return NULL;
  }

  int self = open(self_path, O_RDONLY | O_CLOEXEC);
  if (self < 0) {
    char what[64];
    snprintf(what, sizeof what, "open %s", self_path);
    throw_errno(env, what, errno);
    return NULL;
  }
  if (setns(target, nstype) < 0) {
    int e = errno;
    close(self);
    throw_errno(env, "setns", e);
    return NULL;
  }

  napi_get_global(env, &global);
  napi_status st = napi_call_function(env, global, argv[1], 0, NULL, &result);

  if (setns(self, nstype) < 0) {
    fprintf(stderr, "plumb: FATAL: cannot restore the thread's %s namespace: %s\n", nstype == CLONE_NEWNET ? "network" : "UTS", strerror(errno));
    abort();
  }
  close(self);
  /* on failure the callback's exception is pending and propagates to the caller */
  return st == napi_ok ? result : NULL;
}

/* withNetns(fd, fn): fn() with the calling thread in the network namespace of fd. */
static napi_value with_netns(napi_env env, napi_callback_info info) {
  return with_ns(env, info, CLONE_NEWNET, "/proc/thread-self/ns/net", "withNetns(fd, fn) needs two arguments");
}

/* enterNetns(fd): the calling thread moves into the network namespace of fd for good (no way
 * back but another fd): for a process that works in another netns from then on. The build's
 * training of real ops does (scripts/code-cache.cjs), in a throwaway netns. */
static napi_value enter_netns(napi_env env, napi_callback_info info) {
  napi_value argv[1], undef;
  int32_t target;
  if (get_args(env, info, 1, 1, argv, "enterNetns(fd) needs an fd") < 0) return NULL;
  if (get_int_arg(env, argv[0], "fd", &target) < 0) return NULL;
  if (setns(target, CLONE_NEWNET) < 0) {
    throw_errno(env, "setns", errno);
    return NULL;
  }
  napi_get_undefined(env, &undef);
  return undef;
}

/* The calling thread's own netns as an fd, to come back to with restore_netns; -1 with the JS
 * error thrown. */
static int save_netns(napi_env env) {
  int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (self < 0) throw_errno(env, "open /proc/thread-self/ns/net", errno);
  return self;
}

/* Back to the netns save_netns kept, and close it: a thread left in a guest's netns would make
 * every later socket there, so a failure aborts. */
static void restore_netns(int self) {
  if (setns(self, CLONE_NEWNET) < 0) {
    fprintf(stderr, "plumb: FATAL: cannot restore the thread's network namespace: %s\n", strerror(errno));
    abort();
  }
  close(self);
}

/* newNetns(): a fresh, empty network namespace, as an fd (it lives while the fd is open):
 * unshare(CLONE_NEWNET) moves only the calling thread, which is then switched back. Used to
 * probe link kinds without touching any real namespace. */
static napi_value new_netns(napi_env env, napi_callback_info info) {
  (void)info;
  int self = save_netns(env);
  if (self < 0) return NULL;
  if (unshare(CLONE_NEWNET) < 0) {
    int e = errno;
    close(self);
    throw_errno(env, "unshare", e);
    return NULL;
  }
  int fresh = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  int e = errno;
  restore_netns(self);
  if (fresh < 0) {
    throw_errno(env, "open /proc/thread-self/ns/net", e);
    return NULL;
  }
  napi_value out;
  napi_create_int32(env, fresh, &out);
  return out;
}

/* netnsCookie(fd): the cookie of the network namespace of fd (SO_NETNS_COOKIE, Linux 5.14+), a
 * number the kernel never gives another netns, unlike the nsfs inode, which the next netns made
 * may get back once this one is freed. Asked of a socket made inside it (the thread switched in
 * and back, as withNetns does). A number (cookies count up from 1, far below 2^53), or undefined
 * where the kernel has none. */
static napi_value netns_cookie(napi_env env, napi_callback_info info) {
  napi_value argv[1], out;
  int32_t target;
  if (get_args(env, info, 1, 1, argv, "netnsCookie(fd) needs an fd") < 0) return NULL;
  if (get_int_arg(env, argv[0], "fd", &target) < 0) return NULL;
  int self = save_netns(env);
  if (self < 0) return NULL;
  if (setns(target, CLONE_NEWNET) < 0) {
    int e = errno;
    close(self);
    throw_errno(env, "setns", e);
    return NULL;
  }
  int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  int e = errno;
  restore_netns(self);
  if (s < 0) {
    throw_errno(env, "socket", e);
    return NULL;
  }
#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif
  uint64_t cookie = 0;
  socklen_t len = sizeof cookie;
  int r = getsockopt(s, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len);
  e = errno;
  close(s);
  if (r < 0) {
    if (e == ENOPROTOOPT) {
      napi_get_undefined(env, &out);
      return out;
    }
    throw_errno(env, "getsockopt SO_NETNS_COOKIE", e);
    return NULL;
  }
  napi_create_double(env, (double)cookie, &out);
  return out;
}

/* A netlink socket of `protocol` (raw, close-on-exec, plus `flags`) bound to a port the kernel
 * picks, written to *sa: plumb's request sockets and its watches alike. -1 on failure, with errno
 * set and *step naming the call that failed (the socket is closed). */
static int netlink_bound(int protocol, int flags, struct sockaddr_nl *sa, const char **step) {
  *step = "socket AF_NETLINK";
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | flags, protocol);
  if (fd < 0) return -1;
  memset(sa, 0, sizeof *sa);
  sa->nl_family = AF_NETLINK;
  socklen_t len = sizeof *sa;
  *step = "bind AF_NETLINK";
  if (bind(fd, (struct sockaddr *)sa, sizeof *sa) < 0 || getsockname(fd, (struct sockaddr *)sa, &len) < 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

/* netlinkOpen([protocol]): a netlink socket of `protocol` (NETLINK_ROUTE by default) in the calling
 * thread's netns, close-on-exec, bound to a port the kernel picks, with NETLINK_EXT_ACK (the
 * kernel's error text) and NETLINK_GET_STRICT_CHK (filtered dumps) on where the kernel has them.
 * Returns { fd, port, extAck, strictChk }; the caller closes fd. Every plumb request socket is made
 * here and asked through netlinkRequest: the kernel answers a request inside the call that sends
 * it, so no reader on the event loop is needed (and none of the netlink package's native socket:
 * its load, its fd search, its abort at ~100 completions in one poll). */
static napi_value netlink_open(napi_env env, napi_callback_info info) {
  napi_value argv[1], out, v;
  int32_t protocol = NETLINK_ROUTE;
  int argc = get_args(env, info, 0, 1, argv, "netlinkOpen([protocol])");
  if (argc < 0) return NULL;
  if (argc > 0 && get_int_arg(env, argv[0], "protocol", &protocol) < 0) return NULL;
  struct sockaddr_nl sa;
  const char *step;
  int fd = netlink_bound(protocol, 0, &sa, &step);
  if (fd < 0) {
    throw_errno(env, step, errno);
    return NULL;
  }
  int one = 1;
  int ext = setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one) == 0;
  int strict = setsockopt(fd, SOL_NETLINK, NETLINK_GET_STRICT_CHK, &one, sizeof one) == 0;
  napi_create_object(env, &out);
  napi_create_int32(env, fd, &v);
  napi_set_named_property(env, out, "fd", v);
  napi_create_uint32(env, sa.nl_pid, &v);
  napi_set_named_property(env, out, "port", v);
  napi_get_boolean(env, ext, &v);
  napi_set_named_property(env, out, "extAck", v);
  napi_get_boolean(env, strict, &v);
  napi_set_named_property(env, out, "strictChk", v);
  return out;
}

/* netlinkRequest(fd, data): send one request (a Buffer, or an Array of Buffers gathered into one
 * message) on the netlink socket fd (netlinkOpen's), then read every datagram queued on it without
 * blocking; returns them as Buffers. The kernel answers an rtnetlink or nfnetlink request inside
 * the sendmsg that carries it (and makes a dump's next part inside the recvmsg that makes room for
 * it), so the whole answer is read here. A failed send or read throws its errno (a read's
 * ENOBUFS: answers were lost). */
static napi_value netlink_request(napi_env env, napi_callback_info info) {
  napi_value argv[2], out;
  int32_t fd;
  if (get_args(env, info, 2, 2, argv, "netlinkRequest(fd, data) needs an fd and a Buffer or an Array of Buffers") < 0) return NULL;
  if (get_int_arg(env, argv[0], "fd", &fd) < 0) return NULL;
  bool is_array = false, is_buffer = false;
  napi_is_array(env, argv[1], &is_array);
  napi_is_buffer(env, argv[1], &is_buffer);
  uint32_t niov = 1;
  if (is_array) napi_get_array_length(env, argv[1], &niov);
  else if (!is_buffer) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "netlinkRequest: data must be a Buffer or an Array of Buffers");
    return NULL;
  }
  if (niov == 0 || niov > 1024) { /* UIO_MAXIOV */
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "netlinkRequest: 1 to 1024 Buffers");
    return NULL;
  }
  struct iovec *iov = calloc(niov, sizeof *iov);
  if (!iov) {
    throw_errno(env, "calloc", ENOMEM);
    return NULL;
  }
  for (uint32_t i = 0; i < niov; i++) {
    napi_value item = argv[1];
    bool ok = is_buffer;
    if (is_array) {
      napi_get_element(env, argv[1], i, &item);
      napi_is_buffer(env, item, &ok);
    }
    if (!ok) {
      free(iov);
      napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "netlinkRequest: data must be Buffers");
      return NULL;
    }
    napi_get_buffer_info(env, item, &iov[i].iov_base, &iov[i].iov_len);
  }
  struct sockaddr_nl kernel;
  memset(&kernel, 0, sizeof kernel);
  kernel.nl_family = AF_NETLINK;
  struct msghdr mh;
  memset(&mh, 0, sizeof mh);
  mh.msg_name = &kernel;
  mh.msg_namelen = sizeof kernel;
  mh.msg_iov = iov;
  mh.msg_iovlen = niov;
  ssize_t sent;
  do {
    sent = sendmsg(fd, &mh, 0);
  } while (sent < 0 && errno == EINTR);
  int send_errno = errno;
  free(iov);
  if (sent < 0) {
    throw_errno(env, "sendmsg", send_errno);
    return NULL;
  }
  napi_create_array(env, &out);
  uint32_t n = 0;
  for (;;) {
    ssize_t len = recv(fd, NULL, 0, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);
    if (len < 0 && errno == EINTR) continue;
    if (len < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
      throw_errno(env, "recv", errno);
      return NULL;
    }
    if (len <= 0) break;
    void *data;
    napi_value b;
    if (napi_create_buffer(env, (size_t)len, &data, &b) != napi_ok) break;
    ssize_t got;
    do {
      got = recv(fd, data, (size_t)len, MSG_DONTWAIT);
    } while (got < 0 && errno == EINTR);
    if (got < 0) {
      throw_errno(env, "recv", errno);
      return NULL;
    }
    if (got < len) napi_create_buffer_copy(env, (size_t)got, data, NULL, &b); /* never seen: the peek said len */
    napi_set_element(env, out, n++, b);
  }
  return out;
}

/* flock(fd, op) with LOCK_NB always added: true when taken, false when another holder has it
 * (EWOULDBLOCK), an errno-named Error otherwise. Never blocks: the caller retries on its own
 * timer, so the event loop is not held up while another process keeps the lock. */
static napi_value flock_fd(napi_env env, napi_callback_info info) {
  napi_value argv[2], out;
  int32_t fd, op;
  if (get_args(env, info, 2, 2, argv, "flock(fd, op) needs an fd and an operation") < 0) return NULL;
  if (get_int_arg(env, argv[0], "fd", &fd) < 0 || get_int_arg(env, argv[1], "op", &op) < 0) return NULL;
  if (op != LOCK_SH && op != LOCK_EX && op != LOCK_UN) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "flock op must be LOCK_SH (1), LOCK_EX (2) or LOCK_UN (8)");
    return NULL;
  }
  int r;
  do {
    r = flock(fd, op | LOCK_NB);
  } while (r < 0 && errno == EINTR);
  if (r < 0 && errno != EWOULDBLOCK) {
    throw_errno(env, "flock", errno);
    return NULL;
  }
  napi_get_boolean(env, r == 0, &out);
  return out;
}

/* withUtsns(fd, fn): as withNetns, for the UTS namespace (hostname). setns(CLONE_NEWUTS) is
 * per-thread and allowed in a multithreaded process (unlike CLONE_NEWNS, which refuses a thread
 * that shares its fs attributes); /proc/sys/kernel/hostname read or written inside fn is the
 * target's, since the kernel looks at the calling thread's UTS namespace on each read/write. */
static napi_value with_utsns(napi_env env, napi_callback_info info) {
  return with_ns(env, info, CLONE_NEWUTS, "/proc/thread-self/ns/uts", "withUtsns(fd, fn) needs two arguments");
}

/* txChecksum(fd, ifname[, on]): `ethtool -K IFNAME tx on|off` without the ethtool binary:
 * SIOCETHTOOL with ETHTOOL_STXCSUM, which flips every TX checksum feature the device lets
 * userspace toggle (ethtool's "tx"; TSO, which needs it, follows), then ETHTOOL_GTXCSUM to read
 * back what the kernel kept, returned as a boolean (without `on`: only the read). The ioctl acts in
 * the netns of the socket `fd`, and any socket reaches the device ioctls (netlink has none of its
 * own, so the kernel passes them on): a handle's own netlink socket serves, with no setns. */
static napi_value tx_checksum(napi_env env, napi_callback_info info) {
  napi_value argv[3], out;
  int32_t fd;
  char name[IFNAMSIZ + 1];
  size_t len = 0;
  napi_valuetype t = napi_undefined;

  int argc = get_args(env, info, 2, 3, argv, "txChecksum(fd, ifname[, on]) needs an fd and an interface name");
  if (argc < 0) return NULL;
  if (get_int_arg(env, argv[0], "fd", &fd) < 0) return NULL;
  if (napi_get_value_string_utf8(env, argv[1], name, sizeof name, &len) != napi_ok || len == 0 || len >= IFNAMSIZ) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "ifname must be an interface name of 1 to 15 bytes");
    return NULL;
  }
  if (argc >= 3) napi_typeof(env, argv[2], &t);

  struct ethtool_value ev;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, name, len);
  ifr.ifr_data = (void *)&ev;
  if (t == napi_boolean) {
    bool on;
    napi_get_value_bool(env, argv[2], &on);
    ev.cmd = ETHTOOL_STXCSUM;
    ev.data = on ? 1 : 0;
    if (ioctl(fd, SIOCETHTOOL, &ifr) < 0) {
      throw_errno(env, "SIOCETHTOOL ETHTOOL_STXCSUM", errno);
      return NULL;
    }
  }
  ev.cmd = ETHTOOL_GTXCSUM;
  ev.data = 0;
  if (ioctl(fd, SIOCETHTOOL, &ifr) < 0) {
    throw_errno(env, "SIOCETHTOOL ETHTOOL_GTXCSUM", errno);
    return NULL;
  }
  napi_get_boolean(env, ev.data != 0, &out);
  return out;
}

/* The address watch: one NETLINK_ROUTE socket in the calling thread's netns that hears every
 * address added or deleted in it and in every netns that has an id there
 * (NETLINK_LISTEN_ALL_NSID: each message carries its netns id as a NETLINK_NSID control
 * message, none for the socket's own netns), and every netns id given or taken back. Read
 * synchronously, never polled: the kernel queues a notification before the change's own
 * syscall returns, so a drain reads every change made before it. The netlink package receives
 * without control messages, hence this socket of our own.
 *
 * addrWatchOpen(): the socket's fd (non-blocking, O_CLOEXEC, a 1 MB queue when root may force it:
 * ~1000 notifications between two drains; past that the cache forgets and reads again). */
static napi_value watch_open(napi_env env, const int *groups, size_t ngroups, int all_nsid) {
  struct sockaddr_nl sa;
  const char *step;
  int fd = netlink_bound(NETLINK_ROUTE, SOCK_NONBLOCK, &sa, &step);
  if (fd < 0) {
    throw_errno(env, step, errno);
    return NULL;
  }
  int one = 1, size = 1 << 20;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  step = "setsockopt(NETLINK_LISTEN_ALL_NSID)";
  if (all_nsid && setsockopt(fd, SOL_NETLINK, NETLINK_LISTEN_ALL_NSID, &one, sizeof one) < 0) goto fail;
  step = "setsockopt(NETLINK_ADD_MEMBERSHIP)";
  for (size_t i = 0; i < ngroups; i++)
    if (setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &groups[i], sizeof groups[i]) < 0) goto fail;
  napi_value out;
  napi_create_int32(env, fd, &out);
  return out;
fail: {
    int e = errno;
    close(fd);
    throw_errno(env, step, e);
    return NULL;
  }
}

static napi_value addr_watch_open(napi_env env, napi_callback_info info) {
  (void)info;
  static const int groups[] = { RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR, RTNLGRP_NSID };
  return watch_open(env, groups, sizeof groups / sizeof groups[0], 1);
}

/* The link watch: the same, for the links of the calling thread's own netns only (no
 * NETLINK_LISTEN_ALL_NSID: a guest's links are not its business), drained by addrWatchDrain too.
 *
 * linkWatchOpen(): the socket's fd. */
static napi_value link_watch_open(napi_env env, napi_callback_info info) {
  (void)info;
  static const int groups[] = { RTNLGRP_LINK };
  return watch_open(env, groups, 1, 0);
}

/* events[i] = [type, nsid, family, index, a Buffer copy of bytes (len 0: empty)] */
static void push_event(napi_env env, napi_value events, uint32_t i, int type, int nsid, int family, uint32_t index, const void *bytes, size_t len) {
  napi_value ev, v, b;
  void *data;
  napi_create_array_with_length(env, 5, &ev);
  napi_create_int32(env, type, &v);
  napi_set_element(env, ev, 0, v);
  napi_create_int32(env, nsid, &v);
  napi_set_element(env, ev, 1, v);
  napi_create_int32(env, family, &v);
  napi_set_element(env, ev, 2, v);
  napi_create_uint32(env, index, &v);
  napi_set_element(env, ev, 3, v);
  if (len) napi_create_buffer_copy(env, len, bytes, &data, &b);
  else napi_create_buffer(env, 0, &data, &b);
  napi_set_element(env, ev, 4, b);
  napi_set_element(env, events, i, ev);
}

/* addrWatchDrain(fd): everything queued since the last drain, in order, as
 * { reset, events: [[type, nsid, family, index, addressBytes], ...] } (type RTM_NEWADDR or
 * RTM_DELADDR, nsid -1 for the socket's own netns, family 4 or 6, the address IFA_LOCAL or else
 * IFA_ADDRESS; or RTM_DELNSID with the id the socket's netns took back, its netns gone, after
 * which the id may be given to another). An id given (RTM_NEWNSID) changes nothing known: it was
 * free. A link watch's RTM_NEWLINK and RTM_DELLINK come out as described there. `reset` is true
 * when what was heard cannot be trusted as complete: the queue overflowed (ENOBUFS:
 * notifications were dropped). */
static napi_value addr_watch_drain(napi_env env, napi_callback_info info) {
  napi_value argv[1], out, events, v;
  int32_t fd;
  if (get_args(env, info, 1, 1, argv, "addrWatchDrain(fd) needs an fd") < 0) return NULL;
  if (get_int_arg(env, argv[0], "fd", &fd) < 0) return NULL;
  napi_create_array(env, &events);
  uint32_t n = 0;
  int reset = 0;
  static char buf[65536];
  char ctl[CMSG_SPACE(sizeof(int))];
  for (;;) {
    struct iovec iov = { buf, sizeof buf };
    struct sockaddr_nl from;
    struct msghdr mh = { &from, sizeof from, &iov, 1, ctl, sizeof ctl, 0 };
    ssize_t len = recvmsg(fd, &mh, 0);
    if (len < 0) {
      if (errno == EINTR) continue;
      if (errno == ENOBUFS) {
        reset = 1;
        continue;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      throw_errno(env, "recvmsg (address watch)", errno);
      return NULL;
    }
    if (mh.msg_flags & MSG_TRUNC) {
      reset = 1;
      continue;
    }
    int nsid = -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
      if (c->cmsg_level == SOL_NETLINK && c->cmsg_type == NETLINK_LISTEN_ALL_NSID && c->cmsg_len >= CMSG_LEN(sizeof(int))) memcpy(&nsid, CMSG_DATA(c), sizeof nsid);
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_type == RTM_DELNSID && nsid == -1) {
        /* an id of ours taken back (its netns is gone): [RTM_DELNSID, that id, 0, 0, <empty>] */
        if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct rtgenmsg))) continue;
        int rest = h->nlmsg_len - NLMSG_LENGTH(NLMSG_ALIGN(sizeof(struct rtgenmsg)));
        int gone = -2;
        for (struct rtattr *a = (struct rtattr *)((char *)NLMSG_DATA(h) + NLMSG_ALIGN(sizeof(struct rtgenmsg))); RTA_OK(a, rest); a = RTA_NEXT(a, rest))
          if (a->rta_type == NETNSA_NSID && RTA_PAYLOAD(a) >= sizeof(int)) memcpy(&gone, RTA_DATA(a), sizeof gone);
        if (gone == -2) {
          reset = 1;
          continue;
        }
        push_event(env, events, n++, RTM_DELNSID, gone, 0, 0, NULL, 0);
        continue;
      }
      if ((h->nlmsg_type == RTM_NEWLINK || h->nlmsg_type == RTM_DELLINK) && nsid == -1) {
        /* a link of the socket's own netns: [type, -1, its master's ifindex (0: none), its
         * ifindex, the message's payload (ifinfomsg and attributes, as a dump's) or, deleted, none] */
        if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct ifinfomsg))) continue;
        struct ifinfomsg *ifi = NLMSG_DATA(h);
        /* the bridge layer's own (AF_BRIDGE: a port's bridge attributes alone, no IFLA_LINK or
         * IFLA_LINK_NETNSID) follow the link's; only the link's carry its whole state */
        if (ifi->ifi_family != AF_UNSPEC) continue;
        uint32_t master = 0;
        int rest = IFLA_PAYLOAD(h);
        for (struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, rest); a = RTA_NEXT(a, rest))
          if (a->rta_type == IFLA_MASTER && RTA_PAYLOAD(a) >= sizeof master) memcpy(&master, RTA_DATA(a), sizeof master);
        int deleted = h->nlmsg_type == RTM_DELLINK;
        push_event(env, events, n++, h->nlmsg_type, -1, (int)master, (uint32_t)ifi->ifi_index, deleted ? NULL : NLMSG_DATA(h), deleted ? 0 : h->nlmsg_len - NLMSG_HDRLEN);
        continue;
      }
      if (h->nlmsg_type != RTM_NEWADDR && h->nlmsg_type != RTM_DELADDR) continue;
      if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct ifaddrmsg))) continue;
      struct ifaddrmsg *ifa = NLMSG_DATA(h);
      int family = ifa->ifa_family == AF_INET ? 4 : ifa->ifa_family == AF_INET6 ? 6 : 0;
      if (!family) continue;
      const void *local = NULL, *address = NULL;
      size_t local_len = 0, address_len = 0;
      int rest = IFA_PAYLOAD(h);
      for (struct rtattr *a = IFA_RTA(ifa); RTA_OK(a, rest); a = RTA_NEXT(a, rest)) {
        if (a->rta_type == IFA_LOCAL) local = RTA_DATA(a), local_len = RTA_PAYLOAD(a);
        else if (a->rta_type == IFA_ADDRESS) address = RTA_DATA(a), address_len = RTA_PAYLOAD(a);
      }
      const void *bytes = local ? local : address;
      size_t blen = local ? local_len : address_len;
      if (!bytes || blen != (family == 4 ? 4u : 16u)) continue;
      push_event(env, events, n++, h->nlmsg_type, nsid, family, ifa->ifa_index, bytes, blen);
    }
  }
  napi_create_object(env, &out);
  napi_get_boolean(env, reset, &v);
  napi_set_named_property(env, out, "reset", v);
  napi_set_named_property(env, out, "events", events);
  return out;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "withNetns", NULL, with_netns, NULL, NULL, NULL, napi_enumerable, NULL },
    { "newNetns", NULL, new_netns, NULL, NULL, NULL, napi_enumerable, NULL },
    { "enterNetns", NULL, enter_netns, NULL, NULL, NULL, napi_enumerable, NULL },
    { "netlinkOpen", NULL, netlink_open, NULL, NULL, NULL, napi_enumerable, NULL },
    { "netlinkRequest", NULL, netlink_request, NULL, NULL, NULL, napi_enumerable, NULL },
    { "flock", NULL, flock_fd, NULL, NULL, NULL, napi_enumerable, NULL },
    { "withUtsns", NULL, with_utsns, NULL, NULL, NULL, napi_enumerable, NULL },
    { "txChecksum", NULL, tx_checksum, NULL, NULL, NULL, napi_enumerable, NULL },
    { "netnsCookie", NULL, netns_cookie, NULL, NULL, NULL, napi_enumerable, NULL },
    { "addrWatchOpen", NULL, addr_watch_open, NULL, NULL, NULL, napi_enumerable, NULL },
    { "addrWatchDrain", NULL, addr_watch_drain, NULL, NULL, NULL, napi_enumerable, NULL },
    { "linkWatchOpen", NULL, link_watch_open, NULL, NULL, NULL, napi_enumerable, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
