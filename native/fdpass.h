/* The helper protocol's socket functions (fdpass.c), registered by the addon's init in tap.c. */
#ifndef SKIFF_FDPASS_H
#define SKIFF_FDPASS_H
#include <node_api.h>

/* Add seqpacketPair, recvMessage and sendMessage to exports. */
napi_status fdpass_register(napi_env env, napi_value exports);

#endif
