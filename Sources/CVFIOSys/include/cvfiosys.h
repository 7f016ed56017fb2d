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

#endif
