/**
 * The docker guest's two init stages (no systemd), as strings the image builder writes.
 *
 * Stage 1, `/init` in the small initramfs (busybox + kernel modules): mount proc/sys/dev, load
 * the modules in dependency order (`/lib/modules/skiff.order`: virtio, ext4, overlay, bridge,
 * netfilter…), mount the read-only system disk (/dev/vda, ext4) under a tmpfs overlay so `/`
 * is writable, and `switch_root` into it with tini as PID 1 (it reaps orphans and forwards
 * signals).
 *
 * Stage 2, `/skiff/init` in the system disk: proc/sys/cgroup2/devpts/shm/run/tmp; the
 * persistent disk (/dev/vdb, ext4, formatted on the host when created) on /var/lib/docker;
 * eth0 from skiff's DHCP server (address, route, resolver, MTU) with the udhcpc script of the
 * small image; host directories shared with `-v` mounted over 9P at the same paths (the small
 * image's MOUNT_SHARES); a filter so only eth0 (skiff) reaches dockerd's TCP port (not the containers);
 * then dockerd (it starts containerd itself) on tcp://0.0.0.0:2375, its log on the console,
 * its userland proxy replaced by GUEST_PROXY (published ports, src/forward/port-service.ts).
 * It prints `SKIFF-DOCKER-UP <addr>` before dockerd starts, `SKIFF-DOCKER-EXIT <status>` if
 * dockerd dies, and reads the console for `SKIFF-POWEROFF`: then dockerd is stopped (SIGTERM,
 * up to 20 s), the disk synced and unmounted, and the VM powered off.
 */

import { PORT_SERVICE_PORT } from "./network.js";
import { MOUNT_SHARES } from "../vm/init.js";

export const DOCKER_PORT = 2375;
export const DOCKER_UP_MARKER = "SKIFF-DOCKER-UP";
export const DOCKER_EXIT_MARKER = "SKIFF-DOCKER-EXIT";
export const POWEROFF_COMMAND = "SKIFF-POWEROFF";
/** Where dockerd finds its userland proxy replacement in the system disk. */
export const GUEST_PROXY_PATH = "/skiff/docker-proxy";

export const STAGE1_INIT = `#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /bin /sbin /usr/bin /usr/sbin /lower /rw /newroot
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo /bin/false > /proc/sys/kernel/modprobe
for m in $(cat /lib/modules/skiff.order); do
  insmod /lib/modules/$m.ko || echo "skiff-init: insmod $m failed"
done
i=0
while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
if ! mount -t ext4 -o ro /dev/vda /lower; then
  echo "${DOCKER_EXIT_MARKER} 90 cannot mount the system disk"; poweroff -f
fi
mount -t tmpfs -o mode=0755 tmpfs /rw
mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work /newroot
umount /proc /sys
mount --move /dev /newroot/dev
exec switch_root /newroot /usr/bin/tini-static -s -g -- /bin/busybox sh /skiff/init
`;

