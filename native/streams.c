/*
 * skiff_tap, part two: host TCP sockets for socket translation, driven from one epoll set so
 * that every ready socket of a loop iteration reaches JS in a single call.
 *
 *   streamsInit(ring, records, callback(count))  once per environment: the shared read buffer
 *                                                (ArrayBuffer), the event records (Int32Array,
 *                                                4 per event) and the batch callback
 *   tcpConnect(ipv4, port) -> fd | -errno         a non-blocking, close-on-exec, TCP_NODELAY
 *                                                socket with connect() under way
 *   streamSet(fd, read, write) -> 0 | -errno      what to wait for: bytes to read, room to write
 *   streamWrite(fd, bytes) -> n | -errno          send() without blocking (-EAGAIN: full)
 *   streamShutdown(fd) -> 0 | -errno              shutdown(SHUT_WR): our FIN
 *   streamClose(fd, reset) -> 0 | -errno          close; with reset, SO_LINGER 0 first (an RST)
 *   udpOpen() -> fd | -errno                      a non-blocking UDP socket bound to 0.0.0.0:0,
 *                                                read from the same set (closed with streamClose)
 *   udpSendTo(fd, bytes, ipv4, port) -> n | -errno  one datagram, sendto() without blocking
 *   udpSendSegments(fd, bytes, ipv4, port, size) -> n | -errno  `bytes` as datagrams of `size`
 *                                                bytes (the last may be shorter) in one
 *                                                sendmsg() with UDP_SEGMENT (Linux 4.18+, UDP
 *                                                GSO); -ENOPROTOOPT where the kernel lacks it
 *
 * Node's net.Socket costs a stream object, a write request and a JS callback (with its
 * microtask drain) per read and per write; for a network stack that relays small segments that
 * is most of the user-space time per request. Here the sockets live in an epoll set of our own,
 * watched by one uv_poll handle on the environment's loop. On each wakeup the set is drained
 * without blocking (at most MAX_EVENTS); for each ready socket one read() goes into the shared
 * ring (at most PER_READ bytes, and only while the ring has room), and one record per event
 * goes into `records`: [fd, kind, a, b, c, d] with
 *   K_CONNECTED  a = 0 or the connect error (SO_ERROR) as -errno
 *   K_DATA       a = offset in the ring, b = length
 *   K_EOF        the peer's FIN (reading stops); right after the K_DATA of the same wakeup when
 *                epoll reported EPOLLRDHUP and the read took fewer bytes than it asked for (the
 *                FIN was in before the read, so those were the last bytes): socket translation
 *                then sends its FIN to the guest on the data segment, and a guest that closes on
 *                reading the end of a reply (an HTTP client with `Connection: close`) closes
 *                second, holding no TIME-WAIT (whose ports it would otherwise run out of)
 *   K_ERROR      a = -errno of a failed read (reading and writing stop)
 *   K_WRITABLE   room to write again (reported once per streamSet(fd, _, true))
 *   K_DGRAM      a UDP socket's datagram: a = offset, b = length, c = source IPv4 (as int32),
 *                d = source port; up to DGRAM_BATCH datagrams per socket per wakeup, each only
 *                while the ring has room for the largest datagram (none is ever truncated)
 * then the callback runs once with the count. Bytes in the ring are valid only during the
 * callback. Level-triggered: a socket with more to read than one read() took, or that found no
 * room in the ring, is reported again on the next loop iteration.
 *
 * EPOLLHUP and EPOLLERR are reported even for a socket we do not wait on; a socket that is not
 * being read (JS paused it) and hangs up is taken out of the set ("parked") until JS asks to
 * read again, so it cannot spin the loop. The uv_poll handle is referenced only while sockets
 * are open: open TCP sockets keep the process alive, as Node's sockets do (UDP sockets do not,
 * like an unref()ed dgram socket).
 */
#define _GNU_SOURCE
#include "register.h"
#include "streams.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#define MAX_EVENTS 256      /* epoll events taken per wakeup */
/* Bytes read from one socket per wakeup: large reads matter for a bulk host -> guest flow
 * (iperf3 -R through skiff run, MTU 65520: 64 KiB 5.8-6.5 Gbit/s, 256 KiB 7.4-8.4, 512 KiB
 * 9.1-9.7, with less CPU); a ring of twice that still serves other sockets in the same wakeup. */
#define PER_READ (512 * 1024)
#define MIN_ROOM 2048        /* stop reading this wakeup when the ring has less room */

