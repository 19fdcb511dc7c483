import CPCRE2
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What one thread needs to match: a PCRE2 match data block (any compiled pattern can use it) and a buffer
/// for the UTF-16 form of the path, made on first use and freed when the thread ends. The event-loop threads
/// live as long as the daemon, so the regex path allocates nothing per request.
private struct ThreadMatchState {
    let data: OpaquePointer
    let units: UnsafeMutableBufferPointer<UInt16>

    /// A decoded path is at most `CanonicalPath.maxLength` bytes, so at most that many UTF-16 units.
    static let unitCapacity = CanonicalPath.maxLength
}

private let matchStateKey: pthread_key_t = {
    var key = pthread_key_t()
    let status = pthread_key_create(&key) { raw in
        guard let raw else { return }
        let state = raw.assumingMemoryBound(to: ThreadMatchState.self)
        pcre2_match_data_free_16(state.pointee.data)
        state.pointee.units.deallocate()
        state.deinitialize(count: 1)
        state.deallocate()
    }
    precondition(status == 0, "pthread_key_create failed")
    return key
}()

private func threadMatchState() -> UnsafeMutablePointer<ThreadMatchState>? {
    if let raw = pthread_getspecific(matchStateKey) { return raw.assumingMemoryBound(to: ThreadMatchState.self) }
    guard let data = pcre2_match_data_create_16(1, nil) else { return nil }
    let state = UnsafeMutablePointer<ThreadMatchState>.allocate(capacity: 1)
    state.initialize(to: ThreadMatchState(data: data, units: .allocate(capacity: ThreadMatchState.unitCapacity)))
    guard pthread_setspecific(matchStateKey, UnsafeRawPointer(state)) == 0 else {
        pcre2_match_data_free_16(data)
        state.pointee.units.deallocate()
        state.deinitialize(count: 1)
        state.deallocate()
        return nil
    }
    return state
}

/// The outcome of matching a path against a pattern. `failed` (a PCRE2 resource limit or internal error)
/// is neither a match nor a non-match: callers must refuse the request, never fall through to a later rule.
public enum MatchOutcome: Sendable, Equatable {
    case match
    case noMatch
    case failed(String)
}

/// One compiled PCRE2 pattern, 16-bit code units without PCRE2_UTF (JIT when available): the pattern and the
/// subject are sequences of UTF-16 code units, as for a JavaScript regular expression without the `u` flag
/// (an astral character is two units, so `.{2}` matches one emoji, as in JavaScript). Compiled once per
/// config; the code and the match context are only read after construction, which PCRE2 allows from several
/// threads at once; match data and the subject buffer are per thread.
final class PCRE2Regex: @unchecked Sendable {
    let code: OpaquePointer
    let context: OpaquePointer
    let pattern: String
    let jit: Bool

    /// Backtracking budget per match: far above what any path of at most `CanonicalPath.maxLength`
    /// characters needs for path-to-regexp's own patterns, low enough that a catastrophic custom group
    /// (`((?:a+)+)b`) fails fast instead of hanging an event-loop thread.
    static let matchLimit: UInt32 = 1_000_000
    static let depthLimit: UInt32 = 10_000
    static let heapLimitKiB: UInt32 = 4096

    struct CompileError: Error {
        let message: String
    }

    /// `pattern` is PCRE2 syntax over UTF-16 code units (as `JSRegex` writes it: ASCII, characters as `\x{…}`).
    init(_ pattern: String, matchLimit: UInt32 = PCRE2Regex.matchLimit) throws(CompileError) {
        self.pattern = pattern
        var errorCode: Int32 = 0
        var errorOffset: Int = 0
        // Never UTF or UCP, whatever the pattern says: code units, ASCII-only `\b`, as JavaScript without `u`.
        let options = PCRE2_NEVER_UTF | PCRE2_NEVER_UCP | PCRE2_DOLLAR_ENDONLY | PCRE2_MATCH_UNSET_BACKREF | PCRE2_NEVER_BACKSLASH_C
        let units = Array(pattern.utf16)
        let compiled = units.withUnsafeBufferPointer { buffer in
            pcre2_compile_16(buffer.baseAddress, buffer.count, options, &errorCode, &errorOffset, nil)
        }
        guard let compiled else {
            throw CompileError(message: "\(PCRE2Regex.message(for: errorCode)) at offset \(errorOffset) of the translated pattern")
        }
        guard let context = pcre2_match_context_create_16(nil) else {
            pcre2_code_free_16(compiled)
            throw CompileError(message: "out of memory")
        }
        pcre2_set_match_limit_16(context, matchLimit)
        pcre2_set_depth_limit_16(context, PCRE2Regex.depthLimit)
        pcre2_set_heap_limit_16(context, PCRE2Regex.heapLimitKiB)
        self.code = compiled
        self.context = context
        // Without JIT support PCRE2 interprets the same pattern, with the same answers.
        self.jit = pcre2_jit_compile_16(compiled, PCRE2_JIT_COMPLETE) == 0
    }

