/* inotify for the share server's host-side file events (watch.c), registered by the addon's init in tap.c. */
#ifndef SKIFF_WATCH_H
#define SKIFF_WATCH_H
#include <node_api.h>

/* Add the watch* functions (see watch.c) to exports. */
napi_status watch_register(napi_env env, napi_value exports);

#endif