#define DGRAM_BATCH 64        /* datagrams read from one UDP socket per wakeup */
#define DGRAM_MAX 65536       /* ring room needed for one datagram */
#define RECORD_INTS 6

enum { K_CONNECTED = 1, K_DATA = 2, K_EOF = 3, K_ERROR = 4, K_WRITABLE = 5, K_DGRAM = 6 };

/* Per-fd state bits. */
enum { S_OPEN = 1, S_CONNECTING = 2, S_READ = 4, S_WRITE = 8, S_IN_SET = 16, S_PARKED = 32, S_DGRAM = 64 };

typedef struct {
  napi_env env;
  int epfd;
  uv_poll_t poll;
  int started, referenced;
  napi_ref ring_ref, records_ref, cb_ref;
  napi_async_context actx;
  uint8_t *ring;
  size_t ring_len;
  int32_t *records;
  uint32_t max_records;
  uint8_t *st; /* state bits by fd */
  int st_cap;
  int open; /* TCP sockets open (they keep the loop alive) */
} streams;

#define CHECK(call) do { if ((call) != napi_ok) return NULL; } while (0)

static streams *get(napi_env env, napi_callback_info info, size_t n, napi_value *argv) {
  void *data = NULL;
  if (napi_get_cb_info(env, info, &n, argv, NULL, &data) != napi_ok) return NULL;
  return data;
}

static napi_value num(napi_env env, int32_t v) {
  napi_value out;
  return napi_create_int32(env, v, &out) == napi_ok ? out : NULL;
}

/* Keep the loop alive exactly while sockets are open. */
static void reref(streams *s) {
  if (!s->started) return;
  if (s->open > 0 && !s->referenced) uv_ref((uv_handle_t *)&s->poll), s->referenced = 1;
  else if (s->open == 0 && s->referenced) uv_unref((uv_handle_t *)&s->poll), s->referenced = 0;
}

static int grow(streams *s, int fd) {
  if (fd < s->st_cap) return 0;
  int cap = s->st_cap ? s->st_cap : 1024;
  while (cap <= fd) cap *= 2;
  uint8_t *st = realloc(s->st, (size_t)cap);
  if (!st) return -ENOMEM;
  memset(st + s->st_cap, 0, (size_t)(cap - s->st_cap));
  s->st = st, s->st_cap = cap;
  return 0;
}

/* Bring the epoll registration of fd in line with its state bits. */
static int sync_fd(streams *s, int fd) {
  uint8_t st = s->st[fd];
  uint32_t want = (st & S_CONNECTING) ? EPOLLOUT : ((st & S_READ) ? EPOLLIN | EPOLLRDHUP : 0) | ((st & S_WRITE) ? EPOLLOUT : 0);
  if ((st & S_PARKED) && !(st & (S_READ | S_WRITE | S_CONNECTING))) {
    if (st & S_IN_SET) epoll_ctl(s->epfd, EPOLL_CTL_DEL, fd, NULL), s->st[fd] &= ~S_IN_SET;
    return 0;
  }
  struct epoll_event ev = {.events = want, .data.fd = fd};
  if (epoll_ctl(s->epfd, (st & S_IN_SET) ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev) < 0) return -errno;
  s->st[fd] |= S_IN_SET;
  s->st[fd] &= ~S_PARKED;
  return 0;
}

/* Give fd its first state and put it in the set; on failure close it and return -errno. */
static int add_fd(streams *s, int fd, uint8_t state) {
  s->st[fd] = state;
  int rc = sync_fd(s, fd);
  if (rc < 0) s->st[fd] = 0, close(fd);
  return rc;
}

static void record(streams *s, uint32_t *n, int fd, int kind, int32_t a, int32_t b) {
  int32_t *r = s->records + RECORD_INTS * (*n)++;
  r[0] = fd, r[1] = kind, r[2] = a, r[3] = b, r[4] = 0, r[5] = 0;
}

/* A readable UDP socket: datagrams into the ring while it has room for the largest one and
 * `spare` records are left. Errors other than EAGAIN (none expected on an unconnected socket)
 * end this socket's turn. */
