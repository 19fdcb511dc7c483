#if canImport(Glibc)
import Glibc
#endif

/// Buffers for rendered upstream heads, recycled per thread. A head carrying a bearer token is over glibc's
/// per-thread cache limit (1,032 bytes), so each head's malloc and free took the arena's slow path, searching
/// and splitting its bins: ~1.6% of a data-plane loop's CPU on the cached-token path (perf), the largest
/// allocator cost per request. A buffer goes back to the thread that frees its head (a head decided in a task
/// is freed on the loop), at most `perThread` of them, the rest freed.
///
/// A recycled buffer still holds the bytes of an earlier head: a head reads only the `count` bytes its writer
/// wrote from the start (`RenderedHead.withUnsafeBytes`), never past them.
public enum HeadBuffers {
    /// Every pooled buffer's capacity; a head that needs more is allocated on its own.
    public static let size = 4096
    static let perThread = 16

    /// This thread's list: a count, then up to `perThread` buffer addresses. Freed with its buffers when the
    /// thread ends.
    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        let created = pthread_key_create(&key) { list in
            guard let list = list?.assumingMemoryBound(to: Int.self) else { return }
            for i in 0..<list[0] { UnsafeMutablePointer<UInt8>(bitPattern: list[1 + i])?.deallocate() }
            list.deallocate()
        }
        precondition(created == 0, "pthread_key_create failed: \(created)")
        return key
    }()

    private static func list() -> UnsafeMutablePointer<Int>? {
        if let list = pthread_getspecific(key) { return list.assumingMemoryBound(to: Int.self) }
        let list = UnsafeMutablePointer<Int>.allocate(capacity: 1 + perThread)
        list[0] = 0
        guard pthread_setspecific(key, list) == 0 else {
            list.deallocate()
            return nil
        }
        return list
    }

    /// A buffer of `size` bytes: this thread's most recently returned one, else a new one.
    public static func take() -> UnsafeMutablePointer<UInt8> {
        if let list = list(), list[0] > 0, let buffer = UnsafeMutablePointer<UInt8>(bitPattern: list[list[0]]) {
            list[0] -= 1
            return buffer
        }
        return .allocate(capacity: size)
    }

    /// Takes back a buffer `take` gave out (kept for this thread, or freed when its list is full).
    public static func give(_ buffer: UnsafeMutablePointer<UInt8>) {
        guard let list = list(), list[0] < perThread else { return buffer.deallocate() }
        list[0] += 1
        list[list[0]] = Int(bitPattern: buffer)
    }

    /// How many buffers this thread holds (tests).
    public static var pooledOnThisThread: Int { list()?[0] ?? 0 }
}