export const STAGE2_INIT = `export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
/bin/busybox --install -s 2>/dev/null
mkdir -p /proc /sys /dev /run /tmp /var/lib/docker /var/run /root /etc
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o mode=1777 shm /dev/shm
mount -t tmpfs -o mode=0755 run /run
mount -t tmpfs -o mode=1777 tmp /tmp
ln -sf /run /var/run 2>/dev/null
if ! mount -t ext4 -o noinit_itable /dev/vdb /var/lib/docker; then
  echo "${DOCKER_EXIT_MARKER} 91 cannot mount the data disk /dev/vdb"; sync; poweroff -f
fi
hostname skiff-docker
echo "127.0.0.1 localhost skiff-docker" > /etc/hosts
ip link set lo up
i=0
while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
ip link set eth0 up
udhcpc -i eth0 -O mtu -n -q -t 10 -T 1 -s /skiff/udhcpc.sh >/dev/null 2>&1 || echo "skiff-init: no DHCP lease on eth0"
addr=$(ip -4 -o addr show dev eth0 | sed -n 's/.* inet \\([^ ]*\\).*/\\1/p')
${MOUNT_SHARES}echo 1 > /proc/sys/net/ipv4/ip_forward
ulimit -n 1048576
gw=$(ip route show default | sed -n 's/^default via \\([0-9.]*\\).*/\\1/p')
# dockerd's TCP port and skiff's port service are for this VM only: containers must not drive
# the daemon or open host ports.
iptables -w -I INPUT -p tcp --dport ${DOCKER_PORT} ! -i eth0 -j DROP
[ -n "$gw" ] && iptables -w -t raw -I PREROUTING ! -i eth0 -d "$gw" -p tcp --dport ${PORT_SERVICE_PORT} -j DROP
echo "${DOCKER_UP_MARKER} $addr"
dockerd -H tcp://0.0.0.0:${DOCKER_PORT} --tls=false --data-root /var/lib/docker --userland-proxy-path ${GUEST_PROXY_PATH} $(cat /skiff/dockerd.args 2>/dev/null) >/dev/console 2>&1 &
dpid=$!
stop() {
  kill -TERM $dpid 2>/dev/null
  i=0
  while kill -0 $dpid 2>/dev/null && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done
  sync
  umount /var/lib/docker 2>/dev/null || umount -l /var/lib/docker
  echo "skiff-init: powering off"
  poweroff -f
}
stty -echo -F /dev/console 2>/dev/null
( while read -r line; do case "$line" in *${POWEROFF_COMMAND}*) kill -USR1 $$; break ;; esac; done < /dev/console ) &
trap stop USR1 TERM
wait $dpid
echo "${DOCKER_EXIT_MARKER} $?"
stop
`;

/**
 * dockerd's userland proxy replaced (`--userland-proxy-path`), one process per published
 * port: ask skiff's port service on the gateway to listen on the host (a busy host port comes
 * back as "1\n<error>" on descriptor 3, dockerd's readiness pipe, and fails `docker run`);
 * DNAT the guest port to the container (for host addresses dockerd's own rules do not cover,
 * such as 127.0.0.1); report "0\n"; on SIGTERM (the container stops) undo both. An IPv6 host
 * address (dockerd asks for `::` beside `0.0.0.0` for each default publish) gets its own host
 * forward, IPv6 only; dockerd passes the container's IPv4 address with it while the userland
 * proxy is on, and a container IPv6 address is refused with a message.
 */
export const GUEST_PROXY = `#!/bin/busybox sh
while [ $# -gt 1 ]; do
  case "$1" in
    -proto) proto=$2 ;; -host-ip) hip=$2 ;; -host-port) hport=$2 ;; -container-ip) cip=$2 ;; -container-port) cport=$2 ;;
  esac
  shift 2
done
case "$cip" in *:*) printf '1\\nskiff publishes into containers over IPv4 only (container address %s)' "$cip" >&3; exit 1 ;; esac
gw=$(ip route show default | sed -n 's/^default via \\([0-9.]*\\).*/\\1/p')
reply=$(echo "OPEN $proto $hip $hport" | nc -w 10 "$gw" ${PORT_SERVICE_PORT} 2>&1)
[ -n "$reply" ] || reply="ERR skiff's port service at $gw:${PORT_SERVICE_PORT} did not answer"
case "$reply" in
  "OK "*) id=\${reply#OK } ;;
  *) printf '1\\n%s' "\${reply#ERR }" >&3; exit 1 ;;
esac
rule="-p $proto --dport $hport -j DNAT --to-destination $cip:$cport"
iptables -w -t nat -I PREROUTING -i eth0 $rule
undo() {
  kill $sleeper 2>/dev/null
  iptables -w -t nat -D PREROUTING -i eth0 $rule
  echo "CLOSE $id" | nc -w 10 "$gw" ${PORT_SERVICE_PORT} >/dev/null 2>&1
  exit 0
}
trap undo TERM INT
printf '0\\n' >&3
exec 3>&-
while :; do sleep 3600 & sleeper=$!; wait $sleeper; done
`;
