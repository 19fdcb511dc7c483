import Foundation
import GatehouseDataPlane

/// Bytes appended into one buffer with a capacity given up front (growing, doubling, when that was short),
/// for the upstream head rendered per request: `[UInt8].append` checked uniqueness and capacity on each of
/// the ~40 pieces of a head and cost ~1 µs per request (perf); this is a bounds check and a memcpy each.
struct HeadWriter: ~Copyable {
    private var base: UnsafeMutablePointer<UInt8>
    private var capacity: Int
    private(set) var count = 0
    /// `base` is one of `HeadBuffers` (a head that fits, as nearly all do): exactly when the capacity is theirs,
    /// since a buffer of its own is larger (estimated larger, or grown by doubling).
    private var pooled: Bool { capacity == HeadBuffers.size }

    init(capacity: Int) {
        if capacity <= HeadBuffers.size {
            (self.base, self.capacity) = (HeadBuffers.take(), HeadBuffers.size)
        } else {
            (self.base, self.capacity) = (.allocate(capacity: capacity), capacity)
        }
    }

    deinit { Self.release(base, pooled: pooled) }

    private static func release(_ base: UnsafeMutablePointer<UInt8>, pooled: Bool) {
        if pooled { HeadBuffers.give(base) } else { base.deallocate() }
    }

    @inline(__always) private mutating func reserve(_ more: Int) {
        guard count + more > capacity else { return }
        grow(more)
    }

    @inline(never) private mutating func grow(_ more: Int) {
        var grown = capacity * 2
        while grown < count + more { grown *= 2 }
        let bigger = UnsafeMutablePointer<UInt8>.allocate(capacity: grown)
        bigger.update(from: base, count: count)
        Self.release(base, pooled: pooled)
        (base, capacity) = (bigger, grown)
    }

    @inline(__always) mutating func append(_ bytes: UnsafeRawBufferPointer) {
        guard let source = bytes.baseAddress, bytes.count > 0 else { return }
        reserve(bytes.count)
        memcpy(base + count, source, bytes.count)
        count += bytes.count
    }

    @inline(__always) mutating func append(_ byte: UInt8) {
        reserve(1)
        base[count] = byte
        count += 1
    }

    @inline(__always) mutating func append(_ text: String) {
        // Read in place (a native or small string always is): `var copy = text; copy.withUTF8` retained and
        // released each piece.
        if let done: Void = text.utf8.withContiguousStorageIfAvailable({ append(UnsafeRawBufferPointer($0)) }) { return done }
        var text = text
        text.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    @inline(__always) mutating func append(_ text: StaticString) {
        text.withUTF8Buffer { append(UnsafeRawBufferPointer($0)) }
    }

    /// `name: value` and CRLF.
    @inline(__always) mutating func field(_ name: String, _ value: String) {
        append(name)
        fieldValue(value)
    }

    @inline(__always) mutating func field(_ name: StaticString, _ value: String) {
        append(name)
        fieldValue(value)
    }

    /// What follows a field's name: `: value` and CRLF.
    @inline(__always) private mutating func fieldValue(_ value: String) {
        append(": " as StaticString)
        append(value)
        append("\r\n" as StaticString)
    }

    /// The bytes written, handed over without a copy: the buffer becomes the head's.
    consuming func rendered() -> RenderedHead {
        let (base, count, pooled) = (self.base, self.count, self.pooled)
        discard self
        return RenderedHead(adopting: base, count: count, pooled: pooled)
    }
}
