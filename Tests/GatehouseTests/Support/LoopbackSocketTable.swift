import Foundation
import GatehouseServer

/// Loopback IPv4 TCP sockets as /proc/net/tcp shows them: for tests that must know bytes have reached a
/// socket, not only left the sender. Loopback delivers in a softirq, which a loaded machine defers to
/// ksoftirqd, so a returned `send` does not mean the bytes are in the receiver's queue yet.
enum LoopbackSocketTable {
    /// Bytes received and not yet read (`rx_queue`) by the established socket from `local` to `remote`
    /// (ports), or nil when there is none.
    static func unread(local: Int, remote: Int) -> Int? {
        guard let table = ProcFile.read("/proc/net/tcp") else { return nil }  // whole: a busy suite has thousands of sockets
        let localEnd = String(format: ":%04X", local), remoteEnd = String(format: ":%04X", remote)
        // "sl local_address rem_address st tx_queue:rx_queue ..."; state 01 is ESTABLISHED.
        for line in table.split(separator: "\n").dropFirst() {
            let columns = line.split(separator: " ")
            guard columns.count > 4, columns[1].hasSuffix(localEnd), columns[2].hasSuffix(remoteEnd), columns[3] == "01",
                let queues = columns[4].split(separator: ":").last, let unread = Int(queues, radix: 16)
            else { continue }
            return unread
        }
        return nil
    }

    /// The port of an IPv4 socket's own end (`peer` false) or its peer's.
    static func port(of fd: Int32, peer: Bool) -> Int? {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { peer ? getpeername(fd, $0, &length) : getsockname(fd, $0, &length) }
        }
        guard named == 0, address.sin_family == sa_family_t(AF_INET) else { return nil }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
