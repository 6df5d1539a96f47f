/*
 * skiff_tap, part three: file operations beneath a directory, for the 9P file server
 * (src/share/). Node has no openat/O_PATH, so containment lives here.
 *
 * Containment model. Every file the server knows is held as an O_PATH descriptor (no read or
 * write rights, does not follow a trailing symlink). A new descriptor is only ever made from a
 * directory descriptor plus ONE name component that the C code itself checks (1..255 bytes, no
 * '/', no NUL, not "." or ".."), opened with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)
 * and O_NOFOLLOW (falling back to openat(O_NOFOLLOW) on kernels without openat2: with one
 * checked component the two are equivalent). The server therefore never follows a symlink: the
 * guest's kernel reads the link and resolves it in the guest. ".." is fsParent, which refuses
 * to go above the root (it climbs to check). Creating names (mkdirat, symlinkat, mknodat,
 * linkat, renameat, unlinkat, openat O_CREAT) takes the same checked component under a
 * directory descriptor. Data access reopens the held inode through /proc/self/fd/N (the
 * kernel's own magic link to that inode: no path is looked up again, so a symlink swapped in
 * after the walk cannot be reached), only for regular files and directories; links are made
 * only to regular files (linkat through /proc with AT_SYMLINK_FOLLOW, which needs no
 * capability). mknod makes FIFOs, sockets and regular files only: never device nodes.
 *
 * Sync or async. Every function here is synchronous on the event loop: they are metadata
 * calls on local file systems (one syscall or a few), and fsReaddir reads at most the caller's
 * buffer (bounded by the 9P msize). No function reads or writes file data; the server does
 * that with Node's fs.read/fs.write/fs.fsync on the reopened descriptor (thread pool), and only
 * regular files are reopened, so a FIFO or device can never block the loop.
 *
 * Errors are returned as -errno (never thrown); a bad argument type throws a TypeError.
 *
 *   fsOpenRoot(path) -> fd                          O_PATH|O_DIRECTORY of a share's root
 *   fsDup(fd) -> fd                                 F_DUPFD_CLOEXEC (Node has no dup)
 *   fsUseOpenat2(on) -> was                         use openat2 when the kernel has it (tests turn
 *                                                   it off to exercise the openat fallback)
 *   fsWalk(dirfd, name) -> fd                       O_PATH|O_NOFOLLOW of one component
 *   fsParent(fd, rootfd) -> fd                      "..", never above rootfd
 *   fsReopen(fd, flags) -> fd                       a real open of the held regular file/directory
 *   fsCreate(dirfd, name, flags, mode) -> fd        openat O_CREAT|O_EXCL|O_NOFOLLOW, read/write fd
 *   fsStat(fd, out: BigUint64Array(18)) -> 0        statx of the held inode (see STAT_* order)
 *   fsStatfs(fd, out: BigUint64Array(9)) -> 0
 *   fsMkdir(dirfd, name, mode) / fsSymlink(target, dirfd, name) / fsMknod(dirfd, name, mode, rdev)
 *   fsLink(fd, dirfd, name) / fsRename(odir, oname, ndir, nname) / fsUnlink(dirfd, name, flags)
 *   fsReadlink(fd, out) -> length
 *   fsChmod(fd, mode) / fsTruncate(fd, size) / fsUtimens(fd, as, ans, ms, mns) (ns UTIME_NOW/OMIT)
 *   fsGetXattr(fd, name, out|null) -> size / fsListXattr(fd, out|null) -> size
 *   fsSetXattr(fd, name, value, flags) / fsRemoveXattr(fd, name)
 *   fsReaddir(fd, offset: bigint, out) -> bytes      9P2000.L Rreaddir entries from getdents64
 *   fsLock(fd, type, start: bigint, len: bigint, get: bool, out: BigUint64Array(3)) -> status
 */
#define _GNU_SOURCE
#include "register.h"
#include "fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#define MAX_ARGS 6
#define NAME_MAX_BYTES 255
#define TARGET_MAX 4095
#define XNAME_MAX 255

#define ARGS(n)                                                        \
  size_t argc = n;                                                     \
  napi_value argv[MAX_ARGS];                                           \
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) \
    return NULL;
