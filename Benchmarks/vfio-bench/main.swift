// vfio-bench: the model's speed, and DMA mapping plans compared (see
// docs/BENCHMARKS.md). Benchmarks print numbers; they are
// never timed tests.

import VFIOFileIO
import VFIOCore
import VFIOCost
import VFIOTrace

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

let usage = """
usage: vfio-bench model [--costs FILE] [--quick]
       vfio-bench plans [--memory SIZE] [--memlock SIZE] [--dma-entry-limit N]
                        [--domains LIST;LIST] [--svg PATH] [--costs FILE]
                        [--emit-traces DIR] [--only TEXT]
       vfio-bench all   [the options of both]
       vfio-bench kernel-costs [--group /dev/vfio/N] [--quick] [--plans DIR] [--out FILE]
                        (in the kernel lane's guest, or as root on real hardware)
       vfio-bench published [--dir DIR] [--cost-profile FILE]
       vfio-bench instructions [--quick]
       vfio-bench scale [--quick]
       vfio-bench hot map-unmap [N [LIVE]] | parse|replay [N [REPEATS]]

  model         the model's speed: map+unmap throughput at 1K/16K/65,535 live
                mappings, memory per mapping, one huge MAP_DMA, plans of a
                12 TiB (4K) and 1 TiB (2M, 1G) guest with their peak RSS, a
                1M-operation trace parsed and replayed, and the model against
                the kernel
  plans         DPDK, QEMU, SPDK and single-pool mapping plans generated as
                traces for --memory (default 4G), replayed on the model: ioctls,
                mappings against dma_entry_limit, locked memory, PTEs by page
                size per domain, failures, predicted kernel time; an SVG chart
                goes to --svg (default .build-bench/vfio-bench-plans.svg, which
                git ignores); --emit-traces writes the plans (one domain, the
                model's answers) for the kernel lane
  kernel-costs  real MAP_DMA/UNMAP_DMA timed on the group's IOMMU; prints
                per-op times and the cost model's constants as BENCH lines,
                and with --out FILE writes them as a cost file that
                plans/model --costs FILE read (Benchmarks/run-kernel-costs.sh
                runs it in the lane's guest); on real hardware: sudo
                vfio-bench kernel-costs --group /dev/vfio/N --out costs.txt;
                with --plans DIR it also runs the plan traces there for real
                and prints measured against predicted time

  published     each published bare-metal figure (Benchmarks/published: a
                trace per figure, its source in its comments) planned with
                the cost model (vfio-sim plan --time): published value,
                estimate, ratio, the fit's residuals (docs/COSTS.md); exit 1
                when an estimate is outside 1.5x of its figure
  scale         model's plans of terabyte guests alone: vfio-sim new qemu for
                12 TiB of scattered 4K pages and 1 TiB of 2M and 1G pages, plan
                --time on each in a fresh process: seconds and peak RSS
  instructions  the instruction counts of model alone (callgrind, or perf
                stat where the counter exists): stable on a busy machine
  hot           one figure's loop alone, N times (default 1,000,000), to
                profile it: perf record .build-bench/release/vfio-bench hot parse
  --costs FILE  kernel figures from kernel-costs (default:
                Benchmarks/results/kernel-costs.txt when it exists)
  --domains     page sizes per domain, domains separated by ';' (default
                "4K,2M,1G;4K": a VT-d-like IOMMU and one without superpages);
                each gets the x86 MSI window reserved

Every figure is also printed as
  BENCH name=<id> value=<number> unit=<unit> [target=<number> met=yes|no]
"""

struct CLIError: Error { var message: String }

func parseSizeArgument(_ text: String, _ flag: String) throws(CLIError) -> UInt64 {
    // The trace language's own numbers: 4G, 64M, 0x1000, 4096.
    guard case .success(let t) = parseTrace("memory vaddr=0 size=\(text) phys=contiguous", file: flag),
          case .memory(let spec) = t.statements.first?.kind else {
        throw CLIError(message: "\(flag) takes a size such as 4G or 64M, not '\(text)'")
    }
    return spec.size
}

func parseDomains(_ text: String) throws(CLIError) -> [DomainSpec] {
    var out: [DomainSpec] = []
    for (i, part) in text.split(separator: ";").enumerated() {
        var sizes: [UInt64] = []
        for s in part.split(separator: ",") { sizes.append(try parseSizeArgument(String(s), "--domains")) }
        guard sizes.allSatisfy({ $0.nonzeroBitCount == 1 }) else { throw CLIError(message: "--domains: page sizes are powers of two") }
        out.append(DomainSpec(name: "d\(i)", pgsizes: PageSizes(sizes)))
    }
    if out.isEmpty { throw CLIError(message: "--domains needs at least one domain") }
    return out
}

