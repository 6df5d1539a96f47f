/*
 * skiff's N-API addon (plain C, context-aware), part one: Linux TAP devices and the uv_poll
 * frame reader that TAP devices, ICMP sockets and Unix datagram sockets share. The sockets
 * themselves are opened in sockets.c, host TCP sockets live in streams.c, the open-file limit
 * in nofile.c; this file's init registers them all.
 *
 *   openTap(name, netnsPath|null, {vnetHdr}?) -> {fd, name}   open a TAP, optionally in a netns
 *   startRead(fd, ring, slotSize, lengths, callback)          read frames via uv_poll, in batches
 *   stopRead(fd)                                              stop polling (fd stays open)
 *   write(fd, bytes) -> n | -errno                            one frame, non-blocking
 *   write2(fd, head, body) -> n | -errno                      one frame from two pieces (writev)
 *   close(fd) -> 0 | -errno                                   stop polling and close the fd
 *   icmpSocket(raw) -> fd | -errno                            an IPv4 ICMP socket (sockets.c; see below)
 *   sendTo(fd, bytes, ipv4) -> n | -errno                     one datagram to ipv4 (uint32), port 0 (sockets.c)
 *   waitWritable(fd, callback)                                one callback(0) once a polled fd is writable
 *   unixDgramOpen(localPath, sndbuf, rcvbuf) -> fd | -errno   a bound AF_UNIX SOCK_DGRAM socket (sockets.c)
 *   unixDgramConnect(fd, peerPath) -> 0 | -errno              connect it to the peer's path (sockets.c)
 *   unixDgramAwaitPeer(fd, peerPath|null, callback(event))    wait for the peer's first datagram (below)
 *   tapSetOffload(fd, flags) -> 0 | -errno                    TUNSETOFFLOAD (TUN_F_* bitmask)
 *   tapSetVnetHdrSize(fd, size) -> 0 | -errno                 TUNSETVNETHDRSZ
 *   streamsInit, tcpConnect, streamSet, streamWrite, ...      host TCP sockets: see streams.c
 *   getNofile, setNofile                                      RLIMIT_NOFILE: see nofile.c
 *   watchInit, watchAdd, watchRemove                          inotify for the share server: see watch.c
 *
 * Readiness comes from a uv_poll handle on the loop of the calling environment, so reads never
 * occupy a thread-pool thread. Each wakeup reads frames into fixed slots of a caller-owned
 * ArrayBuffer (frame i at byte i*slotSize, its length in lengths[i]) until EAGAIN or the slots
 * (at most MAX_BATCH) are full, then calls back into JS once with the count: one JS call per
 * batch and no copy beyond the kernel's read. The TAP driver truncates a frame longer than the
 * slot but still returns its full length, so lengths[i] > slotSize means "drop it".
 * A read error other than EAGAIN is reported as callback(-errno) and polling stops.
 *
 * ICMP echo forwarding uses the same reader on IPv4 ICMP sockets: icmpSocket(false) makes an
 * unprivileged "ping" socket (SOCK_DGRAM, allowed when net.ipv4.ping_group_range includes the
 * caller's group; the kernel sets the echo identifier and checksum and reads return the ICMP
 * message without the IP header), icmpSocket(true) a raw socket (SOCK_RAW, needs CAP_NET_RAW;
 * reads return whole IP packets, including other processes' ICMP). Both are non-blocking and
 * close-on-exec; a datagram socket read returns at most slotSize bytes (the rest is lost).
 *
 * Unix datagram sockets (QEMU -netdev dgram, vfkit) are connect()ed to their peer: write()
 * then needs no address, the kernel delivers only the peer's datagrams to us, and poll reports
 * the socket writable against the peer's receive queue (net.unix.max_dgram_qlen), which an
 * unconnected sender never sees — a sender that got EAGAIN from sendto() can wait for POLLOUT
 * forever. So after EAGAIN from write(), waitWritable(fd) adds UV_WRITABLE to the fd's poll
 * handle until it fires once. Until the peer is known (vfkit sends first) or has bound its path
 * (QEMU starting after us), unixDgramAwaitPeer polls the unconnected socket and peeks at the
 * sender of each queued datagram: one from the expected path (or, with no expected path, from
 * any sender bound to a pathname) makes it connect() there, stop polling and call back with
 * that path, the datagram still queued for the frame reader; any other datagram is discarded
 * and reported as callback(0); a read error as callback(-errno), after which polling stops.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <node_api.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include "register.h"
#include "nofile.h"
#include "fdpass.h"
#include "sockets.h"
#include "streams.h"
#include "fs.h"
#include "watch.h"

#define MAX_BATCH 64 /* frames read per wakeup before returning to the loop */

