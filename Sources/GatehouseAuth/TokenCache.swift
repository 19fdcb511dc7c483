#if canImport(Glibc)
import Glibc
#endif
import GatehouseCore
import Synchronization

/// Tokens whose signature has been verified, so a token seen again (a Clerk session token is reused for up
/// to 60 s) skips base64/JSON decoding and the RSA operation.
///
/// What it never skips: the claim checks (`exp`, `nbf`, `iat`, `azp`, `aud`, `iss`) run on every request
/// against the current clock, and authorization (route requirements) is decided after it, per request
/// (the Oathkeeper CVE-2021-32701 lesson). An entry only counts for the key set it was verified with: after
/// a JWKS refresh that changed the keys, every token is verified again, and only while its algorithm is still
/// allowed (the cache is process-wide and survives reloads). Only tokens that verified are stored.
public final class TokenCache: Sendable {
    /// A class: a hit hands it on without copying the decoded token's objects and lists (one retain, not a dozen).
    final class Entry: Sendable {
        /// The token itself, so a lookup by bytes (`entry(matching:)`) hands out the one copy kept here.
        let token: String
        let decoded: DecodedToken
        /// `SessionAuthenticator.categoryMismatch(decoded)`, worked out once (a pure function of the token).
        let categoryMismatch: String?
        let session: SessionAuth
        let keySetID: UInt64
        /// The algorithm the signature was verified with: the allow-list is checked again on every hit, since
        /// the cache outlives a reload that may have narrowed it (the claim rules are checked again anyway).
        let algorithm: SigningAlgorithm
        let expiresAt: Double
        /// The payload's exp, nbf and iat, read once (the payload never changes; the checks run on every hit).
        let times: ClaimTimes

        init(token: String, decoded: DecodedToken, categoryMismatch: String?, session: SessionAuth, keySetID: UInt64, algorithm: SigningAlgorithm,
             expiresAt: Double) {
            self.times = ClaimTimes(decoded.payload)
            self.token = token
            self.decoded = decoded
            self.categoryMismatch = categoryMismatch
            self.session = session
            self.keySetID = keySetID
            self.algorithm = algorithm
            self.expiresAt = expiresAt
        }
    }

    private let capacityValue: Atomic<Int>
    private let entries = Mutex<[Key: Entry]>([:])

    /// A token as the key: hashed by its length and 16 bytes near its end (the signature's, ~90 random bits for
    /// every token that verified, and only such tokens are stored, so no one can choose colliding entries),
    /// compared in full. Hashing all ~800 bytes on every request cost ~0.3 µs (perf); 64 bytes through
    /// `combine(bytes:)` still cost ~560 instructions, two words ~150 (callgrind).
    ///
    /// A lookup key may instead borrow bytes (`borrowed`); such a key is never stored: it lives only inside the
    /// lock, on the caller's thread, while the caller's buffer is valid (`entry(matching:)`; hence the unchecked
    /// Sendable).
    struct Key: Hashable, @unchecked Sendable {
        let token: String
        let borrowed: UnsafeBufferPointer<UInt8>?

        init(token: String) {
            self.token = token
            self.borrowed = nil
        }

        init(borrowing bytes: UnsafeBufferPointer<UInt8>) {
            self.token = ""
            self.borrowed = bytes
        }

        @inline(__always) func withBytes<R>(_ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
            if let borrowed { return body(borrowed) }
            var token = token
            return token.withUTF8(body)
        }

        func hash(into hasher: inout Hasher) {
            withBytes { bytes in
                hasher.combine(bytes.count)
                // The last byte is skipped: a base64url signature's last character carries only a few bits.
                guard bytes.count >= 17 else { return hasher.combine(bytes: UnsafeRawBufferPointer(bytes)) }
                let tail = UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[(bytes.count - 17)..<(bytes.count - 1)]))
                hasher.combine(tail.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
                hasher.combine(tail.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
            }
        }

        /// Byte for byte. String's `==` is Unicode canonical equivalence, under which another byte string can
        /// equal a cached token (U+212A KELVIN SIGN for a `K`, say) and so be taken for it without being verified.
        static func == (lhs: Key, rhs: Key) -> Bool {
            lhs.withBytes { x in
                rhs.withBytes { y in x.count == y.count && (x.count == 0 || memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0) }
            }
        }
    }
    private let hitCount = Atomic<Int>(0)
    private let missCount = Atomic<Int>(0)

    public init(capacity: Int = 10_000) {
        self.capacityValue = Atomic(capacity)
    }

    public var capacity: Int { capacityValue.load(ordering: .relaxed) }

    /// A reload changed `token_cache_size`: the cache (and its counters, which must never go backwards) is
    /// kept; shrinking below what it holds empties it.
    public func resize(to capacity: Int) {
        capacityValue.store(capacity, ordering: .relaxed)
        entries.withLock { if $0.count > capacity { $0.removeAll(keepingCapacity: capacity > 0) } }
    }

    public var hits: Int { hitCount.load(ordering: .relaxed) }
    public var misses: Int { missCount.load(ordering: .relaxed) }
    public var count: Int { entries.withLock { $0.count } }

    /// The decoded form of a token seen before (whatever the keys), to skip parsing.
    func decoded(_ token: String) -> DecodedToken? {
        entry(token)?.decoded
    }

    /// The entry for this token, whatever its keys (its decoded form skips parsing; `verified` judges it).
    func entry(_ token: String) -> Entry? {
        entries.withLock { $0[Key(token: token)] }
    }

    /// The entry for a token with exactly these bytes, found without copying them into a string (an ~800-byte
    /// copy per request); like `entry(_:)`, whatever its keys.
    func entry(matching bytes: UnsafeBufferPointer<UInt8>) -> Entry? {
        let key = Key(borrowing: bytes)
        return entries.withLock { $0[key] }
    }

    /// A verified entry for this exact token and key set, whose algorithm the current policy still allows.
    func verified(_ token: String, keySetID: UInt64, allowedAlgorithms: [SigningAlgorithm]) -> Entry? {
        verified(entry(token), keySetID: keySetID, allowedAlgorithms: allowedAlgorithms)
    }

    /// `verified` for an entry already looked up with `entry(_:)` (one hash of the token and one lock per
    /// request instead of two); counts the hit or miss.
    func verified(_ entry: Entry?, keySetID: UInt64, allowedAlgorithms: [SigningAlgorithm]) -> Entry? {
        if let entry, entry.keySetID == keySetID, allowedAlgorithms.contains(entry.algorithm) {
            hitCount.wrappingAdd(1, ordering: .relaxed)
            return entry
        }
        missCount.wrappingAdd(1, ordering: .relaxed)
        return nil
    }

    func store(_ token: String, _ entry: Entry, now: Double) {
        let capacity = self.capacity
        guard capacity > 0 else { return }
        // Only non-empty visible ASCII (every JWT that verified is): `SessionAuthenticator.readHeaderToken` relies
        // on it when it answers from here.
        var bytes = token
        guard !bytes.isEmpty, bytes.withUTF8(ASCIISearch.isVisibleASCII) else { return }
        entries.withLock { entries in
            if entries.count >= capacity {
                // Drop what has expired; if that frees too little, start over (rare, and cheap to refill).
                entries = entries.filter { $0.value.expiresAt > now }
                if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            }
            entries[Key(token: token)] = entry
        }
    }
}
