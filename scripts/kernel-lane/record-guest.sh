#!/bin/sh
# The recording lane's payload (busybox sh, run by guest-init.sh as
# /bin/payload MODE): mounts the Debian root filesystem shared over 9p
# read-only (tag laneroot) with tmpfs on /run and /tmp, the host's output
# directory (tag laneout) on /mnt/out, binds the emulated e1000 to vfio-pci,
# and runs record-clients.sh MODE inside the root (chroot).
#
# /files holds: 9p/order (module names in insmod order), 9p/NAME.ko,
# record-clients.sh, and vfio-sim (static) when MODE is record.
# Exit status: record-clients.sh's, or 3 when the guest side could not be set up.
MODE=${1:-record}
R=/mnt/root

die() { echo "record-guest: $*"; exit 3; }

while read -r m; do
  insmod "/files/9p/$m.ko" || die "insmod $m failed"
done < /files/9p/order
mkdir -p $R
i=0
until mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose laneroot $R 2>/dev/null; do
  i=$((i + 1)); [ $i -lt 20 ] || die "cannot mount the 9p root (tag laneroot)"
  sleep 0.2
done
[ -x $R/usr/bin/dpdk-testpmd ] || die "the 9p root has no /usr/bin/dpdk-testpmd"
mount -t tmpfs -o mode=755 tmpfs $R/run || die "tmpfs on /run"
mount -t tmpfs -o mode=1777 tmpfs $R/tmp || die "tmpfs on /tmp"
mount -t proc proc $R/proc || die "proc"
mount -t sysfs sysfs $R/sys || die "sysfs"
mount -o bind /dev $R/dev || die "bind /dev"
mount -t hugetlbfs -o pagesize=2M hugetlbfs $R/dev/hugepages || die "hugetlbfs"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 laneout $R/mnt/out || die "cannot mount the output share (tag laneout)"

# The emulated NIC (QEMU e1000, 8086:100e): no driver has it (the guest
# loads none), so vfio-pci takes it through driver_override.
NIC=""
for d in /sys/bus/pci/devices/*; do
  if [ "$(cat "$d/vendor"):$(cat "$d/device")" = 0x8086:0x100e ]; then NIC=${d##*/}; break; fi
done
[ -n "$NIC" ] || die "no e1000 (8086:100e) on the PCI bus"
echo vfio-pci > "/sys/bus/pci/devices/$NIC/driver_override" || die "driver_override on $NIC"
echo "$NIC" > /sys/bus/pci/drivers_probe 2>/dev/null
[ "$(basename "$(readlink "/sys/bus/pci/devices/$NIC/driver")")" = vfio-pci ] || die "cannot bind $NIC to vfio-pci"
g=$(basename "$(readlink "/sys/bus/pci/devices/$NIC/iommu_group")")
i=0
while [ ! -c "/dev/vfio/$g" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
export VFIO_NIC="$NIC" VFIO_NIC_GROUP="/dev/vfio/$g"

cp /files/record-clients.sh $R/tmp/
[ ! -f /files/vfio-sim ] || cp /files/vfio-sim $R/tmp/vfio-sim
echo "record-guest: root mounted, e1000 $NIC in group $g, edu $VFIO_DEVICE in $VFIO_GROUP, uptime $(cut -d' ' -f1 /proc/uptime)"
chroot $R /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb \
  VFIO_NIC="$VFIO_NIC" VFIO_NIC_GROUP="$VFIO_NIC_GROUP" VFIO_DEVICE="$VFIO_DEVICE" VFIO_GROUP="$VFIO_GROUP" \
  VFIO_KERNEL_RELEASE="$VFIO_KERNEL_RELEASE" VFIO_LANE_CONFIG="$VFIO_LANE_CONFIG" SWIFT_BACKTRACE=enable=no \
  /bin/bash /tmp/record-clients.sh "$MODE" /mnt/out
rc=$?
sync
umount $R/mnt/out 2>/dev/null
exit $rc
