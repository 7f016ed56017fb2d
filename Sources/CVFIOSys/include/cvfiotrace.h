/* The process tracer's system calls (vfio-sim record): glibc's ptrace is
 * variadic and Swift cannot call it, and a traced child must be started
 * (PTRACE_TRACEME, a seccomp filter, exec) in C between fork and exec.
 * Each function returns 0 (or a value) or -errno. */
#ifndef CVFIOTRACE_H
#define CVFIOTRACE_H

#include <stdint.h>

/* fork; in the child: PTRACE_TRACEME, stop, install a seccomp filter that
 * returns SECCOMP_RET_TRACE for the system calls the recorder follows (a
 * VFIO or iommufd ioctl, open, openat, openat2, close, close_range, dup,
 * dup2, dup3, fcntl) when `seccomp` is nonzero, then execvp(file, argv).
 * In the parent: waits for the child's first stop, sets the tracing options
 * (every clone, fork, vfork, exec and seccomp event, TRACESYSGOOD,
 * EXITKILL) and lets it run to exec. Returns the pid, or -errno: the errno
 * of the failed exec (-ENOENT for a command that is not found), of fork, or
 * of the filter; -CVFIO_SPAWN_NO_FILTER when the kernel takes no seccomp
 * filter (no CONFIG_SECCOMP_FILTER: run it again with `seccomp` 0). */
enum { CVFIO_SPAWN_NO_FILTER = 4096 };
int cvfio_spawn_traced(const char *file, char *const argv[], int seccomp);
/* PTRACE_SEIZE a thread of a running process with the same options. */
int cvfio_seize(int tid);

/* waitpid(-1, __WALL): the tid that changed state, its raw status in
 * *status; -errno (-ECHILD when nothing is left). */
int cvfio_wait_any(int *status);
/* Decoding of a waitpid status. */
int cvfio_wifexited(int status);
int cvfio_wexitstatus(int status);
int cvfio_wifsignaled(int status);
int cvfio_wtermsig(int status);
int cvfio_wifstopped(int status);
int cvfio_wstopsig(int status);
/* The PTRACE_EVENT_* of a stop (status >> 16), 0 for none. */
int cvfio_wevent(int status);

enum {
    CVFIO_EVENT_FORK = 1, CVFIO_EVENT_VFORK = 2, CVFIO_EVENT_CLONE = 3,
    CVFIO_EVENT_EXEC = 4, CVFIO_EVENT_VFORK_DONE = 5, CVFIO_EVENT_EXIT = 6,
    CVFIO_EVENT_SECCOMP = 7, CVFIO_EVENT_STOP = 128,
};

/* Resume: PTRACE_CONT (syscall = 0) or PTRACE_SYSCALL (1), delivering sig. */
int cvfio_resume(int tid, int syscall, int sig);
/* PTRACE_INTERRUPT: a seized thread stops (PTRACE_EVENT_STOP). */
int cvfio_interrupt(int tid);
/* PTRACE_LISTEN, for a group-stop of a seized thread. */
int cvfio_listen(int tid);
/* PTRACE_GETEVENTMSG */
int cvfio_event_msg(int tid, unsigned long *msg);
/* 1 when the stop is a signal-delivery-stop (PTRACE_GETSIGINFO works), 0
 * for a group-stop, -errno otherwise. */
int cvfio_is_signal_delivery(int tid);
/* PTRACE_DETACH */
int cvfio_detach(int tid);

/* PTRACE_GET_SYSCALL_INFO, flattened: op is 1 entry, 2 exit, 3 seccomp
 * (entry), 0 none. nr and args[6] at entry/seccomp; rval and is_error at
 * exit. */
struct cvfio_syscall {
    int op;
    int is_error;
    int64_t nr;
    uint64_t args[6];
    int64_t rval;
};
int cvfio_syscall_info(int tid, struct cvfio_syscall *out);

/* The system call numbers of this architecture the recorder follows. */
struct cvfio_syscall_numbers {
    int64_t ioctl, open, openat, openat2, close, close_range, dup, dup2, dup3, fcntl;
};
void cvfio_syscall_numbers(struct cvfio_syscall_numbers *out);

/* Copies len bytes at addr in process pid into buf (process_vm_readv,
 * then /proc/PID/mem): the bytes copied, or -errno. */
long cvfio_read_memory(int pid, uint64_t addr, void *buf, unsigned long len);

/* kill(pid, sig) */
int cvfio_kill(int pid, int sig);
/* Dies of `sig` as the traced program did (default action, no core),
 * or exits 128 + sig if the signal does not kill. */
void cvfio_die_of(int sig) __attribute__((noreturn));

#endif
