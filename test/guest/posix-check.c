/*
 * posix-check: a file-system conformance run for a Linux guest (issue 15), written for skiff
 * from the POSIX.1-2017 System Interfaces text and the Linux man pages (open(2), rename(2),
 * rmdir(2), unlink(2), link(2), symlink(2), readlink(2), truncate(2), chmod(2), chown(2),
 * utimensat(2), setxattr(2)/getxattr(2)/listxattr(2)/removexattr(2), fcntl(2) record locks,
 * flock(2), readdir(3)/telldir(3)/seekdir(3)). It is not derived from any other test suite.
 *
 * Usage: posix-check DIR [BIGDIR N]
 *   DIR     a directory on the file system under test (a fresh subdirectory is used and removed);
 *   BIGDIR  a directory holding exactly N entries (made by the host), read with readdir/seekdir.
 * Each check prints one line, "PASS name" or "FAIL name: detail"; the last line is
 * "TOTAL pass=P fail=F". Run as root: the "as owner" checks fork a child that becomes uid 1000.
 * Build: gcc -static -O2 -o posix-check posix-check.c
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

static int npass, nfail;

static void result(int ok, const char *name, const char *fmt, ...) {
  if (ok) {
    printf("PASS %s\n", name);
    npass++;
    return;
  }
  printf("FAIL %s: ", name);
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  printf("\n");
  nfail++;
}

/* The call succeeded (r >= 0). */
#define OK(name, call) do { errno = 0; long r_ = (long)(call); result(r_ >= 0, name, "%s -> %ld (%s)", #call, r_, strerror(errno)); } while (0)
/* The call failed with errno e (or e2). */
#define ERR2(name, call, e, e2) do { errno = 0; long r_ = (long)(call); int en_ = errno; \
  result(r_ < 0 && (en_ == (e) || en_ == (e2)), name, "%s -> %ld errno %d (%s), want %s", #call, r_, en_, strerror(en_), #e); } while (0)
#define ERR(name, call, e) ERR2(name, call, e, e)
#define TRUE(name, cond, ...) result((cond), name, __VA_ARGS__)

static void touch(const char *p, const char *content) {
  int fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, 0644);
  if (fd >= 0) {
    if (content) (void)!write(fd, content, strlen(content));
    close(fd);
  }
}
static struct stat st_of(const char *p) {
  struct stat st;
  memset(&st, 0, sizeof st);
  if (lstat(p, &st) < 0) st.st_mode = 0, st.st_ino = 0;
  return st;
}
static int exists(const char *p) { struct stat st; return lstat(p, &st) == 0; }
static long long ns(struct timespec t) { return (long long)t.tv_sec * 1000000000LL + t.tv_nsec; }
/* Set a path's times far in the past, so a later update is seen whatever the clocks say. */
static void age(const char *p) {
  struct timespec t[2] = {{1000000000, 0}, {1000000000, 0}};
  utimensat(AT_FDCWD, p, t, AT_SYMLINK_NOFOLLOW);
}
static int aged_mtime_moved(const char *p) { return st_of(p).st_mtim.tv_sec > 1000000000; }
static long long ctime_of(const char *p) { return ns(st_of(p).st_ctim); }
static void pause_ms(int ms) { usleep(ms * 1000); }
static char *readall(const char *p, char *buf, size_t n) {
  memset(buf, 0, n);
  int fd = open(p, O_RDONLY);
  if (fd < 0) return buf;
  (void)!read(fd, buf, n - 1);
  close(fd);
  return buf;
}
/* Run f in a child; its exit status (0 = pass) is the check. */
static int in_child(int (*f)(void *), void *arg) {
  pid_t pid = fork();
  if (pid == 0) _exit(f(arg));
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 200;
}