#define BAD(msg) return napi_throw_type_error(env, NULL, msg), NULL

static napi_value num(napi_env env, double v) {
  napi_value out;
  napi_create_double(env, v, &out);
  return out;
}
static napi_value ret(napi_env env, long r) { return num(env, r < 0 ? -errno : (double)r); }

static int i32(napi_env env, napi_value v, int32_t *out) { return napi_get_value_int32(env, v, out) == napi_ok; }
static int f64(napi_env env, napi_value v, double *out) { return napi_get_value_double(env, v, out) == napi_ok; }
static int u64(napi_env env, napi_value v, uint64_t *out) {
  bool lossless;
  return napi_get_value_bigint_uint64(env, v, out, &lossless) == napi_ok;
}

/* Bytes of a Uint8Array/Buffer (any typed array: its bytes). */
static int bytes(napi_env env, napi_value v, uint8_t **p, size_t *len) {
  bool is;
  napi_typedarray_type t;
  size_t n;
  void *data;
  napi_value ab;
  size_t off;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return 0;
  if (napi_get_typedarray_info(env, v, &t, &n, &data, &ab, &off) != napi_ok) return 0;
  size_t el = (t == napi_biguint64_array || t == napi_bigint64_array || t == napi_float64_array) ? 8
            : (t == napi_int32_array || t == napi_uint32_array || t == napi_float32_array) ? 4
            : (t == napi_int16_array || t == napi_uint16_array) ? 2 : 1;
  *p = data;
  *len = n * el;
  return 1;
}

/* A NUL-terminated copy of bytes that must hold no NUL; 0 when too long or holding a NUL. */
static int cstr(napi_env env, napi_value v, char *out, size_t cap) {
  uint8_t *p;
  size_t n;
  if (!bytes(env, v, &p, &n) || n == 0 || n >= cap || memchr(p, 0, n)) return 0;
  memcpy(out, p, n);
  out[n] = 0;
  return 1;
}

/* One path component: 1..255 bytes, no '/', no NUL, not "." or "..". -EINVAL otherwise (the
 * caller returns it), so a hostile name never reaches a syscall. */
static int component(napi_env env, napi_value v, char out[NAME_MAX_BYTES + 1]) {
  uint8_t *p;
  size_t n;
  if (!bytes(env, v, &p, &n)) return -EFAULT;
  if (n == 0 || n > NAME_MAX_BYTES || memchr(p, 0, n) || memchr(p, '/', n)) return -EINVAL;
  if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.')) return -EINVAL;
  memcpy(out, p, n);
  out[n] = 0;
  return 0;
}

static void proc_path(char buf[40], int fd) { snprintf(buf, 40, "/proc/self/fd/%d", fd); }

static int have_openat2 = 1;

/* openat2(dirfd, name, flags, mode, RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS); `name` is one checked
 * component. Without openat2 (ENOSYS), openat with O_NOFOLLOW is the same for one component. */
