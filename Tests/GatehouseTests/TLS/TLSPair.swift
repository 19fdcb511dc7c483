import GatehouseTLS

/// A client and a server TLSConnection wired back to back in memory: ciphertext moves only when a test says.
struct TLSPair {
    let client: TLSConnection
    let server: TLSConnection

    /// Moves what `from` has for the socket into `to`, in pieces of at most `chunk` bytes; returns the count.
    @discardableResult
    static func move(from: TLSConnection, to: TLSConnection, chunk: Int = 64 * 1024) -> Int {
        var moved = 0
        var buffer = [UInt8](repeating: 0, count: chunk)
        while from.pendingCiphertextCount > 0 {
            let count = buffer.withUnsafeMutableBytes { from.takeCiphertext(into: $0) }
            guard count > 0 else { break }
            buffer.withUnsafeBytes { to.receiveCiphertext(UnsafeRawBufferPointer(rebasing: $0[..<count])) }
            moved += count
        }
        return moved
    }

    /// Runs both handshakes until both finish, one fails, or nothing moves. After a failure the alert is
    /// delivered, so the other side reports what it heard.
    func handshake() -> (client: TLSHandshakeState, server: TLSHandshakeState) {
        var clientState = client.advanceHandshake()
        var serverState = TLSHandshakeState.inProgress
        for _ in 0..<20 {
            let sent = Self.move(from: client, to: server)
            serverState = server.advanceHandshake()
            let answered = Self.move(from: server, to: client)
            clientState = client.advanceHandshake()
            if case .failed = clientState { Self.move(from: client, to: server); serverState = server.advanceHandshake(); break }
            if case .failed = serverState { break }
            if clientState == .complete && serverState == .complete { break }
            if sent == 0 && answered == 0 && client.pendingCiphertextCount == 0 { break }
        }
        return (clientState, serverState)
    }

    /// Sends `bytes` from one side and returns what the other read, moving ciphertext as the backlog fills.
    static func transfer(_ bytes: [UInt8], from sender: TLSConnection, to receiver: TLSConnection) -> (received: [UInt8], last: TLSReadResult) {
        var received: [UInt8] = []
        var offset = 0
        var last = TLSReadResult.needMoreCiphertext
        var buffer = [UInt8](repeating: 0, count: 32 * 1024)
        var rounds = 0
        while offset < bytes.count || sender.pendingCiphertextCount > 0, rounds < 10_000 {
            rounds += 1
            if offset < bytes.count {
                let result = bytes.withUnsafeBytes { sender.writePlaintext(UnsafeRawBufferPointer(rebasing: $0[offset...])) }
                guard case .accepted(let count) = result else { return (received, .failed(TLSFailure(reason: "write: \(result)"))) }
                offset += count
            }
            move(from: sender, to: receiver)
            last = drain(receiver, into: &received, buffer: &buffer)
            if case .failed = last { return (received, last) }
        }
        return (received, last)
    }

    /// Reads plaintext until the connection needs more ciphertext, closes or fails.
    static func drain(_ connection: TLSConnection, into received: inout [UInt8], buffer: inout [UInt8]) -> TLSReadResult {
        while true {
            let result = buffer.withUnsafeMutableBytes { connection.readPlaintext(into: $0) }
            guard case .bytes(let count) = result else { return result }
            received += buffer[..<count]
        }
    }

    static func readAll(_ connection: TLSConnection) -> (received: [UInt8], last: TLSReadResult) {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 32 * 1024)
        let last = drain(connection, into: &received, buffer: &buffer)
        return (received, last)
    }
}

extension TLSHandshakeState {
    var failureReason: String? {
        if case .failed(let failure) = self { return failure.reason }
        return nil
    }
}

extension TLSReadResult {
    var failureReason: String? {
        if case .failed(let failure) = self { return failure.reason }
        return nil
    }
}

extension TLSPair {
    init(server: TLSServerContext, client: TLSClientContext, serverName: String) throws {
        self.init(client: try TLSConnection(client: client, serverName: serverName), server: try TLSConnection(server: server))
    }
}
