import Foundation
import GatehouseCore
import GatehouseDataPlane
import Testing

/// The response fields relayed to the client are the upstream's minus exactly GatehouseCore's hop-by-hop
/// names (`HopByHop.names`, any case): the rewriter's own lookup of them is held to that list, and names that
/// only look close (a letter more or less, another letter at the same length) are kept.
@Suite("Connection machine: hop-by-hop response fields")
struct MachineHopByHopTests {
    /// The names of the fields the client gets (but the framing and `Via`, which are Gatehouse's).
    static func relayed(_ fields: [String]) -> [String] {
        var d = MachineDriver()
        d.client("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        d.decide(forward())
        d.attach()
        d.upstreamSends("HTTP/1.1 200 OK\r\n" + fields.map { "\($0): v\r\n" }.joined() + "Content-Length: 0\r\n\r\n")
        let lines = d.takeClient().components(separatedBy: "\r\n")
        return lines.dropFirst().compactMap { line in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return String(line[..<colon])
        }.filter { $0 != "Content-Length" && $0 != "Via" }
    }

    static func nearMisses(_ name: String) -> [String] {
        var out = [name + "x", String(name.dropLast()), "x" + name]
        // The same length and first letter, one other letter changed (the lookup picks by those two).
        var bytes = Array(name.utf8)
        bytes[bytes.count - 1] = bytes[bytes.count - 1] == UInt8(ascii: "q") ? UInt8(ascii: "z") : UInt8(ascii: "q")
        out.append(String(decoding: bytes, as: UTF8.self))
        return out
    }

    @Test func everyHopByHopNameIsDroppedInAnyCase() {
        for name in HopByHop.names.sorted() where name != "transfer-encoding" {
            let variants = [name, name.uppercased(), name.prefix(1).uppercased() + name.dropFirst()]
            #expect(Self.relayed(variants + ["X-Kept"]) == ["X-Kept"], "\(name)")
        }
    }

    /// Only one Transfer-Encoding can frame a response: the upstream's goes, Gatehouse says its own.
    @Test func transferEncodingIsDroppedAndSaidAgain() {
        var d = MachineDriver()
        d.client("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        d.decide(forward())
        d.attach()
        d.upstreamSends("HTTP/1.1 200 OK\r\nTRANSFER-ENCODING: chunked\r\nX-Kept: 1\r\n\r\n1\r\na\r\n0\r\n\r\n")
        #expect(d.takeClient() == "HTTP/1.1 200 OK\r\nX-Kept: 1\r\nVia: 1.1 gatehouse\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n")
    }

    @Test func namesCloseToThemAreKept() {
        let misses = HopByHop.names.sorted().flatMap(Self.nearMisses).filter { !HopByHop.names.contains($0.lowercased()) }
        #expect(misses.count > 30)
        #expect(Self.relayed(misses) == misses)
    }
}
