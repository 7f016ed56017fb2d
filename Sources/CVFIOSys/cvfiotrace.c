#define _GNU_SOURCE
#include "cvfiotrace.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/ptrace.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

/* <sys/ptrace.h> and <linux/ptrace.h> clash; the requests come from the
 * latter, the call from syscall(2) so no variadic prototype is needed. */
static long pt(long request, int pid, unsigned long addr, unsigned long data) {
    return syscall(SYS_ptrace, request, pid, addr, data);
}

#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif

#if defined(__x86_64__)
#define CVFIO_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define CVFIO_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

void cvfio_syscall_numbers(struct cvfio_syscall_numbers *out) {
    out->ioctl = SYS_ioctl;
#ifdef SYS_open
    out->open = SYS_open;
#else
    out->open = -1;
#endif
    out->openat = SYS_openat;
    out->openat2 = SYS_openat2;
    out->close = SYS_close;
    out->close_range = SYS_close_range;
    out->dup = SYS_dup;
#ifdef SYS_dup2
    out->dup2 = SYS_dup2;
#else
    out->dup2 = -1;
#endif
    out->dup3 = SYS_dup3;
    out->fcntl = SYS_fcntl;
}

static const long trace_options = PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK |
    PTRACE_O_TRACEEXEC | PTRACE_O_TRACESECCOMP | PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL |
    PTRACE_O_TRACEEXIT;

#ifdef CVFIO_AUDIT_ARCH
static struct sock_filter stmt(unsigned short code, unsigned k) {
    struct sock_filter f = { code, 0, 0, k };
    return f;
}
static struct sock_filter jeq(unsigned k, unsigned char jt, unsigned char jf) {
    struct sock_filter f = { BPF_JMP | BPF_JEQ | BPF_K, jt, jf, k };
    return f;
}

/* The filter: a VFIO or iommufd ioctl (type ';' in bits 8-15 of the
 * request) and the fd-table calls go to the tracer (SECCOMP_RET_TRACE);
 * everything else, and every other architecture's calls, run untraced. */
static int install_filter(void) {
    long calls[] = {
#ifdef SYS_open
        SYS_open,
#endif
#ifdef SYS_dup2
        SYS_dup2,
#endif
        SYS_openat, SYS_openat2, SYS_close, SYS_close_range, SYS_dup, SYS_dup3, SYS_fcntl,
    };
    int ncalls = (int)(sizeof calls / sizeof calls[0]);
    struct sock_filter g[40];
    int n = 0;
    g[n++] = stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
    g[n++] = jeq(CVFIO_AUDIT_ARCH, 1, 0);
    g[n++] = stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    g[n++] = stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
    /* not ioctl: past the 3 instructions of the ioctl test, nr still in A */
    g[n++] = jeq(SYS_ioctl, 0, 3);
    g[n++] = stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1]));
    g[n++] = stmt(BPF_ALU | BPF_AND | BPF_K, 0xff00);
    /* a VFIO ioctl: to the TRACE at the end; another: to the ALLOW */
    g[n++] = jeq(0x3b00, (unsigned char)(ncalls + 1), (unsigned char)ncalls);
    for (int i = 0; i < ncalls; i++) g[n++] = jeq((unsigned)calls[i], (unsigned char)(ncalls - i), 0);
    g[n++] = stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    g[n++] = stmt(BPF_RET | BPF_K, SECCOMP_RET_TRACE);
    struct sock_fprog prog = { (unsigned short)n, g };
    if (geteuid() != 0 && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return -errno;
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0) return -errno;
    return 0;
}
#else
static int install_filter(void) { return -ENOSYS; }
#endif

int cvfio_spawn_traced(const char *file, char *const argv[], int seccomp) {
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0) return -errno;
    pid_t pid = fork();
    if (pid < 0) { int e = errno; close(pipefd[0]); close(pipefd[1]); return -e; }
    if (pid == 0) {
        close(pipefd[0]);
        int err = 0;
        if (pt(PTRACE_TRACEME, 0, 0, 0) < 0) err = errno;
        if (!err) raise(SIGSTOP);
        if (!err && seccomp) {
            int r = install_filter();
            /* A kernel without CONFIG_SECCOMP_FILTER: the caller may trace every call instead. */
            if (r == -EINVAL || r == -ENOSYS) err = CVFIO_SPAWN_NO_FILTER;
            else if (r < 0) err = -r;
        }
        if (!err) { execvp(file, argv); err = errno; }
        ssize_t w = write(pipefd[1], &err, sizeof err); (void)w;
        _exit(127);
    }
    close(pipefd[1]);
    int status;
    while (waitpid(pid, &status, __WALL) < 0) {
        if (errno != EINTR) { int e = errno; close(pipefd[0]); return -e; }
    }
    if (!WIFSTOPPED(status)) {
        /* PTRACE_TRACEME failed: the child wrote why and exited. */
        int err = 0;
        ssize_t r = read(pipefd[0], &err, sizeof err);
        close(pipefd[0]);
        return -(r == sizeof err && err ? err : ECHILD);
    }
    long options = trace_options;
    if (!seccomp) options &= ~PTRACE_O_TRACESECCOMP;
    if (pt(PTRACE_SETOPTIONS, pid, 0, (unsigned long)options) < 0) {
        int e = errno; kill(pid, SIGKILL); close(pipefd[0]); return -e;
    }
    /* Run to exec: PTRACE_SYSCALL when there is no filter. */
    if (pt(seccomp ? PTRACE_CONT : PTRACE_SYSCALL, pid, 0, 0) < 0) {
        int e = errno; kill(pid, SIGKILL); close(pipefd[0]); return -e;
    }
    /* The exec event stop comes after close-on-exec fds are closed: the
     * pipe reads end-of-file. A failed exec writes its errno. Stops before
     * the exec (syscall stops without a filter) must be let through. */
    for (;;) {
        int err = 0;
        /* Wait for the child's next stop or death. */
        while (waitpid(pid, &status, __WALL) < 0) {
            if (errno != EINTR) { int e = errno; close(pipefd[0]); return -e; }
        }
        if (WIFEXITED(status) || WIFSIGNALED(status)) {
            ssize_t r = read(pipefd[0], &err, sizeof err);
            close(pipefd[0]);
            return -(r == sizeof err && err ? err : ECHILD);
        }
        if (WIFSTOPPED(status) && (status >> 16) == PTRACE_EVENT_EXEC) {
            close(pipefd[0]);
            /* Left stopped at the exec event: the caller's loop resumes it. */
            return pid;
        }
        int sig = WSTOPSIG(status);
        int deliver = (sig == SIGTRAP || sig == (SIGTRAP | 0x80) || (status >> 16)) ? 0 : sig;
        pt(seccomp ? PTRACE_CONT : PTRACE_SYSCALL, pid, 0, (unsigned long)deliver);
    }
}

