/*
 * skiff-agent: the guest side of file events on skiff's 9P shares (src/share/events.ts explains
 * the whole path). Built static (`cc -static -Os`) into the guest image by src/vm/image.ts; plain
 * C and libc only.
 *
 *   skiff-agent events GATEWAY PORT NAME DIR [MAXPINS]
 *       Subscribes to share NAME's host events (src/share/event-service.ts: "NAME\n", then
 *       frames len[4] kind[1] isdir[1] pathlen[2] tolen[2] path to) and replays each through the
 *       9P mount at DIR as the injector uid, so the guest kernel's VFS emits the inotify(7) event
 *       to every watcher of the mount: create → mkdir or mknod(S_IFREG), modify → utimensat of the
 *       mtime alone (IN_MODIFY), attrib → utimensat of both times (IN_ATTRIB), delete → unlink or
 *       rmdir, rename → rename(2), rescan → utimensat of DIR itself and a new pinning pass, pin (a
 *       directory the guest is making) → hold it as soon as it exists, unpin (one the guest
 *       removed) → let it go, pin-walk (a guest user is looking a directory up) → acknowledge,
 *       then hold it. The
 *       server answers these as no-ops (src/share/inject.ts). Each event is acknowledged with one
 *       byte, 0 done or 1 failed (the server then stops expecting it).
 *       Pinning: with the 9p client's default cache=none the kernel makes a new inode at each
 *       lookup of a name that no dentry holds, so a watch on a subdirectory would sit on an inode
 *       no later operation reaches. The agent holds O_PATH descriptors on directories of the
 *       share, at most MAXPINS (default 1024), so every lookup, the watchers' and its own, finds
 *       the same dentry and inode: each directory a guest user walks to (the server asks, and
 *       holds the walk's answer until the agent has acknowledged: the agent's open then joins
 *       the guest's lookup in progress, src/share/inject.ts pinWalked), each directory it or a
 *       guest creates, and, in the background while nothing else is asked, the share breadth
 *       first until MAXPINS are held. Past MAXPINS the least recently used pin goes (never the
 *       root; a pinned directory keeps its ancestors' dentries anyway). It serves the server's
 *       requests SCHED_FIFO so that a watcher woken by its mkdir cannot look the new directory
 *       up before it is pinned (the background pass runs at nice 19). Prints one line once
 *       subscribed, then continues in the background, and one line when the pass ends.
 *   skiff-agent watch DIR...
 *       A small recursive inotify watcher for tests (inotifywait -m -r style): one line per event,
 *       "EV <names> <path>", after "WATCHING <n>"; "WATCH <path>" once a new directory is watched.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/resource.h>
#include <sys/inotify.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define INJECTOR_UID 0x7ffffff0 /* src/share/inject.ts */
#define PATH_BYTES 4096

enum { K_CREATE = 1, K_MODIFY, K_ATTRIB, K_DELETE, K_RENAME, K_RESCAN, K_READY, K_PIN, K_UNPIN, K_PIN_WALK };

static const char *mount_dir;
static dev_t mount_dev; /* the share's mount: another share mounted inside it is not ours */
static struct pin { char *rel; int fd; unsigned long used; } *pins;
static int npins, maxpins = 1024;
static unsigned long tick; /* pins[i].used: when it was last pinned or asked for (LRU) */

static int full_path(char *out, const char *rel) {
  int n = snprintf(out, PATH_BYTES, rel[0] ? "%s/%s" : "%s", mount_dir, rel);
  return n > 0 && n < PATH_BYTES;
}

static int pin_index(const char *rel) {
  for (int i = 0; i < npins; i++) if (strcmp(pins[i].rel, rel) == 0) return i;
  return -1;
}

static int pinned(const char *rel) { return pin_index(rel) >= 0; }

static void drop_pin(int i) {
  close(pins[i].fd);
  free(pins[i].rel);
  pins[i] = pins[--npins];
}

/* Drop the least recently used pin (never the root's); 0 when there is none to drop. */
static int evict_lru(void) {
  int victim = -1;
  for (int i = 0; i < npins; i++)
    if (pins[i].rel[0] && (victim < 0 || pins[i].used < pins[victim].used)) victim = i;
  if (victim < 0) return 0;
  drop_pin(victim);
  return 1;
}