func run(_ args: [String]) throws(CLIError) -> Int32 {
    guard let command = args.first else { print(usage); return 2 }
    if command == "--help" || command == "-h" || command == "help" { print(usage); return 0 }
    if command == "hot", args.count >= 2 {
        return hotCommand(args[1], Int(args.dropFirst(2).first ?? "") ?? 1_000_000, Int(args.dropFirst(3).first ?? ""))
    }
    if command == "rss-probe" { return rssProbe(Int(args.dropFirst().first ?? "") ?? 65535) }
    if command == "plan-probe" { return planProbe(args.dropFirst().first ?? "") }

    var costsPath: String? = nil, quick = false, group: String? = nil, plansDir: String? = nil, outPath: String? = nil
    var setup = PlanSetup(memory: 4 * gib, memlock: nil, dmaEntryLimit: nil, domains: defaultPlanDomains)
    var svg = ".build-bench/vfio-bench-plans.svg", emit: String? = nil, only: String? = nil
    var publishedDir = "Benchmarks/published", profilePath: String? = nil
    var i = 1
    func value(_ flag: String) throws(CLIError) -> String {
        i += 1
        guard i < args.count else { throw CLIError(message: "\(flag) needs a value") }
        return args[i]
    }
    while i < args.count {
        let a = args[i]
        switch a {
        case "--costs": costsPath = try value(a)
        case "--quick": quick = true
        case "--group": group = try value(a)
        case "--memory": setup.memory = try parseSizeArgument(try value(a), a)
        case "--memlock": setup.memlock = try parseSizeArgument(try value(a), a)
        case "--dma-entry-limit":
            let v = try value(a)
            guard let n = UInt32(v) else { throw CLIError(message: "--dma-entry-limit takes a number, not '\(v)'") }
            setup.dmaEntryLimit = n
        case "--domains": setup.domains = try parseDomains(try value(a))
        case "--svg": svg = try value(a)
        case "--emit-traces": emit = try value(a)
        case "--only": only = try value(a)
        case "--plans": plansDir = try value(a)
        case "--out": outPath = try value(a)
        case "--dir": publishedDir = try value(a)
        case "--cost-profile": profilePath = try value(a)
        case "--help", "-h": print(usage); return 0
        default: throw CLIError(message: "unknown argument '\(a)'")
        }
        i += 1
    }
    if setup.memory == 0 { throw CLIError(message: "--memory must not be 0") }

    switch command {
    case "model":
        let (costs, note) = loadCosts(costsPath)
        return modelCommand(ModelOptions(costs: costs, costsNote: note, quick: quick))
    case "plans":
        // The TCG profile prices plans only when asked for (--costs): the
        // default time is the published bare-metal profile's.
        let (costs, note) = costsPath == nil ? (nil, "the QEMU TCG profile only with --costs Benchmarks/results/kernel-costs.txt") : loadCosts(costsPath)
        return plansCommand(PlansOptions(setup: setup, svgPath: svg, costs: costs, costsNote: note, emitDir: emit, filter: only))
    case "all":
        let (costs, note) = loadCosts(costsPath)
        let a = modelCommand(ModelOptions(costs: costs, costsNote: note, quick: quick))
        print("")
        let b = plansCommand(PlansOptions(setup: setup, svgPath: svg, costs: costs, costsNote: note, emitDir: emit, filter: only))
        return max(a, b)
    case "instructions":
        return instructionsCommand(quick: quick)
    case "scale":
        let section = scalePlanSection(quick: quick)
        print(renderTable([["figure", "measured", "target", "verdict"]] + section.rows))
        for n in section.notes { print("- " + n) }
        print("")
        for l in section.lines { print(l.text) }
        return 0
    case "published":
        var costs = CostProfile.published
        if let profilePath {
            guard let text = readSmallFile(profilePath) else { throw CLIError(message: "cannot read \(profilePath)") }
            switch CostProfile.parse(text, file: profilePath) {
            case .success(let p): costs = p
            case .failure(let e): throw CLIError(message: e.message)
            }
        }
        return publishedCommand(dir: publishedDir, costs: costs)
    case "kernel-costs":
        return kernelCostsCommand(groupPath: group, quick: quick, plansDir: plansDir, outPath: outPath)
    default:
        throw CLIError(message: "unknown command '\(command)'")
    }
}

do {
    exit(try run(Array(CommandLine.arguments.dropFirst())))
} catch {
    printErr("vfio-bench: \(error.message)\n\n\(usage)")
    exit(2)
}