static int open_beneath(int dirfd, const char *name, int flags, mode_t mode) {
  flags |= O_NOFOLLOW | O_CLOEXEC;
  if (have_openat2) {
    struct open_how how = {.flags = (uint64_t)flags, .mode = (flags & O_CREAT) ? mode : 0,
                           .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
    long fd = syscall(SYS_openat2, dirfd, name, &how, sizeof how);
    if (fd >= 0 || errno != ENOSYS) return (int)fd;
    have_openat2 = 0;
  }
  return openat(dirfd, name, flags, mode);
}

static int fd_mode(int fd, mode_t *mode) {
  struct stat st;
  if (fstat(fd, &st) < 0) return -errno;
  *mode = st.st_mode;
  return 0;
}

static napi_value fs_open_root(napi_env env, napi_callback_info info) {
  ARGS(1);
  char path[4096];
  if (!cstr(env, argv[0], path, sizeof path)) BAD("fsOpenRoot(path bytes)");
  return ret(env, open(path, O_PATH | O_DIRECTORY | O_CLOEXEC));
}

static napi_value fs_use_openat2(napi_env env, napi_callback_info info) {
  ARGS(1);
  bool on;
  if (napi_get_value_bool(env, argv[0], &on) != napi_ok) BAD("fsUseOpenat2(boolean)");
  int was = have_openat2;
  have_openat2 = on;
  napi_value out;
  napi_get_boolean(env, was, &out);
  return out;
}

static napi_value fs_dup(napi_env env, napi_callback_info info) {
  ARGS(1);
  int32_t fd;
  if (!i32(env, argv[0], &fd)) BAD("fsDup(fd)");
  return ret(env, fcntl(fd, F_DUPFD_CLOEXEC, 0));
}

static napi_value fs_walk(napi_env env, napi_callback_info info) {
  ARGS(2);
  int32_t dirfd;
  char name[NAME_MAX_BYTES + 1];
  if (!i32(env, argv[0], &dirfd)) BAD("fsWalk(dirfd, name)");
  int e = component(env, argv[1], name);
  if (e) return num(env, e);
  return ret(env, open_beneath(dirfd, name, O_PATH, 0));
}

static int same(const struct stat *a, const struct stat *b) { return a->st_dev == b->st_dev && a->st_ino == b->st_ino; }

/* The parent of `fd`, provided the root is among its ancestors (climbing at most 4096 levels):
 * a directory moved out of the share by the host cannot be used to walk above the root. */
static napi_value fs_parent(napi_env env, napi_callback_info info) {
  ARGS(2);
  int32_t fd, rootfd;
  struct stat root, st, up;
  if (!i32(env, argv[0], &fd) || !i32(env, argv[1], &rootfd)) BAD("fsParent(fd, rootfd)");
  if (fstat(rootfd, &root) < 0 || fstat(fd, &st) < 0) return num(env, -errno);
  if (same(&st, &root)) return ret(env, fcntl(fd, F_DUPFD_CLOEXEC, 0));
  int parent = openat(fd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (parent < 0) return num(env, -errno);
  int cur = fcntl(parent, F_DUPFD_CLOEXEC, 0);
  for (int depth = 0; cur >= 0 && depth < 4096; depth++) {
    if (fstat(cur, &st) < 0) break;
    if (same(&st, &root)) return close(cur), num(env, parent);
    int next = openat(cur, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (next < 0 || fstat(next, &up) < 0 || same(&up, &st)) {
      if (next >= 0) close(next);
      break; /* reached "/" without meeting the root */
    }
    close(cur);
    cur = next;
  }
  if (cur >= 0) close(cur);
  close(parent);
  return num(env, -ENOENT);
}

static napi_value fs_reopen(napi_env env, napi_callback_info info) {
  ARGS(2);
  int32_t fd, flags;
  mode_t mode;
  char p[40];
  if (!i32(env, argv[0], &fd) || !i32(env, argv[1], &flags)) BAD("fsReopen(fd, flags)");
  int e = fd_mode(fd, &mode);
  if (e) return num(env, e);
  if (S_ISLNK(mode)) return num(env, -ELOOP);
  if (!S_ISREG(mode) && !S_ISDIR(mode)) return num(env, -EOPNOTSUPP);
  if (S_ISDIR(mode) && (flags & O_ACCMODE) != O_RDONLY) return num(env, -EISDIR);
  flags &= ~(O_CREAT | O_EXCL | O_NOCTTY | O_PATH | O_NOFOLLOW | O_TMPFILE);
  proc_path(p, fd);
  return ret(env, open(p, flags | O_CLOEXEC | (S_ISDIR(mode) ? O_DIRECTORY : 0)));
}

static napi_value fs_create(napi_env env, napi_callback_info info) {
  ARGS(4);
  int32_t dirfd, flags, mode;
  char name[NAME_MAX_BYTES + 1];
  if (!i32(env, argv[0], &dirfd) || !i32(env, argv[2], &flags) || !i32(env, argv[3], &mode)) BAD("fsCreate(dirfd, name, flags, mode)");
  int e = component(env, argv[1], name);
  if (e) return num(env, e);
  flags &= ~(O_PATH | O_DIRECTORY | O_TMPFILE | O_NOCTTY);
  return ret(env, open_beneath(dirfd, name, flags | O_CREAT | O_EXCL, (mode_t)mode & 07777));
}

/* statx of the held inode, into out[18]: dev, ino, mode, nlink, uid, gid, rdev, size, blksize,
 * blocks, atime s/ns, mtime s/ns, ctime s/ns, btime s/ns (0 when unknown). */
static napi_value fs_stat(napi_env env, napi_callback_info info) {
  ARGS(2);
  int32_t fd;
  uint8_t *p;
  size_t n;
  struct statx sx;
  if (!i32(env, argv[0], &fd) || !bytes(env, argv[1], &p, &n) || n < 18 * 8) BAD("fsStat(fd, BigUint64Array(18))");
  if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS | STATX_BTIME, &sx) < 0) return num(env, -errno);
  uint64_t *o = (uint64_t *)p;
  o[0] = makedev(sx.stx_dev_major, sx.stx_dev_minor);
  o[1] = sx.stx_ino, o[2] = sx.stx_mode, o[3] = sx.stx_nlink, o[4] = sx.stx_uid, o[5] = sx.stx_gid;
  o[6] = makedev(sx.stx_rdev_major, sx.stx_rdev_minor);
  o[7] = sx.stx_size, o[8] = sx.stx_blksize, o[9] = sx.stx_blocks;
  o[10] = sx.stx_atime.tv_sec, o[11] = sx.stx_atime.tv_nsec, o[12] = sx.stx_mtime.tv_sec, o[13] = sx.stx_mtime.tv_nsec;
  o[14] = sx.stx_ctime.tv_sec, o[15] = sx.stx_ctime.tv_nsec;
  o[16] = (sx.stx_mask & STATX_BTIME) ? (uint64_t)sx.stx_btime.tv_sec : 0;
  o[17] = (sx.stx_mask & STATX_BTIME) ? sx.stx_btime.tv_nsec : 0;
  return num(env, 0);
}

static napi_value fs_statfs(napi_env env, napi_callback_info info) {
  ARGS(2);
  int32_t fd;
  uint8_t *p;
  size_t n;
  struct statfs sf;
  if (!i32(env, argv[0], &fd) || !bytes(env, argv[1], &p, &n) || n < 9 * 8) BAD("fsStatfs(fd, BigUint64Array(9))");
  if (fstatfs(fd, &sf) < 0) return num(env, -errno);
  uint64_t *o = (uint64_t *)p, fsid;
  memcpy(&fsid, &sf.f_fsid, sizeof fsid);
  o[0] = (uint64_t)sf.f_type, o[1] = sf.f_bsize, o[2] = sf.f_blocks, o[3] = sf.f_bfree, o[4] = sf.f_bavail;
  o[5] = sf.f_files, o[6] = sf.f_ffree, o[7] = fsid, o[8] = sf.f_namelen;
  return num(env, 0);
}

static napi_value fs_mkdir(napi_env env, napi_callback_info info) {
  ARGS(3);
  int32_t dirfd, mode;
  char name[NAME_MAX_BYTES + 1];
  if (!i32(env, argv[0], &dirfd) || !i32(env, argv[2], &mode)) BAD("fsMkdir(dirfd, name, mode)");
  int e = component(env, argv[1], name);
  return e ? num(env, e) : ret(env, mkdirat(dirfd, name, (mode_t)mode & 07777));
}

static napi_value fs_symlink(napi_env env, napi_callback_info info) {
  ARGS(3);
  int32_t dirfd;
  char target[TARGET_MAX + 1], name[NAME_MAX_BYTES + 1];
  if (!i32(env, argv[1], &dirfd)) BAD("fsSymlink(target, dirfd, name)");
  if (!cstr(env, argv[0], target, sizeof target)) return num(env, -EINVAL);
  int e = component(env, argv[2], name);
  return e ? num(env, e) : ret(env, symlinkat(target, dirfd, name));
}

static napi_value fs_mknod(napi_env env, napi_callback_info info) {
  ARGS(4);
  int32_t dirfd, mode;
  double rdev;
  char name[NAME_MAX_BYTES + 1];
  if (!i32(env, argv[0], &dirfd) || !i32(env, argv[2], &mode) || !f64(env, argv[3], &rdev)) BAD("fsMknod(dirfd, name, mode, rdev)");
  int e = component(env, argv[1], name);
  if (e) return num(env, e);
  mode_t m = (mode_t)mode;
  if (!S_ISFIFO(m) && !S_ISSOCK(m) && !S_ISREG(m)) return num(env, -EPERM); /* no device nodes on the host */
  return ret(env, mknodat(dirfd, name, m & (S_IFMT | 07777), 0));
}

static napi_value fs_link(napi_env env, napi_callback_info info) {
  ARGS(3);
  int32_t fd, dirfd;
  mode_t mode;
  char name[NAME_MAX_BYTES + 1], p[40];
  if (!i32(env, argv[0], &fd) || !i32(env, argv[1], &dirfd)) BAD("fsLink(fd, dirfd, name)");
  int e = component(env, argv[2], name);
  if (e || (e = fd_mode(fd, &mode))) return num(env, e);
  if (S_ISDIR(mode)) return num(env, -EPERM);
  if (!S_ISREG(mode)) return num(env, -EOPNOTSUPP); /* the /proc link would follow a symlink */
  proc_path(p, fd);
  return ret(env, linkat(AT_FDCWD, p, dirfd, name, AT_SYMLINK_FOLLOW));
}

static napi_value fs_rename(napi_env env, napi_callback_info info) {
  ARGS(4);
  int32_t odir, ndir;
  char oname[NAME_MAX_BYTES + 1], nname[NAME_MAX_BYTES + 1];
  if (!i32(env, argv[0], &odir) || !i32(env, argv[2], &ndir)) BAD("fsRename(odirfd, oname, ndirfd, nname)");
  int e = component(env, argv[1], oname);
  if (e || (e = component(env, argv[3], nname))) return num(env, e);
  return ret(env, renameat(odir, oname, ndir, nname));
}

static napi_value fs_unlink(napi_env env, napi_callback_info info) {
  ARGS(3);
  int32_t dirfd, flags;
  char name[NAME_MAX_BYTES + 1];
  if (!i32(env, argv[0], &dirfd) || !i32(env, argv[2], &flags)) BAD("fsUnlink(dirfd, name, flags)");
  int e = component(env, argv[1], name);
  return e ? num(env, e) : ret(env, unlinkat(dirfd, name, flags & AT_REMOVEDIR));
}

static napi_value fs_readlink(napi_env env, napi_callback_info info) {
  ARGS(2);
  int32_t fd;
  uint8_t *p;
  size_t n;
  if (!i32(env, argv[0], &fd) || !bytes(env, argv[1], &p, &n)) BAD("fsReadlink(fd, out)");
  return ret(env, readlinkat(fd, "", (char *)p, n));
}

static napi_value fs_chmod(napi_env env, napi_callback_info info) {
  ARGS(2);
  int32_t fd, mode;
  mode_t m;
  char p[40];
  if (!i32(env, argv[0], &fd) || !i32(env, argv[1], &mode)) BAD("fsChmod(fd, mode)");
  int e = fd_mode(fd, &m);
  if (e) return num(env, e);
  if (S_ISLNK(m)) return num(env, -EOPNOTSUPP);
  proc_path(p, fd);
  return ret(env, chmod(p, (mode_t)mode & 07777));
}

static napi_value fs_truncate(napi_env env, napi_callback_info info) {
  ARGS(2);
  int32_t fd;
  double size;
  mode_t m;
  char p[40];
  if (!i32(env, argv[0], &fd) || !f64(env, argv[1], &size) || size < 0) BAD("fsTruncate(fd, size)");
  int e = fd_mode(fd, &m);
  if (e) return num(env, e);
  if (S_ISDIR(m)) return num(env, -EISDIR);
  if (!S_ISREG(m)) return num(env, -EINVAL);
  proc_path(p, fd);
  return ret(env, truncate(p, (off_t)size));
}

static napi_value fs_utimens(napi_env env, napi_callback_info info) {
  ARGS(5);
  int32_t fd;
  double v[4];
  if (!i32(env, argv[0], &fd)) BAD("fsUtimens(fd, asec, ansec, msec, mnsec)");
  for (int i = 0; i < 4; i++) if (!f64(env, argv[i + 1], &v[i])) BAD("fsUtimens(fd, asec, ansec, msec, mnsec)");
  struct timespec ts[2] = {{(time_t)v[0], (long)v[1]}, {(time_t)v[2], (long)v[3]}};
  return ret(env, utimensat(fd, "", ts, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW));
}

/* xattrs through /proc/self/fd/N (the held inode); never on symlinks (Linux refuses user.* there). */
static int xattr_path(int fd, char p[40]) {
  mode_t m;
  int e = fd_mode(fd, &m);
  if (e) return e;
  if (S_ISLNK(m)) return -EPERM;
  proc_path(p, fd);
  return 0;
}

static napi_value fs_get_xattr(napi_env env, napi_callback_info info) {
  ARGS(3);
  int32_t fd;
  char name[XNAME_MAX + 1], p[40];
  uint8_t *buf = NULL;
  size_t n = 0;
  napi_valuetype t;
  if (!i32(env, argv[0], &fd) || !cstr(env, argv[1], name, sizeof name)) BAD("fsGetXattr(fd, name, out|null)");
  if (napi_typeof(env, argv[2], &t) != napi_ok || (t != napi_null && !bytes(env, argv[2], &buf, &n))) BAD("fsGetXattr(fd, name, out|null)");
  int e = xattr_path(fd, p);
  return e ? num(env, e) : ret(env, getxattr(p, name, buf, n));
}

static napi_value fs_list_xattr(napi_env env, napi_callback_info info) {
  ARGS(2);
  int32_t fd;
  char p[40];
  uint8_t *buf = NULL;
  size_t n = 0;
  napi_valuetype t;
  if (!i32(env, argv[0], &fd) || napi_typeof(env, argv[1], &t) != napi_ok || (t != napi_null && !bytes(env, argv[1], &buf, &n)))
    BAD("fsListXattr(fd, out|null)");
  int e = xattr_path(fd, p);
  if (e == -EPERM) return num(env, 0); /* a symlink: no user attributes */
  return e ? num(env, e) : ret(env, listxattr(p, (char *)buf, n));
}

static napi_value fs_set_xattr(napi_env env, napi_callback_info info) {
  ARGS(4);
  int32_t fd, flags;
  char name[XNAME_MAX + 1], p[40];
  uint8_t *val;
  size_t n;
  if (!i32(env, argv[0], &fd) || !cstr(env, argv[1], name, sizeof name) || !bytes(env, argv[2], &val, &n) || !i32(env, argv[3], &flags))
    BAD("fsSetXattr(fd, name, value, flags)");
  int e = xattr_path(fd, p);
  return e ? num(env, e) : ret(env, setxattr(p, name, val, n, flags & (XATTR_CREATE | XATTR_REPLACE)));
}

static napi_value fs_remove_xattr(napi_env env, napi_callback_info info) {
  ARGS(2);
  int32_t fd;
  char name[XNAME_MAX + 1], p[40];
  if (!i32(env, argv[0], &fd) || !cstr(env, argv[1], name, sizeof name)) BAD("fsRemoveXattr(fd, name)");
  int e = xattr_path(fd, p);
  return e ? num(env, e) : ret(env, removexattr(p, name));
}

struct linux_dirent64 {
  uint64_t d_ino;
  int64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[];
};

static void le16(uint8_t *p, uint16_t v) { p[0] = v, p[1] = v >> 8; }
static void le64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = v >> (8 * i); }

