import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

// `vfio-sim record` on this host's real ptrace, with programs that do not
// need a VFIO device: what passes through unchanged (output, exit status,
// signals), what is followed (threads, children, dup'd fds), and the
// answers for a program that never uses VFIO or cannot start.

/// A fresh directory for a recording, removed by the caller.
func recordDirectory() throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vfio-sim-record-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}

func fileText(_ url: URL) -> String? {
    (try? Data(contentsOf: url)).map { String(decoding: $0, as: UTF8.self) }
}

/// Lines of a trace that are not comments.
func statements(_ text: String) -> [String] {
    text.split(separator: "\n").map(String.init).filter { !$0.hasPrefix("#") && !$0.isEmpty }
}

func onPath(_ name: String) -> Bool {
    (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        .contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(name)") }
}

/// Root can give a program its own mount namespace with a /dev that holds
/// a `/dev/vfio/vfio` and a `/dev/vfio/7` (plain files: every VFIO ioctl
/// on them answers ENOTTY), so fd tracking is checked without a device.
let canFakeVFIO: Bool = geteuid() == 0 && onPath("unshare") && onPath("python3")

@Suite("vfio-sim record on a real process", .enabled(if: simBinary != nil, "vfio-sim is not built: run swift build first, or set VFIO_SIM"))
struct RecordTests {
    @Test("the program's output and exit status pass through; a program that never uses VFIO gives a trace with no operations and a note")
    func exitStatusAndNoVFIO() throws {
        let dir = try recordDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("r.trace")
        let run = try runSim(["record", "--out", out.path, "--", "sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 7"])
        #expect(run.status == 7)
        #expect(run.stdout == "to-stdout\n")
        #expect(run.stderr.contains("to-stderr\n"))
        #expect(run.stderr.contains("vfio-sim record: note: the program never used a VFIO container"))
        let text = try #require(fileText(out))
        #expect(statements(text).isEmpty)
        #expect(text.hasPrefix("# Recorded by vfio-sim record from: sh -c"))
    }

    @Test("a signal sent to the program reaches it (its handler runs), and a program killed by a signal kills record with the same signal, with a note")
    func signals() throws {
        let dir = try recordDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("r.trace")
        let handled = try runSim(["record", "--out", out.path, "--", "sh", "-c", "trap 'echo caught; exit 5' USR1; kill -USR1 $$; sleep 5"])
        #expect(handled.status == 5)
        #expect(handled.stdout == "caught\n")
        // SIGKILL: the test process may block other signals, and a
        // blocked mask is inherited.
        let killed = try runSim(["record", "--out", out.path, "--", "sh", "-c", "echo before; kill -KILL $$; echo after"])
        // Foundation's Process reports an uncaught signal as its number.
        #expect(killed.status == SIGKILL)
        #expect(killed.stdout == "before\n")
        #expect(killed.stderr.contains("died of SIGKILL"))
        #expect(fileText(out) != nil)
    }

    /// The kernel selftests' harness waits for a test by polling its pidfd
    /// and then calling `waitpid(WNOHANG)`. A traced zombie can be reaped
    /// only by its tracer, so if the child's pidfd read as exited while the
    /// recorder had not yet reaped it, the harness found nothing and failed
    /// the test. The program here stops the recorder (SIGSTOP) to make the
    /// recorder as late as it can be, and checks that whenever the pidfd
    /// reads as exited, the child can be reaped at once.
    @Test("a child whose pidfd reads as exited can be reaped by its parent at once, however late the recorder is",
          .enabled(if: onPath("python3"), "needs python3"))
    func exitedChildIsReapable() throws {
        let dir = try recordDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let script = dir.appendingPathComponent("stopped.py")
        try Data("""
        import os, select, signal, time
        recorder = os.getppid()
        pid = os.fork()
        if pid == 0:
            time.sleep(0.3)
            os._exit(3)
        os.kill(recorder, signal.SIGSTOP)
        pfd = os.pidfd_open(pid)
        p = select.poll(); p.register(pfd, select.POLLIN)
        readable = bool(p.poll(1500))
        reaped = os.waitpid(pid, os.WNOHANG)[0] == pid if readable else None
        os.kill(recorder, signal.SIGCONT)
        if reaped is None:
            reaped = os.waitpid(pid, 0)[0] == pid
        print("readable" if readable else "not-readable", "reaped" if reaped else "not-reaped")
        if not reaped: os.waitpid(pid, 0)

        """.utf8).write(to: script)
        let out = dir.appendingPathComponent("r.trace")
        let run = try runSim(["record", "--out", out.path, "--", "python3", script.path])
        #expect(run.status == 0)
        let first = run.stdout.split(separator: "\n").first.map(String.init)
        #expect(first == "readable reaped" || first == "not-readable reaped",
                "the pidfd said exited but waitpid(WNOHANG) found no child to reap: \(run.stdout)")
    }

    @Test("a command that cannot start is a clear error with exit status 2, and no trace is written")
    func cannotStart() throws {
        let dir = try recordDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("r.trace")
        let missing = try runSim(["record", "--out", out.path, "--", dir.appendingPathComponent("no-such-program").path])
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("vfio-sim: error: cannot run"))
        #expect(missing.stderr.contains("ENOENT"))
        #expect(fileText(out) == nil)
        let notExecutable = dir.appendingPathComponent("plain")
        FileManager.default.createFile(atPath: notExecutable.path, contents: Data("x".utf8))
        let denied = try runSim(["record", "--out", out.path, "--", notExecutable.path])
        #expect(denied.status == 2)
        #expect(denied.stderr.contains("EACCES"))
        let none = try runSim(["record"])
        #expect(none.status == 2)
        #expect(none.stderr.contains("record needs a command"))
    }

    @Test("threads and forked children are followed, and a container stays one container across dup and close of the first fd",
          .enabled(if: canFakeVFIO, "needs root, unshare and python3 to give the program a /dev/vfio of its own"))
    func threadsAndChildren() throws {
        let dir = try recordDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let script = dir.appendingPathComponent("program.py")
        try Data("""
        import os, fcntl, threading, struct
        def call(fd, request, arg=0):
            try:
                fcntl.ioctl(fd, request, arg)
            except OSError:
                pass
        c = os.open("/dev/vfio/vfio", os.O_RDWR)
        g = os.open("/dev/vfio/7", os.O_RDWR)
        call(c, 0x3b64)                      # VFIO_GET_API_VERSION
        d = os.dup(c)
        os.close(c)
        t = threading.Thread(target=lambda: call(d, 0x3b65, 3))   # CHECK_EXTENSION type1v2, in a thread
        t.start(); t.join()
        pid = os.fork()
        if pid == 0:
            call(g, 0x3b68, struct.pack("i", d))                  # GROUP_SET_CONTAINER, in a child
            call(d, 0x3b66, 3)                                    # SET_IOMMU type1v2
            call(d, 0x3b71, struct.pack("IIQQQ", 32, 3, 0x7f0000000000, 0x100000, 0x200000))  # MAP_DMA
            os._exit(0)
        os.waitpid(pid, 0)
        """.utf8).write(to: script)
        let setup = dir.appendingPathComponent("fake-dev.sh")
        try Data("""
        set -e
        mount -t tmpfs none /dev
        mkdir /dev/vfio; touch /dev/vfio/vfio /dev/vfio/7; mknod /dev/null c 1 3
        exec "$@"
        """.utf8).write(to: setup)
        let out = dir.appendingPathComponent("r.trace")
        let run = try runSim(["-m", "--propagation", "private", "sh", setup.path, simBinary!, "record", "--out", out.path, "--", "python3", script.path],
                             executable: "/usr/bin/unshare")
        #expect(run.status == 0, "\(run.stderr)")
        let text = try #require(fileText(out))
        let s = statements(text)
        #expect(text.contains("# VFIO_GET_API_VERSION => ENOTTY"))
        #expect(s.contains("extension type1v2 => ENOTTY"))
        #expect(s.contains("iommu type1v2 => ENOTTY"))
        #expect(s.contains { $0.hasPrefix("domain g7 ") && $0.contains("=> ENOTTY") })
        #expect(s.contains("map iova=0x100000 vaddr=0x7f0000000000 size=2M prot=rw => ENOTTY"))
        // One container: one trace, no FILE.2.
        #expect(fileText(dir.appendingPathComponent("r.trace.2")) == nil)
    }

    @Test("whatif replays a trace with its setup changed and says which answers change and why; a bad value is an error")
    func whatif() throws {
        let example = "docs/examples/dpdk-v1-hugepages.trace"
        let same = try runSim(["whatif", example])
        #expect(same.status == 0)
        let small = try runSim(["whatif", "--memlock", "16M", example])
        #expect(small.status == 1)
        #expect(small.stdout.contains("what if: memlock 16M"))
        #expect(small.stdout.contains("got ENOMEM"))
        #expect(small.stdout.contains("why:"))
        let older = try runSim(["whatif", "--kernel", "5.10", "--dma-entry-limit", "10", example])
        #expect(older.status == 1)
        #expect(older.stdout.contains("ENOSPC"))
        let bad = try runSim(["whatif", "--memlock", "12Q", example])
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("--memlock 12Q"))
    }
}
