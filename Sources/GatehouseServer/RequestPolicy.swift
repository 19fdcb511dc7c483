import Foundation
import GatehouseAuth
import GatehouseConfig
import GatehouseCore
import GatehouseDataPlane
import GatehouseEngine
import GatehouseHTTP1
import GatehouseTLS

/// The data plane's way from a parsed request head to a verdict: what ClientHandler decided on its own
/// (forward-auth endpoints and answers, the cross-site WebSocket check, `Expect`, the retry choice, the
/// upstream head) in one place, on top of the engine's evaluation, so the connection machine only carries
/// verdicts out.
enum RequestPolicy {
    /// What the head says that the verdict and the access log need, read once. A class: the connection's log
    /// record and the verdict share it (copying its dozen strings and lists cost retains per request, perf).
    final class Prepared: Sendable {
        let raw: RawRequest
        let requestID: String
        let trusted: Bool
        let forwardAuth: ForwardAuth.Dialect?
        let webSocket: Bool
        let origin: String?
        let chunked: Bool
        let expectsContinue: Bool
        let http11: Bool
        let host: String?
        let userAgent: String?

        init(raw: RawRequest, requestID: String, trusted: Bool, forwardAuth: ForwardAuth.Dialect?, webSocket: Bool, origin: String?,
             chunked: Bool, expectsContinue: Bool, http11: Bool, host: String?, userAgent: String?) {
            self.raw = raw
            self.requestID = requestID
            self.trusted = trusted
            self.forwardAuth = forwardAuth
            self.webSocket = webSocket
            self.origin = origin
            self.chunked = chunked
            self.expectsContinue = expectsContinue
            self.http11 = http11
            self.host = host
            self.userAgent = userAgent
        }

        /// The engine's evaluation of `raw`, borrowed in place: passed from outside as `prepared.raw` it was
        /// copied first (its six references retained and released, uprobes).
        func evaluateWithoutFetching(_ gatekeeper: Gatekeeper, now: Double) -> Evaluation? {
            gatekeeper.evaluateWithoutFetching(raw, now: now)
        }
    }

    enum Step: Sendable {
        /// Decided without the engine (forward-auth path errors).
        case answered(ExchangeVerdict)
        /// For the engine: now if it can (`evaluateWithoutFetching`), else in a task.
        case evaluate
    }

    /// Reads the head's bytes (`b`: the head from its first byte) into the engine's request. `scheme`: the
    /// one the client used (redirects, X-Forwarded-Proto and the WebSocket origin check see it).
    static func prepare(_ head: RequestHead, _ b: UnsafeRawBufferPointer, peer: String, scheme: String = "http", snapshot: GatewaySnapshot,
                        newRequestID: () -> String) -> (Prepared, Step) {
        var fields: [(name: String, value: String)] = []
        fields.reserveCapacity(head.fields.count)
        for field in head.fields {
            fields.append((name(b, field.name), text(b, field.value)))
        }
        let headers = HeaderList(fields)
        let trusted = snapshot.isTrusted(peer: peer)
        let requestID = (trusted ? UpstreamRequest.trustedRequestID(headers) : nil) ?? newRequestID()
        let method = CommonNames.literal(UnsafeRawBufferPointer(rebasing: b[head.method]), in: CommonNames.methodsByLength) ?? text(b, head.method)
        let target = text(b, head.target)
        var raw = RawRequest(method: method, target: target, headers: headers, scheme: scheme, fromTrustedProxy: trusted, peer: peer,
                             trustedProxies: snapshot.settings.trustedProxies)
        raw.fieldsChecked = true
        let upgrade = headers.values("upgrade").map { $0.lowercased() }
        // The cheap half first: almost no request carries `Upgrade`.
        let webSocket = upgrade == ["websocket"]
            && headers.values("connection").map({ $0.lowercased() }).contains { $0.split(separator: ",").contains { $0.trimmingCharacters(in: .whitespaces) == "upgrade" } }
        // `raw` is moved into the Prepared, not copied (a copy retained and released its six references).
        func prepared(_ raw: consuming RawRequest, forwardAuth: ForwardAuth.Dialect?) -> Prepared {
            Prepared(raw: raw, requestID: requestID, trusted: trusted, forwardAuth: forwardAuth, webSocket: webSocket, origin: headers.first("origin"),
                     chunked: head.body == .chunked, expectsContinue: head.expectsContinue, http11: head.version == .http11,
                     host: head.host.map { fields[$0].value }, userAgent: headers.first("user-agent"))
        }

        if let path = snapshot.settings.forwardAuthPath,
            let requested = reservedForwardAuthPath(target, configured: path, options: snapshot.settings.canonicalization)
        {
            guard let strict = requested.strict, let dialect = ForwardAuth.dialect(path: strict, configured: path, headers: headers) else {
                return (prepared(consume raw, forwardAuth: nil), .answered(.answer(withID(ForwardAuth.notAnEndpoint(configured: path), requestID), label: "deny",
                                                                            closeConnection: false)))
            }
            guard trusted, let original = ForwardAuth.originalRequest(headers, dialect: dialect) else {
                return (prepared(consume raw, forwardAuth: dialect),
                        .answered(.answer(withID(ForwardAuth.withoutOriginalRequest(trusted: trusted, dialect: dialect), requestID),
                                          label: "deny", closeConnection: false)))
            }
            var forwarded = RawRequest(method: original.method, target: original.uri, headers: headers, scheme: scheme, fromTrustedProxy: true,
                                       peer: peer, trustedProxies: snapshot.settings.trustedProxies)
            forwarded.fieldsChecked = true
            return (prepared(consume forwarded, forwardAuth: dialect), .evaluate)
        }
        return (prepared(consume raw, forwardAuth: nil), .evaluate)
    }

