/* Thin system calls the kernel backend needs that Swift's Glibc module does
 * not import: capset, setrlimit(RLIMIT_MEMLOCK), mmap flags. Each function
 * returns 0 or -errno. */
#ifndef CVFIOSYS_H
#define CVFIOSYS_H

#include <stdint.h>
/* The uapi structs come from the kernel's own header, so their layout is
 * the kernel's, not a copy of it. */
#include <linux/vfio.h>

/* The kernel's request structs end in a flexible `data[]` that holds the
 * struct vfio_bitmap: placing them first is what the ioctls expect. */
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wgnu-variable-sized-type-not-at-end"
/* An UNMAP_DMA with GET_DIRTY_BITMAP, or a DIRTY_PAGES GET_BITMAP: the
 * request header followed by its struct vfio_bitmap, as both ioctls take. */
struct cvfio_unmap_bitmap {
    struct vfio_iommu_type1_dma_unmap unmap;
    struct vfio_bitmap bitmap;
};
struct cvfio_dirty_bitmap {
    struct vfio_iommu_type1_dirty_bitmap dirty;
    struct vfio_iommu_type1_dirty_bitmap_get range;
};
#pragma clang diagnostic pop

int cvfio_ioctl_ptr(int fd, unsigned long request, void *arg);
int cvfio_ioctl_val(int fd, unsigned long request, unsigned long arg);
/* Raise or drop CAP_IPC_LOCK in the effective set (permitted unchanged). */
int cvfio_set_cap_ipc_lock(int on);
/* 1 when CAP_IPC_LOCK is effective, 0 when not, -errno on error. */
int cvfio_has_cap_ipc_lock(void);
/* RLIMIT_MEMLOCK soft limit; unlimited when `unlimited` is nonzero. */
int cvfio_set_memlock(uint64_t bytes, int unlimited);
/* RLIMIT_MEMLOCK soft limit into *bytes: 0, or 1 when unlimited (*bytes
 * untouched), or -errno. */
int cvfio_get_memlock(uint64_t *bytes);
/* Anonymous memory at exactly `addr` (never replacing a mapping), backed by
 * pages of 2^page_shift bytes (12: normal, 21/30: hugetlb), populated.
 * order (4K pages only): 0 populate at once (transparent hugepages allowed),
 * 1 no transparent hugepages, pages faulted in ascending order, 2 the same
 * in descending order, 3 transparent hugepages asked for (MADV_HUGEPAGE),
 * pages faulted in ascending order. */
int cvfio_mmap_fixed(uint64_t addr, uint64_t length, int page_shift, int order);
int cvfio_munmap(uint64_t addr, uint64_t length);
/* Anonymous memory anywhere, locked with mlock(2); its address in *addr. */
int cvfio_mmap_locked(uint64_t length, uint64_t *addr);
/* A shared mapping of `length` bytes of the file at `path` (a PCI BAR's
 * sysfs resource file) at exactly `addr`: device memory, VM_PFNMAP. */
int cvfio_mmap_file_fixed(const char *path, uint64_t addr, uint64_t length);
/* A serial port in raw mode (no echo, no line editing, 8N1), for talking
 * to a program on the host; the fd or -errno. */
int cvfio_open_raw_tty(const char *path);
/* Reads one line (without its newline) into buf, NUL-terminated; waits at
 * most timeout_ms in total. The length, or -errno (-ETIMEDOUT, -EMSGSIZE). */
int cvfio_read_line(int fd, char *buf, int cap, int timeout_ms);

/* On SIGINT, SIGTERM or SIGHUP: UNMAP_ALL on `container_fd`, unset the
 * container of each of the `ngroups` group fds (at most 8), close them, then
 * exit with 128 + the signal. Only async-signal-safe calls run in the
 * handler. Pass -1 to disarm. */
void cvfio_arm_cleanup(int container_fd, const int *group_fds, int ngroups);
/* On SIGINT, SIGTERM or SIGHUP: write values[i] to paths[i] (at most 4
 * module parameters), unlink `record`, then exit with 128 + the signal.
 * n = 0 disarms. */
