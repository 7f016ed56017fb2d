/// The kernel's `dma_list`: a red-black tree of mappings keyed by their
/// start address, with the kernel's own shape.
///
/// Before the 6.18 overflow series the kernel's searches compute
/// `iova + size`, which wraps to 0 for a mapping or a request that ends at
/// 2^64-1; such searches turn the wrong way, and what they find then
/// depends on where each node sits. So this tree is shaped exactly as the
/// kernel's is: a node is linked where `vfio_link_dma` links it (walking
/// down by start address, an equal start going left, as the new `vfio_dma`
/// is linked while its size is still 0), then recoloured and rotated as
/// `rb_insert_color` does; removal is `rb_erase` with its rebalancing
/// (lib/rbtree.c: the classic red-black insert and delete fix-ups, with the
/// in-order successor taking the place of a node with two children).
/// Written from the algorithm, not from the kernel's code.
///
/// Nodes live in one `ContiguousArray` and link by `Int32` slot (no object
/// per node); freed slots are reused. A slot is stable while its node stays
/// in the tree, so side tables (page-table runs) are indexed by it.
/// Several nodes may share a start address: before the overflow series the
/// kernel accepts overlapping mappings at the top of the address space.
///
/// - Complexity: insert, remove, the searches: O(log n) worst case.
public struct DMATree<Value> {
    @usableFromInline
    struct Node {
        var key: UInt64
        /// The mapping's size, read by the kernel's searches.
        var size: UInt64
        var left: Int32
        var right: Int32
        var parent: Int32
        var red: Bool
    }

    @usableFromInline var nodes: ContiguousArray<Node> = []
    @usableFromInline var values: ContiguousArray<Value?> = []
    @usableFromInline var root: Int32 = -1
    @usableFromInline var freeList: [Int32] = []
    public private(set) var count: Int = 0
    /// Counts inserts and removals (wrapping), so a `LinkPoint` can tell
    /// whether the tree changed since it was found.
    var version: UInt64 = 0

    public init() {}

    public var isEmpty: Bool { count == 0 }

    // MARK: Slots

    public func key(_ slot: Int32) -> UInt64 { nodes[Int(slot)].key }
    public func size(_ slot: Int32) -> UInt64 { nodes[Int(slot)].size }
    public func value(_ slot: Int32) -> Value { values[Int(slot)]! }
    /// The mapping at `slot` ends at 2^64-1 (its `iova + size` wraps to 0).
    public func endsAtTop(_ slot: Int32) -> Bool { nodes[Int(slot)].key &+ nodes[Int(slot)].size == 0 }

    public mutating func update(_ slot: Int32, _ body: (inout Value) -> Void) {
        body(&values[Int(slot)]!)
    }

    // MARK: Insert and erase

    /// Links a node as `vfio_link_dma` does (down by start address, an
    /// equal start to the left) and rebalances as `rb_insert_color`.
    /// Returns its slot.
    @discardableResult
    public mutating func insert(_ key: UInt64, size: UInt64, _ value: Value) -> Int32 {
        var parent: Int32 = -1
        var n = root
        var goLeft = false
        while n >= 0 {
            parent = n
            goLeft = key <= nodes[Int(n)].key
            n = goLeft ? nodes[Int(n)].left : nodes[Int(n)].right
        }
        return link(key, size: size, value, parent: parent, goLeft: goLeft)
    }

    /// Where `insert` would link a node starting at `key`: under `parent`
    /// (-1: as the root), on its left or right. Good only for the tree as it
    /// was when found (`version`).
    public struct LinkPoint {
        let key: UInt64
        let parent: Int32
        let goLeft: Bool
        let version: UInt64
    }

    /// The exact search of 6.18 for a new mapping `[start, last]` (as
    /// `Type1Container.vfioFindDMA` makes it: `floor(last)` and its end),
    /// made so that it also finds where `insert` would link a node starting
    /// at `start`: nil when a node overlaps the range, else that place.
    /// When nothing overlaps, no node starts inside `[start, last]`, so at
    /// every node "start ≤ key" (insert's turn to the left) and
    /// "key > last" (floor's) agree: the search walked insert's path, and a
    /// MAP_DMA walks the tree once instead of twice.
    public func linkPoint(start: UInt64, last: UInt64) -> LinkPoint? {
        withNodes { nodes in
            var parent: Int32 = -1
            var n = root
            var goLeft = false
            var floor: Int32 = -1
            while n >= 0 {
                parent = n
                goLeft = nodes[Int(n)].key > last
                if goLeft { n = nodes[Int(n)].left } else { floor = n; n = nodes[Int(n)].right }
            }
            if floor >= 0 && nodes[Int(floor)].key &+ (nodes[Int(floor)].size - 1) >= start { return nil }
            return LinkPoint(key: start, parent: parent, goLeft: goLeft, version: version)
        }
    }

