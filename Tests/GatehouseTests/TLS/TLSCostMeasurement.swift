import Foundation
#if canImport(Glibc)
import Glibc
#endif
import GatehouseTLS
import Testing

/// Figures, not checks: in-memory handshake cost (ECDSA P-256, TLS 1.3, X25519) and bulk encryption rate.
/// Off by default (CPU-heavy on a shared machine): GATEHOUSE_TLS_MEASURE=1 to run.
@Suite("GatehouseTLS: cost measurement", .serialized, .enabled(if: ProcessInfo.processInfo.environment["GATEHOUSE_TLS_MEASURE"] == "1"))
struct TLSCostMeasurement {
    @Test func handshakeAndBulkCost() throws {
        let pki = try TLSTestPKI.get()
        let server = try TLSServerContext(certificates: [pki.app])
        let client = try TLSClientContext(trustRootsPEMPath: pki.caFile)
        let clock = ContinuousClock()
        let handshakes = 300
        var serverTime = Duration.zero
        let start = clock.now
        for _ in 0..<handshakes {
            let pair = try TLSPair(server: server, client: client, serverName: "app.example.test")
            _ = pair.client.advanceHandshake()
            while !(pair.client.isHandshakeComplete && pair.server.isHandshakeComplete) {
                TLSPair.move(from: pair.client, to: pair.server)
                serverTime += clock.measure { _ = pair.server.advanceHandshake() }
                TLSPair.move(from: pair.server, to: pair.client)
                if case .failed(let failure) = pair.client.advanceHandshake() { Issue.record("\(failure)"); return }
            }
        }
        let total = clock.now - start
        let perServer = serverTime / handshakes
        let perBoth = total / handshakes
        print("TLS 1.3 full handshake, ECDSA P-256: server side \(Int(seconds(perServer) * 1e6)) µs each (\(Int(1 / seconds(perServer)))/s on one core); both sides and pumping \(Int(seconds(perBoth) * 1e6)) µs")

        let pair = try TLSPair(server: server, client: client, serverName: "app.example.test")
        #expect(pair.handshake() == (.complete, .complete))
        let chunk = [UInt8](repeating: 0x5A, count: 64 * 1024)
        var sink = [UInt8](repeating: 0, count: 256 * 1024)
        let volume = 256 << 20
        var encrypted = 0
        let encryptTime = clock.measure {
            while encrypted < volume {
                guard case .accepted(let count) = chunk.withUnsafeBytes({ pair.server.writePlaintext($0) }) else { return }
                encrypted += count
                while sink.withUnsafeMutableBytes({ pair.server.takeCiphertext(into: $0) }) > 0 {}
            }
        }
        // Resident memory per idle server connection after its handshake (clients freed).
        let before = residentBytes()
        var idle: [TLSConnection] = []
        for _ in 0..<1000 {
            let pair = try TLSPair(server: server, client: client, serverName: "app.example.test")
            _ = pair.handshake()
            _ = TLSPair.readAll(pair.server)
            idle.append(pair.server)
        }
        let perConnection = (residentBytes() - before) / idle.count
        print("idle server TLSConnection after handshake: ~\(perConnection) bytes resident each (1000 held)")
        print("bulk encrypt (\(pair.server.cipherSuite ?? "?")): \(Int(Double(encrypted) / seconds(encryptTime) / 1_048_576)) MiB/s")
    }

    /// VmRSS from /proc/self/statm (resident pages).
    private func residentBytes() -> Int {
        let fields = (try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8))?.split(separator: " ") ?? []
        return fields.count > 1 ? (Int(fields[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE))) : 0
    }

    private func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