static void t_open(void) {
  char buf[64];
  struct stat st;
  ERR("open: missing file without O_CREAT is ENOENT", open("nope", O_RDONLY), ENOENT);
  int fd = open("o1", O_CREAT | O_WRONLY, 0644);
  OK("open: O_CREAT creates", fd);
  close(fd);
  TRUE("open: O_CREAT mode is reported", (st_of("o1").st_mode & 07777) == 0644, "mode %o", st_of("o1").st_mode & 07777);
  TRUE("open: O_CREAT makes a regular file", S_ISREG(st_of("o1").st_mode), "mode %o", st_of("o1").st_mode);
  close(open("o2", O_CREAT | O_WRONLY, 0777));
  TRUE("open: umask 022 applies to O_CREAT", (st_of("o2").st_mode & 0777) == 0755, "mode %o", st_of("o2").st_mode & 0777);
  ERR("open: O_CREAT|O_EXCL on an existing file is EEXIST", open("o1", O_CREAT | O_EXCL | O_WRONLY, 0644), EEXIST);
  symlink("dangling-target", "o-dangle");
  ERR("open: O_CREAT|O_EXCL on a dangling symlink is EEXIST", open("o-dangle", O_CREAT | O_EXCL | O_WRONLY, 0644), EEXIST);
  TRUE("open: O_EXCL did not create the symlink's target", !exists("dangling-target"), "target exists");
  mkdir("od", 0755);
  ERR("open: a directory O_WRONLY is EISDIR", open("od", O_WRONLY), EISDIR);
  ERR("open: a directory O_RDWR is EISDIR", open("od", O_RDWR), EISDIR);
  fd = open("od", O_RDONLY | O_DIRECTORY);
  OK("open: a directory O_RDONLY|O_DIRECTORY", fd);
  close(fd);
  ERR("open: O_DIRECTORY on a file is ENOTDIR", open("o1", O_RDONLY | O_DIRECTORY), ENOTDIR);
  ERR("open: a file as a path component is ENOTDIR", open("o1/x", O_RDONLY), ENOTDIR);
  ERR("open: a file with a trailing slash is ENOTDIR", open("o1/", O_RDONLY), ENOTDIR);
  ERR("open: O_CREAT of a name with a trailing slash is EISDIR", open("newdir/", O_CREAT | O_WRONLY, 0644), EISDIR);
  ERR("open: O_CREAT in a missing directory is ENOENT", open("nodir/f", O_CREAT | O_WRONLY, 0644), ENOENT);
  symlink("o1", "o-link");
  ERR("open: O_NOFOLLOW on a symlink is ELOOP", open("o-link", O_RDONLY | O_NOFOLLOW), ELOOP);
  char longname[300];
  memset(longname, 'n', 256);
  longname[256] = 0;
  ERR("open: a 256-byte name is ENAMETOOLONG", open(longname, O_CREAT | O_WRONLY, 0644), ENAMETOOLONG);
  memset(longname, 'm', 255);
  longname[255] = 0;
  fd = open(longname, O_CREAT | O_WRONLY, 0644);
  OK("open: a 255-byte name is allowed", fd);
  if (fd >= 0) close(fd), unlink(longname);
  touch("o3", "0123456789");
  fd = open("o3", O_WRONLY | O_TRUNC);
  fstat(fd, &st);
  TRUE("open: O_TRUNC empties the file", fd >= 0 && st.st_size == 0, "size %lld", (long long)st.st_size);
  close(fd);
  touch("o4", "abc");
  fd = open("o4", O_WRONLY | O_APPEND);
  lseek(fd, 0, SEEK_SET);
  (void)!write(fd, "def", 3);
  lseek(fd, 0, SEEK_SET);
  (void)!write(fd, "ghi", 3);
  close(fd);
  TRUE("open: O_APPEND writes go to the end, whatever the offset", strcmp(readall("o4", buf, sizeof buf), "abcdefghi") == 0, "content %s", buf);
  int a = open("o4", O_WRONLY | O_APPEND), b = open("o4", O_WRONLY | O_APPEND);
  for (int i = 0; i < 10; i++) (void)!write(i % 2 ? a : b, "x", 1);
  close(a), close(b);
  TRUE("open: two O_APPEND descriptors both append", st_of("o4").st_size == 19, "size %lld", (long long)st_of("o4").st_size);
  fd = open("o5", O_CREAT | O_RDWR, 0600);
  (void)!write(fd, "hello", 5);
  char r[8] = {0};
  pread(fd, r, 5, 0);
  TRUE("open: O_RDWR reads back what it wrote", memcmp(r, "hello", 5) == 0, "got %s", r);
  pwrite(fd, "Z", 1, 10);
  pread(fd, r, 5, 5);
  TRUE("write: beyond the end leaves a hole of zeros", memcmp(r, "\0\0\0\0\0", 5) == 0 && st_of("o5").st_size == 11, "size %lld", (long long)st_of("o5").st_size);
  OK("fsync: on a file", fsync(fd));
  OK("fdatasync: on a file", fdatasync(fd));
  close(fd);
  ERR("write: on an O_RDONLY descriptor is EBADF", (fd = open("o5", O_RDONLY), write(fd, "x", 1)), EBADF);
  close(fd);
}

static int excl_child(void *arg) {
  int fd = open((const char *)arg, O_CREAT | O_EXCL | O_WRONLY, 0644);
  return fd >= 0 ? 0 : (errno == EEXIST ? 1 : 2);
}
static void t_excl_race(void) {
  pid_t kids[8];
  for (int i = 0; i < 8; i++)
    if ((kids[i] = fork()) == 0) _exit(excl_child("race"));
  int won = 0, lost = 0;
  for (int i = 0; i < 8; i++) {
    int s;
    waitpid(kids[i], &s, 0);
    if (WIFEXITED(s) && WEXITSTATUS(s) == 0) won++;
    else if (WIFEXITED(s) && WEXITSTATUS(s) == 1) lost++;
  }
  TRUE("open: 8 racing O_CREAT|O_EXCL, exactly one wins", won == 1 && lost == 7, "won %d lost %d", won, lost);
}

static void t_unlink(void) {
  touch("u1", "x");
  mkdir("ud", 0755);
  rename("u1", "ud/u1");
  age("ud");
  OK("unlink: a file", unlink("ud/u1"));
  TRUE("unlink: the name is gone", !exists("ud/u1"), "still there");
  TRUE("unlink: the parent's mtime is updated", aged_mtime_moved("ud"), "mtime %ld", (long)st_of("ud").st_mtim.tv_sec);
  ERR("unlink: a missing name is ENOENT", unlink("ud/u1"), ENOENT);
  ERR2("unlink: a directory is EISDIR (Linux) or EPERM", unlink("ud"), EISDIR, EPERM);
  touch("u2", "x");
  ERR("unlink: a file with a trailing slash is ENOTDIR", unlink("u2/"), ENOTDIR);
  ERR("unlink: through a file component is ENOTDIR", unlink("u2/x"), ENOTDIR);
  link("u2", "u2b");
  long long c0 = ctime_of("u2");
  pause_ms(30);
  unlink("u2b");
  TRUE("unlink: the remaining link's nlink drops to 1", st_of("u2").st_nlink == 1, "nlink %ld", (long)st_of("u2").st_nlink);
  TRUE("unlink: the remaining link's ctime is updated", ctime_of("u2") > c0, "ctime unchanged");
  symlink("u2", "u2s");
  unlink("u2s");
  TRUE("unlink: a symlink removes the link, not its target", !exists("u2s") && exists("u2"), "wrong one removed");
}