/* Rreaddir data (9P2000.L readdir: qid[13] offset[8] type[1] name[s] per entry) for the
 * directory open on `fd`, starting at the getdents64 cookie `offset`, filling at most `out`.
 * Stateless: it seeks every call, and stops before the first entry that does not fit (the next
 * call starts from the last entry's cookie). Returns the bytes written (0 at the end). */
static napi_value fs_readdir(napi_env env, napi_callback_info info) {
  ARGS(3);
  int32_t fd;
  uint64_t offset;
  uint8_t *out;
  size_t cap, used = 0;
  char buf[32768];
  if (!i32(env, argv[0], &fd) || !u64(env, argv[1], &offset) || !bytes(env, argv[2], &out, &cap)) BAD("fsReaddir(fd, offset bigint, out)");
  if (lseek(fd, (off_t)offset, SEEK_SET) < 0) return num(env, -errno);
  for (;;) {
    size_t want = cap - used < sizeof buf ? cap - used : sizeof buf;
    if (want < 32) break;
    long n = syscall(SYS_getdents64, fd, buf, want);
    if (n < 0) return used ? num(env, (double)used) : num(env, -errno);
    if (n == 0) break;
    for (long o = 0; o < n;) {
      struct linux_dirent64 *d = (struct linux_dirent64 *)(buf + o);
      size_t len = strlen(d->d_name), need = 24 + len;
      if (used + need > cap) {
        lseek(fd, d->d_off, SEEK_SET); /* harmless: the next call seeks anyway */
        return num(env, (double)used);
      }
      uint8_t *e = out + used;
      e[0] = d->d_type == DT_DIR ? 0x80 : d->d_type == DT_LNK ? 0x02 : 0;
      memset(e + 1, 0, 4);
      le64(e + 5, d->d_ino);
      le64(e + 13, (uint64_t)d->d_off);
      e[21] = d->d_type;
      le16(e + 22, (uint16_t)len);
      memcpy(e + 24, d->d_name, len);
      used += need;
      o += d->d_reclen;
    }
  }
  return num(env, (double)used);
}

