/* The open-file limit (nofile.c), registered by the addon's init in tap.c. */
#ifndef SKIFF_NOFILE_H
#define SKIFF_NOFILE_H
#include <node_api.h>

/* Add getNofile and setNofile to exports. */
napi_status nofile_register(napi_env env, napi_value exports);

#endif