int cvfio_seize(int tid) {
    return pt(PTRACE_SEIZE, tid, 0, (unsigned long)(trace_options & ~PTRACE_O_TRACESECCOMP & ~PTRACE_O_EXITKILL)) < 0 ? -errno : 0;
}

int cvfio_wait_any(int *status) {
    for (;;) {
        int r = waitpid(-1, status, __WALL);
        if (r >= 0) return r;
        if (errno != EINTR) return -errno;
    }
}

int cvfio_wifexited(int s) { return WIFEXITED(s); }
int cvfio_wexitstatus(int s) { return WEXITSTATUS(s); }
int cvfio_wifsignaled(int s) { return WIFSIGNALED(s); }
int cvfio_wtermsig(int s) { return WTERMSIG(s); }
int cvfio_wifstopped(int s) { return WIFSTOPPED(s); }
int cvfio_wstopsig(int s) { return WSTOPSIG(s); }
int cvfio_wevent(int s) { return (s >> 16) & 0xff; }

int cvfio_resume(int tid, int syscall_stops, int sig) {
    return pt(syscall_stops ? PTRACE_SYSCALL : PTRACE_CONT, tid, 0, (unsigned long)sig) < 0 ? -errno : 0;
}

int cvfio_interrupt(int tid) { return pt(PTRACE_INTERRUPT, tid, 0, 0) < 0 ? -errno : 0; }

int cvfio_listen(int tid) { return pt(PTRACE_LISTEN, tid, 0, 0) < 0 ? -errno : 0; }

int cvfio_event_msg(int tid, unsigned long *msg) {
    return pt(PTRACE_GETEVENTMSG, tid, 0, (unsigned long)msg) < 0 ? -errno : 0;
}

int cvfio_is_signal_delivery(int tid) {
    siginfo_t si;
    if (pt(PTRACE_GETSIGINFO, tid, 0, (unsigned long)&si) == 0) return 1;
    return errno == EINVAL ? 0 : -errno;
}

int cvfio_detach(int tid) { return pt(PTRACE_DETACH, tid, 0, 0) < 0 ? -errno : 0; }

int cvfio_syscall_info(int tid, struct cvfio_syscall *out) {
    struct ptrace_syscall_info info;
    memset(&info, 0, sizeof info);
    memset(out, 0, sizeof *out);
    if (pt(PTRACE_GET_SYSCALL_INFO, tid, sizeof info, (unsigned long)&info) < 0) return -errno;
    switch (info.op) {
    case PTRACE_SYSCALL_INFO_ENTRY:
        out->op = 1; out->nr = (int64_t)info.entry.nr;
        for (int i = 0; i < 6; i++) out->args[i] = info.entry.args[i];
        break;
    case PTRACE_SYSCALL_INFO_EXIT:
        out->op = 2; out->rval = info.exit.rval; out->is_error = info.exit.is_error;
        break;
    case PTRACE_SYSCALL_INFO_SECCOMP:
        out->op = 3; out->nr = (int64_t)info.seccomp.nr;
        for (int i = 0; i < 6; i++) out->args[i] = info.seccomp.args[i];
        break;
    default:
        out->op = 0;
    }
    return 0;
}

long cvfio_read_memory(int pid, uint64_t addr, void *buf, unsigned long len) {
    if (len == 0) return 0;
    struct iovec local = { buf, len };
    struct iovec remote = { (void *)(uintptr_t)addr, len };
    ssize_t r = process_vm_readv(pid, &local, 1, &remote, 1, 0);
    if (r >= 0) return (long)r;
    int e = errno;
    if (e != ENOSYS && e != EPERM) return -e;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/mem", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    r = pread(fd, buf, len, (off_t)addr);
    e = errno;
    close(fd);
    return r < 0 ? -e : (long)r;
}

int cvfio_kill(int pid, int sig) { return kill(pid, sig) < 0 ? -errno : 0; }

void cvfio_die_of(int sig) {
    struct rlimit none = { 0, 0 };
    setrlimit(RLIMIT_CORE, &none);
    signal(sig, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    raise(sig);
    _exit(128 + sig);
}
