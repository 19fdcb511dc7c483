import GatehouseDataPlane
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
