/* Thin system calls the kernel backend needs that Swift's Glibc module does
 * not import: capset, setrlimit(RLIMIT_MEMLOCK), mmap flags. Each function
 * returns 0 or -errno. */
#ifndef CVFIOSYS_H
#define CVFIOSYS_H

#include <stdint.h>

int cvfio_ioctl_ptr(int fd, unsigned long request, void *arg);
int cvfio_ioctl_val(int fd, unsigned long request, unsigned long arg);
/* Raise or drop CAP_IPC_LOCK in the effective set (permitted unchanged). */
int cvfio_set_cap_ipc_lock(int on);
/* 1 when CAP_IPC_LOCK is effective, 0 when not, -errno on error. */
int cvfio_has_cap_ipc_lock(void);
/* RLIMIT_MEMLOCK soft limit; unlimited when `unlimited` is nonzero. */
int cvfio_set_memlock(uint64_t bytes, int unlimited);
/* Anonymous memory at exactly `addr` (never replacing a mapping), backed by
 * pages of 2^page_shift bytes (12: normal, 21/30: hugetlb), populated.
 * order (4K pages only): 0 populate at once (transparent hugepages allowed),
 * 1 no transparent hugepages, pages faulted in ascending order, 2 the same
 * in descending order. */
int cvfio_mmap_fixed(uint64_t addr, uint64_t length, int page_shift, int order);
int cvfio_munmap(uint64_t addr, uint64_t length);
/* A serial port in raw mode (no echo, no line editing, 8N1), for talking
 * to a program on the host; the fd or -errno. */
int cvfio_open_raw_tty(const char *path);
/* Reads one line (without its newline) into buf, NUL-terminated; waits at
 * most timeout_ms in total. The length, or -errno (-ETIMEDOUT, -EMSGSIZE). */
int cvfio_read_line(int fd, char *buf, int cap, int timeout_ms);

/* On SIGINT, SIGTERM or SIGHUP: UNMAP_ALL on `container_fd`, unset the
 * group's container, close both, write `entry_limit` (a NUL-terminated
 * decimal, may be NULL) back to `entry_limit_path`, then exit with
 * 128 + the signal. Only async-signal-safe calls run in the handler.
 * Pass -1 fds to disarm. */
void cvfio_arm_cleanup(int container_fd, int group_fd, const char *entry_limit_path, const char *entry_limit);

#endif
