# node-gyp build of the TAP addon (native/tap.c, native/streams.c, native/fs.c): `npm run build:native`.
# Output: native/build/Release/skiff_tap.node, loaded by src/link/native.ts.
{
  "targets": [
    {
      "target_name": "skiff_tap",
      "sources": ["tap.c", "streams.c", "fs.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags_c": ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "conditions": [["OS!='linux'", {"type": "none", "sources!": ["tap.c", "streams.c", "fs.c"]}]]
    }
  ]
}
