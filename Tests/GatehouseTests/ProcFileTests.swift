import Foundation
import GatehouseServer
import Testing

/// /proc files are read whole, past the first page the kernel hands out (Foundation's reading stops there).
@Suite struct ProcFileTests {
    @Test func readsAllOfProcNetTCPWithManySocketsOpen() throws {
        // 120 listeners: /proc/net/tcp then holds at least 120 lines of ~150 bytes, over four pages.
        var listeners: [(fd: Int32, port: Int)] = []
        defer { for listener in listeners { close(listener.fd) } }
        for _ in 0..<120 { listeners.append(try LoopbackListener.open(backlog: 1)) }
        let table = try #require(ProcFile.read("/proc/net/tcp"))
        #expect(table.utf8.count > 4 * 4096)
        let lines = table.split(separator: "\n")
        for listener in listeners {
            let local = String(format: "0100007F:%04X", listener.port)
            #expect(lines.contains { $0.split(separator: " ").dropFirst().first == Substring(local) }, "port \(listener.port) missing")
        }
    }

    @Test func aMissingFileIsNil() {
        #expect(ProcFile.read("/proc/self/no-such-file") == nil)
    }

    @Test func readsProcStatWithItsBootTime() throws {
        let stat = try #require(ProcFile.read("/proc/stat"))
        #expect(stat.split(separator: "\n").contains { $0.hasPrefix("btime ") })
    }
}
