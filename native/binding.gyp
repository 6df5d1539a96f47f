# node-gyp build of skiff's native addon (native/tap.c, sockets.c, streams.c, nofile.c, fdpass.c,
# fs.c, watch.c) and of the namespace helper executable (native/userns.c): `npm run build:native`.
# Output: native/build/Release/skiff.node, loaded by src/native/addon.ts (or a prebuilt:
# prebuilds/<platform>-<arch>/skiff.node), and native/build/Release/skiff-userns, run by
# src/link/userns.ts.
{
  "targets": [
    {
      "target_name": "skiff",
      "sources": ["tap.c", "sockets.c", "streams.c", "nofile.c", "fdpass.c", "fs.c", "watch.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags_c": ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "conditions": [["OS!='linux'", {"type": "none", "sources!": ["tap.c", "sockets.c", "streams.c", "nofile.c", "fdpass.c", "fs.c", "watch.c"]}]]
    },
    {
      "target_name": "skiff-userns",
      "type": "executable",
      "sources": ["userns.c"],
      "cflags_c": ["-std=gnu11", "-Wall", "-Wextra"],
      "conditions": [["OS!='linux'", {"type": "none", "sources!": ["userns.c"]}]]
    }
  ]
}
