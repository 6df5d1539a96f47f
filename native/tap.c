/*
 * skiff_tap: a small N-API addon (plain C, context-aware) for Linux TAP devices and ICMP sockets.
 *
 *   openTap(name, netnsPath|null, {vnetHdr}?) -> {fd, name}   open a TAP, optionally in a netns
 *   startRead(fd, ring, slotSize, lengths, callback)          read frames via uv_poll, in batches
 *   stopRead(fd)                                              stop polling (fd stays open)
 *   write(fd, bytes) -> n | -errno                            one frame, non-blocking
 *   close(fd) -> 0 | -errno                                   stop polling and close the fd
 *   icmpSocket(raw) -> fd | -errno                            an IPv4 ICMP socket (see below)
 *   sendTo(fd, bytes, ipv4) -> n | -errno                     one datagram to ipv4 (uint32), port 0
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
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <node_api.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#define MAX_BATCH 64 /* frames read per wakeup before returning to the loop */

/* One active reader (one uv_poll handle) per polled fd. */
typedef struct reader {
  uv_poll_t poll; /* first member: the handle's address is the reader's */
  struct reader *next;
  napi_env env;
  int fd, stopped;
  napi_ref ring_ref, lengths_ref, cb_ref; /* keep the JS objects alive while polling */
  napi_async_context actx;
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

static void free_reader(uv_handle_t *h) { free(h); }

/* Stop polling: unlink, drop the JS references, and uv_close the handle (freed in its close
 * callback, so a reader stopped from inside its own JS callback stays valid until we return). */
static void stop_reader(tap_env *te, reader *r) {
  for (reader **p = &te->head; *p; p = &(*p)->next) if (*p == r) { *p = r->next; break; }
  r->stopped = 1;
  uv_poll_stop(&r->poll);
  napi_delete_reference(r->env, r->ring_ref);
  napi_delete_reference(r->env, r->lengths_ref);
  napi_delete_reference(r->env, r->cb_ref);
  napi_async_destroy(r->env, r->actx);
  uv_close((uv_handle_t *)&r->poll, free_reader);
}

/* Call the JS callback with one number, as a top-level callback (drains microtasks; a throw
 * becomes an uncaught exception). */
static void call_back(reader *r, int32_t value) {
  napi_handle_scope scope;
  napi_value cb, recv, arg, exc;
  if (napi_open_handle_scope(r->env, &scope) != napi_ok) return;
  if (napi_get_reference_value(r->env, r->cb_ref, &cb) == napi_ok &&
      napi_get_global(r->env, &recv) == napi_ok && napi_create_int32(r->env, value, &arg) == napi_ok &&
      napi_make_callback(r->env, r->actx, recv, cb, 1, &arg, NULL) == napi_pending_exception &&
      napi_get_and_clear_last_exception(r->env, &exc) == napi_ok)
    napi_fatal_exception(r->env, exc);
  napi_close_handle_scope(r->env, scope);
}

/* uv_poll callback: read a bounded batch of frames, then hand the count to JS once. */
static void on_readable(uv_poll_t *h, int status, int events) {
  reader *r = (reader *)h;
  tap_env *te = h->data;
  uint32_t n = 0, max = r->nslots < MAX_BATCH ? r->nslots : MAX_BATCH;
  int err = status < 0 ? -status : 0;
  (void)events;
  while (!err && n < max) {
    ssize_t got = read(r->fd, r->ring + (size_t)n * r->slot, r->slot);
    if (got >= 0) r->lengths[n++] = (uint32_t)got;
    else if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    else if (errno != EINTR) err = errno;
  }
  if (n > 0) call_back(r, (int32_t)n);
  if (err && !r->stopped) {
    call_back(r, -err);
    if (!r->stopped) stop_reader(te, r); /* unless JS already stopped or closed it */
  }
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

/* startRead(fd, ring: ArrayBuffer, slotSize, lengths: Uint32Array, callback(count)). */
static napi_value start_read(napi_env env, napi_callback_info info) {
  napi_value argv[5], name;
  tap_env *te = args(env, info, 5, argv);
  int32_t fd, slot;
  void *ring, *lens;
  size_t ring_len, nlens;
  napi_typedarray_type tt;
  uv_loop_t *loop;
  reader *r;
  if (!te) return NULL;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_int32(env, argv[2], &slot) != napi_ok ||
      slot <= 0 || napi_get_arraybuffer_info(env, argv[1], &ring, &ring_len) != napi_ok ||
      napi_get_typedarray_info(env, argv[3], &tt, &nlens, &lens, NULL, NULL) != napi_ok || tt != napi_uint32_array)
    return napi_throw_type_error(env, NULL, "startRead(fd, ArrayBuffer, slotSize, Uint32Array, callback)"), NULL;
  if (ring_len / (size_t)slot < 1 || nlens < 1)
    return napi_throw_range_error(env, NULL, "startRead: ring and lengths need room for one frame"), NULL;
  if (find_reader(te, fd)) return napi_throw_error(env, NULL, "startRead: fd is already being read"), NULL;
  CHECK(napi_get_uv_event_loop(env, &loop));
  if (!(r = calloc(1, sizeof *r))) return throw_errno(env, "startRead: calloc", ENOMEM);
  r->env = env, r->fd = fd, r->ring = ring, r->lengths = lens, r->slot = (size_t)slot;
  r->nslots = (uint32_t)(ring_len / (size_t)slot < nlens ? ring_len / (size_t)slot : nlens);
  int rc = uv_poll_init(loop, &r->poll, fd);
  if (rc < 0) return free(r), throw_errno(env, "startRead: uv_poll_init", -rc);
  r->poll.data = te;
  napi_create_reference(env, argv[1], 1, &r->ring_ref);
  napi_create_reference(env, argv[3], 1, &r->lengths_ref);
  napi_create_reference(env, argv[4], 1, &r->cb_ref);
  napi_create_string_utf8(env, "skiff_tap.read", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, NULL, name, &r->actx);
  r->next = te->head, te->head = r;
  if ((rc = uv_poll_start(&r->poll, UV_READABLE, on_readable)) < 0) {
    stop_reader(te, r);
    return throw_errno(env, "startRead: uv_poll_start", -rc);
  }
  return NULL;
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

/* icmpSocket(raw): socket(AF_INET, SOCK_RAW or SOCK_DGRAM, IPPROTO_ICMP), non-blocking and
 * close-on-exec; returns the fd or -errno (EACCES: ping_group_range excludes us; EPERM: no
 * CAP_NET_RAW). */
static napi_value icmp_socket(napi_env env, napi_callback_info info) {
  napi_value argv[1], out;
  bool raw = false;
  int fd;
  args(env, info, 1, argv);
  if (napi_get_value_bool(env, argv[0], &raw) != napi_ok)
    return napi_throw_type_error(env, NULL, "icmpSocket(raw: boolean)"), NULL;
  fd = socket(AF_INET, (raw ? SOCK_RAW : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMP);
  CHECK(napi_create_int32(env, fd < 0 ? -errno : fd, &out));
  return out;
}

/* sendTo(fd, bytes, ipv4): sendto() one datagram to the IPv4 address `ipv4` (a uint32 in host
 * order), port 0; returns bytes sent or -errno (-EAGAIN included). */
static napi_value send_to(napi_env env, napi_callback_info info) {
  napi_value argv[3], out;
  int32_t fd;
  uint32_t ip;
  void *data;
  size_t len;
  ssize_t n;
  struct sockaddr_in sin;
  args(env, info, 3, argv);
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_get_typedarray_info(env, argv[1], NULL, &len, &data, NULL, NULL) != napi_ok ||
      napi_get_value_uint32(env, argv[2], &ip) != napi_ok)
    return napi_throw_type_error(env, NULL, "sendTo(fd, Uint8Array, ipv4: number)"), NULL;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(ip);
  do n = sendto(fd, data, len, 0, (struct sockaddr *)&sin, sizeof sin); while (n < 0 && errno == EINTR);
  CHECK(napi_create_int32(env, n < 0 ? -errno : (int32_t)n, &out));
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
  static const struct { const char *name; napi_callback fn; } fns[] = {
      {"openTap", open_tap}, {"startRead", start_read}, {"stopRead", stop_read},
      {"write", write_frame}, {"close", close_fd}, {"icmpSocket", icmp_socket}, {"sendTo", send_to}};
  tap_env *te = calloc(1, sizeof *te);
  napi_value f;
  if (!te) return NULL;
  CHECK(napi_add_env_cleanup_hook(env, cleanup, te));
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    CHECK(napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, te, &f));
    CHECK(napi_set_named_property(env, exports, fns[i].name, f));
  }
  return exports;
}
