// Fuzz target: CanonicalPath and CanonicalRequest. The accepted form must be canonical (idempotent, no dot
// segments, no empty segments, no encoded separators, no decodable unreserved escapes) and what is forwarded
// upstream must read back as the same path and query.
@testable import GatehouseCore

private func isUnreservedASCII(_ b: UInt8) -> Bool {
    (b >= 0x61 && b <= 0x7A) || (b >= 0x41 && b <= 0x5A) || (b >= 0x30 && b <= 0x39) || b == 0x2D || b == 0x2E
        || b == 0x5F || b == 0x7E
}

private func hex(_ b: UInt8) -> UInt8? {
    switch b {
    case 0x30...0x39: return b - 0x30
    case 0x41...0x46: return b - 0x41 + 10
    default: return nil  // canonical escapes are upper-case
    }
}

/// Every property a canonical path must have, checked on its bytes without the implementation's helpers.
/// `isRequestPath`: the path part of a request-target, where '?' has already been split off as the query.
private func checkCanonicalShape(_ path: String, allowSemicolons: Bool, raw: String, isRequestPath: Bool = true) {
    let b = Array(path.utf8)
    require(b.first == UInt8(ascii: "/"), "canonical path \(path) does not start with '/' (raw \(raw.debugDescription))")
    var i = 0
    while i < b.count {
        let c = b[i]
        require(c > 0x20 && c < 0x7F, "canonical path has a control, space or non-ASCII byte: \(path.debugDescription)")
        require(c != UInt8(ascii: "\\") && c != UInt8(ascii: "#"), "canonical path has '\\' or '#': \(path)")
        if isRequestPath { require(c != UInt8(ascii: "?"), "request path kept a '?': \(path)") }
        if !allowSemicolons { require(c != UInt8(ascii: ";"), "raw ';' accepted without allow_path_semicolons: \(path)") }
        if c == UInt8(ascii: "%") {
            require(i + 2 < b.count, "truncated escape in canonical path \(path)")
            guard let hi = hex(b[i + 1]), let lo = hex(b[i + 2]) else {
                require(false, "escape is not upper-case hex in canonical path \(path)")
                return
            }
            let decoded = hi << 4 | lo
            require(decoded != UInt8(ascii: "/") && decoded != UInt8(ascii: "\\"), "encoded separator left in \(path)")
            require(decoded >= 0x20 && decoded != 0x7F, "encoded control character left in \(path)")
            require(!isUnreservedASCII(decoded), "decodable unreserved escape left in \(path)")
            i += 3
            continue
        }
        i += 1
    }
    let segments = path.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).dropFirst()
    for (n, segment) in segments.enumerated() {
        let isLast = n == segments.count - 1
        require(!segment.isEmpty || isLast, "empty segment ('//') in canonical path \(path)")
        require(!segment.elementsEqual(".".utf8) && !segment.elementsEqual("..".utf8), "dot segment in canonical path \(path)")
    }
}

private func checkPath(_ raw: String, allowSemicolons: Bool) {
    guard let path = try? CanonicalPath(parsing: raw, allowSemicolons: allowSemicolons) else { return }
    checkCanonicalShape(path.value, allowSemicolons: allowSemicolons, raw: raw, isRequestPath: false)
    // Idempotent: the canonical form is its own canonical form, and the fast path knows it.
    let again = try? CanonicalPath(parsing: path.value, allowSemicolons: allowSemicolons)
    require(again?.value == path.value, "canonicalising \(path.value) again gave \(again?.value ?? "a rejection")")
    // The shortcut is conservative about escapes (any '%' takes the long way); everything else it must know.
    if !path.value.utf8.contains(UInt8(ascii: "%")) {
        require(CanonicalPath.isAlreadyCanonical(path.value[...].utf8, allowSemicolons: allowSemicolons),
            "fast path does not recognise canonical \(path.value)")
    }
    // Fast path ≡ full canonicalisation: when the shortcut says "already canonical", the long way agrees.
    if CanonicalPath.isAlreadyCanonical(raw[...].utf8, allowSemicolons: allowSemicolons) {
        let slow = try? CanonicalPath.canonicalize(Array(raw.utf8), allowSemicolons: allowSemicolons)
        require(slow == raw, "fast path kept \(raw.debugDescription) but canonicalize gives \(slow ?? "a rejection")")
    }
    // Allowing semicolons only ever accepts more, and otherwise changes nothing.
    if !allowSemicolons {
        let lenient = try? CanonicalPath(parsing: raw, allowSemicolons: true)
        require(lenient?.value == path.value, "allow_path_semicolons changed the form of \(raw.debugDescription)")
    }
}

