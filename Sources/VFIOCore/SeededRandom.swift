/// splitmix64: small, fast, and the same sequence on every machine, so a
/// seed names a scenario for good.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    public mutating func pick<T>(_ items: [T]) -> T { items[Int(next() % UInt64(items.count))] }
    public mutating func chance(_ percent: UInt64) -> Bool { next() % 100 < percent }
    public mutating func below(_ n: UInt64) -> UInt64 { n == 0 ? 0 : next() % n }
}

extension SeededRandom {
    /// A Fisher–Yates shuffle driven by this generator.
    public mutating func shuffle<T>(_ a: inout [T]) {
        guard a.count > 1 else { return }
        for i in stride(from: a.count - 1, to: 0, by: -1) { a.swapAt(i, Int(below(UInt64(i + 1)))) }
    }
}
