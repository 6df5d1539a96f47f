/* Opening ICMP and Unix datagram sockets (sockets.c), registered by the addon's init in tap.c. */
#ifndef SKIFF_SOCKETS_H
#define SKIFF_SOCKETS_H
#include <node_api.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/un.h>

/* Add icmpSocket, sendTo, unixDgramOpen and unixDgramConnect to exports. */
napi_status sockets_register(napi_env env, napi_value exports);

/* Read a Unix socket pathname argument into sa (throws a TypeError unless 1..107 bytes). */
bool unix_address(napi_env env, napi_value v, struct sockaddr_un *sa, socklen_t *len, const char *fn);

#endif