/* One active poller (one uv_poll handle) per polled fd: a frame reader (startRead) or a peer
 * waiter (unixDgramAwaitPeer); either may also be waiting for writability (waitWritable). */
typedef struct reader {
  uv_poll_t poll; /* first member: the handle's address is the reader's */
  struct reader *next;
  napi_env env;
  int fd, stopped;
  napi_ref ring_ref, lengths_ref, cb_ref; /* keep the JS objects alive while polling */
  napi_ref wcb_ref;                       /* waitWritable's callback while armed, else NULL */
  napi_async_context actx;
  int awaiting;                           /* an unixDgramAwaitPeer poller, not a frame reader */
  char *peer;                             /* its expected sender path (NULL: any named sender) */
  uint8_t *ring;
  uint32_t *lengths;
  size_t slot;
  uint32_t nslots;
} reader;

/* Per-environment state (the addon may be loaded by several worker threads). */
typedef struct { reader *head; } tap_env;

#define CHECK(call) do { if ((call) != napi_ok) return NULL; } while (0)

/* Throw Error("<step> failed: <strerror>") with .errno and .syscall set; returns NULL. */
static napi_value throw_errno(napi_env env, const char *step, int err) {
  char msg[256], buf[128];
  napi_value m, e, v;
  snprintf(msg, sizeof msg, "%s failed: %s", step, strerror_r(err, buf, sizeof buf));
  if (napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m) != napi_ok ||
      napi_create_error(env, NULL, m, &e) != napi_ok) return NULL;
  if (napi_create_int32(env, err, &v) == napi_ok) napi_set_named_property(env, e, "errno", v);
  if (napi_create_string_utf8(env, step, NAPI_AUTO_LENGTH, &v) == napi_ok)
    napi_set_named_property(env, e, "syscall", v);
  napi_throw(env, e);
  return NULL;
}

/* Fetch up to n arguments and the per-environment state. */
static tap_env *args(napi_env env, napi_callback_info info, size_t n, napi_value *argv) {
  void *data = NULL;
  if (napi_get_cb_info(env, info, &n, argv, NULL, &data) != napi_ok) return NULL;
  return data;
}

static reader *find_reader(tap_env *te, int fd) {
  for (reader *r = te->head; r; r = r->next) if (r->fd == fd) return r;
  return NULL;
}

static void free_reader(uv_handle_t *h) {
  free(((reader *)h)->peer);
  free(h);
}

/* Take r off the list and uv_close its handle (which stops polling at once; the memory is freed
 * in the close callback, so a reader stopped from inside its own JS callback stays valid until
 * we return). Its JS references stay until drop_refs. */
static void detach_reader(tap_env *te, reader *r) {
  for (reader **p = &te->head; *p; p = &(*p)->next) if (*p == r) { *p = r->next; break; }
  r->stopped = 1;
  uv_close((uv_handle_t *)&r->poll, free_reader);
}

static void drop_ref(napi_env env, napi_ref *ref) {
  if (*ref) napi_delete_reference(env, *ref), *ref = NULL;
}

/* Release the JS objects a detached reader kept alive. */
static void drop_refs(reader *r) {
  drop_ref(r->env, &r->ring_ref);
  drop_ref(r->env, &r->lengths_ref);
  drop_ref(r->env, &r->cb_ref);
  drop_ref(r->env, &r->wcb_ref);
  napi_async_destroy(r->env, r->actx);
}

/* Stop polling for good. */
static void stop_reader(tap_env *te, reader *r) {
  detach_reader(te, r);
  drop_refs(r);
}