static void read_dgrams(streams *s, int fd, uint32_t *n, size_t *used, uint32_t spare) {
  for (int i = 0; i < DGRAM_BATCH && spare > 0 && s->ring_len - *used >= DGRAM_MAX; i++, spare--) {
    struct sockaddr_in from;
    socklen_t flen = sizeof from;
    ssize_t got;
    do got = recvfrom(fd, s->ring + *used, DGRAM_MAX, 0, (struct sockaddr *)&from, &flen); while (got < 0 && errno == EINTR);
    if (got < 0) return;
    int32_t *r = s->records + RECORD_INTS * (*n)++;
    r[0] = fd, r[1] = K_DGRAM, r[2] = (int32_t)*used, r[3] = (int32_t)got;
    r[4] = (int32_t)ntohl(from.sin_addr.s_addr), r[5] = ntohs(from.sin_port);
    *used += (size_t)got;
  }
}

/* One ready socket: turn its epoll event into records (see the file comment). */
static void handle(streams *s, int fd, uint32_t ev, uint32_t *n, size_t *used, uint32_t spare) {
  uint8_t st = s->st[fd];
  if (!(st & S_OPEN)) return;
  if (st & S_DGRAM) {
    if (ev & EPOLLERR) { /* clear a pending error so it cannot be reported again and again */
      int err;
      socklen_t len = sizeof err;
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    }
    if (ev & EPOLLIN) read_dgrams(s, fd, n, used, spare);
    return;
  }
  if (st & S_CONNECTING) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
    if (err == 0 && !(ev & (EPOLLERR | EPOLLHUP)) && !(ev & EPOLLOUT)) return;
    if (err == 0 && (ev & (EPOLLERR | EPOLLHUP))) err = ECONNRESET;
    s->st[fd] &= ~S_CONNECTING;
    if (err) s->st[fd] |= S_PARKED;
    sync_fd(s, fd);
    record(s, n, fd, K_CONNECTED, -err, 0);
    return;
  }
  if (st & S_READ) {
    if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
      if (s->ring_len - *used < MIN_ROOM) return; /* next wakeup (level-triggered) */
      size_t room = s->ring_len - *used, want = room < PER_READ ? room : PER_READ;
      ssize_t got;
      do got = read(fd, s->ring + *used, want); while (got < 0 && errno == EINTR);
      if (got > 0) {
        record(s, n, fd, K_DATA, (int32_t)*used, (int32_t)got);
        *used += (size_t)got;
      }
      /* EPOLLRDHUP: the peer's FIN had arrived (in order: every byte before it was queued) when
       * the set was drained, so a short read took the last bytes and the EOF goes in the same
       * batch (and our FIN can ride on the data to the guest, see the file comment). */
      if (got == 0 || (got > 0 && (ev & EPOLLRDHUP) && (size_t)got < want)) {
        s->st[fd] &= ~S_READ;
        if (ev & (EPOLLHUP | EPOLLERR)) s->st[fd] |= S_PARKED;
        sync_fd(s, fd);
        record(s, n, fd, K_EOF, 0, 0);
      } else if (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        int err = errno;
        s->st[fd] &= ~(S_READ | S_WRITE);
        s->st[fd] |= S_PARKED;
        sync_fd(s, fd);
        record(s, n, fd, K_ERROR, -err, 0);
        return;
      }
    }
  } else if (ev & (EPOLLHUP | EPOLLERR) && !(st & S_WRITE)) {
    /* Hung up while paused: out of the set until JS reads again (and finds the EOF or error). */
    s->st[fd] |= S_PARKED;
    sync_fd(s, fd);
    return;
  }
  if ((s->st[fd] & S_WRITE) && (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
    s->st[fd] &= ~S_WRITE;
    if (ev & (EPOLLHUP | EPOLLERR) && !(s->st[fd] & S_READ)) s->st[fd] |= S_PARKED;
    sync_fd(s, fd);
    record(s, n, fd, K_WRITABLE, 0, 0);
  }
}

/* The epoll set is readable: drain it once, then one JS call with every record. */
static void on_ready(uv_poll_t *h, int status, int events) {
  streams *s = h->data;
  struct epoll_event evs[MAX_EVENTS];
  /* an event gives at most three records (data, EOF, then writable) */
  uint32_t max = s->max_records / 3 < MAX_EVENTS ? s->max_records / 3 : MAX_EVENTS, n = 0;
  size_t used = 0;
  int got;
  do got = epoll_wait(s->epfd, evs, (int)max, 0); while (got < 0 && errno == EINTR);
  /* Beyond three records per event, what is left may go to datagrams. */
  for (int i = 0; i < got; i++) handle(s, evs[i].data.fd, evs[i].events, &n, &used, s->max_records - n - 3 * (uint32_t)(got - i - 1));
  if (n == 0) return;
  napi_handle_scope scope;
  napi_value cb, recv, arg, exc;
  if (napi_open_handle_scope(s->env, &scope) != napi_ok) return;
  if (napi_get_reference_value(s->env, s->cb_ref, &cb) == napi_ok && napi_get_global(s->env, &recv) == napi_ok &&
      napi_create_uint32(s->env, n, &arg) == napi_ok &&
      napi_make_callback(s->env, s->actx, recv, cb, 1, &arg, NULL) == napi_pending_exception &&
      napi_get_and_clear_last_exception(s->env, &exc) == napi_ok)
    napi_fatal_exception(s->env, exc);
  napi_close_handle_scope(s->env, scope);
}