void cvfio_arm_restore(const char *const *paths, const char *const *values, int n, const char *record);
/* In a forked child: drop the parent's restore table, and die (SIGKILL) when
 * the parent does; exits at once if the parent is already gone. 0 or -errno. */
int cvfio_die_with_parent(int parent);
/* open(path, O_RDWR|O_CREAT, 0600) and flock(LOCK_EX), with LOCK_NB unless
 * `wait`: the fd (which holds the lock until closed), or -errno
 * (-EWOULDBLOCK when another process holds it). */
int cvfio_lock_file(const char *path, int wait);
/* Writes `text` to path.new, fsyncs it and renames it over `path`. */
int cvfio_replace_file(const char *path, const char *text);
/* Dies as a crashing program does (a trap instruction: SIGILL). */
void cvfio_trap(void) __attribute__((noreturn));

/* The numbers of <linux/vfio.h> that the Swift side (VFIOCore's UAPI.swift,
 * Extension.swift, IOMMUInfo.swift) writes down itself, so a test can hold
 * the two side by side: Swift imports no function-like macro, and the
 * ioctl numbers are all `_IO(VFIO_TYPE, VFIO_BASE + n)`. -1 for a name
 * this system's header does not define (an older linux-libc-dev). */
enum cvfio_uapi_name {
    CVFIO_VFIO_GET_API_VERSION,
    CVFIO_VFIO_CHECK_EXTENSION,
    CVFIO_VFIO_SET_IOMMU,
    CVFIO_VFIO_GROUP_GET_STATUS,
    CVFIO_VFIO_GROUP_SET_CONTAINER,
    CVFIO_VFIO_GROUP_UNSET_CONTAINER,
    CVFIO_VFIO_GROUP_GET_DEVICE_FD,
    CVFIO_VFIO_IOMMU_GET_INFO,
    CVFIO_VFIO_IOMMU_MAP_DMA,
    CVFIO_VFIO_IOMMU_UNMAP_DMA,
    CVFIO_VFIO_IOMMU_DIRTY_PAGES,
    CVFIO_VFIO_TYPE,
    CVFIO_VFIO_BASE,
    CVFIO_VFIO_API_VERSION,
    CVFIO_VFIO_TYPE1_IOMMU,
    CVFIO_VFIO_SPAPR_TCE_IOMMU,
    CVFIO_VFIO_TYPE1v2_IOMMU,
    CVFIO_VFIO_DMA_CC_IOMMU,
    CVFIO_VFIO_EEH,
    CVFIO_VFIO_TYPE1_NESTING_IOMMU,
    CVFIO_VFIO_SPAPR_TCE_v2_IOMMU,
    CVFIO_VFIO_NOIOMMU_IOMMU,
    CVFIO_VFIO_UNMAP_ALL,
    CVFIO_VFIO_UPDATE_VADDR,
    CVFIO_VFIO_DMA_MAP_FLAG_READ,
    CVFIO_VFIO_DMA_MAP_FLAG_WRITE,
    CVFIO_VFIO_DMA_MAP_FLAG_VADDR,
    CVFIO_VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP,
    CVFIO_VFIO_DMA_UNMAP_FLAG_ALL,
    CVFIO_VFIO_DMA_UNMAP_FLAG_VADDR,
    CVFIO_VFIO_IOMMU_DIRTY_PAGES_FLAG_START,
    CVFIO_VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP,
    CVFIO_VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP,
    CVFIO_VFIO_IOMMU_INFO_PGSIZES,
    CVFIO_VFIO_IOMMU_INFO_CAPS,
    CVFIO_VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
    CVFIO_VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION,
    CVFIO_VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
    CVFIO_UAPI_COUNT
};

