/// The ALPN extension's list: protocol names, each prefixed by a one-byte length (RFC 7301 §3.1).
enum ALPNList {
    /// Where `name` sits in a well-formed list, or nil when absent or the list is malformed.
    static func range(of name: some Collection<UInt8>, in list: UnsafeBufferPointer<UInt8>) -> Range<Int>? {
        var index = 0
        while index < list.count {
            let length = Int(list[index])
            let start = index + 1
            guard length > 0, start + length <= list.count else { return nil }
            if list[start..<(start + length)].elementsEqual(name) { return start..<(start + length) }
            index = start + length
        }
        return nil
    }
}
