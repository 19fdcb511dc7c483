import Synchronization

/// The header fields a proxied request carries upstream, kept as their parts instead of one built list: the
/// client's fields (minus those the identity policy removes), Gatehouse's identity fields, then fields added after the
/// decision (the signed assertion). `headers` is the one list they make, for `explain`, forward-auth and the
/// SwiftNIO path; the data plane writes the parts straight into the upstream head (`forEachClientField`, then
/// the identity block's bytes), so no list is built per request (that cost ~0.4 µs, perf).
public struct UpstreamFields: Sendable, Equatable {
    enum Client: Sendable {
        /// The request's fields as sent; the policy's names (its tag) say which are removed.
        case filtered(HeaderList, IdentityPolicyTag)
        /// Already the fields to send (the Frontend API proxy builds its own).
        case final(HeaderList)
    }

    let client: Client
    public let identity: IdentityBlock
    public private(set) var appended: HeaderList

    init(client: HeaderList, reserved: IdentityPolicyTag, identity: IdentityBlock) {
        self.client = .filtered(client, reserved)
        self.identity = identity
        self.appended = HeaderList()
    }

    public init(_ list: HeaderList) {
        self.client = .final(list)
        self.identity = IdentityBlock.empty
        self.appended = HeaderList()
    }

    public mutating func append(_ name: String, _ value: String) { appended.append(name, value) }

    /// The client fields that are sent, in order: without hop-by-hop fields (and those `Connection` names) and
    /// identity look-alikes.
    @inline(__always) public func forEachClientField(_ body: (String, String) -> Void) {
        Self.forEachField(of: client, body)
    }

    /// `forEachClientField` over `client` passed in borrowed: bound from `self.client`, its list and the
    /// policy's tag were copies (retained and released on every request; scripts/refcounts).
    private static func forEachField(of client: borrowing Client, _ body: (String, String) -> Void) {
        switch client {
        case .final(let list):
            for field in list { body(field.name, field.value) }
        case .filtered(let list, let reserved):
            let isHopByHop = HopByHop.predicate(for: list)
            for field in list where !isHopByHop(field.name) && !reserved.isReserved(field.name) { body(field.name, field.value) }
        }
    }

    /// Every field in order: client fields, identity fields, appended fields.
    public func forEachField(_ body: (String, String) -> Void) {
        forEachClientField(body)
        for field in identity.fields { body(field.name, field.value) }
        for field in appended { body(field.name, field.value) }
    }

    /// The fields as one list.
    public var headers: HeaderList {
        var list = HeaderList()
        if case .filtered(let fields, _) = client { list.reserveCapacity(fields.count + identity.fields.count + appended.count) }
        forEachField { list.append($0, $1) }
        return list
    }

    public static func == (lhs: UpstreamFields, rhs: UpstreamFields) -> Bool { lhs.headers == rhs.headers }
}

/// Gatehouse's identity fields for one caller on one route, in the order they are sent, and the same fields as
/// they go on the wire (`Name: value` CRLF each). Built once per verified session and route (SessionAuth keeps
/// them) and spliced into every request that session makes.
public final class IdentityBlock: Sendable {
    public let fields: [(name: String, value: String)]
    /// The fields' bytes, or nil when a field's name is a forwarding header or `Via` (a claim header may be
    /// named so): those are dropped or merged where the head is written, so such a block is written field by field.
    public let wire: [UInt8]?
    /// What the block was built for: a session's block is reused only for the same policy, route and token.
    let policy: IdentityPolicyTag
    let routeName: String
    let token: String?

    static let empty = IdentityBlock(fields: [], policy: IdentityPolicyTag(strip: [], claimHeaderNames: []), routeName: "", token: nil)

    init(fields: [(name: String, value: String)], policy: IdentityPolicyTag, routeName: String, token: String?) {
        self.fields = fields
        self.policy = policy
        self.routeName = routeName
        self.token = token
        if fields.contains(where: { ForwardingHeaders.contains($0.name) || asciiCaseInsensitiveEquals($0.name, "via") }) {
            self.wire = nil
        } else {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(fields.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 })
            for field in fields {
                bytes += field.name.utf8
                bytes += ": ".utf8
                bytes += field.value.utf8
                bytes += "\r\n".utf8
            }
            self.wire = bytes
        }
    }

    func isFor(_ policy: IdentityPolicyTag, routeName: String, token: String?) -> Bool {
        self.policy === policy && self.routeName == routeName && self.token == token
    }
}

/// Names one identity policy's contents: any change to the policy makes a new tag, so blocks built for the old
/// contents are never reused. It holds the names that make a client header reserved, and keeps the blocks of
/// signed-out callers (the same for everyone on a route).
final class IdentityPolicyTag: Sendable {
    private let signedOut = Mutex<[IdentityBlock]>([])
    /// `strip`, normalised.
    let strip: Set<String>
    let claimHeaderNames: [String]

    init(strip: Set<String>, claimHeaderNames: [String]) {
        self.strip = strip
        self.claimHeaderNames = claimHeaderNames
    }

    /// True for a client header that must never reach the upstream as sent (IdentityHeaderPolicy.isReserved).
    func isReserved(_ name: String) -> Bool {
        // Compared without building the normalised name: this runs for every header field of every request.
        // Both reserved prefixes start with `x` (name folding only lowercases it): most fields skip them.
        if name.utf8.first.map({ $0 | 0x20 == UInt8(ascii: "x") }) == true,
            IdentityHeaderPolicy.reservedPrefixes.contains(where: { headerName(name, hasNormalizedPrefix: $0) }) { return true }
        if IdentityHeaderPolicy.isForeignIdentity(name) { return true }
        // Most policies strip nothing more and fill no claim headers: skip making the iterators.
        if !strip.isEmpty, strip.contains(where: { headerNamesEquivalent(name, $0) }) { return true }
        return !claimHeaderNames.isEmpty && claimHeaderNames.contains { headerNamesEquivalent(name, $0) }
    }
    /// Routes are few; past this many, signed-out blocks are built per request rather than kept without bound.
    static let signedOutLimit = 64

    func signedOutBlock(routeName: String, build: () -> IdentityBlock) -> IdentityBlock {
        if let block = signedOut.withLock({ $0.first { $0.routeName == routeName } }) { return block }
        let block = build()
        signedOut.withLock { if $0.count < IdentityPolicyTag.signedOutLimit { $0.append(block) } }
        return block
    }
}

/// A session's identity blocks, one per policy and route it was used with (a few at most).
final class IdentityBlockCache: Sendable {
    private let blocks = Mutex<[IdentityBlock]>([])
    /// A session on more routes than this rebuilds its oldest block when it comes back to that route.
    static let limit = 4

    /// The block kept for this policy, route and token, if there is one. Looked up and stored in two calls, not
    /// one taking a builder: the builder's closure context retained its six captures on every request, also
    /// when the block was found (scripts/refcounts).
    func cached(policy: IdentityPolicyTag, routeName: String, token: String?) -> IdentityBlock? {
        blocks.withLock { blocks in
            for i in blocks.indices where blocks[i].isFor(policy, routeName: routeName, token: token) { return blocks[i] }
            return nil
        }
    }

    func keep(_ block: IdentityBlock) {
        blocks.withLock {
            if $0.count == IdentityBlockCache.limit { $0.removeFirst() }
            $0.append(block)
        }
    }
}