/* Hold directory rel (or mark it used when held): 1 when it is held. When MAXPINS are held, the
 * least recently used goes if `evict`, else nothing is pinned. */
static int pin(const char *rel, int evict) {
  char p[PATH_BYTES];
  int i = pin_index(rel);
  if (i >= 0) return pins[i].used = ++tick, 1;
  if ((npins >= maxpins && !evict) || !full_path(p, rel)) return 0;
  int fd = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
  struct stat st;
  if (fd < 0) return 0;
  /* A share mounted inside this one (e.g. a -v directory inside the default /tmp share) has its
   * own agent: pin nothing of it, and do not descend into it. This stat also refreshes the
   * attributes every guest user shares from now on through the injector's view (every user
   * treated as the owner: src/share/ops-meta.ts getattr), not its creator's. */
  if (fstatat(fd, "", &st, AT_EMPTY_PATH) != 0 || st.st_dev != mount_dev || (npins >= maxpins && !evict_lru())) {
    close(fd);
    return 0;
  }
  pins[npins].rel = strdup(rel);
  pins[npins].used = ++tick;
  pins[npins++].fd = fd;
  return 1;
}

/* Is rel `prefix` itself or below it? */
static int under(const char *rel, const char *prefix) {
  size_t n = strlen(prefix);
  return strncmp(rel, prefix, n) == 0 && (rel[n] == 0 || rel[n] == '/');
}

static void unpin_tree(const char *prefix) {
  for (int i = 0; i < npins;) {
    if (under(pins[i].rel, prefix)) drop_pin(i);
    else i++;
  }
}

static void rename_pins(const char *from, const char *to) {
  size_t n = strlen(from);
  for (int i = 0; i < npins; i++) {
    if (!under(pins[i].rel, from)) continue;
    char r[PATH_BYTES];
    if (snprintf(r, sizeof r, "%s%s", to, pins[i].rel + n) >= (int)sizeof r) continue;
    free(pins[i].rel);
    pins[i].rel = strdup(r);
  }
}

/* The background pass: pin the share's directories breadth first while fewer than maxpins are
 * held, one directory per step, between the server's requests. `scan` holds the directories
 * whose entries are still to be read (at most maxpins of them per pass). */
static char **scan;
static int scan_head, scan_tail;
static DIR *scan_dir;
static char *scan_base;
static const char *share_name;
static struct timespec pass_started;
static int pass_running;

static void end_pass(void) {
  if (pass_running) { /* the pass ran to its end (not restarted): say how far it got */
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    long ms = (t.tv_sec - pass_started.tv_sec) * 1000 + (t.tv_nsec - pass_started.tv_nsec) / 1000000;
    printf("skiff-agent: share %s: %d directories pinned in the background in %ld ms\n", share_name, npins, ms);
    fflush(stdout);
    pass_running = 0;
  }
  if (scan_dir) closedir(scan_dir);
  scan_dir = NULL;
  free(scan_base);
  scan_base = NULL;
  while (scan_head < scan_tail) free(scan[scan_head++]);
  scan_head = scan_tail = 0;
}

static void start_pass(void) {
  pass_running = 0;
  end_pass();
  clock_gettime(CLOCK_MONOTONIC, &pass_started);
  pass_running = 1;
  if (pin("", 0)) scan[scan_tail++] = strdup("");
}

