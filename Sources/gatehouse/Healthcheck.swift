import ArgumentParser
import Foundation

/// `gatehouse healthcheck`: GET a health URL on the admin listener and exit 0 on 200, 1 otherwise, so a
/// container HEALTHCHECK needs no curl or shell in the image (the scratch image has neither).
struct Healthcheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Exit 0 when the admin listener answers 200 (for container HEALTHCHECKs), else 1.")

    @Option(name: .long, help: "http://HOST:PORT/PATH on the admin listener.")
    var url: String = "http://127.0.0.1:9090/readyz"

    @Option(name: .long, help: "Seconds to wait for the answer.")
    var timeout: Int = 3

    func run() throws {
        guard let target = HealthTarget(url) else { throw ValidationError("--url must look like http://127.0.0.1:9090/readyz") }
        let status = HealthProbe.status(of: target, timeout: timeout)
        guard status == 200 else {
            printError("healthcheck \(url): " + (status.map { "status \($0)" } ?? "no answer"))
            throw ExitCode(1)
        }
    }
}

struct HealthTarget {
    let host: String
    let port: String
    let path: String

    init?(_ url: String) {
        guard url.hasPrefix("http://") else { return nil }
        let rest = url.dropFirst(7)
        let authority = rest.prefix { $0 != "/" }
        path = rest.count > authority.count ? String(rest.dropFirst(authority.count)) : "/"
        guard let colon = authority.lastIndex(of: ":"), !authority[..<colon].isEmpty, let port = Int(authority[authority.index(after: colon)...]),
            (1...65535).contains(port), !path.contains(" "), !path.contains("\r"), !path.contains("\n")
        else { return nil }
        host = String(authority[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        self.port = String(port)
    }
}

enum HealthProbe {
    /// The status code of `GET path`, or nil when nothing valid came back in time.
    static func status(of target: HealthTarget, timeout: Int) -> Int? {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(target.host, target.port, &hints, &list) == 0, let first = list else { return nil }
        defer { freeaddrinfo(list) }
        let fd = socket(first.pointee.ai_family, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var limit = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        guard connect(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0 else { return nil }
        let request = "GET \(target.path) HTTP/1.1\r\nHost: \(target.host)\r\nConnection: close\r\n\r\n"
        guard request.utf8CString.withUnsafeBufferPointer({ send(fd, $0.baseAddress, $0.count - 1, Int32(MSG_NOSIGNAL)) }) == request.utf8.count else { return nil }
        var buffer = [UInt8](repeating: 0, count: 64)
        var received: [UInt8] = []
        while received.count < 12 {
            let count = recv(fd, &buffer, buffer.count, 0)
            guard count > 0 else { break }
            received += buffer[..<count]
        }
        let line = String(decoding: received, as: UTF8.self)
        guard line.hasPrefix("HTTP/1."), line.count >= 12 else { return nil }
        return Int(line.dropFirst(9).prefix(3))
    }
}
