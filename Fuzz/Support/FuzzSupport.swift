// Shared by every fuzz target (compiled into each one by scripts/fuzz).
#if canImport(Glibc)
import Glibc
#endif

/// A broken invariant: print what broke and abort, so libFuzzer saves the input as a crash artifact.
func require(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
    if !condition() {
        let text = "INVARIANT BROKEN: \(message())\n"
        _ = text.withCString { write(2, $0, strlen($0)) }
        abort()
    }
}

/// Reads the fuzzer's bytes as a sequence of small decisions (one byte each) and text fields.
struct FuzzInput {
    private let bytes: [UInt8]
    private var index = 0

    init(_ data: UnsafePointer<UInt8>, _ size: Int) {
        bytes = Array(UnsafeBufferPointer(start: data, count: size))
    }

    var all: [UInt8] { bytes }
    var isAtEnd: Bool { index >= bytes.count }
    var rest: [UInt8] { Array(bytes[min(index, bytes.count)...]) }

    mutating func byte() -> UInt8 {
        guard index < bytes.count else { return 0 }
        defer { index += 1 }
        return bytes[index]
    }

    /// Bytes up to the next newline (consumed) or the end.
    mutating func line() -> [UInt8] {
        var out: [UInt8] = []
        while index < bytes.count {
            let b = bytes[index]
            index += 1
            if b == 0x0A { break }
            out.append(b)
        }
        return out
    }
}

extension String {
    /// Text as an HTTP parser would hand it over (invalid UTF-8 repaired).
    init(fuzzBytes: [UInt8]) { self = String(decoding: fuzzBytes, as: UTF8.self) }
}
