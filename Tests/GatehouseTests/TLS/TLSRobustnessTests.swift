import GatehouseTLS
import Testing

@Suite("GatehouseTLS: bad and partial ciphertext")
struct TLSRobustnessTests {
    let pki: TLSTestPKI
    let serverContext: TLSServerContext
    let clientContext: TLSClientContext

    init() throws {
        pki = try TLSTestPKI.get()
        serverContext = try TLSServerContext(certificates: [pki.app])
        clientContext = try TLSClientContext(trustRootsPEMPath: pki.caFile)
    }

    func feed(_ bytes: [UInt8], to connection: TLSConnection) -> TLSReadResult {
        bytes.withUnsafeBytes { connection.receiveCiphertext($0) }
        return TLSPair.readAll(connection).last
    }

    @Test func plainHTTPOnTheTLSPortFails() throws {
        let server = try TLSConnection(server: serverContext)
        let result = feed(Array("GET / HTTP/1.1\r\nHost: app.example.test\r\n\r\n".utf8), to: server)
        #expect(result.failureReason == "http request")
        #expect(server.pendingCiphertextCount == 0 || server.pendingCiphertextCount < 64)  // at most an alert
    }

    @Test func garbageFailsAndNeverCrashes() throws {
        let handshakeRecord: [UInt8] = [0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x00]
        #expect(feed([0x17, 0x03, 0x03, 0x00, 0x10] + [UInt8](repeating: 0xAA, count: 16), to: try TLSConnection(server: serverContext))
            .failureReason != nil)
        #expect(feed(handshakeRecord, to: try TLSConnection(server: serverContext)).failureReason != nil)
        var generator = SystemRandomNumberGenerator()
        for round in 0..<300 {
            let server = try TLSConnection(server: serverContext)
            let client = try TLSConnection(client: clientContext, serverName: "app.example.test")
            let count = Int.random(in: 1...600, using: &generator)
            var bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if round.isMultiple(of: 3) { bytes[0] = 0x16; if count > 2 { bytes[1] = 0x03; bytes[2] = 0x01 } }  // look like a handshake
            for target in [server, client] {
                if target === client { _ = client.advanceHandshake() }
                let result = feed(bytes, to: target)
                switch result {
                case .failed(let failure): #expect(!failure.reason.isEmpty)
                case .needMoreCiphertext: break  // a plausible record header waiting for its body
                case .bytes, .closed: Issue.record("garbage read as \(result)")
                }
            }
        }
    }

    @Test func tamperedRecordAfterTheHandshakeFails() throws {
        let pair = try TLSPair(server: serverContext, client: clientContext, serverName: "app.example.test")
        #expect(pair.handshake() == (.complete, .complete))
        _ = Array("secret".utf8).withUnsafeBytes { pair.client.writePlaintext($0) }
        var record = [UInt8](repeating: 0, count: pair.client.pendingCiphertextCount)
        _ = record.withUnsafeMutableBytes { pair.client.takeCiphertext(into: $0) }
        record[record.count - 1] ^= 0x01
        #expect(feed(record, to: pair.server).failureReason == "decryption failed or bad record mac")
    }

    @Test func truncatedRecordsWaitForTheRest() throws {
        let pair = try TLSPair(server: serverContext, client: clientContext, serverName: "app.example.test")
        // The whole handshake, one byte at a time: every prefix asks for more, none fails.
        var rounds = 0
        while !(pair.client.isHandshakeComplete && pair.server.isHandshakeComplete), rounds < 50 {
            rounds += 1
            _ = pair.client.advanceHandshake()
            for (from, to) in [(pair.client, pair.server), (pair.server, pair.client)] {
                var byte: [UInt8] = [0]
                while byte.withUnsafeMutableBytes({ from.takeCiphertext(into: $0) }) == 1 {
                    byte.withUnsafeBytes { to.receiveCiphertext($0) }
                    let state = to.advanceHandshake()
                    #expect(state.failureReason == nil)
                }
            }
        }
        #expect(pair.client.isHandshakeComplete && pair.server.isHandshakeComplete)
        let message = Array("split across every byte".utf8)
        _ = message.withUnsafeBytes { pair.client.writePlaintext($0) }
        var record = [UInt8](repeating: 0, count: pair.client.pendingCiphertextCount)
        _ = record.withUnsafeMutableBytes { pair.client.takeCiphertext(into: $0) }
        for index in 0..<(record.count - 1) {
            #expect(feed([record[index]], to: pair.server) == .needMoreCiphertext)
        }
        #expect(pair.server.unprocessedCiphertextCount == 0)  // OpenSSL holds the partial record itself
        let waiting = pair.client.unprocessedCiphertextCount  // the server's session tickets, unread so far
        record.withUnsafeBytes { pair.client.receiveCiphertext($0) }
        #expect(pair.client.unprocessedCiphertextCount == waiting + record.count)
        #expect(TLSPair.readAll(pair.client).last.failureReason != nil)  // its own record reflected back: refused
        record.withUnsafeBytes { pair.server.receiveCiphertext(UnsafeRawBufferPointer(rebasing: $0[(record.count - 1)...])) }
        let read = TLSPair.readAll(pair.server)
        #expect(read.received == message && read.last == .needMoreCiphertext)
    }
}