/* Call the JS callback `ref` with one number (or, when str is not NULL, that string) as a
 * top-level callback (drains microtasks; a throw becomes an uncaught exception). */
static void call_back(reader *r, napi_ref ref, int32_t value, const char *str) {
  napi_handle_scope scope;
  napi_value cb, recv, arg, exc;
  if (napi_open_handle_scope(r->env, &scope) != napi_ok) return;
  if (napi_get_reference_value(r->env, ref, &cb) == napi_ok && napi_get_global(r->env, &recv) == napi_ok &&
      (str ? napi_create_string_utf8(r->env, str, NAPI_AUTO_LENGTH, &arg) : napi_create_int32(r->env, value, &arg)) == napi_ok &&
      napi_make_callback(r->env, r->actx, recv, cb, 1, &arg, NULL) == napi_pending_exception &&
      napi_get_and_clear_last_exception(r->env, &exc) == napi_ok)
    napi_fatal_exception(r->env, exc);
  napi_close_handle_scope(r->env, scope);
}

/* Report a poll or read error as callback(-err) and stop, unless JS already stopped it. */
static void fail_reader(reader *r, int err) {
  call_back(r, r->cb_ref, -err, NULL);
  if (!r->stopped) stop_reader(r->poll.data, r);
}

/* (Re)start polling: always readable, writable while waitWritable is armed. */
static int poll_events(reader *r);

/* A frame reader is readable: read a bounded batch of frames, then hand the count to JS once. */
static void read_batch(reader *r) {
  uint32_t n = 0, max = r->nslots < MAX_BATCH ? r->nslots : MAX_BATCH;
  int err = 0;
  while (!err && n < max) {
    ssize_t got = read(r->fd, r->ring + (size_t)n * r->slot, r->slot);
    if (got >= 0) r->lengths[n++] = (uint32_t)got;
    else if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    else if (errno != EINTR) err = errno;
  }
  if (n > 0) call_back(r, r->cb_ref, (int32_t)n, NULL);
  if (err && !r->stopped) fail_reader(r, err);
}

/* The pathname a Unix socket address names, into out (sizeof sun_path + 1 bytes); "" for an
 * unbound sender or an abstract address. */
static void sender_path(const struct sockaddr_un *sa, socklen_t len, char *out) {
  size_t n = len > offsetof(struct sockaddr_un, sun_path) ? len - offsetof(struct sockaddr_un, sun_path) : 0;
  if (n > sizeof sa->sun_path) n = sizeof sa->sun_path;
  memcpy(out, sa->sun_path, n);
  out[n] = 0; /* an abstract address starts with NUL and so reads as "" */
}

/* An unixDgramAwaitPeer poller is readable: peek at the sender of each queued datagram (at most
 * MAX_BATCH per wakeup); connect to the first acceptable one and report it, discard the rest. */
static void await_peer(reader *r) {
  char path[sizeof ((struct sockaddr_un *)0)->sun_path + 1], byte;
  for (int i = 0; i < MAX_BATCH && !r->stopped; i++) {
    struct sockaddr_un sa;
    socklen_t len = sizeof sa;
    ssize_t got = recvfrom(r->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT, (struct sockaddr *)&sa, &len);
    if (got < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) fail_reader(r, errno);
      return;
    }
    sender_path(&sa, len, path);
    if (path[0] && (!r->peer || strcmp(path, r->peer) == 0) && connect(r->fd, (struct sockaddr *)&sa, len) == 0) {
      /* Stop polling before JS runs (it starts the frame reader on this fd), keep the callback
       * alive until it has returned. */
      detach_reader(r->poll.data, r);
      call_back(r, r->cb_ref, 0, path);
      drop_refs(r);
      return;
    }
    /* Not the peer, or the peer went away before we could connect: drop the datagram. */
    while (recv(r->fd, &byte, 1, MSG_DONTWAIT) < 0 && errno == EINTR) {}
    call_back(r, r->cb_ref, 0, NULL);
  }
}

/* uv_poll callback: errors end polling; readable goes to the reader, writable (once) to the
 * waitWritable callback. */