    /// Runs `body` with the nodes' storage, for the hot read-only walks
    /// (`linkPoint`, `slot(at:)`, `floor`): no bounds check per step in an
    /// optimized build. The slots they follow are the tree's own links,
    /// which only ever name nodes in the storage (`_checkInvariants`); a
    /// debug build still checks every access.
    @inline(__always)
    func withNodes<R>(_ body: (UnsafeBufferPointer<Node>) -> R) -> R {
        nodes.withUnsafeBufferPointer(body)
    }

    /// `insert` at a place `linkPoint` found: the same node in the same
    /// place, without walking the tree again. A place found for another
    /// start, or before the tree last changed, is not trusted: the walk is
    /// made again.
    @discardableResult
    public mutating func insert(_ key: UInt64, size: UInt64, _ value: Value, at place: LinkPoint) -> Int32 {
        guard place.version == version && place.key == key else { return insert(key, size: size, value) }
        return link(key, size: size, value, parent: place.parent, goLeft: place.goLeft)
    }

    /// Links a new red node under `parent` (-1: as the root) and rebalances.
    mutating func link(_ key: UInt64, size: UInt64, _ value: Value, parent: Int32, goLeft: Bool) -> Int32 {
        let node = Node(key: key, size: size, left: -1, right: -1, parent: parent, red: true)
        let slot: Int32
        if !freeList.isEmpty {
            let free = freeList.removeLast()
            nodes[Int(free)] = node
            values[Int(free)] = value
            slot = free
        } else {
            slot = Int32(nodes.count)
            nodes.append(node)
            values.append(value)
        }
        count += 1
        version &+= 1
        withLinks { t in
            if parent < 0 { t.root = slot } else if goLeft { t.nodes[Int(parent)].left = slot } else { t.nodes[Int(parent)].right = slot }
            t.insertColor(slot)
        }
        return slot
    }

    @inline(__always) func isRed(_ n: Int32) -> Bool { n >= 0 && nodes[Int(n)].red }

    /// The nodes and the root while one insert or removal relinks and
    /// rebalances: the red-black steps read and write the nodes through
    /// their buffer, so the storage is checked for sharing once per insert or
    /// removal instead of at every write, and an optimized build checks no
    /// bounds per step (the slots followed are the tree's own links, which
    /// only ever name nodes in the storage; a debug build still checks each
    /// access).
    struct Links {
        let nodes: UnsafeMutableBufferPointer<Node>
        var root: Int32

        @inline(__always) func isRed(_ n: Int32) -> Bool { n >= 0 && nodes[Int(n)].red }

        /// Replaces `old` by `new` under `parent` (or as the root).
        @inline(__always)
        mutating func changeChild(_ old: Int32, _ new: Int32, parent: Int32) {
            if parent < 0 { root = new }
            else if nodes[Int(parent)].left == old { nodes[Int(parent)].left = new }
            else { nodes[Int(parent)].right = new }
        }

        /// Turns `x` and its right child: the child takes `x`'s place.
        mutating func rotateLeft(_ x: Int32) {
            let y = nodes[Int(x)].right
            let p = nodes[Int(x)].parent
            let inner = nodes[Int(y)].left
            nodes[Int(x)].right = inner
            if inner >= 0 { nodes[Int(inner)].parent = x }
            nodes[Int(y)].left = x
            nodes[Int(x)].parent = y
            nodes[Int(y)].parent = p
            changeChild(x, y, parent: p)
        }

        /// Turns `x` and its left child: the child takes `x`'s place.
        mutating func rotateRight(_ x: Int32) {
            let y = nodes[Int(x)].left
            let p = nodes[Int(x)].parent
            let inner = nodes[Int(y)].right
            nodes[Int(x)].left = inner
            if inner >= 0 { nodes[Int(inner)].parent = x }
            nodes[Int(y)].right = x
            nodes[Int(x)].parent = y
            nodes[Int(y)].parent = p
            changeChild(x, y, parent: p)
        }

