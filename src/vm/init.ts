/**
 * The guest's `/init` (PID 1 in the initramfs) and its udhcpc script, as strings the image
 * builder writes into the archive.
 *
 * Boot: mount proc/sys/dev, install busybox's applets, load the virtio-net modules in
 * dependency order (`/lib/modules/skiff.order`), bring `eth0` up through skiff's DHCP server
 * (address, default route, resolver, MTU), print `SKIFF-READY <addr>`; then run the command passed
 * base64-encoded as `skiff.cmd=` on the kernel command line, print `SKIFF-EXIT <status>` and
 * power off — or, without a command, a shell on the console. Before the command, each host
 * directory shared by skiff (`skiff.shares=`, base64 of "NAME GUESTDIR ro|rw" lines) is mounted
 * over 9P from the gateway (the DHCP router), TCP port 564 (src/share/).
 */

/** Marker lines the launcher looks for on the serial console. */
export const READY_MARKER = "SKIFF-READY";
export const EXIT_MARKER = "SKIFF-EXIT";

/**
 * Mount the shares listed on the kernel command line (\`skiff.shares=\`, base64 of "NAME GUESTDIR
 * ro|rw" lines) over 9P from the gateway (the DHCP router), TCP port 564 (src/share/); needs
 * /tmp writable and the 9p/9pnet_fd modules. The docker guest's init runs it too. Where the image
 * has the file-event agent (src/vm/agent.ts), it starts for each share before the command (a
 * read-only share is then a read-only bind of a mount of the agent's), subscribed on the gateway's TCP 5640 (src/share/event-service.ts); \`skiff.pins=N\`
 * bounds the directories it pins.
 */
export const MOUNT_SHARES = `shares=$(sed -n 's/.*skiff\\.shares=\\([^ ]*\\).*/\\1/p' /proc/cmdline)
if [ -n "$shares" ]; then
  gw=$(ip route | sed -n 's/^default via \\([^ ]*\\).*/\\1/p')
  echo "$shares" | base64 -d > /tmp/skiff-shares
  agentpins=$(sed -n 's/.*skiff\\.pins=\\([0-9]*\\).*/\\1/p' /proc/cmdline)
  while read -r name dir mode; do
    o=trans=tcp,port=564,version=9p2000.L,aname=$name,msize=1048576
    if [ "$mode" = ro ] && [ -x /sbin/skiff-agent ]; then
      # The agent's no-op injections need a writable mount (the server refuses every real change
      # on a read-only share): it gets its own at /run/skiff/NAME, and DIR is a read-only bind
      # of it (the same superblock, so the same inodes and the same watchers).
      at=/run/skiff/$name
      mkdir -p "$at" "$dir" && mount -t 9p -o "$o" "$gw" "$at" && /sbin/skiff-agent events "$gw" 5640 "$name" "$at" \${agentpins} &&
        mount -o bind "$at" "$dir" && mount -o remount,bind,ro "$dir" || echo "skiff-init: mounting share $name on $dir failed"
      continue
    fi
    [ "$mode" = ro ] && o=$o,ro
    if mkdir -p "$dir" && mount -t 9p -o "$o" "$gw" "$dir"; then
      [ "$mode" = rw ] && [ -x /sbin/skiff-agent ] && /sbin/skiff-agent events "$gw" 5640 "$name" "$dir" \${agentpins}
    else
      echo "skiff-init: mounting share $name on $dir failed"
    fi
  done < /tmp/skiff-shares
fi
`;

export const INIT_SCRIPT = `#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /tmp /run /etc /bin /sbin /usr/bin /usr/sbin /root
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /tmp
for m in $(cat /lib/modules/skiff.order); do
  insmod /lib/modules/$m.ko || echo "skiff-init: insmod $m failed"
done
hostname skiff-vm
ip link set lo up
i=0
while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
ip link set eth0 up
udhcpc -i eth0 -O mtu -n -q -t 10 -T 1 -s /etc/udhcpc.sh >/dev/null 2>&1 || echo "skiff-init: no DHCP lease on eth0"
addr=$(ip -4 -o addr show dev eth0 | sed -n 's/.* inet \\([^ ]*\\).*/\\1/p')
echo "${READY_MARKER} $addr"
${MOUNT_SHARES}cmd=$(sed -n 's/.*skiff\\.cmd=\\([^ ]*\\).*/\\1/p' /proc/cmdline)
if [ -n "$cmd" ]; then
  echo "$cmd" | base64 -d > /tmp/skiff-cmd.sh
  cd /root
  sh /tmp/skiff-cmd.sh </dev/null
  status=$?
  echo "${EXIT_MARKER} $status"
else
  setsid cttyhack sh -l
fi
sync
poweroff -f
`;

/**
 * udhcpc's event script: apply the bound lease (busybox sets $ip $mask $router $dns, and $mtu
 * from option 26, RFC 2132 §5.1, which /init asks for with `-O mtu`; skiff sends the link's MTU).
 */
export const UDHCPC_SCRIPT = `#!/bin/sh
case "$1" in
  deconfig) ip addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew)
    [ -n "$mtu" ] && ip link set dev "$interface" mtu "$mtu"
    ip addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    [ -n "$router" ] && ip route replace default via "\${router%% *}" dev "$interface"
    : > /etc/resolv.conf
    for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done
    ;;
esac
exit 0
`;
