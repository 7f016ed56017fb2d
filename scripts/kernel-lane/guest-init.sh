#!/bin/busybox sh
# shellcheck shell=dash
# /init of the kernel-lane guest (busybox ash, not bash).
#
# Files it expects, put into the initramfs by run-in-guest.sh:
#   /lane/base.env     LANE_CONFIG, LANE_IOMMU_WORD, LANE_DEVICE_IDS
#                      (cached base archive)
#   /lane/modules      "name param=value ..." per line, in load order
#   /lane/run.env      LANE_TOKEN, LANE_HUGEPAGES, extra module params,
#                      lane_payload() which runs /bin/payload with its args
#   /bin/payload       the program under test; /files: optional data
#
# Everything the host must parse is a line starting with the marker
# "@@VFIOLANE-<token>@@", the token being random per run so that neither the
# payload nor the kernel can forge one by accident.

# There is no /bin/sh or any applet link until busybox creates them.
/bin/busybox mkdir -p /bin /sbin /usr/bin /usr/sbin /proc /sys /dev /tmp /root /files
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root TMPDIR=/tmp

mount -t devtmpfs devtmpfs /dev
# The kernel may have started /init without a console (no /dev/console in
# the archive when it was built without root): attach to it now.
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null || true

# shellcheck source=/dev/null
. /lane/base.env
# shellcheck source=/dev/null
. /lane/run.env

M="@@VFIOLANE-${LANE_TOKEN}@@"
say() { echo "$M $*"; }

# A setup failure ends the run without ever starting the payload; the host
# reports the ERROR line and exits 125.
fail() {
  say "ERROR $*"
  echo "---- last kernel messages ----"
  dmesg | tail -n 25
  poweroff -f
  sleep 10
}

# Hugepages: 2 MiB pages can be reserved at run time; 1 GiB pages only on
# the kernel command line (the host passes hugepagesz=1G hugepages=N).
mkdir -p /dev/hugepages
mount -t hugetlbfs -o pagesize=2M hugetlbfs /dev/hugepages || fail "cannot mount hugetlbfs"
echo "${LANE_HUGEPAGES:-64}" > /proc/sys/vm/nr_hugepages
export VFIO_HUGETLBFS_2M=/dev/hugepages
if [ -d /sys/kernel/mm/hugepages/hugepages-1048576kB ] &&
   [ "$(cat /sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages)" -gt 0 ]; then
  mkdir -p /dev/hugepages-1G
  mount -t hugetlbfs -o pagesize=1G hugetlbfs /dev/hugepages-1G && export VFIO_HUGETLBFS_1G=/dev/hugepages-1G
fi
say "INFO hugepages_2M=$(cat /proc/sys/vm/nr_hugepages) hugepages_1G=$(cat /sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages 2>/dev/null || echo 0)"

# Modules in dependency order. LANE_MODPARAMS (from the run) holds
# "module.param=value" words added to the ones the config fixes.
while read -r mod params; do
  [ -n "$mod" ] || continue
  for mp in $LANE_MODPARAMS; do
    case $mp in "$mod".*) params="$params ${mp#"$mod".}" ;; esac
  done
  # shellcheck disable=SC2086  # params are separate words on purpose
  insmod "/lib/modules/$mod.ko" $params || fail "insmod $mod $params failed"
done < /lane/modules

# The victim devices, in the order LANE_DEVICE_IDS names their IDs (every
# function matching an ID, by PCI address): three QEMU `edu` (1234:11e8), then
# an `ivshmem-plain` (1af4:1110) with a RAM-backed BAR2. Nothing else claims
# them. Each is bound to vfio-pci through driver_override.
devs=""
for id in ${LANE_DEVICE_IDS:-1234:11e8}; do
  n=0
  for d in /sys/bus/pci/devices/*; do
    if [ "$(cat "$d/vendor")" = "0x${id%%:*}" ] && [ "$(cat "$d/device")" = "0x${id#*:}" ]; then
      devs="$devs ${d##*/}"
      n=$((n + 1))
    fi
  done
  [ $n -gt 0 ] || fail "no device $id on the PCI bus"
done