        /// The insert fix-up (`rb_insert_color`): a red uncle is recoloured and
        /// the walk goes up two levels; a black uncle ends it with one rotation
        /// (the node on the outside) or two (on the inside).
        mutating func insertColor(_ start: Int32) {
            var node = start
            while true {
                let parent = nodes[Int(node)].parent
                if parent < 0 { nodes[Int(node)].red = false; return }
                if !nodes[Int(parent)].red { return }
                let grand = nodes[Int(parent)].parent   // a red node is never the root
                if nodes[Int(grand)].left == parent {
                    let uncle = nodes[Int(grand)].right
                    if isRed(uncle) {
                        nodes[Int(uncle)].red = false
                        nodes[Int(parent)].red = false
                        nodes[Int(grand)].red = true
                        node = grand
                        continue
                    }
                    var top = parent
                    if nodes[Int(parent)].right == node {
                        rotateLeft(parent)
                        top = node
                    }
                    rotateRight(grand)
                    nodes[Int(top)].red = false
                    nodes[Int(grand)].red = true
                    return
                } else {
                    let uncle = nodes[Int(grand)].left
                    if isRed(uncle) {
                        nodes[Int(uncle)].red = false
                        nodes[Int(parent)].red = false
                        nodes[Int(grand)].red = true
                        node = grand
                        continue
                    }
                    var top = parent
                    if nodes[Int(parent)].left == node {
                        rotateRight(parent)
                        top = node
                    }
                    rotateLeft(grand)
                    nodes[Int(top)].red = false
                    nodes[Int(grand)].red = true
                    return
                }
            }
        }

        /// The erase fix-up (`rb_erase` colour rebalancing): the subtree of
        /// `node` (possibly empty) under `parent` is one black short. A red
        /// sibling is rotated above the parent first; a black sibling with black
        /// children is recoloured red and the walk goes up (or stops at a red
        /// parent, which turns black); otherwise one or two rotations end it.
        mutating func eraseColor(_ start: Int32, parent startParent: Int32) {
            var node = start
            var parent = startParent
            while true {
                var sibling = nodes[Int(parent)].right
                if node != sibling {
                    // The node is the parent's left child.
                    if isRed(sibling) {
                        nodes[Int(sibling)].red = false
                        nodes[Int(parent)].red = true
                        rotateLeft(parent)
                        sibling = nodes[Int(parent)].right
                    }
                    if !isRed(nodes[Int(sibling)].right) {
                        if !isRed(nodes[Int(sibling)].left) {
                            nodes[Int(sibling)].red = true
                            if nodes[Int(parent)].red {
                                nodes[Int(parent)].red = false
                            } else {
                                node = parent
                                parent = nodes[Int(node)].parent
                                if parent >= 0 { continue }
                            }
                            return
                        }
                        let near = nodes[Int(sibling)].left
                        nodes[Int(near)].red = false
                        nodes[Int(sibling)].red = true
                        rotateRight(sibling)
                        sibling = near
                    }
                    nodes[Int(sibling)].red = nodes[Int(parent)].red
                    nodes[Int(parent)].red = false
                    nodes[Int(nodes[Int(sibling)].right)].red = false
                    rotateLeft(parent)
                    return
                } else {
                    sibling = nodes[Int(parent)].left
                    if isRed(sibling) {
                        nodes[Int(sibling)].red = false
                        nodes[Int(parent)].red = true
                        rotateRight(parent)
                        sibling = nodes[Int(parent)].left
                    }
                    if !isRed(nodes[Int(sibling)].left) {
                        if !isRed(nodes[Int(sibling)].right) {
                            nodes[Int(sibling)].red = true
                            if nodes[Int(parent)].red {
                                nodes[Int(parent)].red = false
                            } else {
                                node = parent
                                parent = nodes[Int(node)].parent
                                if parent >= 0 { continue }
                            }
                            return
                        }
                        let near = nodes[Int(sibling)].right
                        nodes[Int(near)].red = false
                        nodes[Int(sibling)].red = true
                        rotateLeft(sibling)
                        sibling = near
                    }
                    nodes[Int(sibling)].red = nodes[Int(parent)].red
                    nodes[Int(parent)].red = false
                    nodes[Int(nodes[Int(sibling)].left)].red = false
                    rotateRight(parent)
                    return
                }
            }
        }
    }

    /// Runs `body` on the nodes' buffer and the root (`Links`).
    @inline(__always)
    mutating func withLinks<R>(_ body: (inout Links) -> R) -> R {
        var top = root
        let result = nodes.withUnsafeMutableBufferPointer { buffer in
            var links = Links(nodes: buffer, root: top)
            let r = body(&links)
            top = links.root
            return r
        }
        root = top
        return result
    }

