/*
 * One way every part of the addon (tap.c, sockets.c, streams.c, nofile.c, fdpass.c, fs.c) puts
 * its functions on the module's exports: a table of names and callbacks, each created with the
 * same `data` pointer (the part's state, or NULL).
 */
#ifndef SKIFF_REGISTER_H
#define SKIFF_REGISTER_H

#include <node_api.h>
#include <stddef.h>

typedef struct {
  const char *name;
  napi_callback fn;
} skiff_export;

static inline napi_status skiff_register(napi_env env, napi_value exports, const skiff_export *fns, size_t n, void *data) {
  napi_status st;
  napi_value f;
  for (size_t i = 0; i < n; i++) {
    if ((st = napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, data, &f)) != napi_ok) return st;
    if ((st = napi_set_named_property(env, exports, fns[i].name, f)) != napi_ok) return st;
  }
  return napi_ok;
}

#define SKIFF_COUNT(a) (sizeof(a) / sizeof((a)[0]))

#endif
