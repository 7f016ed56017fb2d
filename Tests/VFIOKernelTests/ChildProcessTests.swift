#if canImport(Glibc)
import Glibc
#endif
import Testing
import VFIOCore
import VFIOKernel

@Suite("Child processes")
struct ChildProcessTests {
    @Test("inChildren runs every body in a process of its own and gives back each one's bytes in order, a pipe's worth or more, and how a child that failed ended")
    func inChildren() {
        // Made before forking: a child only hands back what exists.
        let big = [UInt8](repeating: 7, count: 300_000)
        let small: [UInt8] = Array("worker two".utf8)
        let results = LinuxSystemCalls().inChildren([{ big }, { small }, { _exit(5) }, { [] }])
        #expect(results.count == 4)
        #expect((try? results[0].get()) == big)
        #expect((try? results[1].get()) == small)
        guard case .failure(.exited(5)) = results[2] else { Issue.record("the third child's exit status was lost: \(results[2])"); return }
        #expect((try? results[3].get()) == [])
    }
}
