/*
 * fsx: a data-integrity run for a shared file system (issue 15), in the style of the classic
 * "file system exerciser" idea (random operations on one file checked against a copy kept in
 * memory), written for skiff from the POSIX and Linux man pages of pread/pwrite/ftruncate/mmap/
 * msync; no code of any existing fsx is used.
 *
 * Usage: fsx FILE NOPS SEED [MAXLEN]
 * Runs NOPS operations chosen by a seeded generator: read, write, truncate, mmap read, mmap write
 * (shared mapping + msync), fsync, and close/reopen; every read (and the whole file after each
 * truncate and at the end) is compared with the model. On the first mismatch it prints the bad
 * offsets, the last 64 operations and exits 1. Prints "FSX OK ops=N ..." when all is well.
 * Where the mount refuses a shared mapping (Linux 9p without cache=mmap answers EINVAL) mmap
 * writes are turned off and mmap reads use MAP_PRIVATE; a "FSX NOTE" line says so.
 * Build: gcc -static -O2 -o fsx fsx.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOGN 64
enum { OP_READ, OP_WRITE, OP_TRUNC, OP_MAPREAD, OP_MAPWRITE, OP_FSYNC, OP_REOPEN, OP_N };
static const char *opname[] = {"read", "write", "truncate", "mapread", "mapwrite", "fsync", "reopen"};
struct logent { long n; int op; long off, len, size_after; };
static struct logent oplog[LOGN];
static long opno;
static uint64_t rng;
static unsigned char *model, *tmp;
static long filesize, maxlen;
static int fd, mapwrite_ok = 1, mapread_flags = MAP_SHARED;
static const char *path;
static long counts[OP_N];

static uint64_t next(void) {
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return rng;
}
static long pick(long n) { return n > 0 ? (long)(next() % (uint64_t)n) : 0; }

static void record(int op, long off, long len) {
  struct logent *e = &oplog[opno % LOGN];
  e->n = opno, e->op = op, e->off = off, e->len = len, e->size_after = filesize;
  counts[op]++;
}

static void dump_and_die(const char *what, long off, long len, const unsigned char *got) {
  printf("FSX FAIL op %ld (%s) off %ld len %ld, file size (model) %ld\n", opno, what, off, len, filesize);
  int shown = 0;
  for (long i = 0; i < len && shown < 16; i++)
    if (got[i] != model[off + i]) {
      printf("FSX   byte %ld: got 0x%02x want 0x%02x\n", off + i, got[i], model[off + i]);
      shown++;
    }
  printf("FSX last operations (oldest first):\n");
  for (long n = opno - LOGN + 1; n <= opno; n++) {
    if (n < 0) continue;
    struct logent *e = &oplog[n % LOGN];
    printf("FSX   #%ld %s off %ld len %ld -> size %ld\n", e->n, opname[e->op], e->off, e->len, e->size_after);
  }
  exit(1);
}

static void die_errno(const char *what) {
  printf("FSX FAIL op %ld: %s: %s\n", opno, what, strerror(errno));
  exit(1);
}

static void check_range(const char *what, long off, long len) {
  if (len <= 0) return;
  ssize_t n = pread(fd, tmp, len, off);
  if (n != len) {
    printf("FSX FAIL op %ld (%s): pread at %ld wanted %ld bytes, got %zd (%s)\n", opno, what, off, len, n, n < 0 ? strerror(errno) : "short");
    exit(1);
  }
  if (memcmp(tmp, model + off, len) != 0) dump_and_die(what, off, len, tmp);
}

static void check_size(const char *what) {
  struct stat st;
  if (fstat(fd, &st) < 0) die_errno("fstat");
  if (st.st_size != filesize) {
    printf("FSX FAIL op %ld (%s): size %lld, model %ld\n", opno, what, (long long)st.st_size, filesize);
    exit(1);
  }
}

static void op_read(void) {
  if (filesize == 0) return record(OP_READ, 0, 0);
  long off = pick(filesize), len = 1 + pick(filesize - off < 65536 ? filesize - off : 65536);
  record(OP_READ, off, len);
  check_range("read", off, len);
}

static void op_write(void) {
  long off = pick(maxlen), len = 1 + pick(65536);
  if (off + len > maxlen) len = maxlen - off;
  for (long i = 0; i < len; i++) tmp[i] = (unsigned char)next();
  if (pwrite(fd, tmp, len, off) != len) die_errno("pwrite");
  memcpy(model + off, tmp, len);
  if (off > filesize) memset(model + filesize, 0, off - filesize);
  if (off + len > filesize) filesize = off + len;
  record(OP_WRITE, off, len);
}

static void op_trunc(void) {
  long size = pick(maxlen + 1);
  if (ftruncate(fd, size) < 0) die_errno("ftruncate");
  if (size > filesize) memset(model + filesize, 0, size - filesize);
  filesize = size;
  record(OP_TRUNC, size, 0);
  check_size("truncate");
}

static long page(void) { return sysconf(_SC_PAGESIZE); }

static void op_mapread(void) {
  if (filesize == 0) return record(OP_MAPREAD, 0, 0);
  long off = pick(filesize), len = 1 + pick(filesize - off < 65536 ? filesize - off : 65536);
  long base = off & ~(page() - 1), mlen = off + len - base;
  record(OP_MAPREAD, off, len);
  unsigned char *p = mmap(NULL, mlen, PROT_READ, mapread_flags, fd, base);
  if (p == MAP_FAILED && errno == EINVAL && mapread_flags == MAP_SHARED) {
    /* Linux 9p without a cache mode takes no shared mapping of a writable descriptor */
    printf("FSX NOTE shared read mappings refused (%s): MAP_PRIVATE from now on\n", strerror(errno));
    mapread_flags = MAP_PRIVATE;
    p = mmap(NULL, mlen, PROT_READ, mapread_flags, fd, base);
  }
  if (p == MAP_FAILED) die_errno("mmap read");
  memcpy(tmp, p + (off - base), len);
  munmap(p, mlen);
  if (memcmp(tmp, model + off, len) != 0) dump_and_die("mapread", off, len, tmp);
}

