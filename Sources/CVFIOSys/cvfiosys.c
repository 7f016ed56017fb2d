#define _GNU_SOURCE
#include "cvfiosys.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/ioctl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/syscall.h>
#include <termios.h>
#include <time.h>
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

int cvfio_get_memlock(uint64_t *bytes) {
    struct rlimit lim;
    if (getrlimit(RLIMIT_MEMLOCK, &lim) < 0) return -errno;
    if (lim.rlim_cur == RLIM_INFINITY) return 1;
    *bytes = (uint64_t)lim.rlim_cur;
    return 0;
}

int cvfio_mmap_fixed(uint64_t addr, uint64_t length, int page_shift, int order) {
    int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE;
    if (page_shift > 12) flags |= MAP_HUGETLB | (page_shift << MAP_HUGE_SHIFT);
    if (order == 0 || page_shift > 12) flags |= MAP_POPULATE;
    void *p = mmap((void *)(uintptr_t)addr, (size_t)length, PROT_READ | PROT_WRITE, flags, -1, 0);
    if (p == MAP_FAILED) return -errno;
    if ((uint64_t)(uintptr_t)p != addr) { munmap(p, (size_t)length); return -EEXIST; }
    if (order != 0 && page_shift <= 12) {
        /* 4K pages one by one, no transparent hugepages (order 3: asked
         * for, each aligned 2 MiB block then faulted in as one when the
         * kernel has them); faulting them in descending order tends to
         * give frames that are not contiguous going up. */
        madvise(p, (size_t)length, order == 3 ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
        volatile char *c = p;
        uint64_t pages = length >> 12;
        for (uint64_t i = 0; i < pages; i++) {
            uint64_t page = order == 2 ? pages - 1 - i : i;
            c[page << 12] = 1;
        }
    }
    return 0;
}

int cvfio_munmap(uint64_t addr, uint64_t length) {
    return munmap((void *)(uintptr_t)addr, (size_t)length) < 0 ? -errno : 0;
}

int cvfio_mmap_locked(uint64_t length, uint64_t *addr) {
    void *p = mmap(NULL, (size_t)length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return -errno;
    if (mlock(p, (size_t)length) < 0) { int e = errno; munmap(p, (size_t)length); return -e; }
    *addr = (uint64_t)(uintptr_t)p;
    return 0;
}

int cvfio_mmap_file_fixed(const char *path, uint64_t addr, uint64_t length) {
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) return -errno;
    void *p = mmap((void *)(uintptr_t)addr, (size_t)length, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_FIXED_NOREPLACE, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED) return -e;
    if ((uint64_t)(uintptr_t)p != addr) { munmap(p, (size_t)length); return -EEXIST; }
    return 0;
}

int cvfio_open_raw_tty(const char *path) {
    int fd = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) return -errno;
    struct termios t;
    if (tcgetattr(fd, &t) < 0) { int e = errno; close(fd); return -e; }
    cfmakeraw(&t);
    cfsetispeed(&t, B115200);
    cfsetospeed(&t, B115200);
    t.c_cflag |= CLOCAL | CREAD;
    if (tcsetattr(fd, TCSANOW, &t) < 0) { int e = errno; close(fd); return -e; }
    tcflush(fd, TCIOFLUSH);
    return fd;
}

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cvfio_read_line(int fd, char *buf, int cap, int timeout_ms) {
    int n = 0;
    long long end = now_ms() + timeout_ms;
    while (1) {
        long long left = end - now_ms();
        if (left <= 0) return -ETIMEDOUT;
        struct pollfd p = { fd, POLLIN, 0 };
        int r = poll(&p, 1, (int)left);
        if (r < 0) { if (errno == EINTR) continue; return -errno; }
        if (r == 0) return -ETIMEDOUT;
        char c;
        ssize_t got = read(fd, &c, 1);
        if (got < 0) { if (errno == EINTR || errno == EAGAIN) continue; return -errno; }
        if (got == 0) return -EIO;
        if (c == '\r') continue;
        if (c == '\n') { buf[n] = 0; return n; }
        if (n + 1 >= cap) return -EMSGSIZE;
        buf[n++] = c;
    }
}

