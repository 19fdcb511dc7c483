import Foundation
import GatehouseHTTP1
import Testing

/// The request inputs of llhttp's own test suite (Vectors/http1/llhttp-requests.txt, extracted by
/// make_llhttp_vectors.py), strict and lenient-mode tests alike, through all three parsers: the same two rules
/// as the differential tests must hold for every one, and Gatehouse's answer must not depend on the split.
@Suite("HTTP1 llhttp's request tests")
struct LLHTTPCorpusTests {
    static func vectors() throws -> [(name: String, raw: [UInt8])] {
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Vectors/http1/llhttp-requests.txt")
        return try String(contentsOf: file, encoding: .utf8).split(separator: "\n").compactMap { line in
            guard !line.hasPrefix("#") else { return nil }
            let parts = line.split(separator: " ")
            let hex = Array(parts[2].utf8)
            let raw = stride(from: 0, to: hex.count, by: 2).map { UInt8(String(decoding: hex[$0..<($0 + 2)], as: UTF8.self), radix: 16)! }
            return ("\(parts[0]) (\(parts[1]))", raw)
        }
    }

    @Test func everyInputKeepsTheRules() throws {
        let vectors = try Self.vectors()
        #expect(vectors.count > 150)
        let h11 = try h11Parse(vectors.map(\.raw))
        var accepted = 0
        for (vector, h11Verdict) in zip(vectors, h11) {
            let gatehouse = PeerVerdict(gatehouseParse(vector.raw))
            checkAgreement(vector.name, vector.raw, gatehouse: gatehouse, llhttp: llhttpParse(vector.raw), h11: h11Verdict)
            #expect(expectSplitInvariant(vector.raw).isEmpty, "\(vector.name)")
            if gatehouse.request != nil { accepted += 1 }
        }
        // Not a vacuous pass: the suite's plain requests (with Host, CRLF) are accepted.
        #expect(accepted >= 10, "only \(accepted) of \(vectors.count) accepted")
    }
}