static void on_ready(uv_poll_t *h, int status, int events) {
  reader *r = (reader *)h;
  napi_ref wcb;
  if (status < 0) return fail_reader(r, -status);
  if (events & UV_READABLE) {
    if (r->awaiting) await_peer(r);
    else read_batch(r);
  }
  if ((events & UV_WRITABLE) && !r->stopped && (wcb = r->wcb_ref)) {
    r->wcb_ref = NULL;
    int rc = poll_events(r); /* readable only again */
    call_back(r, wcb, 0, NULL);
    napi_delete_reference(r->env, wcb);
    if (rc < 0 && !r->stopped) fail_reader(r, -rc);
  }
}

static int poll_events(reader *r) {
  return uv_poll_start(&r->poll, UV_READABLE | (r->wcb_ref ? UV_WRITABLE : 0), on_ready);
}

/* openTap(name, netnsPath|null, {vnetHdr}?): open /dev/net/tun and attach (TUNSETIFF) to a TAP
 * named `name`, creating it; with netnsPath, the device is created inside that namespace: the
 * calling thread setns()es in and always back, whatever fails. */
static napi_value open_tap(napi_env env, napi_callback_info info) {
  napi_value argv[3], out, v;
  napi_valuetype t;
  char ns_path[4096], step[4200];
  struct ifreq ifr;
  size_t len;
  bool vnet = false, in_ns = false;
  int self_ns = -1, target_ns = -1, fd = -1, err = 0;
  args(env, info, 3, argv);
  memset(&ifr, 0, sizeof ifr);
  if (napi_get_value_string_utf8(env, argv[0], NULL, 0, &len) != napi_ok || len >= IFNAMSIZ)
    return napi_throw_type_error(env, NULL, "openTap: name must be a string of at most 15 bytes"), NULL;
  CHECK(napi_get_value_string_utf8(env, argv[0], ifr.ifr_name, IFNAMSIZ, &len));
  CHECK(napi_typeof(env, argv[1], &t));
  if (t == napi_string) {
    if (napi_get_value_string_utf8(env, argv[1], NULL, 0, &len) != napi_ok || len >= sizeof ns_path)
      return napi_throw_type_error(env, NULL, "openTap: netnsPath too long"), NULL;
    CHECK(napi_get_value_string_utf8(env, argv[1], ns_path, sizeof ns_path, &len));
    in_ns = true;
  } else if (t != napi_null && t != napi_undefined) {
    return napi_throw_type_error(env, NULL, "openTap: netnsPath must be a string or null"), NULL;
  }
  if (napi_typeof(env, argv[2], &t) == napi_ok && t == napi_object &&
      napi_get_named_property(env, argv[2], "vnetHdr", &v) == napi_ok)
    napi_get_value_bool(env, v, &vnet);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | (vnet ? IFF_VNET_HDR : 0);

  if (in_ns) {
    snprintf(step, sizeof step, "openTap: open(%s)", ns_path);
    if ((target_ns = open(ns_path, O_RDONLY | O_CLOEXEC)) < 0) return throw_errno(env, step, errno);
    if ((self_ns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)) < 0) {
      err = errno, close(target_ns);
      return throw_errno(env, "openTap: open(/proc/thread-self/ns/net)", err);
    }
    snprintf(step, sizeof step, "openTap: setns(%s, CLONE_NEWNET)", ns_path);
    if (setns(target_ns, CLONE_NEWNET) < 0) err = errno;
  }
  if (!err) {
    if ((fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC)) < 0)
      err = errno, snprintf(step, sizeof step, "openTap: open(/dev/net/tun)");
    else if (ioctl(fd, TUNSETIFF, &ifr) < 0) /* attach/create the TAP interface */
      err = errno, snprintf(step, sizeof step, "openTap: ioctl(TUNSETIFF, %s)", ifr.ifr_name), close(fd);
  }
  if (self_ns >= 0) { /* back to where we were, also on error */
    if (setns(self_ns, CLONE_NEWNET) < 0)
      napi_fatal_error("skiff_tap", NAPI_AUTO_LENGTH, "cannot return to the original network namespace", NAPI_AUTO_LENGTH);
    close(self_ns), close(target_ns);
  }
  if (err) return throw_errno(env, step, err);
  CHECK(napi_create_object(env, &out));
  CHECK(napi_create_int32(env, fd, &v));
  CHECK(napi_set_named_property(env, out, "fd", v));
  CHECK(napi_create_string_utf8(env, ifr.ifr_name, NAPI_AUTO_LENGTH, &v)); /* the kernel's name */
  CHECK(napi_set_named_property(env, out, "name", v));
  return out;
}