/* State for the signal handler, copied in when armed: the handler must not
 * allocate or take locks. Two tables: what a replay process gives back (its
 * container and groups), and what a supervising process puts back (module
 * parameters it changed, and the record of the change under /run). */
static volatile int cleanup_container = -1;
static int cleanup_groups[8];
static volatile int cleanup_ngroups = 0;
static volatile int restore_count = 0;
static char restore_paths[4][256];
static char restore_values[4][32];
static char restore_record[256];

static void on_signal(int sig) {
    if (cleanup_container >= 0) {
        struct vfio_iommu_type1_dma_unmap unmap = { sizeof unmap, VFIO_DMA_UNMAP_FLAG_ALL, 0, 0 };
        ioctl(cleanup_container, VFIO_IOMMU_UNMAP_DMA, &unmap);
    }
    for (int i = 0; i < cleanup_ngroups; i++) ioctl(cleanup_groups[i], VFIO_GROUP_UNSET_CONTAINER);
    if (cleanup_container >= 0) close(cleanup_container);
    for (int i = 0; i < cleanup_ngroups; i++) close(cleanup_groups[i]);
    for (int i = 0; i < restore_count; i++) {
        int fd = open(restore_paths[i], O_WRONLY);
        if (fd >= 0) { ssize_t w = write(fd, restore_values[i], strlen(restore_values[i])); (void)w; close(fd); }
    }
    /* The value is back: the record of the change goes. */
    if (restore_count > 0 && restore_record[0]) unlink(restore_record);
    _exit(128 + sig);
}

static void install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = (cleanup_container >= 0 || restore_count > 0) ? on_signal : SIG_DFL;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

void cvfio_arm_cleanup(int container_fd, const int *group_fds, int ngroups) {
    cleanup_container = -1;
    cleanup_ngroups = 0;
    for (int i = 0; i < ngroups && i < 8 && group_fds; i++) cleanup_groups[i] = group_fds[i];
    cleanup_ngroups = ngroups < 0 ? 0 : ngroups > 8 ? 8 : ngroups;
    cleanup_container = container_fd;
    install();
}

void cvfio_arm_restore(const char *const *paths, const char *const *values, int n, const char *record) {
    restore_count = 0;
    int k = 0;
    for (int i = 0; i < n && k < 4; i++) {
        if (!paths[i] || !values[i] || strlen(paths[i]) >= sizeof restore_paths[0] || strlen(values[i]) >= sizeof restore_values[0]) continue;
        strcpy(restore_paths[k], paths[i]);
        strcpy(restore_values[k], values[i]);
        k++;
    }
    restore_record[0] = 0;
    if (record && strlen(record) < sizeof restore_record) strcpy(restore_record, record);
    restore_count = k;
    install();
}

int cvfio_die_with_parent(int parent) {
    /* A process forked to do the ioctls must not outlive the one that
     * restores what it changed; and it must not run the parent's restore. */
    restore_count = 0;
    install();
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) return -errno;
    if (getppid() != parent) _exit(125);
    return 0;
}

int cvfio_lock_file(const char *path, int wait) {
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return -errno;
    while (flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) < 0) {
        if (errno == EINTR) continue;
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

int cvfio_replace_file(const char *path, const char *text) {
    char tmp[512];
    if (strlen(path) + 5 >= sizeof tmp) return -ENAMETOOLONG;
    strcpy(tmp, path);
    strcat(tmp, ".new");
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return -errno;
    size_t len = strlen(text), done = 0;
    while (done < len) {
        ssize_t w = write(fd, text + done, len - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) { int e = w < 0 ? errno : EIO; close(fd); unlink(tmp); return -e; }
        done += (size_t)w;
    }
    if (fsync(fd) < 0) { int e = errno; close(fd); unlink(tmp); return -e; }
    close(fd);
    if (rename(tmp, path) < 0) { int e = errno; unlink(tmp); return -e; }
    return 0;
}

void cvfio_trap(void) { __builtin_trap(); }