    /// `ClientHandler.reservedForwardAuthPath` without canonicalising the path twice per request: when the
    /// target is all visible ASCII (so characters are bytes), origin-form, and its path already canonical, that
    /// path is both the strict and the routed form. Anything else takes the full way.
    static func reservedForwardAuthPath(_ target: String, configured: String, options: CanonicalizationOptions) -> (routed: String, strict: String?)? {
        // On the target's bytes in place, with no substring or index arithmetic: most requests are not for
        // the endpoint and only learn that (the substring, the index search and the view's indexing cost ~1,000
        // instructions per request, callgrind).
        enum Fast { case notReserved, reserved(pathLength: Int), fullWay }
        let fast = target.utf8.withContiguousStorageIfAvailable { bytes -> Fast in
            guard let base = bytes.baseAddress, bytes.first == UInt8(ascii: "/"), bytes.count <= CanonicalPath.maxLength,
                ASCIISearch.isVisibleASCII(bytes)
            else { return .fullWay }
            let pathLength = memchr(base, Int32(UInt8(ascii: "?")), bytes.count).map { UnsafeRawPointer($0) - UnsafeRawPointer(base) } ?? bytes.count
            let path = UnsafeBufferPointer(rebasing: bytes[..<pathLength])
            guard CanonicalPath.isAlreadyCanonicalBytes(path, allowSemicolons: false) else { return .fullWay }
            return isReserved(path, configured: configured) ? .reserved(pathLength: pathLength) : .notReserved
        }
        switch fast {
        case .notReserved?:
            return nil
        case .reserved(let pathLength)?:
            let routed = String(decoding: target.utf8.prefix(pathLength), as: UTF8.self)
            return (routed, routed)
        case .fullWay?, nil:
            return ClientHandler.reservedForwardAuthPath(target, configured: configured, options: options)
        }
    }

    /// `ForwardAuth.isReserved` on the bytes of a visible-ASCII canonical path (where its lowercasing, prefix
    /// and character count are byte operations), without building lowercased copies.
    static func isReserved(_ path: UnsafeBufferPointer<UInt8>, configured: String) -> Bool {
        var configured = configured
        return configured.withUTF8 { c in
            var n = c.count
            while n > 0 && c[n - 1] == UInt8(ascii: "/") { n -= 1 }
            if n == 0 { return true }
            guard path.count >= n else { return false }
            for i in 0..<n where lowered(path[i]) != lowered(c[i]) { return false }
            return path.count == n || path[n] == UInt8(ascii: "/") || path[n] == UInt8(ascii: ";")
        }
    }

    @inline(__always) private static func lowered(_ b: UInt8) -> UInt8 {
        b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z") ? b | 0x20 : b
    }

