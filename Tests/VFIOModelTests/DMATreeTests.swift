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

    /// `floor(last)` checked against its end: the exact search
    /// `linkPoint` must agree with.
    static func floorOverlaps<V>(_ t: DMATree<V>, start: UInt64, last: UInt64) -> Bool {
        guard let f = t.floor(last) else { return false }
        return t.key(f) &+ (t.size(f) - 1) >= start
    }

    @Test("linkPoint finds an overlap exactly when floor(last) reaches start, and inserting there gives insert's tree",
          arguments: [5, 6, 7] as [UInt64])
    func linkPointIsSearchAndInsert(seed: UInt64) {
        var rng = SeededRandom(seed: seed)
        // Two trees built alike: one by insert, one by linkPoint + insert(at:).
        var plain = DMATree<UInt64>(), linked = DMATree<UInt64>()
        var live: [(slot: Int32, key: UInt64)] = []
        for _ in 0..<3000 {
            // Overlapping sizes too (the kernel lets mappings overlap before
            // 6.18): the answer must match floor's, whatever the tree holds.
            let start = rng.below(4000), size = 1 + rng.below(rng.below(2) == 0 ? 4 : 40)
            let last = start + size - 1
            let place = linked.linkPoint(start: start, last: last)
            #expect((place == nil) == Self.floorOverlaps(linked, start: start, last: last), "[\(start), \(last)]")
            if live.isEmpty || rng.below(100) < 55 {
                let a = plain.insert(start, size: size, start)
                let b = place.map { linked.insert(start, size: size, start, at: $0) } ?? linked.insert(start, size: size, start)
                #expect(a == b)
                live.append((a, start))
            } else {
                let i = Int(rng.below(UInt64(live.count)))
                plain.remove(live[i].slot); linked.remove(live[i].slot)
                live.remove(at: i)
            }
            if plain.shape != linked.shape { Issue.record("shapes differ after inserting at \(start)"); return }
            if let p = linked._checkInvariants() { Issue.record("\(p)"); return }
        }
    }

    @Test("a link point found before the tree changed, or for another start, is not used: the walk is made again")
    func staleLinkPoint() {
        var t = DMATree<Int>()
        for k in [10, 20, 30] { t.insert(UInt64(k), size: 1, k) }
        let place = t.linkPoint(start: 25, last: 25)!
        t.insert(24, size: 1, 24)   // 25 now goes right of 24, not left of 30
        t.insert(25, size: 1, 25, at: place)
        let other = t.linkPoint(start: 5, last: 5)!
        t.insert(40, size: 1, 40, at: other)   // not on the left of 10
        #expect(t.entries.map(\.key) == [10, 20, 24, 25, 30, 40])
        #expect(t._checkInvariants() == nil)
        var fresh = DMATree<Int>()
        for k in [10, 20, 30, 24, 25, 40] { fresh.insert(UInt64(k), size: 1, k) }
        #expect(t.shape == fresh.shape)
    }

    @Test("linkPoint: a mapping ending just before, or starting just after, is no overlap; one page in common is")
    func linkPointEdges() {
        var t = DMATree<Int>()
        t.insert(0x1000, size: 0x1000, 1)   // [0x1000, 0x1fff]
        t.insert(0x4000, size: 0x1000, 2)   // [0x4000, 0x4fff]
        #expect(t.linkPoint(start: 0x2000, last: 0x3fff) != nil)
        #expect(t.linkPoint(start: 0x1fff, last: 0x2000) == nil)
        #expect(t.linkPoint(start: 0x3000, last: 0x4000) == nil)
        #expect(t.linkPoint(start: 0, last: 0xfff) != nil)
        #expect(t.linkPoint(start: 0x5000, last: .max) != nil)
        #expect(t.linkPoint(start: 0, last: .max) == nil)
        #expect(DMATree<Int>().linkPoint(start: 0, last: .max) != nil)
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
