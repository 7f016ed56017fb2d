/// A Linux release whose type1 answers a model reproduces: `6.12`,
/// `6.12.38`, or a whole `uname -r` such as `6.12.38+deb12-amd64`.
///
/// The model answers by rules, each with the release it came in and the
/// stable releases it was backported to (`ReleaseRule`, VFIOModel), so any
/// release from `oldestKnown` on has answers. A release without a patch
/// level (`6.12`) stands for the newest stable release of its series, with
/// every backport of that series; that is what a user means by "6.12", and
/// what the lane boots.
public struct KernelVersion: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var major: Int
    public var minor: Int
    /// The stable patch level (`38` of `6.12.38`); nil when not given.
    public var patch: Int?
    /// What followed the version in a `uname -r` (`+deb12-amd64`,
    /// `-91-generic`, `-362.el9.x86_64`); empty when nothing did.
    public var suffix: String

    public init(_ major: Int, _ minor: Int, _ patch: Int? = nil, suffix: String = "") {
        self.major = major; self.minor = minor; self.patch = patch; self.suffix = suffix
    }

    /// Parses `MAJOR.MINOR`, optionally `.PATCH`, and a release suffix after
    /// `-` or `+` as `uname -r` prints it (`6.12.38+deb12-amd64`); nil for
    /// anything else (`6.1x`, `6`, `v6.1`, `6.12.`).
    public init?(parsing text: String) {
        let cut = text.firstIndex(where: { $0 == "-" || $0 == "+" })
        let numbers = text[..<(cut ?? text.endIndex)]
        let suffix = cut.map { String(text[$0...]) } ?? ""
        if suffix.count == 1 { return nil }
        let parts = numbers.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2 || parts.count == 3,
              parts.allSatisfy({ !$0.isEmpty && $0.count <= 5 && $0.allSatisfy { $0 >= "0" && $0 <= "9" } }),
              let major = Int(parts[0]), let minor = Int(parts[1]), major < 100, minor < 1000
        else { return nil }
        let patch = parts.count == 3 ? Int(parts[2]) : nil
        self.init(major, minor, patch, suffix: suffix)
    }

    /// `6.12` of `6.12.38+deb12-amd64`: the stable series.
    public var series: KernelVersion { KernelVersion(major, minor) }

    /// Whether the patch level is a distribution's own numbering rather
    /// than a stable release: Ubuntu (`5.15.0-91-generic`) and RHEL
    /// (`5.14.0-362.el9.x86_64`) keep `.0` and count their builds after the
    /// `-`, backporting fixes of their own choice. Stable backports are
    /// then unknown.
    public var isDistributionBuild: Bool {
        patch == 0 && suffix.hasPrefix("-") && suffix.dropFirst().first.map { $0 >= "0" && $0 <= "9" } == true
    }

    /// Orders by series, then patch level; a release without a patch level
    /// is the newest of its series (after every `X.Y.N`).
    public static func < (a: KernelVersion, b: KernelVersion) -> Bool {
        (a.major, a.minor, a.patch ?? .max) < (b.major, b.minor, b.patch ?? .max)
    }

    /// Equal releases have the same numbers; the suffix is only the name a
    /// distribution gave it.
    public static func == (a: KernelVersion, b: KernelVersion) -> Bool {
        a.major == b.major && a.minor == b.minor && a.patch == b.patch
    }
    public func hash(into h: inout Hasher) { h.combine(major); h.combine(minor); h.combine(patch) }

    public var description: String {
        "\(major).\(minor)" + (patch.map { ".\($0)" } ?? "") + suffix
    }
}

extension KernelVersion {
    /// The series the kernel lane boots, oldest first: Debian's 5.10
    /// (bullseye), 6.1 (bookworm), 6.12 (bookworm-backports, trixie), 6.18
    /// and 7.3 (trixie-backports). Their answers are checked against the
    /// real kernels; every other release is answered from the release
    /// history (`ReleaseRule`) and reports say so.
    public static let booted: [KernelVersion] = [
        KernelVersion(5, 10), KernelVersion(6, 1), KernelVersion(6, 12), KernelVersion(6, 18), KernelVersion(7, 3),
    ]

    /// The oldest release the model answers for; older ones are refused.
    public static let oldestKnown = KernelVersion(5, 10)
    /// The newest release whose history the model knows; a newer one is
    /// answered as this one, with a note.
    public static let newestKnown = KernelVersion(7, 3)

    /// Whether the model answers for this release at all (5.10 or newer).
    public var isKnown: Bool { series >= Self.oldestKnown }

    /// Whether the lane boots this release's series.
    public var isBooted: Bool { Self.booted.contains(series) }

    /// `5.10, 6.1, 6.12, 6.18, 7.3`, for messages.
    public static var bootedList: String { booted.map(\.description).joined(separator: ", ") }

    /// What a report says about where this release's answers come from, or
    /// nil when the lane boots its series and checks them.
    public var provenanceNote: String? {
        if !isKnown { return nil }
        if series > Self.newestKnown {
            return "kernel \(self): newer than the newest release known (\(Self.newestKnown)): answered as \(Self.newestKnown) (not booted in the lane)"
        }
        var note: String? = isBooted ? nil : "kernel \(self): answered from the release history (not booted in the lane)"
        if isDistributionBuild {
            let build = "kernel \(self): \(self.series).0\(suffix) numbers a distribution's build, not a stable release: answered as mainline \(series) without stable backports; the distribution's own backports are not known"
            note = note.map { $0 + "; " + build.dropFirst("kernel \(self): ".count) } ?? build
        }
        return note
    }
}
