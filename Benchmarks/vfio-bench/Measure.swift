// Clocks, repeated runs, statistics, the machine, and the two output forms
// (the table for people, `BENCH` lines for scripts).

import VFIOFileIO

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `clock_gettime(CLOCK_MONOTONIC)` in nanoseconds.
@inline(__always)
func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// Runs `body` once, returning its result and the seconds it took.
@inline(__always)
func timed<T>(_ body: () -> T) -> (T, Double) {
    let start = monotonicNanoseconds()
    let value = body()
    return (value, Double(monotonicNanoseconds() - start) / 1e9)
}

/// Repeated measurements of one figure (each already a rate or a time).
struct Samples {
    var values: [Double]

    init(_ values: [Double]) { self.values = values.sorted() }

    var median: Double {
        let n = values.count
        guard n > 0 else { return .nan }
        return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2
    }
    var min: Double { values.first ?? .nan }
    var max: Double { values.last ?? .nan }
    /// Half the range, as a percentage of the median: `±x%`.
    var spreadPercent: Double { median == 0 ? 0 : (max - min) / 2 / median * 100 }
    /// `median ±spread% (n runs)`
    func describe(_ format: (Double) -> String) -> String {
        "\(format(median)) ±\(fixed(spreadPercent, 1))% (n=\(values.count))"
    }
}

/// Repeats `body` (which returns one measurement) `runs` times after
/// `warmups` unrecorded runs.
func repeatRuns(_ runs: Int, warmups: Int = 1, _ body: () -> Double) -> Samples {
    for _ in 0..<warmups { _ = body() }
    return Samples((0..<runs).map { _ in body() })
}

// MARK: Formatting

/// `x` with `digits` decimals (no Foundation).
func fixed(_ x: Double, _ digits: Int) -> String {
    if x.isNaN { return "nan" }
    if x.isInfinite { return x > 0 ? "inf" : "-inf" }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let negative = x < 0
    let scaled = (abs(x) * scale).rounded()
    guard scaled < 9e18 else { return String(x) }
    let n = UInt64(scaled)
    let whole = n / UInt64(scale)
    var out = (negative && n != 0 ? "-" : "") + String(whole)
    if digits > 0 {
        var frac = String(n % UInt64(scale))
        while frac.count < digits { frac = "0" + frac }
        out += "." + frac
    }
    return out
}

/// Three significant digits, no exponent for ordinary magnitudes.
func sig(_ x: Double) -> String {
    let a = abs(x)
    if a == 0 { return "0" }
    if a >= 100 { return fixed(x, 0) }
    if a >= 10 { return fixed(x, 1) }
    if a >= 1 { return fixed(x, 2) }
    if a >= 0.01 { return fixed(x, 3) }
    return fixed(x, 5)
}

/// `12.3 M` style for rates.
func human(_ x: Double) -> String {
    let a = abs(x)
    if a >= 1e9 { return sig(x / 1e9) + " G" }
    if a >= 1e6 { return sig(x / 1e6) + " M" }
    if a >= 1e3 { return sig(x / 1e3) + " K" }
    return sig(x)
}

/// Seconds as `ns`, `µs`, `ms` or `s`.
func duration(_ seconds: Double) -> String {
    if seconds.isNaN { return "-" }
    if seconds < 1e-6 { return sig(seconds * 1e9) + " ns" }
    if seconds < 1e-3 { return sig(seconds * 1e6) + " µs" }
    if seconds < 1 { return sig(seconds * 1e3) + " ms" }
    return sig(seconds) + " s"
}