/// The allocation-free host shortcut ≡ the full normalisation, and normalising is idempotent.
private func checkHost(_ value: String) {
    let full = try? CanonicalRequest.normalizeHostFully(value)
    if CanonicalRequest.isAlreadyNormalHost(value) {
        require(full == value, "host shortcut keeps \(value.debugDescription), full normalisation gives \(full ?? "a rejection")")
    }
    if let full {
        if !full.hasPrefix("[") {  // an IPv6 literal is only checked for its characters
            require(!full.hasSuffix(".") && !full.contains(".."), "normalised host \(full.debugDescription) has an empty label")
        }
        let again = try? CanonicalRequest.normalizeHost(full)
        require(again == full, "normalising host \(full) again gave \(again ?? "a rejection")")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCanonicalRequest(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let flags = input.byte()
    let allowSemicolons = flags & 1 != 0
    let target = String(fuzzBytes: input.line())
    checkPath(target, allowSemicolons: allowSemicolons)

    var fields: [(name: String, value: String)] = []
    while !input.isAtEnd, fields.count < 8 {
        let line = input.line()
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { continue }
        let name = String(fuzzBytes: Array(line[..<colon]))
        let value = String(fuzzBytes: Array(line[(colon + 1)...])).trimmingASCIIWhitespace()
        fields.append((name, value))
        checkHost(value)
    }
    let method = ["GET", "POST", "HEAD", "OPTIONS", "DELETE", "CONNECT", "G T", ""][Int(flags >> 1 & 7)]
    let raw = RawRequest(
        method: method, target: target, headers: HeaderList(fields), scheme: flags & 16 != 0 ? "https" : "http",
        fromTrustedProxy: flags & 32 != 0)
    let options = CanonicalizationOptions(allowPathSemicolons: allowSemicolons)
    guard let request = try? CanonicalRequest(raw, options: options) else { return 0 }

    checkCanonicalShape(request.path.value, allowSemicolons: allowSemicolons, raw: target)
    if let query = request.query {
        require(query.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "#") }, "bad byte in accepted query \(query.debugDescription)")
    }
    if let host = request.host {
        require(host.utf8.allSatisfy { !($0 >= 0x41 && $0 <= 0x5A) && $0 > 0x20 && $0 < 0x7F }, "host not lower-case ASCII: \(host.debugDescription)")
        require(!host.hasSuffix("."), "host with a trailing dot: \(host)")
        let renormalised = try? CanonicalRequest.normalizeHost(host)
        require(renormalised == host, "normalising host \(host) again gave \(renormalised ?? "a rejection")")
    }
    // What goes upstream reads back as the same request: the upstream cannot see another path.
    let forwarded = RawRequest(method: method, target: request.pathAndQuery, headers: HeaderList(), scheme: request.scheme)
    let reread = try? CanonicalRequest(forwarded, options: options)
    require(reread?.path == request.path && reread?.query == request.query,
        "forwarded target \(request.pathAndQuery) reads back as \(reread?.pathAndQuery ?? "a rejection")")
    for name in request.cookies.names {
        require(!name.utf8.contains(UInt8(ascii: ";")) && !name.utf8.contains(UInt8(ascii: "=")), "cookie name \(name.debugDescription)")
    }
    return 0
}