/* Poll fd on this environment's loop, calling `cb` (the reader is registered but not started;
 * the caller fills in its kind and calls poll_events). NULL with an exception pending on failure. */
static reader *add_reader(napi_env env, tap_env *te, int fd, napi_value cb, const char *fn) {
  napi_value name;
  uv_loop_t *loop;
  reader *r;
  int rc;
  char step[64];
  if (find_reader(te, fd)) {
    snprintf(step, sizeof step, "%s: fd is already being read", fn);
    return napi_throw_error(env, NULL, step), NULL;
  }
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) return NULL;
  snprintf(step, sizeof step, "%s: calloc", fn);
  if (!(r = calloc(1, sizeof *r))) return throw_errno(env, step, ENOMEM), NULL;
  r->env = env, r->fd = fd;
  snprintf(step, sizeof step, "%s: uv_poll_init", fn);
  if ((rc = uv_poll_init(loop, &r->poll, fd)) < 0) return free(r), throw_errno(env, step, -rc), NULL;
  r->poll.data = te;
  napi_create_reference(env, cb, 1, &r->cb_ref);
  napi_create_string_utf8(env, "skiff_tap.read", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, NULL, name, &r->actx);
  r->next = te->head, te->head = r;
  return r;
}

/* Start a registered reader; on failure stop it and throw. */
static napi_value start_reader(napi_env env, tap_env *te, reader *r, const char *fn) {
  char step[64];
  int rc = poll_events(r);
  if (rc < 0) {
    stop_reader(te, r);
    snprintf(step, sizeof step, "%s: uv_poll_start", fn);
    return throw_errno(env, step, -rc);
  }
  return NULL;
}

/* startRead(fd, ring: ArrayBuffer, slotSize, lengths: Uint32Array, callback(count)). */
static napi_value start_read(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  tap_env *te = args(env, info, 5, argv);
  int32_t fd, slot;
  void *ring, *lens;
  size_t ring_len, nlens;
  napi_typedarray_type tt;
  reader *r;
  if (!te) return NULL;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_int32(env, argv[2], &slot) != napi_ok ||
      slot <= 0 || napi_get_arraybuffer_info(env, argv[1], &ring, &ring_len) != napi_ok ||
      napi_get_typedarray_info(env, argv[3], &tt, &nlens, &lens, NULL, NULL) != napi_ok || tt != napi_uint32_array)
    return napi_throw_type_error(env, NULL, "startRead(fd, ArrayBuffer, slotSize, Uint32Array, callback)"), NULL;
  if (ring_len / (size_t)slot < 1 || nlens < 1)
    return napi_throw_range_error(env, NULL, "startRead: ring and lengths need room for one frame"), NULL;
  if (!(r = add_reader(env, te, fd, argv[4], "startRead"))) return NULL;
  r->ring = ring, r->lengths = lens, r->slot = (size_t)slot;
  r->nslots = (uint32_t)(ring_len / (size_t)slot < nlens ? ring_len / (size_t)slot : nlens);
  napi_create_reference(env, argv[1], 1, &r->ring_ref);
  napi_create_reference(env, argv[3], 1, &r->lengths_ref);
  return start_reader(env, te, r, "startRead");
}

/* stopRead(fd): stop polling fd, if it is polled. */
static napi_value stop_read(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  tap_env *te = args(env, info, 1, argv);
  int32_t fd;
  reader *r;
  if (te && napi_get_value_int32(env, argv[0], &fd) == napi_ok && (r = find_reader(te, fd))) stop_reader(te, r);
  return NULL;
}

