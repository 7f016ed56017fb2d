import Foundation
import Testing
import VFIOModel
import VFIOReplay
import VFIOTrace

/// `Fixtures/recorded/`: what `vfio-sim record` captured of real clients
/// (dpdk-testpmd, a nested QEMU) in the recording lane
/// (`scripts/kernel-lane/record-lane.sh --update-fixtures`), named
/// `CLIENT-SERIES.trace`. Their answers are what that kernel said.
let recordedNames: [String] = {
    let dir = fixturesDirectory.appendingPathComponent("recorded")
    let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
    return names.filter { $0.hasSuffix(".trace") }.sorted().map { "recorded/\($0)" }
}()

/// "recorded/dpdk-testpmd-va-6.12.trace" -> ("dpdk-testpmd-va", "6.12")
func recordedClientAndSeries(_ name: String) -> (client: String, series: String)? {
    let base = String(name.dropFirst("recorded/".count).dropLast(".trace".count))
    guard let dash = base.lastIndex(of: "-") else { return nil }
    return (String(base[..<dash]), String(base[base.index(after: dash)...]))
}

@Suite("Recorded fixtures")
struct RecordedFixtureTests {
    @Test("recordings of dpdk-testpmd (IOVA as VA and as PA) and of the nested QEMUs are committed from at least two kernels")
    func recordingsExist() {
        let parsed = recordedNames.compactMap(recordedClientAndSeries)
        #expect(parsed.count == recordedNames.count, "every recording is named CLIENT-SERIES.trace")
        // 6.1's recordings of the nested QEMU are kept apart (one check
        // differs): Fixtures/recorded/disagree/README.md.
        for client in ["dpdk-testpmd-va", "dpdk-testpmd-pa", "qemu-edu", "qemu-edu-hotplug"] {
            let series = Set(parsed.filter { $0.client == client }.map(\.series))
            #expect(series.count >= 2, "\(client) recorded on \(series.sorted()), wanted two kernels or more")
        }
    }

    @Test("every recording replays on the model with every answer the kernel gave", arguments: recordedNames)
    func replays(name: String) throws {
        try expectReplaysWithWrittenAnswers(name, answersBy: "the kernel")
    }

    @Test("every recording is headed by how it was made", arguments: recordedNames)
    func headedByHowItWasMade(name: String) throws {
        let trace = try loadTrace(name)
        guard case .comment(let text)? = trace.statements.first?.kind else {
            Issue.record("\(name) does not start with a comment")
            return
        }
        #expect(text.contains("Recorded by scripts/kernel-lane/record-lane.sh"))
    }
}
