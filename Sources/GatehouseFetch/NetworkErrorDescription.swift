import AsyncHTTPClient
import NIOCore
import NIOPosix
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A network failure in one short, balanced phrase for logs and `/readyz` ("connection refused by
/// 127.0.0.1:1 (errno 111)"). NIO's own descriptions nest a reason inside another and come out garbled
/// (`connection reset (error set): Connection refused) (errno: 111)`).
enum NetworkErrorDescription {
    static func describe(_ error: any Error) -> String {
        switch error {
        case let io as IOError:
            return posixMessage(io.errnoCode)
        case let connection as NIOConnectionError:
            let causes = connection.connectionErrors.map { failure in
                "\(describe(failure.error)) at \(failure.target.ipAddress ?? "?"):\(failure.target.port ?? connection.port)"
            }
            if let dns = connection.dnsAAAAError ?? connection.dnsAError, causes.isEmpty {
                return "cannot resolve \(connection.host) (\(describe(dns)))"
            }
            return causes.isEmpty ? "cannot connect to \(connection.host):\(connection.port)" : causes.joined(separator: "; ")
        case let client as HTTPClientError:
            return describe(client)
        case let channel as ChannelError:
            return "\(channel)"
        default:
            return "\(error)"
        }
    }

    private static func describe(_ error: HTTPClientError) -> String {
        switch error {
        case .connectTimeout: return "connect timed out"
        case .deadlineExceeded, .readTimeout: return "timed out"
        case .remoteConnectionClosed: return "the server closed the connection"
        case .tlsHandshakeTimeout: return "TLS handshake timed out"
        default: return "\(error)"
        }
    }

    private static func posixMessage(_ code: Int32) -> String {
        guard let text = strerror(code) else { return "errno \(code)" }
        return String(cString: text) + " (errno \(code))"
    }
}