/* write(fd, bytes): write one frame; returns bytes written or -errno (-EAGAIN included). */
static napi_value write_frame(napi_env env, napi_callback_info info) {
  napi_value argv[2], out;
  int32_t fd;
  void *data;
  size_t len;
  ssize_t n;
  args(env, info, 2, argv);
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_get_typedarray_info(env, argv[1], NULL, &len, &data, NULL, NULL) != napi_ok)
    return napi_throw_type_error(env, NULL, "write(fd, Uint8Array)"), NULL;
  do n = write(fd, data, len); while (n < 0 && errno == EINTR);
  CHECK(napi_create_int32(env, n < 0 ? -errno : (int32_t)n, &out));
  return out;
}

/* write2(fd, head, body): one frame written from two buffers with writev() — a TAP with a
 * virtio-net header takes the header and the frame without a copy into one buffer. Returns the
 * bytes written or -errno. */
static napi_value write2_frame(napi_env env, napi_callback_info info) {
  napi_value argv[3], out;
  int32_t fd;
  struct iovec iov[2];
  ssize_t n;
  args(env, info, 3, argv);
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_get_typedarray_info(env, argv[1], NULL, &iov[0].iov_len, &iov[0].iov_base, NULL, NULL) != napi_ok ||
      napi_get_typedarray_info(env, argv[2], NULL, &iov[1].iov_len, &iov[1].iov_base, NULL, NULL) != napi_ok)
    return napi_throw_type_error(env, NULL, "write2(fd, Uint8Array, Uint8Array)"), NULL;
  do n = writev(fd, iov, 2); while (n < 0 && errno == EINTR);
  CHECK(napi_create_int32(env, n < 0 ? -errno : (int32_t)n, &out));
  return out;
}

/* close(fd): stop polling it and close it; returns 0 or -errno. */
static napi_value close_fd(napi_env env, napi_callback_info info) {
  napi_value argv[1], out;
  tap_env *te = args(env, info, 1, argv);
  int32_t fd;
  reader *r;
  if (!te || napi_get_value_int32(env, argv[0], &fd) != napi_ok)
    return napi_throw_type_error(env, NULL, "close(fd)"), NULL;
  if ((r = find_reader(te, fd))) stop_reader(te, r); /* stop before close: libuv needs the fd */
  CHECK(napi_create_int32(env, close(fd) < 0 ? -errno : 0, &out));
  return out;
}

/* waitWritable(fd, callback): fd must be polled (startRead or unixDgramAwaitPeer); add
 * UV_WRITABLE to its poll until the fd is writable, then call callback(0) once. While armed,
 * a second call changes nothing. Throws when fd is not polled. */
static napi_value wait_writable(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  napi_valuetype t;
  tap_env *te = args(env, info, 2, argv);
  int32_t fd;
  reader *r;
  int rc;
  if (!te || napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_typeof(env, argv[1], &t) != napi_ok ||
      t != napi_function)
    return napi_throw_type_error(env, NULL, "waitWritable(fd, callback)"), NULL;
  if (!(r = find_reader(te, fd))) return napi_throw_error(env, NULL, "waitWritable: fd is not being polled"), NULL;
  if (r->wcb_ref) return NULL;
  CHECK(napi_create_reference(env, argv[1], 1, &r->wcb_ref));
  if ((rc = poll_events(r)) < 0) {
    drop_ref(env, &r->wcb_ref);
    return throw_errno(env, "waitWritable: uv_poll_start", -rc);
  }
  return NULL;
}

/* unixDgramAwaitPeer(fd, peerPath|null, callback(event)): poll the (unconnected) socket until
 * a datagram from peerPath (null: from any sender bound to a pathname) is queued, connect() to
 * that sender and call back with its path (a string; polling has stopped, the datagram is still
 * queued). Every other datagram is discarded and reported as callback(0); a read error as
 * callback(-errno), after which polling stops. stopRead / close end the wait. */
