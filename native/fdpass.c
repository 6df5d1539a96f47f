/*
 * skiff_tap, part four: the skiff end of the helper protocol of native/userns.c — a socketpair to
 * hand the helper as its fd 3, and message exchange over it including receiving a descriptor
 * (SCM_RIGHTS, unix(7)), which Node's own sockets cannot do. The waits are bounded (poll(2) with a
 * timeout) and used only while a namespace is being set up, never on the data path.
 *
 *   seqpacketPair() -> [fd, fd] | -errno             AF_UNIX SOCK_SEQPACKET pair, both close-on-exec
 *                                                    (the child gets its end through dup2, which clears it)
 *   recvMessage(fd, timeoutMs) -> {data, fd} | -errno  one message (at most 255 bytes) and the descriptor
 *                                                    it carried (-1 if none; close-on-exec);
 *                                                    data "" at EOF; -ETIMEDOUT after timeoutMs
 *   sendMessage(fd, string) -> n | -errno            one message (MSG_NOSIGNAL)
 */
#define _GNU_SOURCE
#include "register.h"
#include <errno.h>
#include <node_api.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fdpass.h"

static napi_value int_result(napi_env env, int32_t v) {
  napi_value out;
  napi_create_int32(env, v, &out);
  return out;
}

static napi_value seqpacket_pair(napi_env env, napi_callback_info info) {
  int sv[2];
  napi_value arr;
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) return int_result(env, -errno);
  if (napi_create_array_with_length(env, 2, &arr) != napi_ok) return NULL;
  napi_set_element(env, arr, 0, int_result(env, sv[0]));
  napi_set_element(env, arr, 1, int_result(env, sv[1]));
  return arr;
}

static int int_args(napi_env env, napi_callback_info info, size_t n, int32_t *out, napi_value *argv) {
  size_t argc = n;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < n) return 0;
  for (size_t i = 0; i < n; i++)
    if (napi_get_value_int32(env, argv[i], &out[i]) != napi_ok) return 0;
  return 1;
}

static napi_value recv_message(napi_env env, napi_callback_info info) {
  napi_value argv[2], obj, v;
  int32_t a[2];
  char buf[256], cbuf[CMSG_SPACE(sizeof(int))];
  struct iovec iov = {buf, sizeof buf - 1};
  struct msghdr msg;
  struct pollfd p;
  struct cmsghdr *cm;
  ssize_t n;
  int r, fd = -1;
  if (!int_args(env, info, 2, a, argv)) return napi_throw_type_error(env, NULL, "recvMessage(fd, timeoutMs)"), NULL;
  p.fd = a[0], p.events = POLLIN, p.revents = 0;
  do r = poll(&p, 1, a[1]);
  while (r < 0 && errno == EINTR);
  if (r < 0) return int_result(env, -errno);
  if (r == 0) return int_result(env, -ETIMEDOUT);
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov, msg.msg_iovlen = 1, msg.msg_control = cbuf, msg.msg_controllen = sizeof cbuf;
  do n = recvmsg(a[0], &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  if (n < 0) return int_result(env, -errno);
  for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
    if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS && cm->cmsg_len >= CMSG_LEN(sizeof(int))) {
      int extra = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
      memcpy(&fd, CMSG_DATA(cm), sizeof fd);
      for (int i = 1; i < extra; i++) { /* only one is expected: close any others */
        int other;
        memcpy(&other, CMSG_DATA(cm) + i * sizeof(int), sizeof other);
        close(other);
      }
    }
  }
  if (napi_create_object(env, &obj) != napi_ok) return NULL;
  napi_create_string_latin1(env, buf, (size_t)n, &v);
  napi_set_named_property(env, obj, "data", v);
  napi_set_named_property(env, obj, "fd", int_result(env, fd));
  return obj;
}

static napi_value send_message(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  size_t argc = 2, len;
  int32_t fd;
  char buf[256];
  ssize_t n;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_get_value_string_latin1(env, argv[1], buf, sizeof buf, &len) != napi_ok)
    return napi_throw_type_error(env, NULL, "sendMessage(fd, string)"), NULL;
  do n = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  return int_result(env, n < 0 ? -errno : (int32_t)n);
}

napi_status fdpass_register(napi_env env, napi_value exports) {
  static const skiff_export fns[] = {
      {"seqpacketPair", seqpacket_pair}, {"recvMessage", recv_message}, {"sendMessage", send_message}};
  return skiff_register(env, exports, fns, SKIFF_COUNT(fns), NULL);
}