static void t_mkdir_rmdir(void) {
  age(".");
  OK("mkdir: creates", mkdir("m1", 0755));
  struct stat st = st_of("m1");
  TRUE("mkdir: is a directory with the mode asked", S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0755, "mode %o", st.st_mode);
  TRUE("mkdir: umask applies", (mkdir("m1u", 0777), (st_of("m1u").st_mode & 0777) == 0755), "mode %o", st_of("m1u").st_mode & 0777);
  TRUE("mkdir: a new directory has nlink 2", st.st_nlink == 2, "nlink %ld", (long)st.st_nlink);
  TRUE("mkdir: the owner is the creator (root)", st.st_uid == 0 && st.st_gid == 0, "%d:%d", st.st_uid, st.st_gid);
  TRUE("mkdir: the parent's mtime is updated", aged_mtime_moved("."), "mtime unchanged");
  nlink_t n0 = st_of("m1").st_nlink;
  mkdir("m1/sub", 0755);
  TRUE("mkdir: a subdirectory adds a link to its parent", st_of("m1").st_nlink == n0 + 1, "nlink %ld", (long)st_of("m1").st_nlink);
  ERR("mkdir: an existing directory is EEXIST", mkdir("m1", 0755), EEXIST);
  touch("mf", "x");
  ERR("mkdir: an existing file is EEXIST", mkdir("mf", 0755), EEXIST);
  symlink("nowhere", "ms");
  ERR("mkdir: an existing (dangling) symlink is EEXIST", mkdir("ms", 0755), EEXIST);
  ERR("mkdir: in a missing directory is ENOENT", mkdir("nodir/x", 0755), ENOENT);
  ERR("mkdir: through a file component is ENOTDIR", mkdir("mf/x", 0755), ENOTDIR);
  mkdir("m2", 01777);
  TRUE("mkdir: the sticky bit is kept", (st_of("m2").st_mode & 07777) == 01755 || (st_of("m2").st_mode & 07777) == 01777, "mode %o", st_of("m2").st_mode & 07777);
  touch("m1/sub/f", "x");
  ERR2("rmdir: a non-empty directory is ENOTEMPTY", rmdir("m1/sub"), ENOTEMPTY, EEXIST);
  unlink("m1/sub/f");
  OK("rmdir: an empty directory", rmdir("m1/sub"));
  TRUE("rmdir: the parent loses a link", st_of("m1").st_nlink == n0, "nlink %ld", (long)st_of("m1").st_nlink);
  ERR("rmdir: a file is ENOTDIR", rmdir("mf"), ENOTDIR);
  ERR("rmdir: a missing name is ENOENT", rmdir("m-none"), ENOENT);
  ERR("rmdir: \".\" is EINVAL", rmdir("m1/."), EINVAL);
  ERR2("rmdir: \"..\" is ENOTEMPTY", rmdir("m1/.."), ENOTEMPTY, EEXIST);
  symlink("m1", "m1s");
  ERR("rmdir: a symlink to a directory is ENOTDIR", rmdir("m1s"), ENOTDIR);
  age(".");
  rmdir("m1");
  TRUE("rmdir: the parent's mtime is updated", aged_mtime_moved("."), "mtime unchanged");
  TRUE("rmdir: the directory is gone", !exists("m1"), "still there");
}

static void t_rename(void) {
  char buf[64];
  touch("r1", "one");
  ino_t ino = st_of("r1").st_ino;
  OK("rename: a file", rename("r1", "r2"));
  TRUE("rename: the old name is gone, the new one has the content", !exists("r1") && strcmp(readall("r2", buf, sizeof buf), "one") == 0, "content %s", buf);
  TRUE("rename: the inode is the same", st_of("r2").st_ino == ino, "inode changed");
  touch("r3", "three");
  int keep = open("r3", O_RDONLY);
  OK("rename: over an existing file", rename("r2", "r3"));
  TRUE("rename: the target now has the source's content", strcmp(readall("r3", buf, sizeof buf), "one") == 0, "content %s", buf);
  memset(buf, 0, sizeof buf);
  (void)!read(keep, buf, sizeof buf - 1);
  TRUE("rename: a descriptor open on the replaced file still reads it", strcmp(buf, "three") == 0, "read %s", buf);
  close(keep);
  mkdir("rd1", 0755), mkdir("rd2", 0755);
  OK("rename: a directory over an empty directory", rename("rd1", "rd2"));
  mkdir("rd3", 0755), mkdir("rd4", 0755), touch("rd4/f", "x");
  ERR2("rename: a directory over a non-empty directory is ENOTEMPTY", rename("rd3", "rd4"), ENOTEMPTY, EEXIST);
  ERR("rename: a file over a directory is EISDIR", rename("r3", "rd3"), EISDIR);
  ERR("rename: a directory over a file is ENOTDIR", rename("rd3", "r3"), ENOTDIR);
  ERR("rename: a directory into its own subdirectory is EINVAL", rename("rd4", "rd4/sub"), EINVAL);
  ERR("rename: a missing source is ENOENT", rename("r-none", "r5"), ENOENT);
  ERR("rename: a file with a trailing slash is ENOTDIR", rename("r3/", "r6"), ENOTDIR);
  link("r3", "r3b");
  OK("rename: between two links of one file succeeds", rename("r3", "r3b"));
  TRUE("rename: ... and leaves both names", exists("r3") && exists("r3b"), "a name vanished");
  OK("rename: a name onto itself", rename("r3", "r3"));
  symlink("r3", "rs");
  rename("rs", "rs2");
  TRUE("rename: a symlink moves the link, not the target", S_ISLNK(st_of("rs2").st_mode) && exists("r3"), "wrong");
  mkdir("rp1", 0755), mkdir("rp2", 0755), mkdir("rp1/d", 0755);
  nlink_t a = st_of("rp1").st_nlink, b = st_of("rp2").st_nlink;
  age("rp1"), age("rp2");
  OK("rename: a directory to another parent", rename("rp1/d", "rp2/d"));
  TRUE("rename: the old parent loses a link, the new one gains one", st_of("rp1").st_nlink == a - 1 && st_of("rp2").st_nlink == b + 1, "nlink %ld %ld", (long)st_of("rp1").st_nlink, (long)st_of("rp2").st_nlink);
  TRUE("rename: both parents' mtimes are updated", aged_mtime_moved("rp1") && aged_mtime_moved("rp2"), "unchanged");
  TRUE("rename: the moved directory's \"..\" is its new parent", st_of("rp2/d/..").st_ino == st_of("rp2").st_ino, "wrong ..");
  touch("/tmp/posix-check-xdev", "x");
  ERR("rename: to another file system is EXDEV", rename("r3", "/tmp/posix-check-xdev2"), EXDEV);
  unlink("/tmp/posix-check-xdev");
}

