import COpenSSL

/// RFC 6455 §4.2.2: the `Sec-WebSocket-Accept` a server that really performed the WebSocket handshake answers
/// to a `Sec-WebSocket-Key`: base64(SHA-1(key + the protocol's GUID)). Here because OpenSSL has both.
public enum WebSocketAccept {
    public static func expected(forKey key: String) -> [UInt8] {
        let input = Array((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").utf8)
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        guard EVP_Digest(input, input.count, &digest, &length, EVP_sha1(), nil) == 1, length == 20 else { return [] }
        var encoded = [UInt8](repeating: 0, count: 32)
        let count = EVP_EncodeBlock(&encoded, digest, 20)
        return Array(encoded.prefix(Int(max(count, 0))))
    }
}