/* streamsInit(ring: ArrayBuffer, records: Int32Array, callback(count)). */
static napi_value streams_init(napi_env env, napi_callback_info info) {
  napi_value argv[3], name;
  streams *s = get(env, info, 3, argv);
  void *ring, *recs;
  size_t ring_len, nrecs;
  napi_typedarray_type tt;
  napi_valuetype cbt;
  uv_loop_t *loop;
  int rc;
  if (!s) return NULL;
  if (s->started) return napi_throw_error(env, NULL, "streamsInit: already initialised in this environment"), NULL;
  if (napi_get_arraybuffer_info(env, argv[0], &ring, &ring_len) != napi_ok ||
      napi_get_typedarray_info(env, argv[1], &tt, &nrecs, &recs, NULL, NULL) != napi_ok || tt != napi_int32_array ||
      napi_typeof(env, argv[2], &cbt) != napi_ok || cbt != napi_function)
    return napi_throw_type_error(env, NULL, "streamsInit(ArrayBuffer, Int32Array, callback)"), NULL;
  if (ring_len < 2 * DGRAM_MAX || nrecs < 2 * RECORD_INTS)
    return napi_throw_range_error(env, NULL, "streamsInit: the ring needs 128 KiB and the records room for two"), NULL;
  if ((s->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) {
    napi_throw_error(env, NULL, "streamsInit: epoll_create1 failed");
    return NULL;
  }
  CHECK(napi_get_uv_event_loop(env, &loop));
  if ((rc = uv_poll_init(loop, &s->poll, s->epfd)) < 0 || (rc = uv_poll_start(&s->poll, UV_READABLE, on_ready)) < 0) {
    close(s->epfd);
    napi_throw_error(env, NULL, uv_strerror(rc));
    return NULL;
  }
  s->poll.data = s;
  s->env = env, s->started = 1, s->referenced = 1;
  s->ring = ring, s->ring_len = ring_len, s->records = recs, s->max_records = (uint32_t)(nrecs / RECORD_INTS);
  napi_create_reference(env, argv[0], 1, &s->ring_ref);
  napi_create_reference(env, argv[1], 1, &s->records_ref);
  napi_create_reference(env, argv[2], 1, &s->cb_ref);
  napi_create_string_utf8(env, "skiff_tap.streams", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, NULL, name, &s->actx);
  reref(s);
  return NULL;
}

static int open_fd(streams *s, napi_env env, napi_callback_info info, size_t n, napi_value *argv, int32_t *fd) {
  if (napi_get_value_int32(env, argv[0], fd) != napi_ok) return 0;
  return *fd >= 0 && *fd < s->st_cap && (s->st[*fd] & S_OPEN);
}

/* tcpConnect(ipv4: uint32, port): the socket's fd (its K_CONNECTED record follows), or -errno. */
static napi_value tcp_connect(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  streams *s = get(env, info, 2, argv);
  uint32_t ip, port;
  int one = 1, fd, rc;
  if (!s) return NULL;
  if (!s->started) return napi_throw_error(env, NULL, "tcpConnect: call streamsInit first"), NULL;
  if (napi_get_value_uint32(env, argv[0], &ip) != napi_ok || napi_get_value_uint32(env, argv[1], &port) != napi_ok || port > 65535)
    return napi_throw_type_error(env, NULL, "tcpConnect(ipv4: uint32, port: 0..65535)"), NULL;
  if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0) return num(env, -errno);
  if ((rc = grow(s, fd)) < 0) return close(fd), num(env, rc);
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(ip)};
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS) {
    rc = -errno;
    close(fd);
    return num(env, rc);
  }
  if ((rc = add_fd(s, fd, S_OPEN | S_CONNECTING)) < 0) return num(env, rc);
  s->open++;
  reref(s);
  return num(env, fd);
}