/* One step: pin one more directory; 0 once the pass is over. */
static int pin_step(void) {
  for (;;) {
    char p[PATH_BYTES], r[PATH_BYTES];
    if (npins >= maxpins) return end_pass(), 0;
    if (!scan_dir) {
      if (scan_head == scan_tail) return end_pass(), 0;
      free(scan_base);
      scan_base = scan[scan_head++];
      if (full_path(p, scan_base)) scan_dir = opendir(p);
      continue;
    }
    struct dirent *e = readdir(scan_dir);
    if (!e) {
      closedir(scan_dir);
      scan_dir = NULL;
      continue;
    }
    if (e->d_type != DT_DIR || !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    if (snprintf(r, sizeof r, scan_base[0] ? "%s/%s" : "%s%s", scan_base, e->d_name) >= (int)sizeof r) continue;
    int was = pinned(r);
    if (!pin(r, 0)) continue;
    if (scan_tail < maxpins) scan[scan_tail++] = strdup(r);
    if (!was) return 1;
  }
}

/* SCHED_FIFO while serving the server's requests (see the top); the background pass runs at
 * nice 19 instead, so that it takes CPU time only the guest's own work leaves (under TCG the
 * guest has one emulated CPU, and dockerd starts meanwhile). */
static void serving(int yes) {
  static int now = -1;
  struct sched_param fifo = {.sched_priority = 1}, other = {.sched_priority = 0};
  if (now == yes) return;
  now = yes;
  if (yes) sched_setscheduler(0, SCHED_FIFO, &fifo);
  else sched_setscheduler(0, SCHED_OTHER, &other), setpriority(PRIO_PROCESS, 0, 19);
}

/* Operations through the mount as the injector: fsuid INJECTOR_UID (the 9p client attaches per
 * fsuid), with the capabilities setfsuid clears put back so guest permission checks pass. */
static void become_injector(void) {
  struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct d[2];
  setfsuid(INJECTOR_UID);
  setfsgid(INJECTOR_UID);
  if (syscall(SYS_capget, &h, d) == 0) {
    d[0].effective = d[0].permitted, d[1].effective = d[1].permitted;
    syscall(SYS_capset, &h, d);
  }
}

/* Is the directory holding `p` on this share's mount? An event below a share mounted inside this
 * one belongs to that share's agent: replaying it here would reach the inner share's server,
 * which expects it from its own agent. */
static int parent_on_mount(const char *p) {
  char d[PATH_BYTES];
  struct stat st;
  snprintf(d, sizeof d, "%s", p);
  char *slash = strrchr(d, '/');
  if (slash == NULL) return 0;
  if (slash == d) slash[1] = 0;
  else *slash = 0;
  return stat(d, &st) == 0 && st.st_dev == mount_dev;
}

/* Replay one event; 0 when the operation went through (the server answered it), else -1. */
static int apply(int kind, int isdir, const char *rel, const char *to) {
  char p[PATH_BYTES], q[PATH_BYTES];
  struct timespec mtime_only[2] = {{0, UTIME_OMIT}, {0, UTIME_NOW}};
  int r = -1;
  if (!full_path(p, rel)) return -1;
  if (rel[0] && kind != K_RESCAN && kind != K_UNPIN && !parent_on_mount(p)) return -1;
  switch (kind) {
  case K_CREATE:
    if (!isdir) return mknod(p, S_IFREG | 0644, 0);
    if ((r = mkdir(p, 0755)) == 0) pin(rel, 1);
    return r;
  case K_MODIFY: return utimensat(AT_FDCWD, p, mtime_only, AT_SYMLINK_NOFOLLOW);
  case K_ATTRIB: return utimensat(AT_FDCWD, p, NULL, AT_SYMLINK_NOFOLLOW);
  case K_DELETE:
    if (!isdir) return unlink(p);
    unpin_tree(rel);
    return rmdir(p);
  case K_RENAME:
    if (!full_path(q, to)) return -1;
    if ((r = rename(p, q)) == 0 && isdir) rename_pins(rel, to);
    return r;
  case K_RESCAN:
    r = utimensat(AT_FDCWD, mount_dir, NULL, 0);
    start_pass();
    return r;
  case K_PIN:
    /* Sent before the guest's mkdir returns: until it does, the name's dentry is negative. Poll
     * finely (SCHED_FIFO: a sleep, never a spin, or the mkdir could not finish). */
    for (int i = 0; i < 1000 && !pin(rel, 1); i++) {
      struct timespec t = {0, 100000};
      nanosleep(&t, NULL);
    }
    return pinned(rel) ? 0 : -1;
  case K_PIN_WALK:
    return pin(rel, 1) ? 0 : -1;
  case K_UNPIN:
    unpin_tree(rel);
    return 0;
  }
  return -1;
}

/* Replay one event as apply() does, again while a guest process's lookup of the same name is in
 * the way: with cache=none a name's dentry lives only while a lookup holds it, so a guest stat of
 * a name the host has just created holds a positive dentry for the length of its stat, and a
 * create meeting it fails with EEXIST before the server is asked (a delete, rename or time
 * change meeting a negative one: ENOENT). That lookup ends within a round trip; the retries
 * sleep (SCHED_FIFO: never spin) at most RETRY_MS ms in all, then the event is reported failed.
 * Once an event has used all its retries, the next ones get none until one goes through: a
 * failure that lasts (events below a directory the guest does not have) must not hold a burst
 * of events RETRY_MS each. */
#define RETRY_MS 250
static int retries_spent;
static int replay(int kind, int isdir, const char *rel, const char *to) {
  for (int tries = 0;; tries++) {
    if (apply(kind, isdir, rel, to) == 0) return retries_spent = 0, 0;
    int in_the_way = kind == K_CREATE ? errno == EEXIST
                   : (kind == K_DELETE || kind == K_RENAME || kind == K_MODIFY || kind == K_ATTRIB) && errno == ENOENT;
    if (!in_the_way || retries_spent) return -1;
    if (tries >= RETRY_MS) return retries_spent = 1, -1;
    struct timespec t = {0, 1000000};
    nanosleep(&t, NULL);
  }
}

static int connect_to(const char *host, int port) {
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || inet_pton(AF_INET, host, &sa.sin_addr) != 1) return -1;
  for (int tries = 0; connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0; tries++) {
    if (tries > 50) return -1;
    usleep(100000);
  }
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

static int events_main(int argc, char **argv) {
  if (argc < 6) return fprintf(stderr, "usage: skiff-agent events GATEWAY PORT NAME DIR [MAXPINS]\n"), 2;
  mount_dir = argv[5];
  share_name = argv[4];
  struct stat root;
  if (stat(mount_dir, &root) != 0) return fprintf(stderr, "skiff-agent: %s: %s\n", mount_dir, strerror(errno)), 1;
  mount_dev = root.st_dev;
  if (argc > 6) maxpins = atoi(argv[6]) > 0 ? atoi(argv[6]) : maxpins;
  pins = calloc((size_t)maxpins, sizeof *pins);
  scan = calloc((size_t)maxpins, sizeof *scan);
  serving(1);
  become_injector();
  int s = connect_to(argv[2], atoi(argv[3]));
  if (s < 0 || !pins || !scan) return fprintf(stderr, "skiff-agent: cannot reach %s:%s\n", argv[2], argv[3]), 1;
  dprintf(s, "%s\n", argv[4]);
  static uint8_t buf[2 * PATH_BYTES + 64], acks[sizeof buf / 10 + 1];
  size_t have = 0;
  int ready = 0, passing = 0;
  for (;;) {
    if (passing) { /* the background pass goes on while the server asks nothing */
      struct pollfd pf = {.fd = s, .events = POLLIN};
      if (poll(&pf, 1, 0) == 0) {
        serving(0);
        passing = pin_step();
        continue;
      }
    }
    serving(1);
    ssize_t n = read(s, buf + have, sizeof buf - have);
    if (n <= 0) break;
    have += (size_t)n;
    size_t o = 0, nacks = 0;
    while (have - o >= 10) {
      uint32_t len = buf[o] | buf[o + 1] << 8 | buf[o + 2] << 16 | (uint32_t)buf[o + 3] << 24;
      uint16_t pl = buf[o + 6] | buf[o + 7] << 8, tl = buf[o + 8] | buf[o + 9] << 8;
      if (len != 6u + pl + tl || pl >= PATH_BYTES || tl >= PATH_BYTES) return fprintf(stderr, "skiff-agent: bad frame\n"), 1;
      if (have - o < 4 + len) break;
      char rel[PATH_BYTES], to[PATH_BYTES];
      memcpy(rel, buf + o + 10, pl), rel[pl] = 0;
      memcpy(to, buf + o + 10 + pl, tl), to[tl] = 0;
      int kind = buf[o + 4], isdir = buf[o + 5];
      o += 4 + len;
      if (kind == K_READY && !ready) {
        ready = 1;
        start_pass();
        passing = 1;
        printf("skiff-agent: events of share %s on %s (pinning up to %d directories in the background)\n", argv[4], mount_dir, maxpins);
        fflush(stdout);
        pid_t child = fork();
        if (child > 0) _exit(0);
        setsid();
        continue;
      }
      if (kind == K_PIN_WALK) {
        /* Acknowledge first: the guest's lookup of this directory is waiting for the server's
         * answer, which waits for this byte; the open below then joins that lookup. */
        acks[nacks++] = 0;
        if (write(s, acks, nacks) < 0) return 1;
        nacks = 0;
        apply(kind, isdir, rel, to);
        continue;
      }
      if (kind == K_RESCAN) passing = 1;
      acks[nacks++] = replay(kind, isdir, rel, to) == 0 ? 0 : 1;
    }
    if (nacks > 0 && write(s, acks, nacks) < 0) break;
    memmove(buf, buf + o, have - o);
    have -= o;
  }
  return ready ? 0 : (fprintf(stderr, "skiff-agent: share %s: no events service\n", argv[4]), 1);
}

/* watch mode */
static char **wpaths;
static int nwpaths;

static void watch_tree(int fd, const char *p) {
  int wd = inotify_add_watch(fd, p, IN_ALL_EVENTS | IN_ONLYDIR);
  if (wd < 0) return;
  if (wd >= nwpaths) {
    int n = wd * 2 + 16;
    wpaths = realloc(wpaths, (size_t)n * sizeof *wpaths);
    memset(wpaths + nwpaths, 0, (size_t)(n - nwpaths) * sizeof *wpaths);
    nwpaths = n;
  }
  free(wpaths[wd]);
  wpaths[wd] = strdup(p);
  DIR *d = opendir(p);
  struct dirent *e;
  while (d && (e = readdir(d))) {
    char q[PATH_BYTES];
    if (e->d_type == DT_DIR && strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && snprintf(q, sizeof q, "%s/%s", p, e->d_name) < (int)sizeof q)
      watch_tree(fd, q);
  }
  if (d) closedir(d);
}

static const struct { uint32_t bit; const char *name; } NAMES[] = {
    {IN_ACCESS, "ACCESS"}, {IN_MODIFY, "MODIFY"}, {IN_ATTRIB, "ATTRIB"}, {IN_CLOSE_WRITE, "CLOSE_WRITE"},
    {IN_CLOSE_NOWRITE, "CLOSE_NOWRITE"}, {IN_OPEN, "OPEN"}, {IN_MOVED_FROM, "MOVED_FROM"}, {IN_MOVED_TO, "MOVED_TO"},
    {IN_CREATE, "CREATE"}, {IN_DELETE, "DELETE"}, {IN_DELETE_SELF, "DELETE_SELF"}, {IN_MOVE_SELF, "MOVE_SELF"},
    {IN_Q_OVERFLOW, "Q_OVERFLOW"}, {IN_IGNORED, "IGNORED"}, {IN_ISDIR, "ISDIR"}};

static int watch_main(int argc, char **argv) {
  int fd = inotify_init1(IN_CLOEXEC);
  for (int i = 2; i < argc; i++) watch_tree(fd, argv[i]);
  printf("WATCHING %d\n", argc - 2);
  fflush(stdout);
  static char buf[65536] __attribute__((aligned(8)));
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) return 1;
    for (char *p = buf; p < buf + n;) {
      struct inotify_event *e = (struct inotify_event *)p;
      char names[160] = "", path[PATH_BYTES];
      for (size_t i = 0; i < sizeof NAMES / sizeof NAMES[0]; i++)
        if (e->mask & NAMES[i].bit) snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", names[0] ? "," : "", NAMES[i].name);
      const char *dir = e->wd >= 0 && e->wd < nwpaths && wpaths[e->wd] ? wpaths[e->wd] : "?";
      snprintf(path, sizeof path, e->len ? "%s/%s" : "%s", dir, e->len ? e->name : "");
      printf("EV %s %s\n", names, path);
      if ((e->mask & IN_ISDIR) && (e->mask & (IN_CREATE | IN_MOVED_TO))) {
        watch_tree(fd, path);
        printf("WATCH %s\n", path); /* the new directory is watched from here on */
      }
      p += sizeof *e + e->len;
    }
    fflush(stdout);
  }
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "events") == 0) return events_main(argc, argv);
  if (argc > 1 && strcmp(argv[1], "watch") == 0) return watch_main(argc, argv);
  fprintf(stderr, "usage: skiff-agent events GATEWAY PORT NAME DIR [MAXPINS] | skiff-agent watch DIR...\n");
  return 2;
}
