// Fuzz target: CookieJar. Names never carry ';', '=' or surrounding whitespace, lookups agree with the list,
// and parsing is per header line (splitting the header list differently cannot merge or split cookies).
import GatehouseCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCookies(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    var headers: [String] = []
    while !input.isAtEnd, headers.count < 16 { headers.append(String(fuzzBytes: input.line())) }
    let jar = CookieJar(headerValues: headers)

    for name in jar.names {
        require(!name.isEmpty, "empty cookie name")
        require(!name.utf8.contains(UInt8(ascii: ";")), "cookie name with ';': \(name.debugDescription)")
        require(!name.utf8.contains(UInt8(ascii: "=")), "cookie name with '=': \(name.debugDescription)")
        let first = name.utf8.first!, last = name.utf8.last!
        require(first != 0x20 && first != 0x09 && last != 0x20 && last != 0x09, "untrimmed cookie name \(name.debugDescription)")
        let values = jar.values(name)
        require(!values.isEmpty && jar.value(name) == values.first, "value(\(name)) disagrees with values(\(name))")
    }
    // Cookies of several header lines are those of each line, in order (RFC 6265 §5.4 joins them with "; ").
    let perLine = headers.flatMap { CookieJar(headerValues: [$0]).names }
    require(perLine == jar.names, "cookies of a header list differ from those of its lines")
    let joined = CookieJar(headerValues: [headers.joined(separator: "; ")])
    require(joined == jar, "joining the Cookie lines with '; ' changed the cookies")
    return 0
}