static void t_link(void) {
  touch("l1", "x");
  long long c0 = ctime_of("l1");
  pause_ms(30);
  OK("link: a file", link("l1", "l2"));
  TRUE("link: both names are one inode with nlink 2", st_of("l1").st_ino == st_of("l2").st_ino && st_of("l1").st_nlink == 2, "nlink %ld", (long)st_of("l1").st_nlink);
  TRUE("link: the file's ctime is updated", ctime_of("l1") > c0, "ctime unchanged");
  ERR("link: onto an existing name is EEXIST", link("l1", "l2"), EEXIST);
  mkdir("ld", 0755);
  ERR("link: a directory is EPERM", link("ld", "ld2"), EPERM);
  ERR("link: a missing source is ENOENT", link("l-none", "l3"), ENOENT);
  ERR("link: into a missing directory is ENOENT", link("l1", "nodir/l"), ENOENT);
  int fd = open("l2", O_WRONLY | O_APPEND);
  (void)!write(fd, "y", 1);
  close(fd);
  TRUE("link: a write through one name is seen through the other", st_of("l1").st_size == 2, "size %lld", (long long)st_of("l1").st_size);
}

static void t_symlink(void) {
  char buf[2048];
  OK("symlink: creates", symlink("target/path", "s1"));
  struct stat st = st_of("s1");
  TRUE("symlink: lstat reports a link sized as its target", S_ISLNK(st.st_mode) && st.st_size == 11, "mode %o size %lld", st.st_mode, (long long)st.st_size);
  ssize_t n = readlink("s1", buf, sizeof buf);
  TRUE("readlink: returns the target unterminated", n == 11 && memcmp(buf, "target/path", 11) == 0, "n %zd", n);
  n = readlink("s1", buf, 4);
  TRUE("readlink: a short buffer truncates", n == 4 && memcmp(buf, "targ", 4) == 0, "n %zd", n);
  ERR("symlink: onto an existing name is EEXIST", symlink("x", "s1"), EEXIST);
  touch("s-file", "x");
  ERR("readlink: a regular file is EINVAL", readlink("s-file", buf, sizeof buf), EINVAL);
  symlink("s-file", "s2");
  struct stat fst;
  TRUE("symlink: stat follows it", stat("s2", &fst) == 0 && S_ISREG(fst.st_mode) && fst.st_ino == st_of("s-file").st_ino, "stat did not follow");
  ERR("symlink: stat of a dangling link is ENOENT", stat("s1", &fst), ENOENT);
  symlink("s-loop2", "s-loop1"), symlink("s-loop1", "s-loop2");
  ERR("symlink: a loop is ELOOP", open("s-loop1", O_RDONLY), ELOOP);
  char longt[1025];
  memset(longt, 'a', 1024);
  for (int i = 100; i < 1024; i += 100) longt[i] = '/';
  longt[1024] = 0;
  OK("symlink: a 1024-byte target", symlink(longt, "s-long"));
  n = readlink("s-long", buf, sizeof buf);
  TRUE("readlink: the 1024-byte target comes back whole", n == 1024 && memcmp(buf, longt, 1024) == 0, "n %zd", n);
  mkdir("sd", 0755);
  touch("sd/in", "inside");
  symlink("sd", "sdl");
  TRUE("symlink: a path through a link to a directory resolves", exists("sdl/in"), "not found");
}

static void t_truncate(void) {
  char buf[32];
  touch("t1", "0123456789");
  age("t1");
  OK("truncate: shrink", truncate("t1", 4));
  TRUE("truncate: the size and content after shrinking", st_of("t1").st_size == 4 && strcmp(readall("t1", buf, sizeof buf), "0123") == 0, "content %s", buf);
  TRUE("truncate: mtime is updated", aged_mtime_moved("t1"), "mtime unchanged");
  OK("truncate: grow", truncate("t1", 8));
  int fd = open("t1", O_RDONLY);
  memset(buf, 1, sizeof buf);
  ssize_t n = read(fd, buf, sizeof buf);
  close(fd);
  TRUE("truncate: growing reads back zeros", n == 8 && memcmp(buf + 4, "\0\0\0\0", 4) == 0, "n %zd", n);
  mkdir("td", 0755);
  ERR("truncate: a directory is EISDIR", truncate("td", 0), EISDIR);
  ERR("truncate: a negative length is EINVAL", truncate("t1", -1), EINVAL);
  ERR("truncate: a missing file is ENOENT", truncate("t-none", 0), ENOENT);
  OK("truncate: to 5 GiB (beyond 32 bits)", truncate("t1", 5LL << 30));
  TRUE("truncate: the size is 5 GiB", st_of("t1").st_size == 5LL << 30, "size %lld", (long long)st_of("t1").st_size);
  truncate("t1", 0);
  fd = open("t1", O_RDWR);
  OK("ftruncate: grow", ftruncate(fd, 100));
  struct stat st;
  fstat(fd, &st);
  TRUE("ftruncate: fstat sees the size", st.st_size == 100, "size %lld", (long long)st.st_size);
  close(fd);
  fd = open("t1", O_RDONLY);
  ERR2("ftruncate: on an O_RDONLY descriptor is EINVAL", ftruncate(fd, 0), EINVAL, EBADF);
  close(fd);
}