/* streamSet(fd, read, write): wait for bytes to read / room to write (once). */
static napi_value stream_set(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  streams *s = get(env, info, 3, argv);
  int32_t fd;
  bool rd, wr;
  if (!s) return NULL;
  if (!open_fd(s, env, info, 3, argv, &fd)) return num(env, -EBADF);
  if (napi_get_value_bool(env, argv[1], &rd) != napi_ok || napi_get_value_bool(env, argv[2], &wr) != napi_ok)
    return napi_throw_type_error(env, NULL, "streamSet(fd, read: boolean, write: boolean)"), NULL;
  uint8_t st = s->st[fd] & ~(S_READ | S_WRITE);
  s->st[fd] = st | (rd ? S_READ : 0) | (wr ? S_WRITE : 0);
  return num(env, (s->st[fd] & S_CONNECTING) ? 0 : sync_fd(s, fd));
}

/* streamWrite(fd, bytes): bytes sent (maybe fewer than given), or -errno (-EAGAIN: none fit). */
static napi_value stream_write(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  streams *s = get(env, info, 2, argv);
  int32_t fd;
  void *data;
  size_t len;
  ssize_t n;
  if (!s) return NULL;
  if (!open_fd(s, env, info, 2, argv, &fd)) return num(env, -EBADF);
  if (napi_get_typedarray_info(env, argv[1], NULL, &len, &data, NULL, NULL) != napi_ok)
    return napi_throw_type_error(env, NULL, "streamWrite(fd, Uint8Array)"), NULL;
  do n = send(fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT); while (n < 0 && errno == EINTR);
  return num(env, n < 0 ? -errno : (int32_t)n);
}

/* streamShutdown(fd): send our FIN once queued bytes are out (shutdown(SHUT_WR)). */
static napi_value stream_shutdown(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  streams *s = get(env, info, 1, argv);
  int32_t fd;
  if (!s) return NULL;
  if (!open_fd(s, env, info, 1, argv, &fd)) return num(env, -EBADF);
  return num(env, shutdown(fd, SHUT_WR) < 0 ? -errno : 0);
}

/* streamClose(fd, reset): leave the set and close; with reset, abort the connection (RST). */
static napi_value stream_close(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  streams *s = get(env, info, 2, argv);
  int32_t fd;
  bool reset = false;
  if (!s) return NULL;
  if (!open_fd(s, env, info, 2, argv, &fd)) return num(env, -EBADF);
  napi_get_value_bool(env, argv[1], &reset);
  if (s->st[fd] & S_IN_SET) epoll_ctl(s->epfd, EPOLL_CTL_DEL, fd, NULL);
  int counted = !(s->st[fd] & S_DGRAM);
  s->st[fd] = 0;
  if (reset) {
    struct linger l = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  }
  int rc = close(fd) < 0 ? -errno : 0;
  if (counted) s->open--;
  reref(s);
  return num(env, rc);
}

/* udpOpen(): a UDP socket bound to 0.0.0.0:0 whose datagrams come as K_DGRAM records. */
static napi_value udp_open(napi_env env, napi_callback_info info) {
  streams *s = get(env, info, 0, NULL);
  int fd, rc;
  if (!s) return NULL;
  if (!s->started) return napi_throw_error(env, NULL, "udpOpen: call streamsInit first"), NULL;
  if ((fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0) return num(env, -errno);
  struct sockaddr_in sa = {.sin_family = AF_INET};
  if ((rc = bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ? -errno : grow(s, fd)) < 0) return close(fd), num(env, rc);
  if ((rc = add_fd(s, fd, S_OPEN | S_DGRAM | S_READ)) < 0) return num(env, rc);
  return num(env, fd);
}

/* udpSendTo(fd, bytes, ipv4, port): one datagram; bytes sent or -errno (-EAGAIN: buffer full). */
static napi_value udp_send_to(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  streams *s = get(env, info, 4, argv);
  int32_t fd;
  uint32_t ip, port;
  void *data;
  size_t len;
  ssize_t n;
  if (!s) return NULL;
  if (!open_fd(s, env, info, 4, argv, &fd) || !(s->st[fd] & S_DGRAM)) return num(env, -EBADF);
  if (napi_get_typedarray_info(env, argv[1], NULL, &len, &data, NULL, NULL) != napi_ok ||
      napi_get_value_uint32(env, argv[2], &ip) != napi_ok || napi_get_value_uint32(env, argv[3], &port) != napi_ok || port > 65535)
    return napi_throw_type_error(env, NULL, "udpSendTo(fd, Uint8Array, ipv4: uint32, port: 0..65535)"), NULL;
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(ip)};
  do n = sendto(fd, data, len, MSG_DONTWAIT, (struct sockaddr *)&sa, sizeof sa); while (n < 0 && errno == EINTR);
  return num(env, n < 0 ? -errno : (int32_t)n);
}

