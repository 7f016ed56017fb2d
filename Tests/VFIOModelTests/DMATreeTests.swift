import Testing
import VFIOCore
@testable import VFIOModel

@Suite("the kernel's rb-tree")
struct DMATreeTests {
    @Test("inserting 1…7 in order gives the red-black shape the kernel's rb_insert_color gives")
    func ascendingShape() {
        var t = DMATree<Int>()
        for k in 1...7 { t.insert(UInt64(k), size: 1, k) }
        #expect(t.shape == "((. 1:B .) 2:B ((. 3:B .) 4:R ((. 5:R .) 6:B (. 7:R .))))")
        #expect(t._checkInvariants() == nil)
    }

    @Test("erasing the root of that tree puts its successor there and rebalances as rb_erase does")
    func eraseRoot() {
        var t = DMATree<Int>()
        var slots: [Int: Int32] = [:]
        for k in 1...7 { slots[k] = t.insert(UInt64(k), size: 1, k) }
        #expect(t.remove(slots[2]!) == 2)
        #expect(t.shape == "((. 1:B .) 3:B ((. 4:B (. 5:R .)) 6:R (. 7:B .)))")
        #expect(t._checkInvariants() == nil)
    }

    @Test("an equal start is linked to the left, as vfio_link_dma does with the new mapping's size still 0")
    func equalGoesLeft() {
        var t = DMATree<Int>()
        let a = t.insert(10, size: 1, 1)
        let b = t.insert(10, size: 1, 2)
        #expect(t.first == b)
        #expect(t.next(b) == a)
    }

    @Test("random inserts and erases keep the red-black rules and the in-order sequence", arguments: [1, 2, 3, 4] as [UInt64])
    func randomSequences(seed: UInt64) {
        var rng = SeededRandom(seed: seed)
        var t = DMATree<UInt64>()
        var live: [(slot: Int32, key: UInt64)] = []
        for _ in 0..<2000 {
            if live.isEmpty || rng.below(100) < 60 {
                let key = rng.below(500)
                live.append((t.insert(key, size: 1, key), key))
            } else {
                let i = Int(rng.below(UInt64(live.count)))
                #expect(t.remove(live[i].slot) == live[i].key)
                live.remove(at: i)
            }
            if let p = t._checkInvariants() { Issue.record("\(p)"); return }
        }
        #expect(t.entries.map(\.key) == live.map(\.key).sorted())
        #expect(t.count == live.count)
    }

    @Test("the same insert and erase sequence always gives the same shape")
    func deterministicShape() {
        func build() -> String {
            var t = DMATree<Int>()
            var s: [Int32] = []
            for k in [50, 20, 80, 10, 30, 70, 90, 25, 27, 26] { s.append(t.insert(UInt64(k), size: 1, k)) }
            t.remove(s[1]); t.remove(s[0])
            return t.shape
        }
        #expect(build() == build())
        // Worked by hand: 26 recolours and rotates twice up to the root (27);
        // 20's successor 25 takes its place, 50's successor 70 its place.
        #expect(build() == "(((. a:B .) 19:R (. 1a:B .)) 1b:B ((. 1e:B .) 46:R (. 50:B (. 5a:R .))))")
    }

    @Test("before 6.18 the kernel's search turns right at a mapping ending at 2^64-1 and left for a range ending there")
    func wrappingSearches() {
        var t = DMATree<Int>()
        let top = t.insert(0xFFFF_FFFF_FFFF_F000, size: 0x1000, 0)
        let low = t.insert(0x1000, size: 0x1000, 1)
        #expect(t.wrappingFind(start: 0x1000, size: 0x1000) == low)
        #expect(t.wrappingFind(start: 0xFFFF_FFFF_FFFF_F000, size: 0x1000) == nil)
        #expect(t.wrappingFirstNode(start: 0, size: .max) == nil)        // the root ends at 0
        _ = top
    }
}
