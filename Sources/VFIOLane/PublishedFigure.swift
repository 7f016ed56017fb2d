import VFIOCore
import VFIOCost
import VFIOTrace

/// A published kernel time a scenario trace stands for: its
/// `# published: map=SECONDS unmap=SECONDS` comment (`<SECONDS` for a
/// figure given as a bound, "sub-millisecond"). The traces in
/// Benchmarks/published hold one each, with their sources; the cost model
/// is checked against them (`vfio-bench published`, a test).
public struct PublishedFigure: Sendable {
    public enum Value: Sendable, Equatable {
        case about(Double)
        case below(Double)
        public var seconds: Double { switch self { case .about(let s), .below(let s): s } }
        public var text: String { switch self { case .about(let s): "\(s) s"; case .below(let s): "< \(s) s" } }
    }
    public var file: String
    public var map: Value?
    public var unmap: Value?

    /// The figure a trace's text states, or nil when it states none.
    public static func parse(_ text: String, file: String) -> PublishedFigure? {
        for line in text.split(separator: "\n") where line.hasPrefix("# published:") {
            var f = PublishedFigure(file: file)
            for word in line.dropFirst("# published:".count).split(separator: " ") {
                let kv = word.split(separator: "=", maxSplits: 1)
                guard kv.count == 2 else { continue }
                let bound = kv[1].hasPrefix("<")
                guard let s = Double(bound ? kv[1].dropFirst() : kv[1]) else { continue }
                let v: Value = bound ? .below(s) : .about(s)
                if kv[0] == "map" { f.map = v }
                if kv[0] == "unmap" { f.unmap = v }
            }
            return f
        }
        return nil
    }

    /// One published value against the estimate.
    public struct Check: Sendable {
        public var what: String
        public var published: Value
        public var estimate: Double
        /// Estimate over published (for a bound, over the bound).
        public var ratio: Double { estimate / published.seconds }
        /// Within `factor` either way; under a bound, below it.
        public func holds(within factor: Double) -> Bool {
            switch published {
            case .about: ratio <= factor && ratio >= 1 / factor
            case .below: ratio < 1
            }
        }
    }

    public func checks(_ t: KernelTime) -> [Check] {
        var out: [Check] = []
        if let map { out.append(Check(what: "map", published: map, estimate: t.map)) }
        if let unmap { out.append(Check(what: "unmap", published: unmap, estimate: t.unmap)) }
        return out
    }
}
