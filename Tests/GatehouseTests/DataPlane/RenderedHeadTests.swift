import GatehouseDataPlane
import Glibc
import Testing

/// The plan's head: the bytes it was given or handed, read back unchanged, the empty head too.
@Suite struct RenderedHeadTests {
    @Test(arguments: [[], Array("GET / HTTP/1.1\r\nHost: a\r\n\r\n".utf8), [UInt8](repeating: 0x41, count: 70_000)])
    func aCopyReadsBackTheSameBytes(bytes: [UInt8]) {
        let head = RenderedHead(bytes)
        #expect(head.count == bytes.count)
        #expect(head.bytes == bytes)
        #expect(head.withUnsafeBytes { Array($0) } == bytes)
    }

    @Test func anAdoptedBufferIsTheHead() {
        let base = UnsafeMutablePointer<UInt8>.allocate(capacity: 8)
        for i in 0..<5 { base[i] = UInt8(ascii: "a") + UInt8(i) }
        let head = RenderedHead(adopting: base, count: 5)
        #expect(head.bytes == Array("abcde".utf8))
    }

    @Test func headsAreEqualByTheirBytes() {
        let request = Array("GET / HTTP/1.1\r\nHost: a\r\n\r\n".utf8)
        #expect(RenderedHead(request) == RenderedHead(request))
        #expect(RenderedHead([]) == RenderedHead([]))
        #expect(RenderedHead(request) != RenderedHead(Array(request.dropLast())))
        var changed = request
        changed[4] = UInt8(ascii: "x")
        #expect(RenderedHead(request) != RenderedHead(changed))
        #expect(RenderedHead([]) != RenderedHead(request))
    }
}

/// Head buffers recycled per thread: a freed head's buffer is the next head's, a full list frees the rest, and a
/// head written into a recycled buffer reads back only its own bytes.
@Suite struct HeadBuffersTests {
    /// On a thread of its own, so no other test's heads come and go on the same list meanwhile.
    private func onItsOwnThread(_ body: @escaping @Sendable () -> Void) {
        var thread = pthread_t()
        let box = Unmanaged.passRetained(Work(body))
        pthread_create(&thread, nil, { raw in
            let work = Unmanaged<Work>.fromOpaque(raw!).takeRetainedValue()
            work.body()
            return nil
        }, box.toOpaque())
        pthread_join(thread, nil)
    }

    private final class Work: @unchecked Sendable {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }

    @Test func aFreedHeadsBufferIsTheNextOnesAndTheListIsBounded() {
        onItsOwnThread {
            #expect(HeadBuffers.pooledOnThisThread == 0)
            let first = HeadBuffers.take()
            var head: RenderedHead? = RenderedHead(adopting: first, count: 0, pooled: true)
            #expect(head?.count == 0)
            head = nil
            #expect(HeadBuffers.pooledOnThisThread == 1)
            let second = HeadBuffers.take()
            #expect(second == first, "the freed head's buffer was not reused")
            #expect(HeadBuffers.pooledOnThisThread == 0)
            HeadBuffers.give(second)
            // Forty given back: the list keeps sixteen and frees the rest.
            let many = (0..<40).map { _ in HeadBuffers.take() }
            many.forEach(HeadBuffers.give)
            #expect(HeadBuffers.pooledOnThisThread == 16)
            let unpooled = UnsafeMutablePointer<UInt8>.allocate(capacity: 8)
            _ = RenderedHead(adopting: unpooled, count: 0)  // freed, not pooled
            #expect(HeadBuffers.pooledOnThisThread == 16)
        }
    }

    @Test func aHeadInARecycledBufferReadsBackOnlyItsOwnBytes() {
        onItsOwnThread {
            let long = [UInt8](repeating: UInt8(ascii: "S"), count: 3000)
            let buffer = HeadBuffers.take()
            long.withUnsafeBufferPointer { buffer.update(from: $0.baseAddress!, count: long.count) }
            var secretHead: RenderedHead? = RenderedHead(adopting: buffer, count: long.count, pooled: true)
            #expect(secretHead?.bytes == long)
            secretHead = nil
            let short = Array("GET / HTTP/1.1\r\n\r\n".utf8)
            let again = HeadBuffers.take()
            #expect(again == buffer)
            short.withUnsafeBufferPointer { again.update(from: $0.baseAddress!, count: short.count) }
            let head = RenderedHead(adopting: again, count: short.count, pooled: true)
            #expect(head.bytes == short)
            #expect(head.withUnsafeBytes { $0.count } == short.count)
        }
    }
}
