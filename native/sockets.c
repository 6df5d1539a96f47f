/*
 * skiff's N-API addon, part four: opening the sockets the frame reader of tap.c polls — IPv4
 * ICMP sockets for echo forwarding (ping or raw, see tap.c's comment) and AF_UNIX datagram
 * sockets for QEMU -netdev dgram and vfkit — and sending on them. No state: every function
 * takes an fd and returns a result or -errno, throwing only for bad arguments.
 *
 *   icmpSocket(raw, ipv6?) -> fd | -errno                     an IPv4 ICMP (or IPv6 ICMPv6) socket
 *   sendTo(fd, bytes, ipv4) -> n | -errno                     one datagram to ipv4 (uint32), port 0
 *   sendTo6(fd, bytes, ipv6) -> n | -errno                    one datagram to ipv6 (16 bytes), port 0
 *   unixDgramOpen(localPath, sndbuf, rcvbuf) -> fd | -errno   a bound AF_UNIX SOCK_DGRAM socket
 *   unixDgramConnect(fd, peerPath) -> 0 | -errno              connect it to the peer's path
 */
#define _GNU_SOURCE
#include "register.h"
#include <errno.h>
#include <netinet/in.h>
#include <netinet/icmp6.h>
#include <node_api.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "sockets.h"

#define CHECK(call) do { if ((call) != napi_ok) return NULL; } while (0)

/* Fetch up to n arguments. */
static void args(napi_env env, napi_callback_info info, size_t n, napi_value *argv) {
  napi_get_cb_info(env, info, &n, argv, NULL, NULL);
}

/* icmpSocket(raw, ipv6): socket(AF_INET, SOCK_RAW or SOCK_DGRAM, IPPROTO_ICMP), or with ipv6
 * true socket(AF_INET6, ..., IPPROTO_ICMPV6) (RFC 3542 §3: a raw ICMPv6 socket gets the message
 * without the IPv6 header and the kernel computes the checksum; its ICMP6_FILTER passes echo
 * replies only). Non-blocking and close-on-exec; returns the fd or -errno (EACCES:
 * ping_group_range excludes us; EPERM: no CAP_NET_RAW). */
static napi_value icmp_socket(napi_env env, napi_callback_info info) {
  napi_value argv[2], out;
  bool raw = false, v6 = false;
  napi_valuetype t = napi_undefined;
  int fd;
  args(env, info, 2, argv);
  if (napi_get_value_bool(env, argv[0], &raw) != napi_ok || napi_typeof(env, argv[1], &t) != napi_ok ||
      (t != napi_undefined && napi_get_value_bool(env, argv[1], &v6) != napi_ok))
    return napi_throw_type_error(env, NULL, "icmpSocket(raw: boolean, ipv6?: boolean)"), NULL;
  fd = socket(v6 ? AF_INET6 : AF_INET, (raw ? SOCK_RAW : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP);
  if (fd >= 0 && v6 && raw) {
    struct icmp6_filter f;
    ICMP6_FILTER_SETBLOCKALL(&f);
    ICMP6_FILTER_SETPASS(ICMP6_ECHO_REPLY, &f);
    if (setsockopt(fd, IPPROTO_ICMPV6, ICMP6_FILTER, &f, sizeof f) < 0) {
      int err = errno;
      close(fd);
      fd = -1, errno = err;
    }
  }
  CHECK(napi_create_int32(env, fd < 0 ? -errno : fd, &out));
  return out;
}

/* sendTo6(fd, bytes, ipv6): sendto() one datagram to the IPv6 address `ipv6` (16 bytes, network
 * order), port 0; returns bytes sent or -errno (-EAGAIN included). */
static napi_value send_to6(napi_env env, napi_callback_info info) {
  napi_value argv[3], out;
  int32_t fd;
  void *data, *addr;
  size_t len, alen;
  ssize_t n;
  struct sockaddr_in6 sin6;
  args(env, info, 3, argv);
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_get_typedarray_info(env, argv[1], NULL, &len, &data, NULL, NULL) != napi_ok ||
      napi_get_typedarray_info(env, argv[2], NULL, &alen, &addr, NULL, NULL) != napi_ok || alen != 16)
    return napi_throw_type_error(env, NULL, "sendTo6(fd, Uint8Array, ipv6: Uint8Array(16))"), NULL;
  memset(&sin6, 0, sizeof sin6);
  sin6.sin6_family = AF_INET6;
  memcpy(&sin6.sin6_addr, addr, 16);
  do n = sendto(fd, data, len, 0, (struct sockaddr *)&sin6, sizeof sin6); while (n < 0 && errno == EINTR);
  CHECK(napi_create_int32(env, n < 0 ? -errno : (int32_t)n, &out));
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

/* Read a Unix socket pathname argument into sa (throws unless 1..107 bytes). */
bool unix_address(napi_env env, napi_value v, struct sockaddr_un *sa, socklen_t *len, const char *fn) {
  char msg[96];
  size_t n;
  memset(sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &n) != napi_ok || n == 0 || n >= sizeof sa->sun_path) {
    snprintf(msg, sizeof msg, "%s: the path must be a string of 1 to %zu bytes", fn, sizeof sa->sun_path - 1);
    napi_throw_type_error(env, NULL, msg);
    return false;
  }
  napi_get_value_string_utf8(env, v, sa->sun_path, sizeof sa->sun_path, &n);
  *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
  return true;
}

