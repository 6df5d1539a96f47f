/* File operations beneath a share's root for the 9P server (fs.c), registered by the addon's init in tap.c. */
#ifndef SKIFF_FS_H
#define SKIFF_FS_H
#include <node_api.h>

/* Add the fs* functions (see fs.c) to exports. */
napi_status fs_register(napi_env env, napi_value exports);

#endif
