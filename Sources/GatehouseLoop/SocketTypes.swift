import CGatehouseSys
import Glibc

/// An IP address as text and a port (IPv4-mapped IPv6 addresses are given as plain IPv4).
public struct SocketEndpoint: Sendable, Hashable, CustomStringConvertible {
    public var ip: String
    public var port: Int

    public init(ip: String, port: Int) {
        self.ip = ip
        self.port = port
    }

    public var description: String { ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)" }
}

/// One getaddrinfo answer, ready for `Socket.connect`.
public struct ResolvedAddress: @unchecked Sendable {
    public var storage: sockaddr_storage
    public var length: socklen_t

    public init(storage: sockaddr_storage, length: socklen_t) {
        self.storage = storage
        self.length = length
    }

    public var family: Int32 { Int32(storage.ss_family) }
    public var endpoint: SocketEndpoint? { Socket.endpoint(storage) }
}

/// The outcome of one read or write.
public enum IOResult: Sendable, Equatable {
    /// Bytes moved (for writes possibly fewer than offered).
    case bytes(Int)
    case wouldBlock
    /// Read only: the peer shut down its writing side.
    case endOfFile
    case failed(errno: Int32)
}

public enum AcceptResult: Sendable, Equatable {
    case accepted(fd: Int32, peer: SocketEndpoint)
    case wouldBlock
    /// EMFILE, ENFILE, ENOBUFS or ENOMEM: the connection stays queued; back off instead of spinning.
    case outOfDescriptors(errno: Int32)
    case failed(errno: Int32)
}

public enum ConnectStart: Sendable, Equatable {
    case connected(fd: Int32)
    /// Wait for writable, then read `Socket.connectOutcome(fd)`.
    case inProgress(fd: Int32)
    case failed(errno: Int32)
}
