/// The kernel time of a scenario whose containers map (and unmap) on
/// several threads at once.
///
/// A container's calls run one after another whatever the threads: type1
/// holds the container's `iommu->lock` through a whole MAP_DMA or
/// UNMAP_DMA (`vfio_dma_do_map`, `vfio_dma_do_unmap`), and iommufd's
/// compatibility layer takes its IOAS's `iova_rwsem` for writing. Distinct
/// containers take distinct locks, so each thread takes whole containers:
/// the longest first, each to the thread free soonest (LPT scheduling).
/// The map phase and the unmap phase are scheduled apart.
///
/// What this leaves out, so it is the most that threads can gain: the
/// pins of one process share its `mmap_lock` (read by every pin, written
/// briefly by each locked-memory charge, `vfio_lock_acct`), and the
/// threads share the machine's memory bandwidth and cores.
public struct ParallelTime: Sendable, Equatable {
    public var threads: Int
    /// Containers that did any work.
    public var containers: Int
    /// Seconds until the last thread is done.
    public var map: Double
    public var unmap: Double

    /// `times`: each container's (map, unmap) seconds.
    public init(threads: Int, times: [(map: Double, unmap: Double)]) {
        self.threads = max(1, threads)
        containers = times.count
        map = Self.makespan(times.map(\.map), threads: self.threads)
        unmap = Self.makespan(times.map(\.unmap), threads: self.threads)
    }

    /// Longest processing time first: each job to the least loaded thread.
    static func makespan(_ jobs: [Double], threads: Int) -> Double {
        var load = [Double](repeating: 0, count: max(1, min(threads, jobs.count)))
        for job in jobs.sorted(by: >) {
            let i = load.indices.min { load[$0] < load[$1] }!
            load[i] += job
        }
        return load.max() ?? 0
    }
}