/* unixDgramOpen(localPath, sndbuf, rcvbuf): socket(AF_UNIX, SOCK_DGRAM), non-blocking and
 * close-on-exec, SO_SNDBUF / SO_RCVBUF set when > 0 (the kernel caps them at wmem_max /
 * rmem_max), bound to localPath; returns the fd or -errno (EADDRINUSE: the path exists).
 * Throws only for bad arguments. */
static napi_value unix_dgram_open(napi_env env, napi_callback_info info) {
  napi_value argv[3], out;
  struct sockaddr_un sa;
  socklen_t len;
  int32_t sndbuf, rcvbuf;
  int fd, err = 0;
  args(env, info, 3, argv);
  if (!unix_address(env, argv[0], &sa, &len, "unixDgramOpen")) return NULL;
  if (napi_get_value_int32(env, argv[1], &sndbuf) != napi_ok || napi_get_value_int32(env, argv[2], &rcvbuf) != napi_ok ||
      sndbuf < 0 || rcvbuf < 0)
    return napi_throw_type_error(env, NULL, "unixDgramOpen(localPath, sndbuf >= 0, rcvbuf >= 0)"), NULL;
  if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0) err = errno;
  else if ((sndbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf) < 0) ||
           (rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) < 0) ||
           bind(fd, (struct sockaddr *)&sa, len) < 0)
    err = errno, close(fd);
  CHECK(napi_create_int32(env, err ? -err : fd, &out));
  return out;
}

/* unixDgramConnect(fd, peerPath): connect() the datagram socket to peerPath, so that write()
 * sends there, only the peer's datagrams are received, and poll's writability follows the
 * peer's receive queue. Returns 0 or -errno (ENOENT / ECONNREFUSED: nobody is bound there).
 * Throws only for bad arguments. */
static napi_value unix_dgram_connect(napi_env env, napi_callback_info info) {
  napi_value argv[2], out;
  struct sockaddr_un sa;
  socklen_t len;
  int32_t fd;
  int rc;
  args(env, info, 2, argv);
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok)
    return napi_throw_type_error(env, NULL, "unixDgramConnect(fd, peerPath)"), NULL;
  if (!unix_address(env, argv[1], &sa, &len, "unixDgramConnect")) return NULL;
  do rc = connect(fd, (struct sockaddr *)&sa, len); while (rc < 0 && errno == EINTR);
  CHECK(napi_create_int32(env, rc < 0 ? -errno : 0, &out));
  return out;
}

napi_status sockets_register(napi_env env, napi_value exports) {
  static const skiff_export fns[] = {
      {"icmpSocket", icmp_socket}, {"sendTo", send_to}, {"sendTo6", send_to6}, {"unixDgramOpen", unix_dgram_open}, {"unixDgramConnect", unix_dgram_connect}};
  return skiff_register(env, exports, fns, SKIFF_COUNT(fns), NULL);
}
