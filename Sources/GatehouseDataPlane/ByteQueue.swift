#if canImport(Glibc)
import Glibc
#endif

/// A connection's bytes in one direction: appended at the tail (a socket read, a rendered head), consumed
/// from the head (parsed, relayed, written). One allocation per connection that grows as needed and is
/// compacted instead of reallocated; the connection machine and its driver share it without copies.
public struct ByteQueue: Sendable {
    private var storage: [UInt8]
    private var start = 0
    private var end = 0

    /// No storage until bytes arrive (or `adopt` gives some): an idle connection holds none.
    public init(capacity: Int = 0) {
        storage = capacity > 0 ? [UInt8](repeating: 0, count: capacity) : []
    }

    public var capacity: Int { storage.count }

    /// Takes storage to use (a loop's spare buffer) when this queue has none.
    public mutating func adopt(_ spare: [UInt8]) {
        guard storage.isEmpty else { return }
        storage = spare
        start = 0
        end = 0
    }

    /// Gives the storage back (for a loop's spare buffers) when nothing is queued; nil otherwise.
    public mutating func releaseStorage() -> [UInt8]? {
        guard isEmpty, !storage.isEmpty else { return nil }
        defer { storage = [] }
        start = 0
        end = 0
        return storage
    }

    public var count: Int { end - start }
    public var isEmpty: Bool { end == start }

    /// Reads into the free space after the tail (at least `minimum` bytes of it): `body` returns how many
    /// bytes it wrote (0 or less: none).
    @discardableResult
    public mutating func fill(minimum: Int = 4096, _ body: (UnsafeMutableRawBufferPointer) -> Int) -> Int {
        makeRoom(minimum)
        let (s, e) = (end, storage.count)
        let written = storage.withUnsafeMutableBytes { raw in body(UnsafeMutableRawBufferPointer(rebasing: raw[s..<e])) }
        if written > 0 { end += written }
        return max(written, 0)
    }

    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        guard !bytes.isEmpty else { return }
        makeRoom(bytes.count)
        let at = end
        storage.withUnsafeMutableBytes { raw in
            UnsafeMutableRawBufferPointer(rebasing: raw[at..<(at + bytes.count)]).copyMemory(from: bytes)
        }
        end += bytes.count
    }

    public mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0) }
    }

    public mutating func append(_ text: String) {
        var text = text
        text.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    /// Moves `range` (offsets into `other`'s readable bytes) to the tail of this queue.
    public mutating func append(from other: ByteQueue, range: Range<Int>) {
        other.withReadable { b in append(UnsafeRawBufferPointer(rebasing: b[range])) }
    }

    public func withReadable<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        let (s, e) = (start, end)
        return try storage.withUnsafeBytes { raw in try body(UnsafeRawBufferPointer(rebasing: raw[s..<e])) }
    }

    /// The readable bytes as an array (tests and rare paths only: it copies).
    public var bytes: [UInt8] { withReadable { Array($0) } }

    public mutating func consume(_ n: Int) {
        precondition(n >= 0 && n <= count, "consume beyond the readable bytes")
        start += n
        if start == end {
            start = 0
            end = 0
        }
    }

    public mutating func removeAll() {
        start = 0
        end = 0
    }

    /// Makes `n` bytes free after the tail: moves the readable bytes to the front when that is enough,
    /// grows the storage (geometrically) otherwise.
    private mutating func makeRoom(_ n: Int) {
        if storage.count - end >= n { return }
        let live = count
        if start > 0 && storage.count - live >= n && live <= storage.count / 2 {
            let s = start
            storage.withUnsafeMutableBytes { raw in
                guard let base = raw.baseAddress else { return }
                memmove(base, base + s, live)
            }
            start = 0
            end = live
            return
        }
        var grown = [UInt8](repeating: 0, count: max(storage.count * 2, live + n))
        let (s, e) = (start, end)
        grown.withUnsafeMutableBytes { to in
            storage.withUnsafeBytes { from in
                UnsafeMutableRawBufferPointer(rebasing: to[0..<live]).copyMemory(from: UnsafeRawBufferPointer(rebasing: from[s..<e]))
            }
        }
        storage = grown
        start = 0
        end = live
    }
}
