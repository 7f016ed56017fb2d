#define _GNU_SOURCE
#include "cvfiosys.h"

#include <errno.h>
#include <linux/capability.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef MAP_HUGE_SHIFT
#define MAP_HUGE_SHIFT 26
#endif

int cvfio_ioctl_ptr(int fd, unsigned long request, void *arg) {
    int r = ioctl(fd, request, arg);
    return r < 0 ? -errno : r;
}

int cvfio_ioctl_val(int fd, unsigned long request, unsigned long arg) {
    int r = ioctl(fd, request, arg);
    return r < 0 ? -errno : r;
}

static int caps(struct __user_cap_data_struct data[2], int set) {
    struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
    long r = syscall(set ? SYS_capset : SYS_capget, &header, data);
    return r < 0 ? -errno : 0;
}

int cvfio_set_cap_ipc_lock(int on) {
    struct __user_cap_data_struct data[2];
    int r = caps(data, 0);
    if (r < 0) return r;
    if (on) data[0].effective |= 1u << CAP_IPC_LOCK;
    else data[0].effective &= ~(1u << CAP_IPC_LOCK);
    return caps(data, 1);
}

int cvfio_has_cap_ipc_lock(void) {
    struct __user_cap_data_struct data[2];
    int r = caps(data, 0);
    if (r < 0) return r;
    return (data[0].effective >> CAP_IPC_LOCK) & 1;
}

int cvfio_set_memlock(uint64_t bytes, int unlimited) {
    struct rlimit lim;
    if (getrlimit(RLIMIT_MEMLOCK, &lim) < 0) return -errno;
    lim.rlim_cur = unlimited ? RLIM_INFINITY : (rlim_t)bytes;
    if (lim.rlim_max != RLIM_INFINITY && lim.rlim_max < lim.rlim_cur) lim.rlim_max = lim.rlim_cur;
    return setrlimit(RLIMIT_MEMLOCK, &lim) < 0 ? -errno : 0;
}

int cvfio_mmap_fixed(uint64_t addr, uint64_t length, int page_shift) {
    int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE | MAP_POPULATE;
    if (page_shift > 12) flags |= MAP_HUGETLB | (page_shift << MAP_HUGE_SHIFT);
    void *p = mmap((void *)(uintptr_t)addr, (size_t)length, PROT_READ | PROT_WRITE, flags, -1, 0);
    if (p == MAP_FAILED) return -errno;
    if ((uint64_t)(uintptr_t)p != addr) { munmap(p, (size_t)length); return -EEXIST; }
    return 0;
}

int cvfio_munmap(uint64_t addr, uint64_t length) {
    return munmap((void *)(uintptr_t)addr, (size_t)length) < 0 ? -errno : 0;
}
