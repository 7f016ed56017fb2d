import VFIOKernel
import VFIOReplay

/// Replays in a process of their own.
public enum Isolation {
    /// Runs `body` in a child process and returns the report it made.
    ///
    /// Each trace gets a fresh process because some kernel state belongs to
    /// the process and outlives the container: locked memory the kernel
    /// failed to uncharge (6.12 leaks the pages of a mapping that ends at
    /// 2^64-1 when it is released) still counts against `RLIMIT_MEMLOCK`,
    /// so it would change the answers of every later trace. A child that
    /// dies becomes an error of that file.
    ///
    /// With `parameters`, the child's requests to change a module parameter
    /// go to it, and whatever the child changed is put back when the child
    /// is gone, however it ended.
    public static func run(file: String, sys: SystemCalls, parameters: ModuleParameterGuard? = nil,
                           _ body: () -> FileReport) -> FileReport {
        let result = sys.inChild(serving: parameters.map { g in { g.serve($0) } }) { Array(ReportCodec.encode(body()).utf8) }
        parameters?.restore()
        var failure = FileReport(file: file, kernels: [])
        switch result {
        case .success(let bytes):
            if let report = ReportCodec.decode(String(decoding: bytes, as: UTF8.self)) { return report }
            failure.problems.append(ReportProblem(.aborted("the replay process sent an incomplete report")))
        case .failure(let why):
            failure.problems.append(ReportProblem(.aborted(why.description)))
        }
        return failure
    }

    /// Runs `bodies` in order in as few child processes as it can: a child
    /// runs one after another until a body says the process must not run
    /// another (it may hold locked memory the kernel did not uncharge, the
    /// reason `run` gives each trace a process), then the next child
    /// continues. Starting a process per sequence was most of the cost of
    /// exploring in a TCG guest. Module parameters are put back after each
    /// child; a child that dies loses its batch, which then runs again one
    /// process per body, so the failure lands on the body that caused it.
    public static func runBatch(file: String, sys: SystemCalls, parameters: ModuleParameterGuard? = nil,
                                _ bodies: [() -> (FileReport, freshProcessAfter: Bool)]) -> [FileReport] {
        var reports: [FileReport] = []
        while reports.count < bodies.count {
            let first = reports.count
            let result = sys.inChild(serving: parameters.map { g in { g.serve($0) } }) { () -> [UInt8] in
                var out = ""
                for body in bodies[first...] {
                    let (report, fresh) = body()
                    out += ReportCodec.encode(report)
                    if fresh { break }
                }
                return Array(out.utf8)
            }
            parameters?.restore()
            let got: [FileReport]? = switch result {
            case .success(let bytes): ReportCodec.decodeAll(String(decoding: bytes, as: UTF8.self))
            case .failure: nil
            }
            if let got, !got.isEmpty, got.count <= bodies.count - first {
                reports += got
            } else {
                reports.append(run(file: file, sys: sys, parameters: parameters) { bodies[first]().0 })
            }
        }
        return reports
    }
}
