import Testing
import VFIOCore
@testable import VFIOModel

@Suite("The mapping tree")
struct IntervalTreeTests {
    @Test("random inserts and removes agree with a sorted array, and invariants hold", arguments: [1, 2, 3, 4])
    func randomAgainstReference(seed: UInt64) {
        var rng = SeededRandom(seed: seed)
        var tree = IntervalTree<UInt64>()
        var reference: [UInt64: UInt64] = [:]
        for step in 0..<4000 {
            let key = UInt64.random(in: 0..<512, using: &rng) << 12
            if reference[key] == nil && Bool.random(using: &rng) {
                tree.insert(key, UInt64(step))
                reference[key] = UInt64(step)
            } else {
                #expect(tree.remove(key) == reference.removeValue(forKey: key))
            }
            if step % 97 == 0 {
                #expect(tree._checkInvariants() == nil)
                let probe = UInt64.random(in: 0..<(513 << 12), using: &rng)
                let floorRef = reference.keys.filter { $0 <= probe }.max()
                let ceilRef = reference.keys.filter { $0 >= probe }.min()
                #expect(tree.floor(probe)?.key == floorRef)
                #expect(tree.ceiling(probe)?.key == ceilRef)
            }
        }
        #expect(tree.count == reference.count)
        #expect(tree.entries.map(\.key) == reference.keys.sorted())
    }

    @Test("keys at the very top of the 64-bit space are ordered and found")
    func topKeys() {
        var tree = IntervalTree<Int>()
        tree.insert(.max, 1)
        tree.insert(0, 2)
        tree.insert(.max - 4095, 3)
        #expect(tree.floor(.max)?.value == 1)
        #expect(tree.successor(.max) == nil)
        #expect(tree.successor(.max - 4095)?.value == 1)
        #expect(tree.entries.map(\.value) == [2, 3, 1])
        #expect(tree._checkInvariants() == nil)
    }

    @Test("sequential inserts keep the treap shallow enough to recurse")
    func sequentialInsertsStayBalanced() {
        var tree = IntervalTree<UInt64>()
        for i in 0..<100_000 as Range<UInt64> { tree.insert(i << 12, i) }
        #expect(tree.count == 100_000)
        #expect(tree.value(at: 77_777 << 12) == 77_777)
        for i in stride(from: 0 as UInt64, to: 100_000, by: 2) { tree.remove(i << 12) }
        #expect(tree.count == 50_000)
        #expect(tree._checkInvariants() == nil)
    }
}
