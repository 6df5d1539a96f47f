/*
 * skiff_tap, part three: the process's open-file limit (RLIMIT_NOFILE, POSIX getrlimit(2) /
 * setrlimit(2)), so skiff can raise its soft limit to the hard one at start and size its budget
 * of host sockets (src/socket-translate/fd-budget.ts).
 *
 *   getNofile() -> [soft, hard] | -errno     the limits; RLIM_INFINITY as Infinity
 *   setNofile(soft, hard) -> 0 | -errno      set both (an unprivileged process may lower the hard
 *                                            limit and move the soft one up to it, never above;
 *                                            Infinity means RLIM_INFINITY)
 */
#include "register.h"
#include <errno.h>
#include <math.h>
#include <node_api.h>
#include <sys/resource.h>

#include "nofile.h"

static napi_value int_value(napi_env env, int32_t v) {
  napi_value out;
  napi_create_int32(env, v, &out);
  return out;
}

static napi_value limit_value(napi_env env, rlim_t v) {
  napi_value out;
  napi_create_double(env, v == RLIM_INFINITY ? INFINITY : (double)v, &out);
  return out;
}

static napi_value get_nofile(napi_env env, napi_callback_info info) {
  struct rlimit rl;
  napi_value arr;
  if (getrlimit(RLIMIT_NOFILE, &rl) < 0) return int_value(env, -errno);
  if (napi_create_array_with_length(env, 2, &arr) != napi_ok) return NULL;
  napi_set_element(env, arr, 0, limit_value(env, rl.rlim_cur));
  napi_set_element(env, arr, 1, limit_value(env, rl.rlim_max));
  return arr;
}

/* A limit argument: a non-negative number, Infinity for RLIM_INFINITY. False when it is not. */
static int limit_arg(napi_env env, napi_value v, rlim_t *out) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok || isnan(d) || d < 0) return 0;
  *out = isinf(d) ? RLIM_INFINITY : (rlim_t)d;
  return 1;
}

static napi_value set_nofile(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  struct rlimit rl;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 2 || !limit_arg(env, argv[0], &rl.rlim_cur) || !limit_arg(env, argv[1], &rl.rlim_max)) {
    napi_throw_type_error(env, NULL, "setNofile(soft, hard): non-negative numbers");
    return NULL;
  }
  return int_value(env, setrlimit(RLIMIT_NOFILE, &rl) < 0 ? -errno : 0);
}

napi_status nofile_register(napi_env env, napi_value exports) {
  static const skiff_export fns[] = {{"getNofile", get_nofile}, {"setNofile", set_nofile}};
  return skiff_register(env, exports, fns, SKIFF_COUNT(fns), NULL);
}
