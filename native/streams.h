/* Host TCP sockets for socket translation (streams.c), registered by the addon's init in tap.c. */
#ifndef SKIFF_STREAMS_H
#define SKIFF_STREAMS_H
#include <node_api.h>

/* Add streamsInit, tcpConnect, streamSet, streamWrite, streamShutdown and streamClose to exports. */
napi_status streams_register(napi_env env, napi_value exports);

#endif
