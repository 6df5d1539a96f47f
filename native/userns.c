/*
 * skiff-userns: the small helper executable (not part of the addon) through which an unprivileged
 * skiff gets a TAP device inside a user + network namespace. skiff itself stays in the initial
 * namespaces, where it opens its host sockets; only this helper moves, and it hands the TAP's
 * descriptor back over a Unix socket (SCM_RIGHTS, unix(7)). A separate process is needed because
 * setns(2)/unshare(2) with CLONE_NEWUSER require a single-threaded caller, which Node never is.
 *
 * fd 3 is a SOCK_SEQPACKET socket to skiff (native/fdpass.c): one message per datagram.
 *   helper -> skiff: "U" (after unshare: write my uid/gid maps), "T" + SCM_RIGHTS(tap fd),
 *                    "R" (namespaces ready), "E<step>:<errno>" (failed; exits 1)
 *   skiff -> helper: "M" (maps written); EOF means give up (or, for `hold`, let go).
 *
 * Modes:
 *   skiff-userns enter [--userns PATH] --netns PATH --tap NAME [--vnet-hdr] [CONFIG]
 *       slirp4netns's way in (its nsenter + child): setns(2) into PATH's user namespace (a
 *       failure there is ignored, as slirp4netns does: the network namespace may be ours
 *       already) and network namespace, attach/create the TAP, send it, configure, exit 0.
 *   skiff-userns hold
 *       `skiff run` as a user: unshare(CLONE_NEWUSER), wait for skiff to write the maps, then
 *       unshare(CLONE_NEWNET | CLONE_NEWNS) (mounts made private), say "R" and hold the
 *       namespaces until skiff closes the socket (or dies). skiff then enters them through
 *       /proc/PID/ns/{user,net,mnt} like any slirp4netns caller: `enter` for the TAP, nsenter(1) for the rest.
 *   CONFIG: --mtu N --mac AA:BB:CC:DD:EE:FF --addr A.B.C.D --mask A.B.C.D --gw A.B.C.D
 *       (what slirp4netns --configure does: lo up; the TAP up with MTU, MAC, address, netmask;
 *       a default route via the gateway; all through the classic ioctls of netdevice(7) and
 *       SIOCADDRT, route(8)'s interface). With no --addr nothing is configured.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <net/route.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#define SOCK 3

struct conf {
  const char *tap, *userns, *netns, *mac;
  int vnet, mtu;
  struct in_addr addr, mask, gw;
  int have_addr;
};

/* Report a failed step to skiff (which explains it) and exit. */
static void fail(const char *step, int err) {
  char msg[256];
  int n = snprintf(msg, sizeof msg, "E%s:%d", step, err);
  if (send(SOCK, msg, (size_t)n, MSG_NOSIGNAL) < 0) fprintf(stderr, "skiff-userns: %s: %s\n", step, strerror(err));
  _exit(1);
}

static void say(const char *what) {
  if (send(SOCK, what, strlen(what), MSG_NOSIGNAL) < 0) _exit(1);
}

/* Wait for one message from skiff; exit quietly on EOF (skiff gave up) or anything unexpected. */
static void await(char expected) {
  char c;
  ssize_t n;
  do n = recv(SOCK, &c, 1, 0);
  while (n < 0 && errno == EINTR);
  if (n != 1 || c != expected) _exit(1);
}

static int open_tap(const struct conf *c) {
  struct ifreq ifr;
  struct msghdr msg;
  struct iovec iov;
  char cbuf[CMSG_SPACE(sizeof(int))];
  struct cmsghdr *cm;
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) fail("open-tun", errno);
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | (c->vnet ? IFF_VNET_HDR : 0);
  strncpy(ifr.ifr_name, c->tap, IFNAMSIZ - 1);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) fail("tunsetiff", errno);
  memset(&msg, 0, sizeof msg);
  iov.iov_base = "T";
  iov.iov_len = 1;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = cbuf;
  msg.msg_controllen = sizeof cbuf;
  cm = CMSG_FIRSTHDR(&msg);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cm), &fd, sizeof fd);
  if (sendmsg(SOCK, &msg, MSG_NOSIGNAL) < 0) fail("sendmsg", errno);
  return fd;
}

static void set_ipv4(struct sockaddr *sa, struct in_addr a) {
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_addr = a;
  memcpy(sa, &sin, sizeof sin);
}