/* UDP GSO (UDP_SEGMENT, linux/udp.h): 1 supported, 0 not, -1 not probed yet. Probed once with
 * setsockopt, because a kernel older than 4.18 ignores the SOL_UDP cmsg and would send the
 * whole buffer as one datagram. */
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
static int udp_gso = -1;

/* udpSendSegments(fd, bytes, ipv4, port, size): `bytes` as datagrams of `size` bytes (the last
 * may be shorter) in one sendmsg(); bytes sent or -errno (-ENOPROTOOPT: no UDP GSO here). */
static napi_value udp_send_segments(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  streams *s = get(env, info, 5, argv);
  int32_t fd;
  uint32_t ip, port, size;
  void *data;
  size_t len;
  ssize_t n;
  if (!s) return NULL;
  if (!open_fd(s, env, info, 5, argv, &fd) || !(s->st[fd] & S_DGRAM)) return num(env, -EBADF);
  if (napi_get_typedarray_info(env, argv[1], NULL, &len, &data, NULL, NULL) != napi_ok ||
      napi_get_value_uint32(env, argv[2], &ip) != napi_ok || napi_get_value_uint32(env, argv[3], &port) != napi_ok ||
      napi_get_value_uint32(env, argv[4], &size) != napi_ok || port > 65535 || size == 0 || size > 65535)
    return napi_throw_type_error(env, NULL, "udpSendSegments(fd, Uint8Array, ipv4: uint32, port: 0..65535, size: 1..65535)"), NULL;
  if (udp_gso < 0) {
    int zero = 0;
    udp_gso = setsockopt(fd, SOL_UDP, UDP_SEGMENT, &zero, sizeof zero) == 0;
  }
  if (!udp_gso) return num(env, -ENOPROTOOPT);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(ip)};
  struct iovec iov = {.iov_base = data, .iov_len = len};
  union {
    char buf[CMSG_SPACE(sizeof(uint16_t))];
    struct cmsghdr align;
  } ctl;
  struct msghdr msg = {.msg_name = &sa, .msg_namelen = sizeof sa, .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_UDP;
  c->cmsg_type = UDP_SEGMENT;
  c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
  uint16_t gso = (uint16_t)size;
  memcpy(CMSG_DATA(c), &gso, sizeof gso);
  do n = sendmsg(fd, &msg, MSG_DONTWAIT); while (n < 0 && errno == EINTR);
  return num(env, n < 0 ? -errno : (int32_t)n);
}

static void free_streams(uv_handle_t *h) {
  streams *s = h->data;
  free(s->st);
  free(s);
}

/* Environment teardown: close every socket and the set. */
static void cleanup(void *arg) {
  streams *s = arg;
  for (int fd = 0; fd < s->st_cap; fd++)
    if (s->st[fd] & S_OPEN) close(fd);
  if (!s->started) {
    free(s->st);
    free(s);
    return;
  }
  if (s->ring_ref) napi_delete_reference(s->env, s->ring_ref);
  if (s->records_ref) napi_delete_reference(s->env, s->records_ref);
  if (s->cb_ref) napi_delete_reference(s->env, s->cb_ref);
  napi_async_destroy(s->env, s->actx);
  close(s->epfd);
  uv_close((uv_handle_t *)&s->poll, free_streams);
}

napi_status streams_register(napi_env env, napi_value exports) {
  static const skiff_export fns[] = {
      {"streamsInit", streams_init}, {"tcpConnect", tcp_connect}, {"streamSet", stream_set},
      {"streamWrite", stream_write}, {"streamShutdown", stream_shutdown}, {"streamClose", stream_close},
      {"udpOpen", udp_open}, {"udpSendTo", udp_send_to}, {"udpSendSegments", udp_send_segments}};
  streams *s = calloc(1, sizeof *s);
  napi_status st;
  if (!s) return napi_generic_failure;
  s->epfd = -1;
  if ((st = napi_add_env_cleanup_hook(env, cleanup, s)) != napi_ok) return free(s), st;
  return skiff_register(env, exports, fns, SKIFF_COUNT(fns), s);
}