static inline long long cvfio_uapi_value(enum cvfio_uapi_name which) {
    switch (which) {
    case CVFIO_VFIO_GET_API_VERSION:
#ifdef VFIO_GET_API_VERSION
        return VFIO_GET_API_VERSION;
#else
        return -1;
#endif
    case CVFIO_VFIO_CHECK_EXTENSION:
#ifdef VFIO_CHECK_EXTENSION
        return VFIO_CHECK_EXTENSION;
#else
        return -1;
#endif
    case CVFIO_VFIO_SET_IOMMU:
#ifdef VFIO_SET_IOMMU
        return VFIO_SET_IOMMU;
#else
        return -1;
#endif
    case CVFIO_VFIO_GROUP_GET_STATUS:
#ifdef VFIO_GROUP_GET_STATUS
        return VFIO_GROUP_GET_STATUS;
#else
        return -1;
#endif
    case CVFIO_VFIO_GROUP_SET_CONTAINER:
#ifdef VFIO_GROUP_SET_CONTAINER
        return VFIO_GROUP_SET_CONTAINER;
#else
        return -1;
#endif
    case CVFIO_VFIO_GROUP_UNSET_CONTAINER:
#ifdef VFIO_GROUP_UNSET_CONTAINER
        return VFIO_GROUP_UNSET_CONTAINER;
#else
        return -1;
#endif
    case CVFIO_VFIO_GROUP_GET_DEVICE_FD:
#ifdef VFIO_GROUP_GET_DEVICE_FD
        return VFIO_GROUP_GET_DEVICE_FD;
#else
        return -1;
#endif
    case CVFIO_VFIO_IOMMU_GET_INFO:
#ifdef VFIO_IOMMU_GET_INFO
        return VFIO_IOMMU_GET_INFO;
#else
        return -1;
#endif
    case CVFIO_VFIO_IOMMU_MAP_DMA:
#ifdef VFIO_IOMMU_MAP_DMA
        return VFIO_IOMMU_MAP_DMA;
#else
        return -1;
#endif
    case CVFIO_VFIO_IOMMU_UNMAP_DMA:
#ifdef VFIO_IOMMU_UNMAP_DMA
        return VFIO_IOMMU_UNMAP_DMA;
#else
        return -1;
#endif
    case CVFIO_VFIO_IOMMU_DIRTY_PAGES:
#ifdef VFIO_IOMMU_DIRTY_PAGES
        return VFIO_IOMMU_DIRTY_PAGES;
#else
        return -1;
#endif
    case CVFIO_VFIO_TYPE:
#ifdef VFIO_TYPE
        return VFIO_TYPE;
#else
        return -1;
#endif
    case CVFIO_VFIO_BASE:
#ifdef VFIO_BASE
        return VFIO_BASE;
#else
        return -1;
#endif
    case CVFIO_VFIO_API_VERSION:
#ifdef VFIO_API_VERSION
        return VFIO_API_VERSION;
#else
        return -1;
#endif
    case CVFIO_VFIO_TYPE1_IOMMU:
#ifdef VFIO_TYPE1_IOMMU
        return VFIO_TYPE1_IOMMU;
#else
        return -1;
#endif
    case CVFIO_VFIO_SPAPR_TCE_IOMMU:
#ifdef VFIO_SPAPR_TCE_IOMMU
        return VFIO_SPAPR_TCE_IOMMU;
#else
        return -1;
#endif
    case CVFIO_VFIO_TYPE1v2_IOMMU:
#ifdef VFIO_TYPE1v2_IOMMU
        return VFIO_TYPE1v2_IOMMU;
#else
        return -1;
#endif
    case CVFIO_VFIO_DMA_CC_IOMMU:
#ifdef VFIO_DMA_CC_IOMMU
        return VFIO_DMA_CC_IOMMU;
#else
        return -1;
#endif
    case CVFIO_VFIO_EEH:
#ifdef VFIO_EEH
        return VFIO_EEH;
#else
        return -1;
#endif
    case CVFIO_VFIO_TYPE1_NESTING_IOMMU:
        /* Renamed when the nesting type was retired (6.13 headers). */
#if defined(VFIO_TYPE1_NESTING_IOMMU)
        return VFIO_TYPE1_NESTING_IOMMU;
#elif defined(__VFIO_RESERVED_TYPE1_NESTING_IOMMU)
        return __VFIO_RESERVED_TYPE1_NESTING_IOMMU;
#else
        return -1;
#endif
    case CVFIO_VFIO_SPAPR_TCE_v2_IOMMU:
#ifdef VFIO_SPAPR_TCE_v2_IOMMU
        return VFIO_SPAPR_TCE_v2_IOMMU;
#else
        return -1;
#endif
    case CVFIO_VFIO_NOIOMMU_IOMMU:
#ifdef VFIO_NOIOMMU_IOMMU
        return VFIO_NOIOMMU_IOMMU;
#else
        return -1;
#endif
    case CVFIO_VFIO_UNMAP_ALL:
#ifdef VFIO_UNMAP_ALL
        return VFIO_UNMAP_ALL;
#else
        return -1;
#endif
    case CVFIO_VFIO_UPDATE_VADDR:
#ifdef VFIO_UPDATE_VADDR
        return VFIO_UPDATE_VADDR;
#else
        return -1;
#endif
    case CVFIO_VFIO_DMA_MAP_FLAG_READ:
#ifdef VFIO_DMA_MAP_FLAG_READ
        return VFIO_DMA_MAP_FLAG_READ;
#else
        return -1;
#endif
    case CVFIO_VFIO_DMA_MAP_FLAG_WRITE:
#ifdef VFIO_DMA_MAP_FLAG_WRITE
        return VFIO_DMA_MAP_FLAG_WRITE;
#else
        return -1;
#endif
    case CVFIO_VFIO_DMA_MAP_FLAG_VADDR:
#ifdef VFIO_DMA_MAP_FLAG_VADDR
        return VFIO_DMA_MAP_FLAG_VADDR;
#else
        return -1;
#endif
    case CVFIO_VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP:
#ifdef VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP
        return VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP;
#else
        return -1;
#endif
    case CVFIO_VFIO_DMA_UNMAP_FLAG_ALL:
#ifdef VFIO_DMA_UNMAP_FLAG_ALL
        return VFIO_DMA_UNMAP_FLAG_ALL;
#else
        return -1;
#endif
    case CVFIO_VFIO_DMA_UNMAP_FLAG_VADDR:
#ifdef VFIO_DMA_UNMAP_FLAG_VADDR
        return VFIO_DMA_UNMAP_FLAG_VADDR;
#else
        return -1;
#endif
    case CVFIO_VFIO_IOMMU_DIRTY_PAGES_FLAG_START:
#ifdef VFIO_IOMMU_DIRTY_PAGES_FLAG_START
        return VFIO_IOMMU_DIRTY_PAGES_FLAG_START;
#else
        return -1;
#endif
    case CVFIO_VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP:
#ifdef VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP
        return VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP;
#else
        return -1;
#endif
    case CVFIO_VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP:
#ifdef VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP
        return VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP;
#else
        return -1;
#endif
    case CVFIO_VFIO_IOMMU_INFO_PGSIZES:
#ifdef VFIO_IOMMU_INFO_PGSIZES
        return VFIO_IOMMU_INFO_PGSIZES;
#else
        return -1;
#endif
    case CVFIO_VFIO_IOMMU_INFO_CAPS:
#ifdef VFIO_IOMMU_INFO_CAPS
        return VFIO_IOMMU_INFO_CAPS;
#else
        return -1;
#endif
    case CVFIO_VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE:
#ifdef VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE
        return VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE;
#else
        return -1;
#endif
    case CVFIO_VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION:
#ifdef VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION
        return VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION;
#else
        return -1;
#endif
    case CVFIO_VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL:
#ifdef VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL
        return VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL;
#else
        return -1;
#endif
    default:
        return -1;
    }
}

#endif
