import Testing
import VFIOCore
import VFIOCost
import VFIOLane
import VFIOTrace

/// `plan --time --threads N` (issue 24): containers on threads of their
/// own, a container's calls one after another.
@Suite("plans on several threads")
struct ParallelPlanTests {
    @Test("whole containers go to threads, the longest first, each to the least loaded one")
    func makespan() {
        let times: [(map: Double, unmap: Double)] = [(3, 1), (2, 1), (2, 1)]
        #expect(ParallelTime(threads: 1, times: times).map == 7)
        #expect(ParallelTime(threads: 2, times: times).map == 4)
        #expect(ParallelTime(threads: 5, times: times).map == 3)
        #expect(ParallelTime(threads: 2, times: times).unmap == 2)
        #expect(ParallelTime(threads: 2, times: []).map == 0)
    }

    /// `n` containers, each mapping `gib` GiB of 2M hugepages and released
    /// by its detach; the first container maps `first` GiB.
    static func containers(_ n: Int, gib: Int, first: Int) throws -> Trace {
        var text = "kernel 6.18\nmemlock unlimited\n"
        for i in 0..<n { text += "memory vaddr=0x7f\(i)000000000 size=\(i == 0 ? first : gib)G page=2M\n" }
        for i in 0..<n {
            if i > 0 { text += "container c\(i) type1\n" }
            text += "domain d\(i) iommu=intel48\nmap iova=0x100000000 vaddr=0x7f\(i)000000000 size=\(i == 0 ? first : gib)G prot=rw\n"
        }
        for i in (0..<n).reversed() { text += "container c\(i)\ndetach d\(i)\n" }
        return try parseTrace(text, file: "parallel.trace").get()
    }

    @Test("four equal containers on four threads take a quarter of the serial time; on one thread, all of it")
    func equalContainers() throws {
        let trace = try Self.containers(4, gib: 4, first: 4)
        let four = Planner.plan(trace, costs: .published, threads: 4)
        let t = try #require(four.kernelTime)
        let par = try #require(four.parallelTime)
        #expect(par.containers == 4)
        #expect(abs(par.map - t.map / 4) < 1e-9 * t.map)
        #expect(abs(par.unmap - t.unmap / 4) < 1e-9 * t.unmap)
        let one = try #require(Planner.plan(trace, costs: .published, threads: 1).parallelTime)
        #expect(abs(one.map - t.map) < 1e-9 * t.map)
        #expect(Planner.plan(trace, costs: .published).parallelTime == nil)
    }

    @Test("the largest container bounds the time however many threads there are")
    func largestBounds() throws {
        let trace = try Self.containers(3, gib: 1, first: 8)
        let plan = Planner.plan(trace, costs: .published, threads: 16)
        let par = try #require(plan.parallelTime)
        let alone = try #require(Planner.plan(try Self.containers(1, gib: 1, first: 8), costs: .published).kernelTime)
        #expect(abs(par.map - alone.map) < 1e-9 * alone.map)
        let serial = try #require(plan.kernelTime)
        #expect(par.map < serial.map)
    }
}