    /// Removes the node at `slot` as `rb_erase` does and returns its value.
    @discardableResult
    public mutating func remove(_ slot: Int32) -> Value {
        let z = slot
        // Read with the bounds checked: a slot outside the storage stops
        // here, before any link changes.
        let removed = nodes[Int(z)]
        withLinks { t in
            let zl = removed.left, zr = removed.right, zp = removed.parent
            // Where a black node went missing: the child that took its place
            // (-1 for none) under `fixParent`.
            var fixParent: Int32 = -1
            let fixChild: Int32 = -1
            var needsFix = false
            if zl < 0 || zr < 0 {
                // At most one child: it takes the node's place (and, being red,
                // its colour); a black leaf leaves a hole.
                let child = zl < 0 ? zr : zl
                t.changeChild(z, child, parent: zp)
                if child >= 0 {
                    t.nodes[Int(child)].parent = zp
                    t.nodes[Int(child)].red = t.nodes[Int(z)].red
                } else if !t.nodes[Int(z)].red {
                    needsFix = true
                    fixParent = zp
                }
            } else {
                // Two children: the in-order successor takes the node's place
                // and colour; its own right child takes the successor's place.
                var y = zr
                while t.nodes[Int(y)].left >= 0 { y = t.nodes[Int(y)].left }
                let yRight = t.nodes[Int(y)].right
                let yWasRed = t.nodes[Int(y)].red
                let parentOfHole = y == zr ? y : t.nodes[Int(y)].parent
                if y != zr {
                    t.nodes[Int(parentOfHole)].left = yRight
                    if yRight >= 0 { t.nodes[Int(yRight)].parent = parentOfHole }
                    t.nodes[Int(y)].right = zr
                    t.nodes[Int(zr)].parent = y
                }
                t.nodes[Int(y)].left = zl
                t.nodes[Int(zl)].parent = y
                t.nodes[Int(y)].parent = zp
                t.changeChild(z, y, parent: zp)
                t.nodes[Int(y)].red = t.nodes[Int(z)].red
                if yRight >= 0 {
                    t.nodes[Int(yRight)].parent = parentOfHole
                    t.nodes[Int(yRight)].red = false
                } else if !yWasRed {
                    needsFix = true
                    fixParent = parentOfHole
                }
            }
            if needsFix && fixParent >= 0 { t.eraseColor(fixChild, parent: fixParent) }
        }
        let value = values[Int(z)]!
        values[Int(z)] = nil
        freeList.append(z)
        count -= 1
        version &+= 1
        if count == 0 {
            nodes.removeAll(keepingCapacity: true); values.removeAll(keepingCapacity: true)
            freeList.removeAll(keepingCapacity: true); root = -1
        }
        return value
    }

    public mutating func removeAll() {
        nodes = []; values = []; freeList = []; root = -1; count = 0; version &+= 1
    }

    // MARK: Walking (rb_first, rb_next)

    /// The leftmost node (`rb_first`).
    public var first: Int32? {
        var n = root
        if n < 0 { return nil }
        while nodes[Int(n)].left >= 0 { n = nodes[Int(n)].left }
        return n
    }

    /// The node after `slot` in order (`rb_next`).
    public func next(_ slot: Int32) -> Int32? {
        var n = slot
        if nodes[Int(n)].right >= 0 {
            n = nodes[Int(n)].right
            while nodes[Int(n)].left >= 0 { n = nodes[Int(n)].left }
            return n
        }
        var p = nodes[Int(n)].parent
        while p >= 0 && nodes[Int(p)].right == n { n = p; p = nodes[Int(p)].parent }
        return p >= 0 ? p : nil
    }

    // MARK: Ordered searches (exact while no two mappings overlap)

    /// The last node in order whose start is ≤ `key`.
    public func floor(_ key: UInt64) -> Int32? {
        withNodes { nodes in
            var n = root
            var best: Int32 = -1
            while n >= 0 {
                if nodes[Int(n)].key <= key { best = n; n = nodes[Int(n)].right } else { n = nodes[Int(n)].left }
            }
            return best < 0 ? nil : best
        }
    }

    /// The first node in order whose start is ≥ `key`.
    public func ceiling(_ key: UInt64) -> Int32? {
        var n = root
        var best: Int32 = -1
        while n >= 0 {
            if nodes[Int(n)].key >= key { best = n; n = nodes[Int(n)].left } else { n = nodes[Int(n)].right }
        }
        return best < 0 ? nil : best
    }

    /// A node starting exactly at `key`.
    public func slot(at key: UInt64) -> Int32? {
        withNodes { nodes in
            var n = root
            while n >= 0 {
                let k = nodes[Int(n)].key
                if k == key { return n }
                n = key < k ? nodes[Int(n)].left : nodes[Int(n)].right
            }
            return nil
        }
    }

    // MARK: The kernel's searches before the overflow series