/* Open-file-description locks (F_OFD_*): each 9P open fid has its own description, so locks
 * from different guest opens conflict as between processes, and never block (the client
 * retries while it gets P9_LOCK_BLOCKED). type: 0 read, 1 write, 2 unlock. For get, out[0..2]
 * receive type, start, length of a conflicting lock (type 2 when none). Returns 0 success,
 * 1 blocked, or -errno. */
static napi_value fs_lock(napi_env env, napi_callback_info info) {
  ARGS(6);
  int32_t fd, type;
  uint64_t start, len;
  bool get;
  uint8_t *p;
  size_t n;
  if (!i32(env, argv[0], &fd) || !i32(env, argv[1], &type) || !u64(env, argv[2], &start) || !u64(env, argv[3], &len) ||
      napi_get_value_bool(env, argv[4], &get) != napi_ok || !bytes(env, argv[5], &p, &n) || n < 24)
    BAD("fsLock(fd, type, start, length, get, BigUint64Array(3))");
  if (type < 0 || type > 2 || start > INT64_MAX || len > INT64_MAX) return num(env, -EINVAL);
  struct flock fl = {.l_type = type == 0 ? F_RDLCK : type == 1 ? F_WRLCK : F_UNLCK, .l_whence = SEEK_SET,
                     .l_start = (off_t)start, .l_len = (off_t)len, .l_pid = 0};
  if (get) {
    if (fcntl(fd, F_OFD_GETLK, &fl) < 0) return num(env, -errno);
    uint64_t *o = (uint64_t *)p;
    o[0] = fl.l_type == F_RDLCK ? 0 : fl.l_type == F_WRLCK ? 1 : 2, o[1] = (uint64_t)fl.l_start, o[2] = (uint64_t)fl.l_len;
    return num(env, 0);
  }
  if (fcntl(fd, F_OFD_SETLK, &fl) < 0) return num(env, errno == EAGAIN || errno == EACCES ? 1 : -errno);
  return num(env, 0);
}

napi_status fs_register(napi_env env, napi_value exports) {
  static const skiff_export fns[] = {
      {"fsOpenRoot", fs_open_root}, {"fsDup", fs_dup}, {"fsUseOpenat2", fs_use_openat2}, {"fsWalk", fs_walk}, {"fsParent", fs_parent}, {"fsReopen", fs_reopen},
      {"fsCreate", fs_create}, {"fsStat", fs_stat}, {"fsStatfs", fs_statfs}, {"fsMkdir", fs_mkdir},
      {"fsSymlink", fs_symlink}, {"fsMknod", fs_mknod}, {"fsLink", fs_link}, {"fsRename", fs_rename},
      {"fsUnlink", fs_unlink}, {"fsReadlink", fs_readlink}, {"fsChmod", fs_chmod}, {"fsTruncate", fs_truncate},
      {"fsUtimens", fs_utimens}, {"fsGetXattr", fs_get_xattr}, {"fsListXattr", fs_list_xattr},
      {"fsSetXattr", fs_set_xattr}, {"fsRemoveXattr", fs_remove_xattr}, {"fsReaddir", fs_readdir}, {"fsLock", fs_lock}};
  return skiff_register(env, exports, fns, SKIFF_COUNT(fns), NULL);
}