    deinit {
        pcre2_match_context_free_16(context)
        pcre2_code_free_16(code)
    }

    /// Matches a decoded path (valid UTF-8), as UTF-16 code units.
    func match(_ subject: UnsafeBufferPointer<UInt8>) -> MatchOutcome {
        guard let state = threadMatchState() else { return .failed("out of memory") }
        let data = state.pointee.data
        let buffer = state.pointee.units
        if subject.count <= buffer.count {
            guard let n = PCRE2Regex.utf16(subject, into: buffer) else { return .failed("path is not valid UTF-8") }
            return match(UnsafeBufferPointer(rebasing: buffer[0..<n]), data)
        }
        // Longer than any canonical path; only a direct caller can get here.
        var units = [UInt16](repeating: 0, count: subject.count)
        return units.withUnsafeMutableBufferPointer { big in
            guard let n = PCRE2Regex.utf16(subject, into: big) else { return .failed("path is not valid UTF-8") }
            return match(UnsafeBufferPointer(rebasing: big[0..<n]), data)
        }
    }

    private func match(_ units: UnsafeBufferPointer<UInt16>, _ data: OpaquePointer) -> MatchOutcome {
        // A zero-length buffer may have no base address; PCRE2 needs a valid pointer even then.
        let rc: Int32
        if let base = units.baseAddress {
            rc = pcre2_match_16(code, base, units.count, 0, 0, data, context)
        } else {
            var empty: UInt16 = 0
            rc = pcre2_match_16(code, &empty, 0, 0, 0, data, context)
        }
        if rc >= 0 { return .match }
        if rc == PCRE2_ERROR_NOMATCH { return .noMatch }
        return .failed(PCRE2Regex.message(for: rc))
    }

    /// Strict UTF-8 → UTF-16 into `out` (which has room for `utf8.count` units); the unit count, or nil on
    /// invalid UTF-8 (which `DecodedPath` has already ruled out).
    static func utf16(_ utf8: UnsafeBufferPointer<UInt8>, into out: UnsafeMutableBufferPointer<UInt16>) -> Int? {
        var n = 0
        var i = 0
        while i < utf8.count {
            let b = utf8[i]
            if b < 0x80 {
                out[n] = UInt16(b)
                n += 1
                i += 1
                continue
            }
            let length: Int
            var scalar: UInt32
            switch b {
            case 0xC2...0xDF: length = 2; scalar = UInt32(b & 0x1F)
            case 0xE0...0xEF: length = 3; scalar = UInt32(b & 0x0F)
            case 0xF0...0xF4: length = 4; scalar = UInt32(b & 0x07)
            default: return nil
            }
            guard i + length <= utf8.count else { return nil }
            for k in 1..<length {
                let c = utf8[i + k]
                guard c & 0xC0 == 0x80 else { return nil }
                scalar = scalar << 6 | UInt32(c & 0x3F)
            }
            // Overlong forms, surrogates and values above U+10FFFF are not UTF-8.
            let shortest: UInt32 = length == 2 ? 0x80 : length == 3 ? 0x800 : 0x10000
            guard scalar >= shortest, scalar <= 0x10FFFF, !(0xD800...0xDFFF).contains(scalar) else { return nil }
            if scalar < 0x10000 {
                out[n] = UInt16(scalar)
                n += 1
            } else {
                let v = scalar - 0x10000
                out[n] = UInt16(0xD800 + (v >> 10))
                out[n + 1] = UInt16(0xDC00 + (v & 0x3FF))
                n += 2
            }
            i += length
        }
        return n
    }

    static func message(for errorCode: Int32) -> String {
        var buffer = [UInt16](repeating: 0, count: 256)
        let n = pcre2_get_error_message_16(errorCode, &buffer, buffer.count)
        guard n > 0 else { return "PCRE2 error \(errorCode)" }
        return String(decoding: buffer[0..<Int(n)], as: UTF16.self)
    }
}