    /// `vfio_find_dma` before 6.18: down from the root, left while
    /// `start + size <= iova`, right while `start >= iova + size`, else
    /// found; every sum wraps as the kernel's u64 arithmetic does.
    public func wrappingFind(start: UInt64, size: UInt64) -> Int32? {
        let end = start &+ size
        var n = root
        while n >= 0 {
            let node = nodes[Int(n)]
            if end <= node.key { n = node.left }
            else if start >= node.key &+ node.size { n = node.right }
            else { return n }
        }
        return nil
    }

    /// `vfio_find_dma_first_node` before 6.18 (v5.12–v6.17): the lowest
    /// node seen whose wrapped end lies above `start`, stopping at one that
    /// contains it; nothing when that node starts at or past `start + size`
    /// (wrapped; `size` 0 means no end check).
    public func wrappingFirstNode(start: UInt64, size: UInt64) -> Int32? {
        var n = root
        var res: Int32 = -1
        while n >= 0 {
            let node = nodes[Int(n)]
            if start < node.key &+ node.size {
                res = n
                if start >= node.key { break }
                n = node.left
            } else {
                n = node.right
            }
        }
        if res >= 0 && size != 0 && nodes[Int(res)].key >= start &+ size { return nil }
        return res < 0 ? nil : res
    }

    // MARK: Iteration

    /// Calls `body` for each node in order (`rb_first`, `rb_next`) with its
    /// slot; stops when it returns false.
    public func forEachSlot(_ body: (UInt64, Int32, Value) -> Bool) {
        var n = first
        while let s = n {
            if !body(nodes[Int(s)].key, s, values[Int(s)]!) { return }
            n = next(s)
        }
    }

    public func forEach(_ body: (UInt64, Value) -> Bool) {
        forEachSlot { key, _, value in body(key, value) }
    }

    /// All nodes in order, with their slots.
    public var slottedEntries: [(key: UInt64, slot: Int32, value: Value)] {
        var out: [(key: UInt64, slot: Int32, value: Value)] = []
        out.reserveCapacity(count)
        forEachSlot { out.append(($0, $1, $2)); return true }
        return out
    }

    /// All nodes in order.
    public var entries: [(key: UInt64, value: Value)] {
        var out: [(key: UInt64, value: Value)] = []
        out.reserveCapacity(count)
        forEach { out.append(($0, $1)); return true }
        return out
    }

    /// The tree's shape as text, for tests: `(left key:colour right)`,
    /// `.` for no node, keys in hex, `R`/`B`.
    public var shape: String {
        func walk(_ n: Int32) -> String {
            if n < 0 { return "." }
            let node = nodes[Int(n)]
            return "(\(walk(node.left)) \(String(node.key, radix: 16)):\(node.red ? "R" : "B") \(walk(node.right)))"
        }
        return walk(root)
    }

    /// Walks the tree and returns a message naming the first broken rule:
    /// links agree with parents, starts never decrease in order, the root is
    /// black, no red node has a red child, every path has the same number of
    /// black nodes, and `count` nodes are reachable.
    public func _checkInvariants() -> String? {
        if root >= 0 && nodes[Int(root)].parent != -1 { return "root has a parent" }
        if isRed(root) { return "root is red" }
        var seen = 0
        var problem: String? = nil
        func hex(_ k: UInt64) -> String { "0x" + String(k, radix: 16) }
        /// The black height of the subtree, or -1 after a problem.
        func check(_ n: Int32, low: UInt64, high: UInt64) -> Int {
            if n < 0 { return 1 }
            if problem != nil { return -1 }
            seen += 1
            if seen > count { problem = "more nodes reachable than count \(count)"; return -1 }
            let node = nodes[Int(n)]
            if node.key < low || node.key > high { problem = "node \(hex(node.key)) out of order"; return -1 }
            for c in [node.left, node.right] where c >= 0 {
                if nodes[Int(c)].parent != n { problem = "child of \(hex(node.key)) has another parent"; return -1 }
                if node.red && nodes[Int(c)].red { problem = "red node \(hex(node.key)) has a red child"; return -1 }
            }
            let l = check(node.left, low: low, high: node.key)
            let r = check(node.right, low: node.key, high: high)
            if l < 0 || r < 0 { return -1 }
            if l != r { problem = "black heights differ below \(hex(node.key))"; return -1 }
            return l + (node.red ? 0 : 1)
        }
        _ = check(root, low: 0, high: .max)
        if let problem { return problem }
        if seen != count { return "count \(count) but \(seen) nodes reachable" }
        return nil
    }
}

extension DMATree: Sendable where Value: Sendable {}
extension DMATree.Node: Sendable {}
