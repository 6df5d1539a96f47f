/*
 * skiff_tap, part four: inotify(7) for the 9P share server's file events (src/share/host-watch.ts).
 *
 *   watchInit() -> fd | -errno            inotify_init1(IN_NONBLOCK | IN_CLOEXEC); read with startRead
 *                                         (tap.c) and closed with close: each read returns whole
 *                                         struct inotify_event records
 *   watchAdd(ifd, dirfd, mask) -> wd | -errno
 *                                         inotify_add_watch on the directory HELD by dirfd (an O_PATH
 *                                         descriptor from fs.c's contained walk), named through
 *                                         /proc/self/fd/N: the kernel's magic link to that inode, so
 *                                         no path is looked up again and nothing outside the share
 *                                         can be watched; IN_ONLYDIR is always added
 *   watchRemove(ifd, wd) -> 0 | -errno    inotify_rm_watch
 *
 * The number of watches is bounded by the caller (and by the kernel's
 * fs.inotify.max_user_watches: -ENOSPC); the kernel's event queue by max_queued_events, past
 * which it reports IN_Q_OVERFLOW, which the caller turns into a "rescan" event.
 */
#define _GNU_SOURCE
#include "register.h"
#include "watch.h"

#include <errno.h>
#include <stdio.h>
#include <sys/inotify.h>

static napi_value num(napi_env env, int32_t v) {
  napi_value out;
  napi_create_int32(env, v, &out);
  return out;
}

static napi_value watch_init(napi_env env, napi_callback_info info) {
  int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  return num(env, fd < 0 ? -errno : fd);
}

static napi_value watch_add(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t ifd, dirfd;
  uint32_t mask;
  char path[64];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 ||
      napi_get_value_int32(env, argv[0], &ifd) != napi_ok || napi_get_value_int32(env, argv[1], &dirfd) != napi_ok ||
      napi_get_value_uint32(env, argv[2], &mask) != napi_ok || dirfd < 0)
    return napi_throw_type_error(env, NULL, "watchAdd(ifd, dirfd, mask)"), NULL;
  snprintf(path, sizeof path, "/proc/self/fd/%d", dirfd);
  int wd = inotify_add_watch(ifd, path, (mask & ~IN_DONT_FOLLOW) | IN_ONLYDIR);
  return num(env, wd < 0 ? -errno : wd);
}

static napi_value watch_remove(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t ifd, wd;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_get_value_int32(env, argv[0], &ifd) != napi_ok || napi_get_value_int32(env, argv[1], &wd) != napi_ok)
    return napi_throw_type_error(env, NULL, "watchRemove(ifd, wd)"), NULL;
  return num(env, inotify_rm_watch(ifd, wd) < 0 ? -errno : 0);
}

napi_status watch_register(napi_env env, napi_value exports) {
  static const skiff_export fns[] = {{"watchInit", watch_init}, {"watchAdd", watch_add}, {"watchRemove", watch_remove}};
  return skiff_register(env, exports, fns, SKIFF_COUNT(fns), NULL);
}
