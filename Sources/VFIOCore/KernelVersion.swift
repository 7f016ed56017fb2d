/// A Linux version, `major.minor`, whose type1 answers a model reproduces.
public struct KernelVersion: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var major: Int
    public var minor: Int
    public init(_ major: Int, _ minor: Int) { self.major = major; self.minor = minor }

    /// Parses `6.12`, `6.1`, `6.12.38+deb12-amd64` (a `uname -r`); nil otherwise.
    public init?(parsing text: String) {
        let digits = text.split(separator: ".", maxSplits: 2, omittingEmptySubsequences: false)
        guard digits.count >= 2, let major = Int(digits[0]),
              let minor = Int(digits[1].prefix(while: { $0.isNumber })), !digits[1].isEmpty,
              digits[1].first!.isNumber, major >= 0, major < 100, minor >= 0, minor < 1000
        else { return nil }
        self.major = major
        self.minor = minor
    }

    public static func < (a: KernelVersion, b: KernelVersion) -> Bool {
        (a.major, a.minor) < (b.major, b.minor)
    }
    public var description: String { "\(major).\(minor)" }
}

extension KernelVersion {
    /// The kernels of the matrix, oldest first: Debian's 5.10 (bullseye),
    /// 6.1 (bookworm), 6.12 (bookworm-backports, trixie), 6.18 and 7.3
    /// (trixie-backports), each booted in the kernel lane; each has a
    /// profile of answers (`KernelProfile`). A version between two of them answers as the
    /// older one; a version past the newest as the newest; one below the
    /// oldest is refused.
    public static let matrix: [KernelVersion] = [
        KernelVersion(5, 10), KernelVersion(6, 1), KernelVersion(6, 12), KernelVersion(6, 18), KernelVersion(7, 3),
    ]

    /// The known version whose answers `self` gets: itself when it is in
    /// `matrix`, else the newest known one below it; nil below the oldest.
    public var knownProfile: KernelVersion? {
        Self.matrix.last { $0 <= self }
    }

    /// `5.10, 6.1, 6.12, 6.18, 7.3`, for messages.
    public static var matrixList: String { matrix.map(\.description).joined(separator: ", ") }
}