static void t_chmod_chown(void) {
  touch("c1", "x");
  long long c0 = ctime_of("c1");
  pause_ms(30);
  OK("chmod: a file", chmod("c1", 0600));
  TRUE("chmod: the mode is reported", (st_of("c1").st_mode & 07777) == 0600, "mode %o", st_of("c1").st_mode & 07777);
  TRUE("chmod: ctime is updated", ctime_of("c1") > c0, "ctime unchanged");
  chmod("c1", 07755);
  TRUE("chmod: setuid, setgid and sticky bits are kept", (st_of("c1").st_mode & 07777) == 07755, "mode %o", st_of("c1").st_mode & 07777);
  symlink("c1", "c1s");
  chmod("c1s", 0640);
  TRUE("chmod: through a symlink changes the target", (st_of("c1").st_mode & 07777) == 0640 && S_ISLNK(st_of("c1s").st_mode), "mode %o", st_of("c1").st_mode & 07777);
  ERR("chmod: a missing file is ENOENT", chmod("c-none", 0644), ENOENT);
  int fd = open("c1", O_RDONLY);
  OK("fchmod: on a descriptor", fchmod(fd, 0604));
  TRUE("fchmod: the mode is reported", (st_of("c1").st_mode & 07777) == 0604, "mode %o", st_of("c1").st_mode & 07777);
  c0 = ctime_of("c1");
  pause_ms(30);
  OK("chown: a file to 1234:5678", chown("c1", 1234, 5678));
  TRUE("chown: the owner is reported back", st_of("c1").st_uid == 1234 && st_of("c1").st_gid == 5678, "%d:%d", st_of("c1").st_uid, st_of("c1").st_gid);
  TRUE("chown: ctime is updated", ctime_of("c1") > c0, "ctime unchanged");
  chown("c1", -1, 42);
  TRUE("chown: -1 keeps the uid", st_of("c1").st_uid == 1234 && st_of("c1").st_gid == 42, "%d:%d", st_of("c1").st_uid, st_of("c1").st_gid);
  OK("fchown: on a descriptor", fchown(fd, 77, 88));
  TRUE("fchown: the owner is reported back", st_of("c1").st_uid == 77 && st_of("c1").st_gid == 88, "%d:%d", st_of("c1").st_uid, st_of("c1").st_gid);
  close(fd);
  symlink("c1", "c2s");
  OK("lchown: a symlink", lchown("c2s", 555, 666));
  TRUE("lchown: changes the link, not the target", st_of("c2s").st_uid == 555 && st_of("c1").st_uid == 77, "link %d target %d", st_of("c2s").st_uid, st_of("c1").st_uid);
  chmod("c1", 06755);
  chown("c1", 99, 99);
  TRUE("chown: clears setuid and setgid of an executable", (st_of("c1").st_mode & 06000) == 0, "mode %o", st_of("c1").st_mode & 07777);
  mkdir("cd", 0755);
  OK("chown: a directory", chown("cd", 4321, 4321));
  TRUE("chown: a directory's owner is reported back", st_of("cd").st_uid == 4321, "%d", st_of("cd").st_uid);
}

