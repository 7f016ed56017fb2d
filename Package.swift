// swift-tools-version:6.0
import PackageDescription

// Data flows one way: trace text (VFIOTrace) → requests (VFIOCore) →
// replay engine (VFIOReplay) → backend (VFIOModel or VFIOKernel) → report.
// No package dependencies: the toolchain only.
let package = Package(
    name: "VFIOSim",
    products: [
        .executable(name: "vfio-sim", targets: ["vfio-sim"]),
        .library(name: "VFIOModel", targets: ["VFIOModel"]),
        .library(name: "VFIOTrace", targets: ["VFIOTrace"]),
        .library(name: "VFIOReplay", targets: ["VFIOReplay"]),
        .library(name: "VFIOLane", targets: ["VFIOLane"]),
    ],
    targets: [
        // The contract shared by every layer: errno values and the uapi
        // requests and answers of include/uapi/linux/vfio.h.
        .target(name: "VFIOCore"),
        // The pure-Swift type1 container. Standard library only.
        .target(name: "VFIOModel", dependencies: ["VFIOCore"]),
        // Lexer, parser, diagnostics and printer for `.trace` files.
        .target(name: "VFIOTrace", dependencies: ["VFIOCore"]),
        // The cost model: counts of the kernel's work (pages, chunks, PTEs)
        // into seconds, by a profile of named constants. Standard library only.
        .target(name: "VFIOCost", dependencies: ["VFIOCore"]),
        // Mapping plans of real programs (DPDK, QEMU, SPDK, ...) as trace
        // text: `vfio-sim new` and the benchmark's plans.
        .target(name: "VFIOScenario", dependencies: ["VFIOCore"]),
        // The replay engine (drives `any Backend`), comparison and reports.
        .target(name: "VFIOReplay", dependencies: ["VFIOCore", "VFIOTrace"]),
        // The few system calls Swift's Glibc module does not import.
        .target(name: "CVFIOSys"),
        // Reading traces and writing reports for the command-line tools.
        .target(name: "VFIOFileIO"),
        // Generated sequences, properties, differential runs and shrinking.
        .target(name: "VFIOExplore", dependencies: ["VFIOCore", "VFIOTrace", "VFIOModel", "VFIOReplay"]),
        // Real ioctls on /dev/vfio: the kernel backend, every system call
        // through `SystemCalls`.
        .target(name: "VFIOKernel", dependencies: ["VFIOCore", "CVFIOSys"]),
        // Orchestration: replays and explorations on the model or a real
        // kernel, a process per trace, the skip policy, the lane's report.
        .target(name: "VFIOLane", dependencies: ["VFIOCore", "VFIOTrace", "VFIOReplay", "VFIOModel", "VFIOKernel", "VFIOExplore", "VFIOScenario", "VFIOCost"]),
        // `vfio-sim record`: a program under ptrace, its VFIO ioctls as traces.
        .target(name: "VFIORecord", dependencies: ["VFIOCore", "VFIOTrace", "VFIOKernel", "CVFIOSys"]),
        .executableTarget(name: "vfio-sim", dependencies: ["VFIOCore", "VFIOTrace", "VFIOReplay", "VFIOModel", "VFIOKernel", "VFIOExplore", "VFIOLane", "VFIOFileIO", "VFIORecord", "VFIOScenario", "VFIOCost"]),
        // Benchmarks print numbers; they are never timed tests.
        .executableTarget(name: "vfio-bench", dependencies: ["VFIOCore", "VFIOTrace", "VFIOReplay", "VFIOModel", "VFIOKernel", "VFIOLane", "VFIOFileIO", "VFIOScenario", "VFIOCost"],
                          path: "Benchmarks/vfio-bench"),
        .testTarget(name: "VFIOTraceTests", dependencies: ["VFIOCore", "VFIOTrace"]),
        .testTarget(name: "VFIOModelTests", dependencies: ["VFIOCore", "VFIOModel"]),
        .testTarget(name: "VFIOReplayTests", dependencies: ["VFIOCore", "VFIOReplay", "VFIOTrace", "VFIOModel"]),
        // A machine made of tables, for tests of the kernel backend and the lane.
        .target(name: "ScriptedSystem", dependencies: ["VFIOCore", "VFIOKernel"], path: "Tests/ScriptedSystem"),
        .testTarget(name: "VFIOKernelTests", dependencies: ["VFIOCore", "VFIOKernel", "ScriptedSystem", "CVFIOSys"]),
        .testTarget(name: "VFIOLaneTests", dependencies: ["VFIOCore", "VFIOTrace", "VFIOReplay", "VFIOModel", "VFIOKernel", "VFIOLane", "VFIOExplore", "ScriptedSystem", "VFIOScenario", "VFIOCost"]),
        // The built vfio-sim as a user runs it.
        .testTarget(name: "CLITests", dependencies: []),
        // Package.swift declares exactly what each module imports.
        .testTarget(name: "ArchitectureTests", dependencies: []),
        .testTarget(name: "VFIORecordTests", dependencies: ["VFIOCore", "VFIOTrace", "VFIORecord", "VFIOReplay", "VFIOModel"]),
        .testTarget(name: "VFIOExploreTests", dependencies: ["VFIOCore", "VFIOExplore", "VFIOReplay", "VFIOTrace", "VFIOModel"]),
    ],
    swiftLanguageModes: [.v6]
)