/* netdevice(7) ioctls on a datagram socket of the current network namespace. */
static void configure(const struct conf *c) {
  struct ifreq ifr;
  struct rtentry rt;
  unsigned m[6];
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) fail("socket", errno);
  memset(&ifr, 0, sizeof ifr);
  strcpy(ifr.ifr_name, "lo");
  ifr.ifr_flags = IFF_UP | IFF_RUNNING;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) fail("lo-up", errno);
  memset(&ifr, 0, sizeof ifr);
  strncpy(ifr.ifr_name, c->tap, IFNAMSIZ - 1);
  if (c->mac) {
    if (sscanf(c->mac, "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) != 6) fail("mac-syntax", EINVAL);
    ifr.ifr_hwaddr.sa_family = 1; /* ARPHRD_ETHER */
    for (int i = 0; i < 6; i++) ifr.ifr_hwaddr.sa_data[i] = (char)m[i];
    if (ioctl(s, SIOCSIFHWADDR, &ifr) < 0) fail("set-mac", errno);
  }
  if (c->mtu > 0) {
    ifr.ifr_mtu = c->mtu;
    if (ioctl(s, SIOCSIFMTU, &ifr) < 0) fail("set-mtu", errno);
  }
  ifr.ifr_flags = IFF_UP | IFF_RUNNING;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) fail("tap-up", errno);
  set_ipv4(&ifr.ifr_addr, c->addr);
  if (ioctl(s, SIOCSIFADDR, &ifr) < 0) fail("set-addr", errno);
  set_ipv4(&ifr.ifr_netmask, c->mask);
  if (ioctl(s, SIOCSIFNETMASK, &ifr) < 0) fail("set-mask", errno);
  memset(&rt, 0, sizeof rt);
  set_ipv4(&rt.rt_gateway, c->gw);
  set_ipv4(&rt.rt_dst, (struct in_addr){0});
  set_ipv4(&rt.rt_genmask, (struct in_addr){0});
  rt.rt_flags = RTF_UP | RTF_GATEWAY;
  rt.rt_dev = (char *)c->tap;
  if (ioctl(s, SIOCADDRT, &rt) < 0) fail("add-route", errno);
  close(s);
}

static void enter(const struct conf *c) {
  int user = -1, net;
  if (c->userns && (user = open(c->userns, O_RDONLY | O_CLOEXEC)) < 0) fail("open-userns", errno);
  if ((net = open(c->netns, O_RDONLY | O_CLOEXEC)) < 0) fail("open-netns", errno);
  if (user >= 0) (void)setns(user, CLONE_NEWUSER); /* EINVAL when it is ours already */
  if (setns(net, CLONE_NEWNET) < 0) fail("setns-net", errno);
}

static int hold(void) {
  char c;
  ssize_t n;
  if (unshare(CLONE_NEWUSER) < 0) fail("unshare-user", errno);
  say("U");
  await('M');
  if (unshare(CLONE_NEWNET | CLONE_NEWNS) < 0) fail("unshare-net", errno);
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) fail("mount-private", errno);
  say("R");
  for (;;) { /* until EOF: skiff let go, or died */
    n = recv(SOCK, &c, 1, 0);
    if (n == 0 || (n < 0 && errno != EINTR)) return 0;
  }
}

static int need_addr(const char *v, struct in_addr *a) {
  if (!v || inet_pton(AF_INET, v, a) != 1) {
    fprintf(stderr, "skiff-userns: bad IPv4 address %s\n", v ? v : "(none)");
    exit(2);
  }
  return 1;
}

int main(int argc, char **argv) {
  struct conf c;
  int i, tap;
  memset(&c, 0, sizeof c);
  if (argc == 2 && !strcmp(argv[1], "hold")) return hold();
  if (argc < 2 || strcmp(argv[1], "enter")) {
    fprintf(stderr, "usage: skiff-userns enter|hold ... (run by skiff, see native/userns.c)\n");
    return 2;
  }
  for (i = 2; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--vnet-hdr")) { c.vnet = 1; continue; }
    if (!v) { fprintf(stderr, "skiff-userns: %s needs a value\n", a); return 2; }
    i++;
    if (!strcmp(a, "--tap")) c.tap = v;
    else if (!strcmp(a, "--userns")) c.userns = v;
    else if (!strcmp(a, "--netns")) c.netns = v;
    else if (!strcmp(a, "--mac")) c.mac = v;
    else if (!strcmp(a, "--mtu")) c.mtu = atoi(v);
    else if (!strcmp(a, "--addr")) c.have_addr = need_addr(v, &c.addr);
    else if (!strcmp(a, "--mask")) need_addr(v, &c.mask);
    else if (!strcmp(a, "--gw")) need_addr(v, &c.gw);
    else { fprintf(stderr, "skiff-userns: unknown option %s\n", a); return 2; }
  }
  if (!c.tap || strlen(c.tap) >= IFNAMSIZ || !c.netns) {
    fprintf(stderr, "skiff-userns: missing --tap or --netns\n");
    return 2;
  }
  enter(&c);
  tap = open_tap(&c);
  if (c.have_addr) configure(&c);
  close(tap);
  return 0;
}
