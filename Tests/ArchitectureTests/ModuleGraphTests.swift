import Foundation
import Testing

// The module graph as Package.swift declares it must be the graph the
// sources import: no module imports what it does not declare, and none
// declares what it does not use. VFIOModel stays free of Foundation.

let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// Target name → (declared dependencies, source folder) from Package.swift.
func declaredTargets() throws -> [String: (deps: Set<String>, path: String)] {
    let text = try String(contentsOf: root.appendingPathComponent("Package.swift"), encoding: .utf8)
    var out: [String: (Set<String>, String)] = [:]
    let pattern = try NSRegularExpression(pattern: #"\.(target|executableTarget|testTarget)\(name: "([^"]+)"(?:, dependencies: \[([^\]]*)\])?(?:,\s*path: "([^"]+)")?"#)
    for m in pattern.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
        func group(_ i: Int) -> String? { Range(m.range(at: i), in: text).map { String(text[$0]) } }
        let kind = group(1)!, name = group(2)!
        let deps = Set((group(3) ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }.filter { !$0.isEmpty })
        let path = group(4) ?? (kind == "testTarget" ? "Tests/\(name)" : "Sources/\(name)")
        out[name] = (deps, path)
    }
    return out
}

/// The project's modules a target's Swift sources import.
func imports(in path: String, projectModules: Set<String>) throws -> Set<String> {
    var found: Set<String> = []
    let dir = root.appendingPathComponent(path)
    guard let files = FileManager.default.enumerator(at: dir, includingPropertiesForKeys: nil) else { return [] }
    for case let file as URL in files where file.pathExtension == "swift" {
        for line in try String(contentsOf: file, encoding: .utf8).split(separator: "\n") {
            let words = line.split(separator: " ")
            guard let i = words.firstIndex(of: "import"), i + 1 < words.count,
                  words[..<i].allSatisfy({ $0 == "@testable" || $0.hasPrefix("@_") }) else { continue }
            let module = String(words[i + 1])
            if projectModules.contains(module) || module == "Foundation" { found.insert(module) }
        }
    }
    return found
}

@Suite("The module graph")
struct ModuleGraphTests {
    @Test("every target imports exactly the project modules it declares")
    func declaredIsImported() throws {
        let targets = try declaredTargets()
        #expect(targets.count >= 10)
        let modules = Set(targets.keys)
        for (name, t) in targets.sorted(by: { $0.key < $1.key }) {
            let used = try imports(in: t.path, projectModules: modules).subtracting(["Foundation"])
            #expect(used == t.deps, "\(name): imports \(used.sorted()), declares \(t.deps.sorted())")
        }
    }

    @Test("the model, the trace layer and the kernel adapter depend on VFIOCore only (and the C shim)")
    func layers() throws {
        let targets = try declaredTargets()
        #expect(targets["VFIOModel"]?.deps == ["VFIOCore"])
        #expect(targets["VFIOTrace"]?.deps == ["VFIOCore"])
        #expect(targets["VFIOKernel"]?.deps == ["VFIOCore", "CVFIOSys"])
        #expect(targets["VFIOReplay"]?.deps == ["VFIOCore", "VFIOTrace"])
        #expect(targets["VFIOCore"]?.deps == [])
    }

    @Test("VFIOModel and the libraries below the command line use no Foundation")
    func noFoundation() throws {
        let targets = try declaredTargets()
        for name in ["VFIOCore", "VFIOModel", "VFIOTrace", "VFIOReplay", "VFIOKernel", "VFIOLane", "VFIOExplore", "VFIOCost"] {
            let t = try #require(targets[name])
            #expect(try !imports(in: t.path, projectModules: []).contains("Foundation"), "\(name) imports Foundation")
        }
    }
}
