# node-gyp build of skiff's native addon (native/tap.c, sockets.c, streams.c, nofile.c): `npm run build:native`.
# Output: native/build/Release/skiff.node, loaded by src/native/addon.ts (or a prebuilt: prebuilds/<platform>-<arch>/skiff.node).
{
  "targets": [
    {
      "target_name": "skiff",
      "sources": ["tap.c", "sockets.c", "streams.c", "nofile.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags_c": ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "conditions": [["OS!='linux'", {"type": "none", "sources!": ["tap.c", "sockets.c", "streams.c", "nofile.c"]}]]
    }
  ]
}