# bind_vfio BDF: prints the IOMMU group number once /dev/vfio/N exists.
bind_vfio() {
  sysdev=/sys/bus/pci/devices/$1
  if [ -e "$sysdev/driver" ]; then
    echo "$1" > "$sysdev/driver/unbind" || fail "cannot unbind $1 from $(basename "$(readlink "$sysdev/driver")")"
  fi
  echo vfio-pci > "$sysdev/driver_override" || fail "cannot set driver_override on $1"
  # drivers_probe reports an error when vfio-pci refuses the device (e.g. no
  # IOMMU group); the check below gives the clearer message.
  echo "$1" > /sys/bus/pci/drivers_probe 2>/dev/null || true
  drv=$(basename "$(readlink "$sysdev/driver" 2>/dev/null)" 2>/dev/null)
  if [ "$drv" != vfio-pci ]; then
    if [ ! -e "$sysdev/iommu_group" ]; then
      fail "binding $1 to vfio-pci failed: the device has no IOMMU group (is the IOMMU enabled and its driver loaded?)"
    fi
    fail "binding $1 to vfio-pci failed (driver now: ${drv:-none})"
  fi
  # With virtio-iommu the group only appears once a driver probes the
  # device, so it is looked up after binding.
  [ -e "$sysdev/iommu_group" ] || fail "$1 is bound to vfio-pci but has no IOMMU group"
  g=$(basename "$(readlink "$sysdev/iommu_group")")
  i=0
  while [ ! -c "/dev/vfio/$g" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
  [ -c "/dev/vfio/$g" ] || fail "/dev/vfio/$g did not appear after binding $1"
}

VFIO_GROUPS="" VFIO_DEVICES="" VFIO_IVSHMEM_BAR="" groups="" shared=""
for dev in $devs; do
  bind_vfio "$dev"
  case " $groups " in *" $g "*) shared="$shared $dev" ;; esac
  groups="$groups $g"
  VFIO_GROUPS="$VFIO_GROUPS /dev/vfio/$g"
  VFIO_DEVICES="$VFIO_DEVICES $dev"
  if [ -z "$VFIO_IVSHMEM_BAR" ] && [ "$(cat "/sys/bus/pci/devices/$dev/vendor")" = 0x1af4 ] &&
     [ -e "/sys/bus/pci/devices/$dev/resource2" ]; then
    VFIO_IVSHMEM_BAR=/sys/bus/pci/devices/$dev/resource2
    # Line 3 of `resource` is BAR2: start end flags.
    # shellcheck disable=SC2046  # the three words of the line
    set -- $(sed -n 3p "/sys/bus/pci/devices/$dev/resource")
    VFIO_IVSHMEM_BAR_SIZE=$(($2 - $1 + 1))
  fi
done
# A group shared by two of them is legal for VFIO but not what the lane
# wants (each device its own container): say so on the console.
[ -z "$shared" ] || say "WARN devices sharing an IOMMU group with an earlier one:$shared"
VFIO_GROUPS=${VFIO_GROUPS# } VFIO_DEVICES=${VFIO_DEVICES# }
dev=${devs# }; dev=${dev%% *}
group=${groups# }; group=${group%% *}

export VFIO_GROUPS VFIO_DEVICES
export VFIO_GROUP="/dev/vfio/$group"
export VFIO_DEVICE="$dev"
if [ -n "$VFIO_IVSHMEM_BAR" ]; then export VFIO_IVSHMEM_BAR VFIO_IVSHMEM_BAR_SIZE; fi
export VFIO_LANE_CONFIG="$LANE_CONFIG"
export VFIO_LANE_IOMMU="$LANE_IOMMU_WORD"
VFIO_KERNEL_RELEASE=$(uname -r)
export VFIO_KERNEL_RELEASE
# A crashing Swift program would otherwise start its backtracer, which can
# take minutes under TCG.
export SWIFT_BACKTRACE="${SWIFT_BACKTRACE:-enable=no}"
say "INFO config=$LANE_CONFIG kernel=$VFIO_KERNEL_RELEASE iommu=$LANE_IOMMU_WORD devices=$(echo "$VFIO_DEVICES" | tr ' ' ,) groups=$(echo "${groups# }" | tr ' ' ,) uptime=$(cut -d' ' -f1 /proc/uptime)"

# Keep kernel messages out of the payload's output; they are shown after it.
dmesg_lines=$(dmesg | wc -l)
echo 1 > /proc/sys/kernel/printk
# Pass the payload's bytes through unchanged (no \n -> \r\n).
stty -F /dev/console -onlcr 2>/dev/null || true

cd /
say BEGIN
lane_payload </dev/null
rc=$?
# Our newline ends an unterminated last line; the host removes exactly one
# newline before END, so the payload's output comes back byte for byte.
echo
say END
say "EXIT $rc"

stty -F /dev/console onlcr 2>/dev/null || true
dmesg | tail -n +"$((dmesg_lines + 1))" | while IFS= read -r line; do say "DMESG $line"; done
say "DONE uptime=$(cut -d' ' -f1 /proc/uptime)"
poweroff -f
sleep 10