static void t_times(void) {
  touch("u1", "x");
  struct timespec t[2] = {{1234567890, 123456789}, {1300000000, 987654321}};
  OK("utimensat: explicit times", utimensat(AT_FDCWD, "u1", t, 0));
  struct stat st = st_of("u1");
  TRUE("utimensat: atime is reported (seconds)", st.st_atim.tv_sec == t[0].tv_sec, "atime %ld", (long)st.st_atim.tv_sec);
  TRUE("utimensat: mtime is reported (seconds)", st.st_mtim.tv_sec == t[1].tv_sec, "mtime %ld", (long)st.st_mtim.tv_sec);
  /* Linux's 9p client leaves s_time_gran at 1 s, so it truncates the times it sends: every server fails this one. */
  TRUE("utimensat: mtime is reported to the nanosecond", ns(st.st_mtim) == ns(t[1]), "mtime %lld", ns(st.st_mtim));
  struct timespec omit[2] = {{0, UTIME_OMIT}, {1400000000, 0}};
  utimensat(AT_FDCWD, "u1", omit, 0);
  st = st_of("u1");
  TRUE("utimensat: UTIME_OMIT keeps atime while mtime changes", st.st_atim.tv_sec == t[0].tv_sec && st.st_mtim.tv_sec == 1400000000, "atime %lld mtime %ld", ns(st.st_atim), (long)st.st_mtim.tv_sec);
  struct timespec now[2] = {{0, UTIME_NOW}, {0, UTIME_OMIT}};
  utimensat(AT_FDCWD, "u1", now, 0);
  st = st_of("u1");
  TRUE("utimensat: UTIME_NOW sets atime to now, UTIME_OMIT keeps mtime", st.st_atim.tv_sec > 1500000000 && st.st_mtim.tv_sec == 1400000000, "atime %ld mtime %ld", (long)st.st_atim.tv_sec, (long)st.st_mtim.tv_sec);
  struct timespec both[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
  long long c0 = ctime_of("u1");
  utimensat(AT_FDCWD, "u1", both, 0);
  TRUE("utimensat: both UTIME_OMIT changes nothing", st_of("u1").st_mtim.tv_sec == 1400000000, "mtime changed");
  pause_ms(30);
  utimensat(AT_FDCWD, "u1", t, 0);
  TRUE("utimensat: ctime is updated", ctime_of("u1") > c0, "ctime unchanged");
  OK("utimensat: NULL times (now)", utimensat(AT_FDCWD, "u1", NULL, 0));
  TRUE("utimensat: NULL sets mtime to now", st_of("u1").st_mtim.tv_sec > 1500000000, "mtime %ld", (long)st_of("u1").st_mtim.tv_sec);
  symlink("u1", "u1s");
  utimensat(AT_FDCWD, "u1", t, 0);
  OK("utimensat: AT_SYMLINK_NOFOLLOW on a symlink", utimensat(AT_FDCWD, "u1s", omit, AT_SYMLINK_NOFOLLOW));
  TRUE("utimensat: AT_SYMLINK_NOFOLLOW changes the link, not the target", st_of("u1s").st_mtim.tv_sec == 1400000000 && st_of("u1").st_mtim.tv_sec == t[1].tv_sec, "link %ld target %ld", (long)st_of("u1s").st_mtim.tv_sec, (long)st_of("u1").st_mtim.tv_sec);
  int fd = open("u1", O_RDONLY);
  OK("futimens: on a descriptor", futimens(fd, t));
  close(fd);
  TRUE("futimens: mtime is reported", st_of("u1").st_mtim.tv_sec == t[1].tv_sec, "mtime %ld", (long)st_of("u1").st_mtim.tv_sec);
  fd = open("u1", O_WRONLY);
  utimensat(AT_FDCWD, "u1", t, 0);
  (void)!write(fd, "y", 1);
  close(fd);
  TRUE("write: mtime is updated", st_of("u1").st_mtim.tv_sec > 1500000000, "mtime %ld", (long)st_of("u1").st_mtim.tv_sec);
}

static void t_xattr(void) {
  char buf[8192];
  touch("x1", "x");
  OK("xattr: set user.test", setxattr("x1", "user.test", "value", 5, 0));
  ssize_t n = getxattr("x1", "user.test", buf, sizeof buf);
  TRUE("xattr: get returns the value", n == 5 && memcmp(buf, "value", 5) == 0, "n %zd (%s)", n, strerror(errno));
  TRUE("xattr: get with size 0 returns the length", getxattr("x1", "user.test", NULL, 0) == 5, "wrong length");
  ERR("xattr: get with a short buffer is ERANGE", getxattr("x1", "user.test", buf, 2), ERANGE);
  n = listxattr("x1", buf, sizeof buf);
  int found = 0;
  for (ssize_t i = 0; i < n; i += strlen(buf + i) + 1) found |= strcmp(buf + i, "user.test") == 0;
  TRUE("xattr: list includes the name", found, "n %zd", n);
  ERR("xattr: XATTR_CREATE on an existing name is EEXIST", setxattr("x1", "user.test", "v", 1, XATTR_CREATE), EEXIST);
  ERR("xattr: XATTR_REPLACE on a missing name is ENODATA", setxattr("x1", "user.none", "v", 1, XATTR_REPLACE), ENODATA);
  OK("xattr: XATTR_REPLACE on an existing name", setxattr("x1", "user.test", "longer value", 12, XATTR_REPLACE));
  n = getxattr("x1", "user.test", buf, sizeof buf);
  TRUE("xattr: the replaced value is returned", n == 12 && memcmp(buf, "longer value", 12) == 0, "n %zd", n);
  ERR("xattr: get of a missing name is ENODATA", getxattr("x1", "user.none", buf, sizeof buf), ENODATA);
  OK("xattr: remove", removexattr("x1", "user.test"));
  ERR("xattr: get after remove is ENODATA", getxattr("x1", "user.test", buf, sizeof buf), ENODATA);
  ERR("xattr: remove of a missing name is ENODATA", removexattr("x1", "user.test"), ENODATA);
  char big[4000];
  for (int i = 0; i < 4000; i++) big[i] = (char)(i * 7);
  OK("xattr: a 4000-byte value", setxattr("x1", "user.big", big, sizeof big, 0));
  n = getxattr("x1", "user.big", buf, sizeof buf);
  TRUE("xattr: the 4000-byte value comes back whole", n == 4000 && memcmp(buf, big, 4000) == 0, "n %zd", n);
  OK("xattr: an empty value", setxattr("x1", "user.empty", "", 0, 0));
  TRUE("xattr: the empty value has length 0", getxattr("x1", "user.empty", buf, sizeof buf) == 0, "wrong");
  int fd = open("x1", O_RDONLY);
  OK("xattr: fsetxattr on a descriptor", fsetxattr(fd, "user.fd", "f", 1, 0));
  TRUE("xattr: fgetxattr on a descriptor", fgetxattr(fd, "user.fd", buf, sizeof buf) == 1 && buf[0] == 'f', "wrong");
  close(fd);
  mkdir("xd", 0755);
  OK("xattr: on a directory", setxattr("xd", "user.dir", "d", 1, 0));
  TRUE("xattr: a directory's value comes back", getxattr("xd", "user.dir", buf, sizeof buf) == 1, "wrong");
}

/* Locks: the child checks what the parent holds. */
static int lock_probe(int fd, short type, off_t start, off_t len, struct flock *out) {
  struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
  int r = fcntl(fd, F_GETLK, &fl);
  if (out) *out = fl;
  return r;
}
static int try_lock(const char *p, short type, off_t start, off_t len) {
  int fd = open(p, O_RDWR);
  struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
  int r = fcntl(fd, F_SETLK, &fl);
  int e = errno;
  close(fd);
  return r == 0 ? 0 : (e == EAGAIN || e == EACCES ? 1 : 2);
}
static int child_wr_whole(void *p) { return try_lock(p, F_WRLCK, 0, 0); }
static int child_rd_whole(void *p) { return try_lock(p, F_RDLCK, 0, 0); }
static int child_wr_10_19(void *p) { return try_lock(p, F_WRLCK, 10, 10); }
static int child_getlk(void *p) {
  int fd = open(p, O_RDWR);
  struct flock fl;
  lock_probe(fd, F_WRLCK, 0, 0, &fl);
  return fl.l_type == F_WRLCK ? (fl.l_pid == getppid() ? 0 : 3) : 1;
}
static int child_setlkw(void *p) {
  int fd = open(p, O_RDWR);
  struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
  return fcntl(fd, F_SETLKW, &fl) == 0 ? 0 : 1;
}
static int child_flock(void *p) {
  int fd = open(p, O_RDWR);
  int r = flock(fd, LOCK_EX | LOCK_NB);
  return r == 0 ? 0 : (errno == EWOULDBLOCK ? 1 : 2);
}
static int child_flock_sh(void *p) {
  int fd = open(p, O_RDWR);
  return flock(fd, LOCK_SH | LOCK_NB) == 0 ? 0 : 1;
}

static void t_locks(void) {
  touch("k1", "0123456789012345678901234567890");
  int fd = open("k1", O_RDWR);
  struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
  OK("fcntl: F_SETLK write lock on bytes 0-9", fcntl(fd, F_SETLK, &fl));
  int s = in_child(child_getlk, "k1");
  TRUE("fcntl: F_GETLK in another process sees the write lock", s == 0 || s == 3, "status %d", s);
  TRUE("fcntl: F_GETLK reports the holder's pid", s == 0, "status %d", s);
  TRUE("fcntl: a conflicting F_SETLK in another process is EAGAIN/EACCES", in_child(child_wr_whole, "k1") == 1, "not refused");
  TRUE("fcntl: a lock on a disjoint range (10-19) is granted", in_child(child_wr_10_19, "k1") == 0, "refused");
  struct flock probe;
  lock_probe(fd, F_WRLCK, 0, 0, &probe);
  TRUE("fcntl: F_GETLK by the holder itself reports F_UNLCK", probe.l_type == F_UNLCK, "type %d", probe.l_type);
  fl.l_type = F_UNLCK;
  OK("fcntl: F_UNLCK", fcntl(fd, F_SETLK, &fl));
  TRUE("fcntl: after unlock another process gets the lock", in_child(child_wr_whole, "k1") == 0, "refused");
  fl.l_type = F_RDLCK, fl.l_len = 0;
  fcntl(fd, F_SETLK, &fl);
  TRUE("fcntl: read locks are shared", in_child(child_rd_whole, "k1") == 0, "refused");
  TRUE("fcntl: a write lock conflicts with a read lock", in_child(child_wr_whole, "k1") == 1, "granted");
  close(fd);
  TRUE("fcntl: closing a descriptor releases the process's locks", in_child(child_wr_whole, "k1") == 0, "still locked");
  fd = open("k1", O_RDWR);
  fl.l_type = F_WRLCK;
  fcntl(fd, F_SETLK, &fl);
  pid_t pid = fork();
  if (pid == 0) _exit(child_setlkw("k1"));
  pause_ms(300);
  int status, waited = waitpid(pid, &status, WNOHANG);
  TRUE("fcntl: F_SETLKW waits while the lock is held", waited == 0, "did not wait");
  fl.l_type = F_UNLCK;
  fcntl(fd, F_SETLK, &fl);
  waitpid(pid, &status, 0);
  TRUE("fcntl: F_SETLKW is granted on release", WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
  close(fd);
  fd = open("k1", O_RDWR);
  OK("flock: LOCK_EX", flock(fd, LOCK_EX | LOCK_NB));
  TRUE("flock: another process's LOCK_EX|LOCK_NB is EWOULDBLOCK", in_child(child_flock, "k1") == 1, "granted");
  int fd2 = open("k1", O_RDWR);
  ERR("flock: another open file description in the same process conflicts", flock(fd2, LOCK_EX | LOCK_NB), EWOULDBLOCK);
  OK("flock: LOCK_UN", flock(fd, LOCK_UN));
  TRUE("flock: after LOCK_UN another process gets it", in_child(child_flock, "k1") == 0, "refused");
  flock(fd, LOCK_SH);
  TRUE("flock: LOCK_SH is shared", in_child(child_flock_sh, "k1") == 0, "refused");
  close(fd), close(fd2);
  TRUE("flock: closing the descriptor releases it", in_child(child_flock, "k1") == 0, "still locked");
}

static void t_unlinked_open(void) {
  char buf[32] = {0};
  touch("z1", "before");
  int fd = open("z1", O_RDWR);
  OK("unlinked: unlink an open file", unlink("z1"));
  struct stat st;
  fstat(fd, &st);
  TRUE("unlinked: fstat reports nlink 0", st.st_nlink == 0, "nlink %ld", (long)st.st_nlink);
  TRUE("unlinked: still readable", pread(fd, buf, 6, 0) == 6 && memcmp(buf, "before", 6) == 0, "read %s", buf);
  TRUE("unlinked: still writable", pwrite(fd, "after!", 6, 6) == 6, "%s", strerror(errno));
  memset(buf, 0, sizeof buf);
  TRUE("unlinked: reads back the new write", pread(fd, buf, 12, 0) == 12 && memcmp(buf, "beforeafter!", 12) == 0, "read %s", buf);
  OK("unlinked: ftruncate", ftruncate(fd, 3));
  fstat(fd, &st);
  TRUE("unlinked: fstat sees the new size", st.st_size == 3, "size %lld", (long long)st.st_size);
  OK("unlinked: fchmod", fchmod(fd, 0600));
  TRUE("unlinked: the name stays gone", !exists("z1"), "name is back");
  close(fd);
  touch("z2", "x");
  fd = open("z2", O_RDONLY);
  OK("unlinked: a new file may take the name", (unlink("z2"), open("z2", O_CREAT | O_WRONLY, 0644)));
  close(fd);
}

static int owner_checks(void *arg) {
  (void)arg;
  if (setgid(1000) < 0 || setuid(1000) < 0) return 99;
  int bad = 0;
  int fd = open("own/f", O_CREAT | O_WRONLY, 0644);
  if (fd < 0) return 1;
  close(fd);
  struct stat st = st_of("own/f");
  if (st.st_uid != 1000) bad |= 2;
  if (chmod("own/f", 0400) < 0) bad |= 4;
  if (open("own/f", O_WRONLY) >= 0 || errno != EACCES) bad |= 8;
  chmod("own/f", 0200);
  if (open("own/f", O_RDONLY) >= 0 || errno != EACCES) bad |= 16;
  if (open("own/f", O_WRONLY) < 0) bad |= 32;
  mkdir("own/d", 0755);
  chmod("own/d", 0500);
  if (open("own/d/new", O_CREAT | O_WRONLY, 0644) >= 0 || errno != EACCES) bad |= 64;
  chmod("own/d", 0755);
  touch("own/d/in", "x");
  chmod("own/d", 0600);
  if (stat("own/d/in", &st) == 0 || errno != EACCES) bad |= 128;
  chmod("own/d", 0755);
  return bad;
}

static void t_owner(void) {
  mkdir("own", 0777);
  chmod("own", 0777);
  int bad = in_child(owner_checks, NULL);
  const char *names[] = {"owner: uid 1000 creates a file", "owner: the creator is reported as owner", "owner: chmod of one's own file", "owner: mode 0400 refuses writing (EACCES)", "owner: mode 0200 refuses reading (EACCES)", "owner: mode 0200 allows writing", "owner: a 0500 directory refuses creating (EACCES)", "owner: a 0600 directory refuses search (EACCES)"};
  if (bad == 99) {
    result(0, "owner: setuid(1000)", "cannot become uid 1000");
    return;
  }
  if (bad & 1) {
    result(0, names[0], "open failed");
    return;
  }
  for (int i = 0; i < 8; i++) result(!(bad & (1 << i)), names[i], "bit %d", i);
}

static int owner_checks2(void *arg) {
  (void)arg;
  if (setgid(1000) < 0 || setuid(1000) < 0) return 99;
  int bad = 0;
  if (utimensat(AT_FDCWD, "own/f", NULL, 0) < 0) bad |= 1;
  if (chown("own/f", 1000, 1000) < 0) bad |= 2;
  if (chown("own/f", 0, 0) == 0 || errno != EPERM) bad |= 4;
  if (setxattr("own/f", "user.mine", "m", 1, 0) < 0) bad |= 8;
  umask(077);
  close(open("own/g", O_CREAT | O_WRONLY, 0666));
  if ((st_of("own/g").st_mode & 0777) != 0600) bad |= 16;
  return bad;
}

static void t_owner2(void) {
  int bad = in_child(owner_checks2, NULL);
  const char *names[] = {"owner: utimensat(NOW) on one's own file", "owner: chown to oneself is allowed", "owner: chown to root is EPERM", "owner: user xattr on one's own file", "owner: the creator's umask applies"};
  for (int i = 0; i < 5; i++) result(bad != 99 && !(bad & (1 << i)), names[i], "bit %d (status %d)", i, bad);
}

static void t_special(void) {
  OK("mkfifo: creates", mkfifo("p1", 0644));
  TRUE("mkfifo: reported as a FIFO", S_ISFIFO(st_of("p1").st_mode), "mode %o", st_of("p1").st_mode);
  OK("mknod: a character device (root)", mknod("cdev", S_IFCHR | 0600, makedev(1, 3)));
  struct stat st = st_of("cdev");
  TRUE("mknod: reported as a character device with its number", S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3), "mode %o rdev %lx", st.st_mode, (long)st.st_rdev);
  OK("mknod: a block device (root)", mknod("bdev", S_IFBLK | 0600, makedev(7, 0)));
  TRUE("mknod: reported as a block device", S_ISBLK(st_of("bdev").st_mode), "mode %o", st_of("bdev").st_mode);
  OK("mknod: a socket node", mknod("sock", S_IFSOCK | 0600, 0));
  TRUE("mknod: reported as a socket", S_ISSOCK(st_of("sock").st_mode), "mode %o", st_of("sock").st_mode);
  ERR("mknod: an existing name is EEXIST", mknod("p1", S_IFIFO | 0644, 0), EEXIST);
  OK("unlink: a FIFO", unlink("p1"));
  OK("unlink: a device node", unlink("cdev"));
  struct statfs sf;
  OK("statfs: succeeds", statfs(".", &sf));
  TRUE("statfs: reports blocks and a block size", sf.f_blocks > 0 && sf.f_bsize > 0, "blocks %ld bsize %ld", (long)sf.f_blocks, (long)sf.f_bsize);
}

static void t_readdir_small(void) {
  mkdir("rdd", 0755);
  for (int i = 0; i < 50; i++) {
    char p[32];
    snprintf(p, sizeof p, "rdd/e%d", i);
    touch(p, NULL);
  }
  unlink("rdd/e7");
  DIR *d = opendir("rdd");
  int dot = 0, dotdot = 0, n = 0, seen7 = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".")) dot++;
    else if (!strcmp(e->d_name, "..")) dotdot++;
    else n++, seen7 |= !strcmp(e->d_name, "e7");
  }
  closedir(d);
  TRUE("readdir: lists \".\" and \"..\" once each", dot == 1 && dotdot == 1, ". %d .. %d", dot, dotdot);
  TRUE("readdir: lists the 49 remaining entries, not the removed one", n == 49 && !seen7, "n %d removed seen %d", n, seen7);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void t_readdir_big(const char *dir, int want) {
  DIR *d = opendir(dir);
  if (!d) {
    result(0, "readdir big: opendir", "%s", strerror(errno));
    return;
  }
  char **names = calloc(want + 16, sizeof *names);
  long *offs = calloc(want + 16, sizeof *offs);
  int n = 0, over = 0;
  struct dirent *e;
  for (;;) {
    long pos = telldir(d);
    if (!(e = readdir(d))) break;
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    if (n >= want + 16) { over++; continue; }
    offs[n] = pos;
    names[n++] = strdup(e->d_name);
  }
  char label[96];
  snprintf(label, sizeof label, "readdir big: %d entries listed", want);
  TRUE(label, n == want && !over, "listed %d (+%d more)", n, over);
  /* seekdir back to recorded positions: the next entry is the one read there before */
  int seek_ok = 1;
  for (int k = 0; k < 20 && n > 0; k++) {
    int i = (int)(((long long)k * 7919 + 13) % n);
    seekdir(d, offs[i]);
    e = readdir(d);
    if (!e || strcmp(e->d_name, names[i])) { seek_ok = 0; break; }
  }
  TRUE("readdir big: seekdir to a telldir position returns the same entry", seek_ok, "mismatch");
  rewinddir(d);
  int again = 0;
  while ((e = readdir(d))) again += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
  TRUE("readdir big: rewinddir lists them all again", again == n, "listed %d", again);
  closedir(d);
  qsort(names, n, sizeof *names, cmp_str);
  int dups = 0;
  for (int i = 1; i < n; i++) dups += !strcmp(names[i - 1], names[i]);
  TRUE("readdir big: every name is seen once", dups == 0, "%d duplicates", dups);
  for (int i = 0; i < n; i++) free(names[i]);
  free(names), free(offs);
}

