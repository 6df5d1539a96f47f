/*
 * fsbench: the file-system measurements of bench/share.ts (issue 15), run inside the guest so
 * that what is timed is the file system and not the fork of a shell tool per file (which under
 * TCG costs more than the file operation). Uses only POSIX calls (open/write/read/fsync/stat/
 * unlink, clock_gettime(CLOCK_MONOTONIC)).
 *
 *   fsbench write FILE MIB     sequential 1 MiB writes, then fsync: WRITE_MIBS=<MiB/s>
 *   fsbench read FILE          sequential 1 MiB reads of the whole file: READ_MIBS=<MiB/s>
 *   fsbench small DIR N        N times: create a 100-byte file, stat it, unlink it: SMALL_FILES_PER_S=
 *   fsbench stat FILE N        N stat(2) calls: STAT_US=<microseconds per call>
 * Build: gcc -static -O2 -o fsbench fsbench.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static void die(const char *what) {
  fprintf(stderr, "fsbench: %s: %s\n", what, strerror(errno));
  exit(1);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: fsbench write FILE MIB | read FILE | small DIR N | stat FILE N\n");
    return 2;
  }
  const char *op = argv[1], *path = argv[2];
  static char buf[1 << 20];
  if (!strcmp(op, "write") && argc > 3) {
    long mib = atol(argv[3]);
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (char)(i * 131 + 7);
    double t0 = now();
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    if (fd < 0) die("open");
    for (long i = 0; i < mib; i++)
      if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf) die("write");
    if (fsync(fd) < 0) die("fsync");
    close(fd);
    printf("WRITE_MIBS=%.1f\n", mib / (now() - t0));
  } else if (!strcmp(op, "read")) {
    double t0 = now();
    int fd = open(path, O_RDONLY);
    if (fd < 0) die("open");
    long long total = 0;
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) total += n;
    if (n < 0) die("read");
    close(fd);
    printf("READ_MIBS=%.1f\n", total / 1048576.0 / (now() - t0));
  } else if (!strcmp(op, "small") && argc > 3) {
    long n = atol(argv[3]);
    char p[4096];
    struct stat st;
    memset(buf, 'x', 100);
    double t0 = now();
    for (long i = 0; i < n; i++) {
      snprintf(p, sizeof p, "%s/small-%ld", path, i);
      int fd = open(p, O_CREAT | O_WRONLY | O_EXCL, 0644);
      if (fd < 0) die("create");
      if (write(fd, buf, 100) != 100) die("write");
      close(fd);
      if (stat(p, &st) < 0 || st.st_size != 100) die("stat");
      if (unlink(p) < 0) die("unlink");
    }
    printf("SMALL_FILES_PER_S=%.1f\n", n / (now() - t0));
  } else if (!strcmp(op, "stat") && argc > 3) {
    long n = atol(argv[3]);
    struct stat st;
    double t0 = now();
    for (long i = 0; i < n; i++)
      if (stat(path, &st) < 0) die("stat");
    printf("STAT_US=%.1f\n", (now() - t0) * 1e6 / n);
  } else {
    fprintf(stderr, "fsbench: unknown operation %s\n", op);
    return 2;
  }
  return 0;
}