static void op_mapwrite(void) {
  long off = pick(maxlen), len = 1 + pick(65536);
  if (off + len > maxlen) len = maxlen - off;
  if (off + len > filesize) {
    if (ftruncate(fd, off + len) < 0) die_errno("ftruncate before mapwrite");
    memset(model + filesize, 0, off + len - filesize);
    filesize = off + len;
  }
  long base = off & ~(page() - 1), mlen = off + len - base;
  unsigned char *p = mmap(NULL, mlen, PROT_READ | PROT_WRITE, MAP_SHARED, fd, base);
  if (p == MAP_FAILED) {
    if (errno == EINVAL || errno == EACCES || errno == ENODEV) {
      mapwrite_ok = 0;
      printf("FSX NOTE mapwrite unsupported on this mount (%s): mmap writes skipped\n", strerror(errno));
      return record(OP_TRUNC, filesize, 0);
    }
    die_errno("mmap write");
  }
  for (long i = 0; i < len; i++) model[off + i] = (unsigned char)next();
  memcpy(p + (off - base), model + off, len);
  if (msync(p, mlen, MS_SYNC) < 0) die_errno("msync");
  munmap(p, mlen);
  record(OP_MAPWRITE, off, len);
}

static void op_reopen(void) {
  record(OP_REOPEN, 0, 0);
  if (close(fd) < 0) die_errno("close");
  if ((fd = open(path, O_RDWR)) < 0) die_errno("reopen");
  check_size("reopen");
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: fsx FILE NOPS SEED [MAXLEN]\n");
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  path = argv[1];
  long nops = atol(argv[2]);
  rng = strtoull(argv[3], NULL, 0) * 2654435761ULL + 1;
  maxlen = argc > 4 ? atol(argv[4]) : 256 * 1024;
  model = calloc(maxlen, 1), tmp = calloc(maxlen + 65536, 1);
  if ((fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644)) < 0) die_errno("open");
  for (opno = 0; opno < nops; opno++) {
    int op = (int)pick(100);
    if (op < 30) op_read();
    else if (op < 60) op_write();
    else if (op < 68) op_trunc();
    else if (op < 80) op_mapread();
    else if (op < 92) mapwrite_ok ? op_mapwrite() : op_write();
    else if (op < 96) (record(OP_FSYNC, 0, 0), fsync(fd) < 0 ? die_errno("fsync") : (void)0);
    else op_reopen();
  }
  check_size("final");
  check_range("final", 0, filesize);
  close(fd);
  printf("FSX OK ops=%ld seed=%s size=%ld", nops, argv[3], filesize);
  for (int i = 0; i < OP_N; i++) printf(" %s=%ld", opname[i], counts[i]);
  printf("\n");
  return 0;
}