static void rm_rf(const char *p) {
  struct stat st;
  if (lstat(p, &st) < 0) return;
  if (S_ISDIR(st.st_mode)) {
    chmod(p, 0755);
    DIR *d = opendir(p);
    struct dirent *e;
    while (d && (e = readdir(d))) {
      if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
      char q[4096];
      snprintf(q, sizeof q, "%s/%s", p, e->d_name);
      rm_rf(q);
    }
    if (d) closedir(d);
    rmdir(p);
  } else unlink(p);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: posix-check DIR [BIGDIR N]\n");
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  signal(SIGPIPE, SIG_IGN);
  umask(022);
  char work[4096];
  snprintf(work, sizeof work, "%s/posix-check.%d", argv[1], (int)getpid());
  rm_rf(work);
  if (mkdir(work, 0755) < 0 || chdir(work) < 0) {
    fprintf(stderr, "posix-check: cannot use %s: %s\n", work, strerror(errno));
    return 2;
  }
  t_open();
  t_excl_race();
  t_unlink();
  t_mkdir_rmdir();
  t_rename();
  t_link();
  t_symlink();
  t_truncate();
  t_chmod_chown();
  t_times();
  t_xattr();
  t_locks();
  t_unlinked_open();
  t_owner();
  t_owner2();
  t_special();
  t_readdir_small();
  if (argc >= 4) t_readdir_big(argv[2], atoi(argv[3]));
  if (chdir("/") == 0) rm_rf(work);
  printf("TOTAL pass=%d fail=%d\n", npass, nfail);
  return 0;
}
