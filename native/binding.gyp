# node-gyp build of the TAP addon (native/tap.c, native/streams.c, native/nofile.c, native/fdpass.c,
# native/fs.c) and of the namespace helper executable (native/userns.c): `npm run build:native`.
# Output: native/build/Release/skiff_tap.node, loaded by src/link/native.ts, and
# native/build/Release/skiff-userns, run by src/link/userns.ts.
{
  "targets": [
    {
      "target_name": "skiff_tap",
      "sources": ["tap.c", "streams.c", "nofile.c", "fdpass.c", "fs.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags_c": ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "conditions": [["OS!='linux'", {"type": "none", "sources!": ["tap.c", "streams.c", "nofile.c", "fdpass.c", "fs.c"]}]]
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
