import CPCRE2
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One PCRE2 match data block per thread, made on first use and freed when the thread ends: a match needs
/// one, any compiled pattern can use it, and the event-loop threads live as long as the daemon, so the
/// regex path allocates nothing per request.
private let matchDataKey: pthread_key_t = {
    var key = pthread_key_t()
    let status = pthread_key_create(&key) { data in pcre2_match_data_free_8(OpaquePointer(data)) }
    precondition(status == 0, "pthread_key_create failed")
    return key
}()

private func threadMatchData() -> OpaquePointer? {
    if let data = pthread_getspecific(matchDataKey) { return OpaquePointer(data) }
    guard let data = pcre2_match_data_create_8(1, nil) else { return nil }
    guard pthread_setspecific(matchDataKey, UnsafeRawPointer(data)) == 0 else {
        pcre2_match_data_free_8(data)
        return nil
    }
    return data
}

/// The outcome of matching a path against a pattern. `failed` (a PCRE2 resource limit or internal error)
/// is neither a match nor a non-match: callers must refuse the request, never fall through to a later rule.
public enum MatchOutcome: Sendable, Equatable {
    case match
    case noMatch
    case failed(String)
}

/// One compiled PCRE2 pattern (UTF-8, JIT when available). Compiled once per config; the code and the
/// match context are only read after construction, which PCRE2 allows from several threads at once; match
/// data is per thread.
final class PCRE2Regex: @unchecked Sendable {
    private let code: OpaquePointer
    private let context: OpaquePointer
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

    init(_ pattern: String, matchLimit: UInt32 = PCRE2Regex.matchLimit) throws(CompileError) {
        self.pattern = pattern
        var errorCode: Int32 = 0
        var errorOffset: Int = 0
        let options = PCRE2_UTF | PCRE2_DOLLAR_ENDONLY | PCRE2_MATCH_UNSET_BACKREF | PCRE2_NEVER_BACKSLASH_C
        let compiled = pattern.utf8CString.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: UInt8.self) { bytes in
                pcre2_compile_8(bytes.baseAddress, bytes.count - 1, options, &errorCode, &errorOffset, nil)
            }
        }
        guard let compiled else {
            throw CompileError(message: "\(PCRE2Regex.message(for: errorCode)) at offset \(errorOffset) of the translated pattern")
        }
        guard let context = pcre2_match_context_create_8(nil) else {
            pcre2_code_free_8(compiled)
            throw CompileError(message: "out of memory")
        }
        pcre2_set_match_limit_8(context, matchLimit)
        pcre2_set_depth_limit_8(context, PCRE2Regex.depthLimit)
        pcre2_set_heap_limit_8(context, PCRE2Regex.heapLimitKiB)
        self.code = compiled
        self.context = context
        // Without JIT support PCRE2 interprets the same pattern, with the same answers.
        self.jit = pcre2_jit_compile_8(compiled, PCRE2_JIT_COMPLETE) == 0
    }

    deinit {
        pcre2_match_context_free_8(context)
        pcre2_code_free_8(code)
    }

    func match(_ subject: UnsafeBufferPointer<UInt8>) -> MatchOutcome {
        guard let data = threadMatchData() else { return .failed("out of memory") }
        // A zero-length buffer may have no base address; PCRE2 needs a valid pointer even then.
        let rc: Int32
        if let base = subject.baseAddress {
            rc = pcre2_match_8(code, base, subject.count, 0, 0, data, context)
        } else {
            var empty: UInt8 = 0
            rc = pcre2_match_8(code, &empty, 0, 0, 0, data, context)
        }
        if rc >= 0 { return .match }
        if rc == PCRE2_ERROR_NOMATCH { return .noMatch }
        return .failed(PCRE2Regex.message(for: rc))
    }

    static func message(for errorCode: Int32) -> String {
        var buffer = [UInt8](repeating: 0, count: 256)
        let n = pcre2_get_error_message_8(errorCode, &buffer, buffer.count)
        guard n > 0 else { return "PCRE2 error \(errorCode)" }
        return String(decoding: buffer[0..<Int(n)], as: UTF8.self)
    }
}
