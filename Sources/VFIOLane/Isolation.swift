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
}
