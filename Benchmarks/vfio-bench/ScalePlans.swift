// `vfio-bench model`, plans of terabyte guests: `vfio-sim new qemu` for a
// guest of 12 TiB on scattered 4K pages and of 1 TiB on 2M and 1G hugetlbfs
// pages, then `vfio-sim plan --time` on it, each in a fresh process so its
// peak RSS (getrusage) is the plan's alone.

import VFIOFileIO
import VFIOCore
import VFIOCost
import VFIOLane
import VFIOScenario
import VFIOTrace

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One guest to plan.
struct ScalePlan {
    /// The BENCH name's middle: `plan_<id>_s`, `plan_<id>_rss_mib`.
    var id: String
    var name: String
    var memory: UInt64
    var backing: VFIOScenario.Backing
    var targetSeconds: Double
    var targetMiB: Double

    static let all: [ScalePlan] = [
        ScalePlan(id: "12tib_4k_scattered", name: "12 TiB guest, scattered 4K pages", memory: 12 << 40, backing: .pages4K,
                  targetSeconds: 2, targetMiB: 256),
        ScalePlan(id: "1tib_2m", name: "1 TiB guest, 2M hugetlbfs pages", memory: 1 << 40, backing: .hugetlb2M,
                  targetSeconds: 2, targetMiB: 256),
        ScalePlan(id: "1tib_1g", name: "1 TiB guest, 1G hugetlbfs pages", memory: 1 << 40, backing: .hugetlb1G,
                  targetSeconds: 2, targetMiB: 256),
    ]
}

/// Child-process mode `plan-probe ID`: writes the guest's trace as
/// `vfio-sim new qemu --memory SIZE --backing B --iommu intel48` does, then
/// plans it as `vfio-sim plan --time` does (parse, replay on the model,
/// kernel time). Prints `new_seconds plan_seconds maxrss_kib 4k_entries`.
func planProbe(_ id: String) -> Int32 {
    guard let p = ScalePlan.all.first(where: { $0.id == id }) else { print("no plan \(id)"); return 2 }
    var o = ScenarioOptions()
    o.memory = p.memory
    o.backing = p.backing
    o.iommu = .intel48
    let (made, newSeconds) = timed { () -> String? in
        guard let s = try? Scenario.make(.qemu, o), case .success(let t) = ScenarioAnswers.answer(s, file: "qemu.trace") else { return nil }
        return printTrace(t)
    }
    guard let text = made else { print("vfio-sim new failed"); return 1 }
    let (plan, planSeconds) = timed { () -> ScenarioPlan? in
        guard case .success(let t) = parseTrace(text, file: "qemu.trace") else { return nil }
        return Planner.plan(t, costs: .published)
    }
    guard let plan, plan.kernelTime != nil else { print("vfio-sim plan failed"); return 1 }
    var usage = rusage()
    #if canImport(Glibc)
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    #else
    getrusage(RUSAGE_SELF, &usage)
    #endif
    let entries = plan.needs.peakTotalPTEs.entries.map { "\(formatSize($0.size)):\($0.count)" }.joined(separator: ",")
    print("\(newSeconds) \(planSeconds) \(usage.ru_maxrss) \(entries)")
    return 0
}

/// Runs `plan-probe` in a fresh process `runs` times: the median times and
/// the largest peak RSS, and the entries the plan counted.
func measureScalePlan(_ p: ScalePlan, runs: Int) -> Result<(new: Double, plan: Double, maxRSSKiB: Double, entries: String), BenchFailure> {
    guard let exe = executablePath() else { return .failure(BenchFailure("cannot read /proc/self/exe")) }
    var news: [Double] = [], plans: [Double] = [], rss: Double = 0, entries = ""
    for _ in 0..<runs {
        guard let (status, out) = shellRun("'\(exe)' plan-probe \(p.id)") else { return .failure(BenchFailure("popen failed")) }
        let words = out.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)
        guard status == 0, words.count == 4, let n = Double(words[0]), let t = Double(words[1]), let r = Double(words[2]) else {
            return .failure(BenchFailure("plan-probe failed: \(out)"))
        }
        news.append(n); plans.append(t); rss = max(rss, r); entries = words[3]
    }
    return .success((news.sorted()[news.count / 2], plans.sorted()[plans.count / 2], rss, entries))
}

/// The section's table rows, BENCH lines and note.
func scalePlanSection(quick: Bool) -> (rows: [[String]], lines: [BenchLine], notes: [String]) {
    var rows: [[String]] = [], lines: [BenchLine] = [], details: [String] = []
    for p in ScalePlan.all {
        let timeID = "plan_\(p.id)_s", rssID = "plan_\(p.id)_rss_mib"
        switch measureScalePlan(p, runs: quick ? 1 : 3) {
        case .success(let m):
            let time = BenchLine(name: timeID, value: m.plan, unit: "s", target: p.targetSeconds, higherIsBetter: false)
            let rss = BenchLine(name: rssID, value: m.maxRSSKiB / 1024, unit: "MiB", target: p.targetMiB, higherIsBetter: false)
            rows.append(["plan --time of a \(p.name)", duration(m.plan), "≤ \(sig(p.targetSeconds)) s", time.verdict])
            rows.append(["  its peak RSS", "\(sig(m.maxRSSKiB / 1024)) MiB", "≤ \(sig(p.targetMiB)) MiB", rss.verdict])
            lines += [time, rss]
            details.append("\(p.name): new \(duration(m.new)), plan \(duration(m.plan)), peak PTEs \(m.entries)")
        case .failure(let why):
            rows.append(["plan --time of a \(p.name)", "not measured (\(why))", "≤ \(sig(p.targetSeconds)) s", "not measured"])
            lines.append(BenchLine(name: timeID, value: .nan, unit: "s", target: p.targetSeconds, higherIsBetter: false, reason: why.message))
            lines.append(BenchLine(name: rssID, value: .nan, unit: "MiB", target: p.targetMiB, higherIsBetter: false, reason: why.message))
        }
    }
    let note = "terabyte guests: a fresh `vfio-bench plan-probe` process writes the trace of `vfio-sim new qemu --memory SIZE --backing B "
        + "--iommu intel48` and times `vfio-sim plan --time` on it (parse, replay on the model, kernel time; median of the runs); peak RSS "
        + "is the process's ru_maxrss (getrusage), the trace and the executable included:\n    " + details.joined(separator: "\n    ")
    return (rows, lines, [note])
}
