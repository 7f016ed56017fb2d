/// An ordered map from a `UInt64` start address to a value, for disjoint
/// ranges: the shape of the kernel's `dma_list` rb-tree.
///
/// A treap whose nodes live in one `ContiguousArray` and link by `Int32`
/// index (no object per node); a node's priority is a hash of its key, so
/// no priority is stored and the shape is the same for the same keys.
/// Freed slots are reused through a free list.
///
/// - Complexity: `insert`, `remove`, `floor`, `ceiling`: O(log n) expected.
public struct IntervalTree<Value> {
    /// The part of a node a search reads: 16 bytes, so a walk touches four
    /// nodes per cache line; values live apart in `values`, same slot.
    @usableFromInline
    struct Link {
        var key: UInt64
        var left: Int32
        var right: Int32
    }

    @usableFromInline var nodes: ContiguousArray<Link> = []
    @usableFromInline var values: ContiguousArray<Value> = []
    @usableFromInline var root: Int32 = -1
    @usableFromInline var freeList: [Int32] = []
    public private(set) var count: Int = 0

    public init() {}

    public var isEmpty: Bool { count == 0 }

    @inline(__always)
    static func priority(_ key: UInt64) -> UInt64 {
        // splitmix64 finaliser: a well-spread priority from the key alone.
        var z = key &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The value stored at exactly `key`.
    public func value(at key: UInt64) -> Value? {
        var n = root
        while n >= 0 {
            let node = nodes[Int(n)]
            if key == node.key { return values[Int(n)] }
            n = key < node.key ? node.left : node.right
        }
        return nil
    }

    /// The entry with the greatest key ≤ `key`.
    public func floor(_ key: UInt64) -> (key: UInt64, value: Value)? {
        var n = root
        var best: Int32 = -1
        while n >= 0 {
            let node = nodes[Int(n)]
            if node.key <= key { best = n; n = node.right } else { n = node.left }
        }
        return best < 0 ? nil : (nodes[Int(best)].key, values[Int(best)])
    }

    /// The entry with the smallest key ≥ `key`.
    public func ceiling(_ key: UInt64) -> (key: UInt64, value: Value)? {
        var n = root
        var best: Int32 = -1
        while n >= 0 {
            let node = nodes[Int(n)]
            if node.key >= key { best = n; n = node.left } else { n = node.right }
        }
        return best < 0 ? nil : (nodes[Int(best)].key, values[Int(best)])
    }

    /// The entry after `key` in ascending order.
    public func successor(_ key: UInt64) -> (key: UInt64, value: Value)? {
        key == .max ? nil : ceiling(key + 1)
    }

    /// The smallest entry.
    public var first: (key: UInt64, value: Value)? { ceiling(0) }

    /// Changes the value stored at `key`; returns false if there is none.
    @discardableResult
    public mutating func update(at key: UInt64, _ body: (inout Value) -> Void) -> Bool {
        var n = root
        while n >= 0 {
            if key == nodes[Int(n)].key { body(&values[Int(n)]); return true }
            n = key < nodes[Int(n)].key ? nodes[Int(n)].left : nodes[Int(n)].right
        }
        return false
    }

    /// The slot of the node holding `key`: stable while the key stays in
    /// the tree, so side tables can be indexed by it instead of a second
    /// tree walk.
    public func slot(of key: UInt64) -> Int32? {
        var n = root
        while n >= 0 {
            if key == nodes[Int(n)].key { return n }
            n = key < nodes[Int(n)].key ? nodes[Int(n)].left : nodes[Int(n)].right
        }
        return nil
    }

    /// Inserts `value` at `key` and returns its slot. The caller keeps keys
    /// unique.
    @discardableResult
    public mutating func insert(_ key: UInt64, _ value: Value) -> Int32 {
        let node = Link(key: key, left: -1, right: -1)
        let index: Int32
        if let free = freeList.popLast() {
            nodes[Int(free)] = node
            values[Int(free)] = value
            index = free
        } else {
            index = Int32(nodes.count)
            nodes.append(node)
            values.append(value)
        }
        // Walk down to where the new node's priority puts it, then split
        // only the subtree below: one pass instead of a split and two
        // merges from the root.
        let p = Self.priority(key)
        var parent: Int32 = -1
        var at = root
        while at >= 0 && Self.priority(nodes[Int(at)].key) >= p {
            parent = at
            at = key < nodes[Int(at)].key ? nodes[Int(at)].left : nodes[Int(at)].right
        }
        let (l, r) = split(at, key)
        nodes[Int(index)].left = l
        nodes[Int(index)].right = r
        if parent < 0 { root = index }
        else if key < nodes[Int(parent)].key { nodes[Int(parent)].left = index }
        else { nodes[Int(parent)].right = index }
        count += 1
        return index
    }

    /// Removes and returns the value at `key`.
    @discardableResult
    public mutating func remove(_ key: UInt64) -> Value? { removeEntry(key)?.value }

    /// Removes the entry at `key`; returns the slot it had and its value.
    public mutating func removeEntry(_ key: UInt64) -> (slot: Int32, value: Value)? {
        var parent: Int32 = -1
        var n = root
        while n >= 0 && nodes[Int(n)].key != key {
            parent = n
            n = key < nodes[Int(n)].key ? nodes[Int(n)].left : nodes[Int(n)].right
        }
        guard n >= 0 else { return nil }
        let joined = merge(nodes[Int(n)].left, nodes[Int(n)].right)
        if parent < 0 { root = joined }
        else if nodes[Int(parent)].left == n { nodes[Int(parent)].left = joined }
        else { nodes[Int(parent)].right = joined }
        let value = values[Int(n)]
        freeList.append(n)
        count -= 1
        if count == 0 {
            nodes.removeAll(keepingCapacity: true); values.removeAll(keepingCapacity: true)
            freeList.removeAll(keepingCapacity: true); root = -1
        }
        return (n, value)
    }

    public mutating func removeAll() {
        nodes = []; values = []; freeList = []; root = -1; count = 0
    }

    /// Splits the subtree at `t` into keys < `key` and keys ≥ `key`.
    mutating func split(_ t: Int32, _ key: UInt64) -> (Int32, Int32) {
        if t < 0 { return (-1, -1) }
        if nodes[Int(t)].key < key {
            let (l, r) = split(nodes[Int(t)].right, key)
            nodes[Int(t)].right = l
            return (t, r)
        } else {
            let (l, r) = split(nodes[Int(t)].left, key)
            nodes[Int(t)].left = r
            return (l, t)
        }
    }

    /// Joins two subtrees where every key of `a` is below every key of `b`.
    mutating func merge(_ a: Int32, _ b: Int32) -> Int32 {
        if a < 0 { return b }
        if b < 0 { return a }
        if Self.priority(nodes[Int(a)].key) > Self.priority(nodes[Int(b)].key) {
            nodes[Int(a)].right = merge(nodes[Int(a)].right, b)
            return a
        } else {
            nodes[Int(b)].left = merge(a, nodes[Int(b)].left)
            return b
        }
    }

    /// Calls `body` for each entry in ascending key order; stops when it
    /// returns false.
    public func forEach(_ body: (UInt64, Value) -> Bool) {
        forEachSlot { key, _, value in body(key, value) }
    }

    /// `forEach` with each entry's slot.
    public func forEachSlot(_ body: (UInt64, Int32, Value) -> Bool) {
        var stack: [Int32] = []
        var n = root
        while n >= 0 || !stack.isEmpty {
            while n >= 0 { stack.append(n); n = nodes[Int(n)].left }
            let top = stack.removeLast()
            if !body(nodes[Int(top)].key, top, values[Int(top)]) { return }
            n = nodes[Int(top)].right
        }
    }

    /// All entries in ascending order, with their slots.
    public var slottedEntries: [(key: UInt64, slot: Int32, value: Value)] {
        var out: [(key: UInt64, slot: Int32, value: Value)] = []
        out.reserveCapacity(count)
        forEachSlot { out.append(($0, $1, $2)); return true }
        return out
    }

    /// All entries in ascending order.
    public var entries: [(key: UInt64, value: Value)] {
        var out: [(key: UInt64, value: Value)] = []
        out.reserveCapacity(count)
        forEach { out.append(($0, $1)); return true }
        return out
    }

    /// Walks the tree and returns a message naming the first broken rule:
    /// in-order keys strictly ascending, heap order of priorities, count.
    public func _checkInvariants() -> String? {
        var seen = 0
        var previous: UInt64? = nil
        var problem: String? = nil
        forEach { key, _ in
            if let p = previous, p >= key { problem = "keys out of order: 0x\(String(p, radix: 16)) before 0x\(String(key, radix: 16))"; return false }
            previous = key
            seen += 1
            return true
        }
        if let problem { return problem }
        if seen != count { return "count \(count) but \(seen) nodes reachable" }
        var stack: [Int32] = root >= 0 ? [root] : []
        while let n = stack.popLast() {
            let node = nodes[Int(n)]
            for child in [node.left, node.right] where child >= 0 {
                if Self.priority(nodes[Int(child)].key) > Self.priority(node.key) {
                    return "heap order broken below key 0x\(String(node.key, radix: 16))"
                }
                stack.append(child)
            }
        }
        return nil
    }
}

extension IntervalTree: Sendable where Value: Sendable {}
extension IntervalTree.Link: Sendable {}