    /// The verdict for an evaluated request (ClientHandler.decided's rules).
    static func verdict(_ evaluation: Evaluation, _ prepared: Prepared, snapshot: GatewaySnapshot, peer: String, now: Double) -> ExchangeVerdict {
        let decision = evaluation.decision
        guard decision.action == .proxy, let request = evaluation.request, evaluation.decision.upstream != nil else {
            let local = prepared.forwardAuth.map { ForwardAuth.denial(decision, dialect: $0) } ?? decision
            // Refused before routing (ambiguous or malformed head): a peer that disagreed about this head may
            // also disagree about where the next request starts, so nothing after it is read.
            return .answer(withID(local, prepared.requestID), label: evaluation.request == nil ? "reject" : decision.action.rawValue,
                           closeConnection: evaluation.request == nil)
        }
        if prepared.forwardAuth != nil {
            // Cookies from a resolved handshake ride along for the proxy to pass to the client.
            let answer = ForwardAuth.allowed(evaluation, policy: snapshot.settings.identity, cookies: decision.responseHeaders.values("set-cookie"))
            return .answer(withID(answer, prepared.requestID), label: "proxy", closeConnection: false)
        }
        let target = decision.upstreamOverride?.target ?? evaluation.route?.upstream ?? snapshot.settings.upstream
        var location: (from: [UInt8], to: [UInt8])?
        if let override = decision.upstreamOverride {
            location = (Array(override.locationPrefix.utf8), Array(override.publicPrefix.utf8))
        }
        var tunnelLifetime: Double?
        var webSocketAccept: [UInt8]?
        if prepared.webSocket {
            if let refusal = WebSocketUpgrade.crossSiteRefusal(evaluation, request: request, origin: prepared.origin, snapshot: snapshot) {
                return .answer(withID(refusal, prepared.requestID), label: "deny", closeConnection: true)
            }
            tunnelLifetime = lifetime(evaluation, settings: snapshot.settings, now: now)
            // WebSocket smuggling: only a 101 proving this handshake opens the tunnel (none without one key).
            let keys = prepared.raw.headers.values("sec-websocket-key")
            webSocketAccept = keys.count == 1 ? WebSocketAccept.expected(forKey: keys[0]) : []
        }
        // The fields read in place from the (immutable) evaluation, checked non-nil above: bound to a local they
        // were copied, retaining and releasing each part (~400 instructions, callgrind).
        let head = UpstreamRequest.renderedHead(for: request, target: decision.upstreamOverride?.requestTarget, fields: evaluation.decision.upstream!, peer: peer,
                                              trustedPeer: prepared.trusted, requestID: prepared.requestID, chunked: prepared.chunked,
                                              webSocketUpgrade: prepared.webSocket)
        let method = request.method
        return .forward(ForwardPlan(
            upstream: target, head: head, chunkedBody: prepared.chunked,
            retryable: method == "GET" || method == "HEAD" || method == "OPTIONS",
            sendContinue: prepared.expectsContinue && prepared.http11,
            tunnelLifetime: tunnelLifetime, response: ResponseRewrite(extraFields: render(decision.responseHeaders), location: location),
            label: "proxy", requestID: prepared.requestID, webSocketAccept: webSocketAccept))
    }

    /// A tunnel closes at the session token's expiry (if configured) or the maximum lifetime; a machine
    /// token's at its expiry, an opaque one's also after the revocation window.
    static func lifetime(_ evaluation: Evaluation, settings: GatehouseSettings, now: Double) -> Double {
        let proxy = settings.proxy
        var lifetime = proxy.websocketMaxLifetime
        guard proxy.websocketCloseAtTokenExpiry else { return lifetime }
        if let exp = evaluation.auth?.activeSession?.claims["exp"]?.doubleValue { lifetime = min(lifetime, max(0, exp - now)) }
        if let machine = evaluation.auth?.machineIdentity {
            if let exp = machine.expiresAt { lifetime = min(lifetime, max(0, exp - now)) }
            if machine.form == .opaque { lifetime = min(lifetime, settings.machine.limits.revocationWindow) }
        }
        return lifetime
    }

    static func withID(_ decision: Decision, _ requestID: String) -> Decision {
        var decision = decision
        decision.responseHeaders.append("X-Request-Id", requestID)
        return decision
    }

    /// Field lines as bytes (`Name: value\r\n` each).
    static func render(_ fields: HeaderList) -> [UInt8] {
        var out: [UInt8] = []
        for field in fields {
            out.append(contentsOf: field.name.utf8)
            out.append(contentsOf: ": ".utf8)
            out.append(contentsOf: field.value.utf8)
            out.append(contentsOf: "\r\n".utf8)
        }
        return out
    }

    /// A field name: the common spelling's literal when the bytes are exactly that (CommonNames), else a new string.
    @inline(__always) static func name(_ b: UnsafeRawBufferPointer, _ range: Range<Int>) -> String {
        CommonNames.literal(UnsafeRawBufferPointer(rebasing: b[range]), in: CommonNames.fieldNamesByLength) ?? text(b, range)
    }

    @inline(__always) static func text(_ b: UnsafeRawBufferPointer, _ range: Range<Int>) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: b[range]), as: UTF8.self)
    }
}
