import GatehouseHTTP1
import Testing

/// Every way a guarded name can be written with `_` or `.` for some of its `-`, in any case, is refused in a
/// request and in a response, wherever the field line starts; names with `_` or `.` elsewhere are fields like
/// any other. (The check finds `_` and `.` eight bytes at a time: this walks them across the words.)
@Suite("HTTP1 look-alike names, every folding")
struct LookAlikeEveryPlaceTests {
    static let guarded = ["content-length", "transfer-encoding", "keep-alive", "proxy-connection"]

    /// Every spelling with at least one `-` folded to `_` or `.`.
    static func foldings(_ name: String) -> [String] {
        let dashes = name.indices.filter { name[$0] == "-" }
        var out: [String] = []
        func walk(_ i: Int, _ picked: [Character]) {
            if i == dashes.count {
                guard picked.contains(where: { $0 != "-" }) else { return }
                var s = Array(name)
                for (k, d) in dashes.enumerated() { s[name.distance(from: name.startIndex, to: d)] = picked[k] }
                out.append(String(s))
                return
            }
            for c: Character in ["-", "_", "."] { walk(i + 1, picked + [c]) }
        }
        walk(0, [])
        return out
    }

    @Test func everyFoldingOfAGuardedNameIsRefused() {
        for name in Self.guarded {
            for folded in Self.foldings(name) {
                for spelled in [folded, folded.uppercased()] {
                    // Padding moves where the name starts relative to the eight-byte words.
                    for pad in 0..<8 {
                        let x = String(repeating: "x", count: pad + 1)
                        let request = Array("GET / HTTP/1.1\r\nHost: a\r\nX: \(x)\r\n\(spelled): 1\r\n\r\n".utf8)
                        var parser = RequestHeadParser()
                        guard case .refused(.lookAlikeFieldName) = parser.parse(request) else {
                            Issue.record("request with \(spelled) not refused")
                            continue
                        }
                        let response = Array("HTTP/1.1 200 OK\r\nX: \(x)\r\n\(spelled): 1\r\n\r\n".utf8)
                        var responseParser = ResponseHeadParser()
                        guard case .refused(.lookAlikeFieldName) = responseParser.parse(response) else {
                            Issue.record("response with \(spelled) not refused")
                            continue
                        }
                    }
                }
            }
        }
    }

    @Test func otherNamesWithUnderscoresOrDotsAreFields() {
        for length in 1...24 {
            for at in 0..<length {
                for c in ["_", "."] {
                    var name = Array(repeating: "a", count: length)
                    name[at] = c
                    let text = name.joined()
                    var parser = RequestHeadParser()
                    guard case .complete(let head) = parser.parse(Array("GET / HTTP/1.1\r\nHost: a\r\n\(text): 1\r\n\r\n".utf8)) else {
                        Issue.record("\(text) refused")
                        continue
                    }
                    #expect(head.fields.count == 2)
                }
            }
        }
    }
}
