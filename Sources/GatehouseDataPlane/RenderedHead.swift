#if canImport(Glibc)
import Glibc
#endif

/// A request head's bytes as the renderer wrote them, handed over without a copy: the renderer's buffer
/// becomes this object's (copying it into an array first cost ~900 instructions per request, callgrind, for
/// a ~1.3 KB head with a bearer token). Immutable once made; freed with the plan that holds it.
public final class RenderedHead: @unchecked Sendable {
    private let base: UnsafeMutableRawPointer
    public let count: Int
    /// The buffer came from `HeadBuffers.take` and goes back there.
    private let pooled: Bool

    /// Takes ownership of `base` (allocated with `UnsafeMutablePointer<UInt8>.allocate`, or taken from
    /// `HeadBuffers` when `pooled`), `count` bytes written.
    public init(adopting base: UnsafeMutablePointer<UInt8>, count: Int, pooled: Bool = false) {
        self.base = UnsafeMutableRawPointer(base)
        self.count = count
        self.pooled = pooled
    }

    /// A copy of `bytes` (tests, the micro-benchmarks).
    public convenience init(_ bytes: [UInt8]) {
        let base = UnsafeMutablePointer<UInt8>.allocate(capacity: max(bytes.count, 1))
        bytes.withUnsafeBufferPointer { if let source = $0.baseAddress { base.update(from: source, count: bytes.count) } }
        self.init(adopting: base, count: bytes.count)
    }

    deinit {
        if pooled { HeadBuffers.give(base.assumingMemoryBound(to: UInt8.self)) } else { base.deallocate() }
    }

    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: base, count: count))
    }

    public var bytes: [UInt8] { withUnsafeBytes { Array($0) } }
}

extension RenderedHead: Equatable {
    /// Two heads are equal when their bytes are (tests and the probe compare what would be sent).
    public static func == (a: RenderedHead, b: RenderedHead) -> Bool {
        a.count == b.count && (a.count == 0 || memcmp(a.base, b.base, a.count) == 0)
    }
}
