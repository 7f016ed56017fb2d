import VFIOCore

/// A property of a container model that did not hold after a call: a short
/// name, the same for the same bug (shrinking keeps it), and what was seen.
public struct PropertyViolation: Sendable, Equatable {
    public var property: String
    public var detail: String
    public init(_ property: String, _ detail: String) {
        self.property = property
        self.detail = detail
    }
}

/// The state of a container that a call is checked against afterwards
/// (`ContainerDriver.propertyViolations`): each driver keeps its own
/// values in it, compared whole for "a failed call changes nothing".
public struct ContainerSnapshot: Equatable {
    let state: AnyHashable
    init<S: Hashable>(_ state: S) { self.state = AnyHashable(state) }
    /// The driver's own snapshot type (nil: another driver's).
    func `as`<S: Hashable>(_: S.Type) -> S? { state.base as? S }
}

/// The properties every call of a container must keep, whatever its
/// answer, checked by the explorer after each one. Each driver states its
/// own: type1 and iommufd differ (iommufd keeps areas, has no entry limit,
/// charges the user, and its unmap is not atomic).
public protocol ContainerProperties {
    /// What a call is checked against afterwards.
    func snapshot() -> ContainerSnapshot
    /// The properties `call` broke, leaving this state from `before`
    /// (`checkInvariants` is walked apart).
    func propertyViolations(after call: ContainerCall, before: ContainerSnapshot) -> [PropertyViolation]
    /// Whether UNMAP_ALL at the end of a sequence means anything (an IOMMU
    /// set or an IOAS made, and no call stuck).
    var unmapsAllAtEnd: Bool { get }
    /// What UNMAP_ALL at the end of a sequence (`result`) left that it
    /// should not have; `before` is the state before it.
    func unmapAllLeftovers(_ result: Result<UInt64, Errno>, before: ContainerSnapshot) -> PropertyViolation?
}
