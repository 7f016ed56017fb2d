import VFIOCore
import VFIOTrace

/// One container's recording: a trace that replays, and the notes the
/// recorder has for the person who ran it.
public struct RecordedTrace: Sendable, Hashable {
    /// The recorder's name for the container (order of first use).
    public var container: Int
    public var trace: Trace
    public var notes: [String]
}

/// Turns what the tracer saw (`RecordEvent`s) into one trace per VFIO
/// container: setup statements from the process's limits and the groups'
/// probed domains, `memory` for every region a map touched, every ioctl
/// with the kernel's answer after `=>`, and `check locked=` / `check
/// mappings=` where the recording knows them.
///
/// Pure: no system call, so decoding and writing are tested with
/// hand-made events.
public struct TraceBuilder {
    /// Comment lines heading every trace (how it was made).
    var header: [String]
    var containers: [Int: ContainerLog] = [:]
    var order: [Int] = []
    var groups: [Int: GroupState] = [:]
    var globalNotes: [String] = []

    public init(header: [String] = []) { self.header = header }

    struct GroupState {
        var number: UInt32
        /// The container it is attached to.
        var container: Int?
        /// Comments for group ioctls made before it joined a container.
        var pending: [String] = []
    }

    public mutating func add(_ event: RecordEvent) {
        switch event {
        case .containerOpened(let c, let path):
            _ = log(c, path: path)
        case .containerIoctl(let c, let call):
            var l = log(c, path: nil)
            l.ioctl(call, groups: groups)
            containers[c] = l
        case .groupIoctl(let g, let number, let call, let target):
            groupIoctl(g, number: number, call, target: target)
        case .groupReleased(let g):
            guard var state = groups[g], let c = state.container, var l = containers[c] else { return }
            l.detach(g, name: Self.groupName(state.number), comment: "the group's last fd was closed")
            containers[c] = l
            state.container = nil
            groups[g] = state
        case .note(let text):
            globalNotes.append(text)
        }
    }

    static func groupName(_ number: UInt32) -> String { "g\(number)" }

    mutating func log(_ c: Int, path: String?) -> ContainerLog {
        if let l = containers[c] { return l }
        let l = ContainerLog(path: path)
        containers[c] = l
        order.append(c)
        return l
    }

    mutating func groupIoctl(_ g: Int, number: UInt32, _ call: IoctlCall, target: Int?) {
        var state = groups[g] ?? GroupState(number: number)
        let name = Self.groupName(number)
        switch call.request {
        case VFIO.groupSetContainer:
            guard let target else {
                state.pending.append("VFIO_GROUP_SET_CONTAINER on an fd that is not a known container => \(describe(call.result))")
                groups[g] = state
                return
            }
            var l = log(target, path: nil)
            for comment in state.pending { l.comment(comment) }
            state.pending = []
            if case .success = call.result { state.container = target }
            groups[g] = state
            l.attach(g, name: name, answer: answer(call.result))
            containers[target] = l
        case VFIO.groupUnsetContainer:
            guard let c = state.container, var l = containers[c] else {
                state.pending.append("VFIO_GROUP_UNSET_CONTAINER (\(name)) => \(describe(call.result))")
                groups[g] = state
                return
            }
            if case .success = call.result {
                l.detach(g, name: name, comment: nil)
                state.container = nil
            } else {
                l.comment("VFIO_GROUP_UNSET_CONTAINER (\(name)) => \(describe(call.result))")
            }
            containers[c] = l
            groups[g] = state
        default:
            let text = "\(Self.groupRequestName(call)) (\(name)) => \(describe(call.result))"
            if let c = state.container, var l = containers[c] {
                l.comment(text)
                containers[c] = l
            } else {
                state.pending.append(text)
            }
            groups[g] = state
        }
    }

    static func groupRequestName(_ call: IoctlCall) -> String {
        switch call.request {
        case VFIO.groupGetStatus:
            let flags = IoctlDecoding.u32(call.after, 4)
            let words = [(1, "viable"), (2, "container-set")].filter { flags & UInt32($0.0) != 0 }.map(\.1)
            return "VFIO_GROUP_GET_STATUS flags=\(words.isEmpty ? "0" : words.joined(separator: ","))"
        case VFIO.groupGetDeviceFD:
            let name = String(decoding: call.before.prefix { $0 != 0 }, as: UTF8.self)
            return "VFIO_GROUP_GET_DEVICE_FD \(name)"
        default:
            return "group ioctl \(formatAddress(UInt64(call.request)))"
        }
    }

    /// The traces, in the order the containers were first used.
    public func finish() -> [RecordedTrace] {
        order.enumerated().map { index, c in
            containers[c]!.trace(header: header, file: "", container: index + 1, notes: globalNotes)
        }
    }
}

func describe(_ result: Result<Int64, Errno>) -> String {
    switch result {
    case .success(let v): v == 0 ? "ok" : String(v)
    case .failure(let e): e.description
    }
}

func answer(_ result: Result<Int64, Errno>) -> Answer {
    switch result {
    case .success: Answer(.ok)
    case .failure(let e): Answer(.errno(e))
    }
}
