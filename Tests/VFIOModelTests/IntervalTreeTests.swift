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

    /// The number of nodes on the longest root-to-leaf path (0 when empty),
    /// walked without recursion.
    func depth<V>(_ tree: IntervalTree<V>) -> Int {
        var deepest = 0
        var stack: [(node: Int32, depth: Int)] = tree.root >= 0 ? [(tree.root, 1)] : []
        while let (n, d) = stack.popLast() {
            deepest = max(deepest, d)
            let link = tree.nodes[Int(n)]
            if link.left >= 0 { stack.append((link.left, d + 1)) }
            if link.right >= 0 { stack.append((link.right, d + 1)) }
        }
        return deepest
    }

    @Test("sequential inserts keep the treap shallow enough to recurse: depth within 3 log2(n), not n")
    func sequentialInsertsStayBalanced() {
        var tree = IntervalTree<UInt64>()
        for i in 0..<100_000 as Range<UInt64> { tree.insert(i << 12, i) }
        #expect(tree.count == 100_000)
        #expect(tree.value(at: 77_777 << 12) == 77_777)
        // A balanced tree of 100,000 keys is 17 deep; keys inserted in order
        // into an unbalanced one make a list 100,000 deep. A treap with
        // well-spread priorities stays within a small multiple of log2(n).
        #expect(depth(tree) <= 51)
        for i in stride(from: 0 as UInt64, to: 100_000, by: 2) { tree.remove(i << 12) }
        #expect(tree.count == 50_000)
        #expect(depth(tree) <= 48)
        #expect(tree._checkInvariants() == nil)
    }

    @Test("the depth measure sees a tree's shape: one key is 1 deep, an empty tree 0")
    func depthMeasure() {
        var tree = IntervalTree<Int>()
        #expect(depth(tree) == 0)
        tree.insert(0x1000, 1)
        #expect(depth(tree) == 1)
        tree.insert(0x2000, 2)
        #expect(depth(tree) == 2)
    }
}