/// Bytes with a binary suffix: `4 GiB`, `1.5 MiB`.
func bytesText(_ b: UInt64) -> String {
    let units: [(UInt64, String)] = [(1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")]
    for (i, (size, name)) in units.enumerated() where b >= size {
        if b % size == 0 { return "\(b / size) \(name)" }
        // Just under a whole unit: `4 GiB − 384 KiB`.
        let whole = (b + size / 100) / size * size
        if whole > b, i + 1 < units.count, whole - b < size / 100 { return "\(whole / size) \(name) − \(bytesText(whole - b))" }
        let v = Double(b) / Double(size)
        let text = v >= 100 ? fixed(v, 1) : v >= 10 ? fixed(v, 2) : fixed(v, 3)
        return text + " " + name
    }
    return "\(b) B"
}

func pad(_ s: String, _ width: Int, right: Bool = false) -> String {
    let n = s.count
    if n >= width { return s }
    let fill = String(repeating: " ", count: width - n)
    return right ? fill + s : s + fill
}

/// A plain-text table: the first row is the header; columns listed in
/// `rightAligned` are numbers.
func renderTable(_ rows: [[String]], rightAligned: Set<Int> = []) -> String {
    guard let header = rows.first else { return "" }
    var widths = [Int](repeating: 0, count: header.count)
    for r in rows { for (i, c) in r.enumerated() where i < widths.count { widths[i] = Swift.max(widths[i], c.count) } }
    var out = ""
    for (ri, r) in rows.enumerated() {
        var line = ""
        for (i, c) in r.enumerated() {
            let last = i == r.count - 1
            line += last && !rightAligned.contains(i) ? c : pad(c, widths[i], right: rightAligned.contains(i))
            if !last { line += "  " }
        }
        out += line + "\n"
        if ri == 0 { out += widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ") + "\n" }
    }
    return out
}

// MARK: Machine-readable lines

/// A number for scripts: 4 significant digits, integers without a
/// fraction, `nan` when not measured.
func machineNumber(_ x: Double) -> String {
    if x.isNaN { return "nan" }
    if x == 0 { return "0" }
    if x == x.rounded() && abs(x) < 9e15 { return String(Int64(x)) }
    let digits = Int(Glibc.log10(abs(x)).rounded(.down))
    let scale = Glibc.pow(10, Double(3 - digits))
    let r = (x * scale).rounded() / scale
    if r == r.rounded() && abs(r) < 1e15 { return String(Int64(r)) }
    return String(r)
}

/// One figure for scripts: `BENCH name=<id> value=<number> unit=<unit> target=<number>`.
/// `met=yes|no` follows when there is a target; a figure that could not be
/// measured has `value=nan` and a `reason=` word list in quotes.
struct BenchLine {
    var name: String
    var value: Double
    var unit: String
    var target: Double?
    /// True when larger is better (rates, speedups).
    var higherIsBetter: Bool
    var reason: String? = nil

    var met: Bool? {
        guard let target, !value.isNaN else { return nil }
        return higherIsBetter ? value >= target : value <= target
    }

    var text: String {
        var s = "BENCH name=\(name) value=\(machineNumber(value)) unit=\(unit)"
        if let target { s += " target=\(machineNumber(target))" }
        if let met { s += " met=\(met ? "yes" : "no")" }
        if let reason { s += " reason=\"\(reason)\"" }
        return s
    }

    /// `met`, `NOT MET` or `not measured`, for tables.
    var verdict: String {
        if value.isNaN { return "not measured" }
        guard let met else { return "" }
        return met ? "met" : "NOT MET"
    }
}

// MARK: The machine

/// The processor, cores, kernel and load: printed with every result.
struct Machine {
    var cpu: String
    var cores: Int
    var kernel: String
    var load: String
    /// Set in the kernel lane's guest.
    var laneConfig: String?

    static func current() -> Machine {
        let cpuinfo = readSmallFile("/proc/cpuinfo") ?? ""
        var cpu = "unknown CPU"
        for line in cpuinfo.split(separator: "\n") where line.hasPrefix("model name") {
            if let colon = line.firstIndex(of: ":") {
                cpu = String(line[line.index(after: colon)...]).trimmingSpaces()
            }
            break
        }
        var uts = utsname()
        uname(&uts)
        let release = withUnsafeBytes(of: &uts.release) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        let load = (readSmallFile("/proc/loadavg") ?? "").split(separator: " ").prefix(3).joined(separator: " ")
        let lane = getenv("VFIO_LANE_CONFIG").map { String(cString: $0) }
        return Machine(cpu: cpu, cores: Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))), kernel: release,
                       load: load, laneConfig: lane)
    }

    var description: String {
        var s = "\(cpu), \(cores) online CPUs (nproc), Linux \(kernel), load average \(load)"
        if let laneConfig { s += ", kernel lane \(laneConfig) (QEMU TCG guest)" }
        return s
    }
}

extension StringProtocol {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while let c = s.first, c == " " || c == "\t" { s.removeFirst() }
        while let c = s.last, c == " " || c == "\t" || c == "\n" { s.removeLast() }
        return String(s)
    }
}

// MARK: Files and /proc

/// A whole file, or nil.
/// A file's bytes, or nil when it cannot be read.
func readBytes(_ path: String) -> [UInt8]? { try? readFile(path).get() }

func readSmallFile(_ path: String) -> String? { readBytes(path).map { String(decoding: $0, as: UTF8.self) } }

/// Makes `path` and its parents (like `mkdir -p`).
func makeDirectories(_ path: String) -> String? {
    var at = path.hasPrefix("/") ? "/" : ""
    for part in path.split(separator: "/") {
        at += part + "/"
        if mkdir(at, 0o755) != 0 && errno != EEXIST { return "cannot create \(at): \(String(cString: strerror(errno)))" }
    }
    return nil
}

/// A `kB` field of `/proc/self/status` (`VmHWM`, `VmRSS`), in bytes.
func procStatusBytes(_ field: String) -> UInt64? {
    guard let status = readSmallFile("/proc/self/status") else { return nil }
    for line in status.split(separator: "\n") where line.hasPrefix(field + ":") {
        let digits = line.dropFirst(field.count + 1).filter { $0.isNumber }
        return UInt64(digits).map { $0 * 1024 }
    }
    return nil
}

/// Flushes stdout now (progress while a long table builds).
func flushOut() { fflush(nil) }
