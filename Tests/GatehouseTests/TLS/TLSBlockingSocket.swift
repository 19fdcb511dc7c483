import Foundation
import GatehouseTLS
#if canImport(Glibc)
import Glibc
#endif

/// Plain blocking POSIX sockets on 127.0.0.1 for the real-peer TLS tests, with timeouts so nothing hangs.
/// A TLSConnection sits on top; this moves its ciphertext to and from the socket.
struct TLSBlockingSocket {
    let descriptor: Int32

    struct Failure: Error, CustomStringConvertible { let description: String }

    static func listen() throws -> (socket: TLSBlockingSocket, port: UInt16) {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        var address = loopback(port: 0)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0, Glibc.listen(descriptor, 8) == 0 else {
            _ = Glibc.close(descriptor)
            throw Failure(description: "bind/listen: \(String(cString: strerror(errno)))")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            getsockname(descriptor, $0, &length) } }
        return (TLSBlockingSocket(descriptor: descriptor), UInt16(bigEndian: address.sin_port))
    }

    static func connect(port: UInt16) throws -> TLSBlockingSocket {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = loopback(port: port)
        let connected = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            Glibc.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard connected == 0 else {
            _ = Glibc.close(descriptor)
            throw Failure(description: "connect to \(port): \(String(cString: strerror(errno)))")
        }
        let socket = TLSBlockingSocket(descriptor: descriptor)
        socket.setTimeout(seconds: 10)
        return socket
    }

    func accept() throws -> TLSBlockingSocket {
        let accepted = Glibc.accept(descriptor, nil, nil)
        guard accepted >= 0 else { throw Failure(description: "accept: \(String(cString: strerror(errno)))") }
        let socket = TLSBlockingSocket(descriptor: accepted)
        socket.setTimeout(seconds: 10)
        return socket
    }

    func close() { _ = Glibc.close(descriptor) }

    private func setTimeout(seconds: Int) {
        var timeout = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    private static func loopback(port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }

    /// Writes everything the TLS connection has for the socket.
    func flush(_ tls: TLSConnection) throws {
        var buffer = [UInt8](repeating: 0, count: 32 * 1024)
        while tls.pendingCiphertextCount > 0 {
            let count = buffer.withUnsafeMutableBytes { tls.takeCiphertext(into: $0) }
            var offset = 0
            while offset < count {
                let written = buffer.withUnsafeBytes { send(descriptor, $0.baseAddress! + offset, count - offset, Int32(MSG_NOSIGNAL)) }
                guard written > 0 else { throw Failure(description: "send: \(String(cString: strerror(errno)))") }
                offset += written
            }
        }
    }

    /// Reads once from the socket into the TLS connection; false at end of stream.
    func receive(into tls: TLSConnection) throws -> Bool {
        var buffer = [UInt8](repeating: 0, count: 32 * 1024)
        let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
        guard count >= 0 else { throw Failure(description: "recv: \(String(cString: strerror(errno)))") }
        if count == 0 {
            tls.receiveEndOfCiphertext()
            return false
        }
        buffer.withUnsafeBytes { tls.receiveCiphertext(UnsafeRawBufferPointer(rebasing: $0[..<count])) }
        return true
    }

    /// Reads plaintext until `done` says enough, the peer closes, or TLS fails; returns what came and how it ended.
    func readPlaintext(_ tls: TLSConnection, until done: ([UInt8]) -> Bool) throws -> (bytes: [UInt8], end: TLSReadResult) {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 32 * 1024)
        while true {
            let result = buffer.withUnsafeMutableBytes { tls.readPlaintext(into: $0) }
            try flush(tls)  // handshake messages, tickets, alerts
            switch result {
            case .bytes(let count):
                received += buffer[..<count]
                if done(received) { return (received, result) }
            case .needMoreCiphertext:
                _ = try receive(into: tls)
            case .closed, .failed:
                return (received, result)
            }
        }
    }
}
