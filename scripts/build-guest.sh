#!/bin/sh
# Builds Atoll's tiny test guest from Debian packages only (like CirrOS, much smaller): the cloud
# kernel's vmlinuz, taken out of its .deb with dpkg-deb -x (the host's /boot is not touched), and a
# busybox initramfs whose /init prints to the serial console, reads the config drive (iso9660
# labelled config-2 on a virtio disk, as Nova writes it) and runs openstack/latest/user_data when it
# is a shell script. The cloud kernel has virtio, virtio_net, isofs and cdrom as modules, so those go
# into the initramfs. Every NIC is brought up by busybox udhcpc at boot (address, prefix, router and
# MTU from DHCP) and its address is printed to the console. Output: $ATOLL_GUEST_DIR (default ~/.cache/atoll/guest): vmlinuz, initramfs.gz.
# Needs busybox-static, cpio and apt access to linux-image-cloud-amd64 (scripts/install-deps.sh).
set -eu
out="${ATOLL_GUEST_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/atoll/guest}"
mkdir -p "$out"
meta=linux-image-cloud-amd64
pkg=$(apt-cache depends "$meta" 2>/dev/null | awk '/Depends: linux-image-/ { print $2; exit }')
[ -n "$pkg" ] || { echo "build-guest: apt-cache knows no $meta (run apt-get update)" >&2; exit 1; }
if [ -f "$out/vmlinuz" ] && [ -f "$out/initramfs.gz" ] && [ "$(cat "$out/stamp" 2>/dev/null)" = "$pkg v2" ]; then
  echo "$out (up to date: $pkg)"
  exit 0
fi
# busybox-static installs a statically linked /bin/busybox (the guest has no libc).
busybox=/bin/busybox
dpkg -s busybox-static >/dev/null 2>&1 || { echo "build-guest: needs busybox-static" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get download "$pkg" >/dev/null 2>&1) ||
  { echo "build-guest: apt-get download $pkg failed" >&2; exit 1; }
dpkg-deb -x "$tmp"/"$pkg"_*.deb "$tmp/deb"
kver=${pkg#linux-image-}
moddir="$tmp/deb/lib/modules/$kver/kernel"

root="$tmp/root"
mkdir -p "$root/bin" "$root/proc" "$root/sys" "$root/dev" "$root/tmp" "$root/mnt/config" "$root/lib/modules"
cp "$busybox" "$root/bin/busybox"
# Load order follows each module's depends= (virtio_pci needs the ring and both transports; isofs needs cdrom).
# virtio_net needs net_failover, which needs failover.
mods="drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_pci_modern_dev
  drivers/virtio/virtio_pci_legacy_dev drivers/virtio/virtio_pci drivers/block/virtio_blk
  net/core/failover drivers/net/net_failover drivers/net/virtio_net
  drivers/cdrom/cdrom fs/isofs/isofs"
names=""
for m in $mods; do
  cp "$moddir/$m.ko" "$root/lib/modules/"
  names="$names $(basename "$m")"
done
cat >"$root/init" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in$names; do insmod /lib/modules/\$m.ko 2>/dev/null; done
EOF
# udhcpc's hook (busybox runs it with the lease in the environment): address, router and MTU.
cat >"$root/bin/udhcpc.script" <<'EOF'
#!/bin/busybox sh
case "$1" in
deconfig) ip -4 addr flush dev "$interface"; ip link set "$interface" up ;;
bound | renew)
  ip -4 addr flush dev "$interface"
  ip addr add "$ip/$mask" dev "$interface"
  [ -n "$mtu" ] && ip link set "$interface" mtu "$mtu"
  for r in $router; do ip route add default via "$r" dev "$interface"; break; done
  ;;
esac
exit 0
EOF
chmod +x "$root/bin/udhcpc.script"
cat >>"$root/init" <<'EOF'
echo "atoll-guest: booted, kernel $(uname -r), $(grep -c ^processor /proc/cpuinfo) vcpu(s), $(awk '/MemTotal/ { print int($2 / 1024) }' /proc/meminfo) MiB"
ip link set lo up
for n in /sys/class/net/eth*; do
  [ -e "$n" ] || continue
  n=${n##*/}
  udhcpc -i "$n" -s /bin/udhcpc.script -O mtu -n -q -t 10 -T 2 >/dev/null 2>&1 ||
    echo "atoll-guest: $n got no DHCP lease"
  echo "atoll-guest: ip addr $n $(ip -4 -o addr show dev "$n" | awk '{ print $4 }') mtu $(cat "/sys/class/net/$n/mtu")"
done
dev=""
i=0
while [ $i -lt 50 ]; do
  dev=$(findfs LABEL=config-2 2>/dev/null) && break
  i=$((i + 1))
  sleep 0.1
done
if [ -n "$dev" ] && mount -t iso9660 -o ro "$dev" /mnt/config; then
  d=/mnt/config/openstack/latest
  uuid=$(sed -n 's/.*"uuid": *"\([^"]*\)".*/\1/p' "$d/meta_data.json")
  echo "atoll-guest: config drive $dev, instance $uuid"
  [ -f /mnt/config/openstack/latest/meta_data.json ] && hostname "$(sed -n 's/.*"hostname": *"\([^"]*\)".*/\1/p' "$d/meta_data.json")"
  if [ -f "$d/user_data" ] && [ "$(head -c 2 "$d/user_data")" = "#!" ]; then
    cp "$d/user_data" /tmp/user_data && chmod +x /tmp/user_data
    echo "atoll-guest: running user_data"
    sh /tmp/user_data 2>&1
    echo "atoll-guest: user_data exited $?"
  fi
else
  echo "atoll-guest: no config drive"
fi
grep -q atoll.poweroff /proc/cmdline && poweroff -f
echo "atoll-guest: ready"
while :; do sleep 3600; done
EOF
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -9) >"$tmp/initramfs.gz"
cp "$tmp/deb/boot/vmlinuz-$kver" "$tmp/vmlinuz"
mv "$tmp/vmlinuz" "$out/vmlinuz"
mv "$tmp/initramfs.gz" "$out/initramfs.gz"
echo "$pkg v2" >"$out/stamp"
echo "$out"