static napi_value unix_dgram_await_peer(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  napi_valuetype t1, t2;
  tap_env *te = args(env, info, 3, argv);
  struct sockaddr_un sa;
  socklen_t len;
  int32_t fd;
  reader *r;
  if (!te || napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_typeof(env, argv[1], &t1) != napi_ok ||
      napi_typeof(env, argv[2], &t2) != napi_ok || (t1 != napi_string && t1 != napi_null) || t2 != napi_function)
    return napi_throw_type_error(env, NULL, "unixDgramAwaitPeer(fd, peerPath | null, callback)"), NULL;
  if (t1 == napi_string && !unix_address(env, argv[1], &sa, &len, "unixDgramAwaitPeer")) return NULL;
  if (!(r = add_reader(env, te, fd, argv[2], "unixDgramAwaitPeer"))) return NULL;
  r->awaiting = 1;
  if (t1 == napi_string && !(r->peer = strdup(sa.sun_path))) {
    stop_reader(te, r);
    return throw_errno(env, "unixDgramAwaitPeer: strdup", ENOMEM);
  }
  return start_reader(env, te, r, "unixDgramAwaitPeer");
}

/* tapSetOffload(fd, flags): ioctl(TUNSETOFFLOAD) with a bitmask of TUN_F_CSUM 0x01, TUN_F_TSO4
 * 0x02, TUN_F_TSO6 0x04, TUN_F_TSO_ECN 0x08, TUN_F_UFO 0x10: the offloads the reader of the TAP
 * accepts (frames may then arrive with partial checksums or as super-frames, described by a
 * virtio-net header: needs a device opened with vnetHdr). Returns 0 or -errno. */
static napi_value tap_set_offload(napi_env env, napi_callback_info info) {
  napi_value argv[2], out;
  int32_t fd;
  uint32_t flags;
  args(env, info, 2, argv);
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_uint32(env, argv[1], &flags) != napi_ok)
    return napi_throw_type_error(env, NULL, "tapSetOffload(fd, flags)"), NULL;
  CHECK(napi_create_int32(env, ioctl(fd, TUNSETOFFLOAD, (unsigned long)flags) < 0 ? -errno : 0, &out));
  return out;
}

/* tapSetVnetHdrSize(fd, size): ioctl(TUNSETVNETHDRSZ): the length of the virtio-net header
 * before each frame of a vnetHdr TAP (10 by default; 12 with num_buffers). 0 or -errno. */
static napi_value tap_set_vnet_hdr_size(napi_env env, napi_callback_info info) {
  napi_value argv[2], out;
  int32_t fd, size;
  int sz;
  args(env, info, 2, argv);
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_int32(env, argv[1], &size) != napi_ok)
    return napi_throw_type_error(env, NULL, "tapSetVnetHdrSize(fd, size)"), NULL;
  sz = size;
  CHECK(napi_create_int32(env, ioctl(fd, TUNSETVNETHDRSZ, &sz) < 0 ? -errno : 0, &out));
  return out;
}

/* Environment teardown (process or worker exit): stop and close every polled fd (so a
 * terminated worker does not keep its TAP devices), free the state. */
static void cleanup(void *arg) {
  tap_env *te = arg;
  while (te->head) {
    int fd = te->head->fd;
    stop_reader(te, te->head);
    close(fd);
  }
  free(te);
}

NAPI_MODULE_INIT() {
  static const skiff_export fns[] = {
      {"openTap", open_tap}, {"startRead", start_read}, {"stopRead", stop_read},
      {"write", write_frame}, {"write2", write2_frame}, {"close", close_fd},
      {"waitWritable", wait_writable}, {"unixDgramAwaitPeer", unix_dgram_await_peer}, {"tapSetOffload", tap_set_offload},
      {"tapSetVnetHdrSize", tap_set_vnet_hdr_size}};
  tap_env *te = calloc(1, sizeof *te);
  if (!te) return NULL;
  CHECK(napi_add_env_cleanup_hook(env, cleanup, te));
  CHECK(skiff_register(env, exports, fns, SKIFF_COUNT(fns), te));
  CHECK(sockets_register(env, exports));
  CHECK(streams_register(env, exports));
  CHECK(nofile_register(env, exports));
  CHECK(fdpass_register(env, exports));
  CHECK(fs_register(env, exports));
  CHECK(watch_register(env, exports));
  return exports;
}
