import GatehouseDataPlane
import GatehouseLoop
import GatehouseTLS

#if canImport(Glibc)
import Glibc
#endif

/// How a data-plane socket carries a connection's bytes: as they are, or through TLS (OpenSSL over memory
/// BIOs: ciphertext moves between the socket and the TLS connection here, plaintext between it and the
/// connection machine's queues).
final class SocketTransport {
    private let tls: TLSConnection?
    /// Ciphertext the socket did not take yet.
    private var cipherOut = ByteQueue()
    /// What failed, for the log and the answer (never key material).
    private(set) var failure: TLSFailure?

    init(tls: TLSConnection? = nil) {
        self.tls = tls
    }

    var isTLS: Bool { tls != nil }
    var tlsConnection: TLSConnection? { tls }

    /// Ciphertext is waiting for the socket: write again when it is writable, even with no plaintext.
    var needsFlush: Bool {
        guard let tls else { return false }
        return !cipherOut.isEmpty || tls.pendingCiphertextCount > 0
    }

    /// Reads from the socket into `queue`. `drained`: the socket has nothing more for now (a short read, the
    /// edge-triggered rule, or EAGAIN). With TLS, `.bytes(0)` means ciphertext was taken but no plaintext
    /// came out yet (a handshake message).
    func read(_ fd: Int32, into queue: inout ByteQueue) -> (result: IOResult, drained: Bool) {
        guard let tls else {
            var result = IOResult.wouldBlock
            var offered = 0
            queue.fill(minimum: 4096) { buffer in
                offered = buffer.count
                result = Socket.read(fd, into: buffer)
                if case .bytes(let n) = result { return n }
                return 0
            }
            if case .bytes(let n) = result { return (result, n < offered) }
            return (result, true)
        }
        var socketResult = IOResult.wouldBlock
        var drained = true
        withUnsafeTemporaryAllocation(byteCount: 16 * 1024, alignment: 16) { buffer in
            socketResult = Socket.read(fd, into: buffer)
            if case .bytes(let n) = socketResult {
                drained = n < buffer.count
                tls.receiveCiphertext(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            }
        }
        if case .endOfFile = socketResult { tls.receiveEndOfCiphertext() }
        if case .failed = socketResult { return (socketResult, true) }
        var plaintext = 0
        var ended = false
        reading: while true {
            var step = TLSReadResult.needMoreCiphertext
            queue.fill(minimum: 4096) { buffer in
                step = tls.readPlaintext(into: buffer)
                if case .bytes(let n) = step { return n }
                return 0
            }
            switch step {
            case .bytes(let n):
                if n == 0 { break reading }
                plaintext += n
            case .needMoreCiphertext:
                break reading
            case .closed:
                ended = true
                break reading
            case .failed(let why):
                failure = why
                _ = flush(fd)  // the alert, if the socket takes it
                return (.failed(errno: EPROTO), true)
            }
        }
        if case .failed = flush(fd) { return (.failed(errno: EPIPE), true) }
        if plaintext > 0 { return (.bytes(plaintext), drained) }
        if ended { return (.endOfFile, true) }
        switch socketResult {
        case .endOfFile: return (.endOfFile, true)
        case .bytes: return (.bytes(0), drained)
        default: return (.wouldBlock, true)
        }
    }

    /// Writes from `queue` (consuming what was taken). `socketFull`: the socket refused bytes, so the next
    /// write waits for it to become writable (an edge will come); otherwise, with TLS, plaintext may be left
    /// only because OpenSSL's backlog was full, and writing goes on at once.
    func write(_ fd: Int32, from queue: inout ByteQueue) -> (result: IOResult, socketFull: Bool) {
        guard let tls else {
            let offered = queue.count
            let result = queue.withReadable { Socket.write(fd, $0) }
            switch result {
            case .bytes(let n):
                queue.consume(n)
                return (result, n < offered)
            case .wouldBlock, .endOfFile:
                return (result, true)
            case .failed:
                return (result, false)
            }
        }
        var accepted = 0
        if !queue.isEmpty {
            switch queue.withReadable({ tls.writePlaintext($0) }) {
            case .accepted(let n):
                queue.consume(n)
                accepted = n
            case .needMoreCiphertext:
                break  // the handshake is not done: reads drive it
            case .failed(let why):
                failure = why
                return (.failed(errno: EPROTO), false)
            }
        }
        switch flush(fd) {
        case .failed(let code):
            return (.failed(errno: code), false)
        case .wouldBlock:
            return (accepted > 0 ? .bytes(accepted) : .wouldBlock, true)
        default:
            // Everything encrypted so far is on the socket: progress, even when the queue was empty and only
            // ciphertext left over went. Plaintext that could not be taken (the handshake is not done) is not.
            if accepted > 0 || queue.isEmpty { return (.bytes(accepted), false) }
            return (.wouldBlock, false)
        }
    }

    /// Moves pending ciphertext to the socket: `.bytes` when all of it went, `.wouldBlock` when some waits.
    /// Ciphertext goes from OpenSSL to the socket through a stack buffer; only what the socket refuses is
    /// kept (so an idle TLS connection holds no buffer of its own).
    @discardableResult
    func flush(_ fd: Int32) -> IOResult {
        guard let tls else { return .bytes(0) }
        while !cipherOut.isEmpty {
            let result = cipherOut.withReadable { Socket.write(fd, $0) }
            switch result {
            case .bytes(let n):
                cipherOut.consume(n)
                if !cipherOut.isEmpty { return .wouldBlock }
                _ = cipherOut.releaseStorage()
            case .wouldBlock, .endOfFile:
                return .wouldBlock
            case .failed:
                return result
            }
        }
        var outcome = IOResult.bytes(0)
        while tls.pendingCiphertextCount > 0, case .bytes = outcome {
            withUnsafeTemporaryAllocation(byteCount: 16 * 1024, alignment: 16) { buffer in
                let count = tls.takeCiphertext(into: buffer)
                let taken = UnsafeRawBufferPointer(rebasing: buffer[0..<count])
                switch Socket.write(fd, taken) {
                case .bytes(let n):
                    if n < count {
                        cipherOut.append(UnsafeRawBufferPointer(rebasing: taken[n...]))
                        outcome = .wouldBlock
                    }
                case .wouldBlock, .endOfFile:
                    cipherOut.append(taken)
                    outcome = .wouldBlock
                case .failed(let code):
                    outcome = .failed(errno: code)
                }
            }
        }
        return outcome
    }

    /// Reads ciphertext while a client handshake is under way and advances it; its output is flushed. Reads
    /// on while a read fills its buffer: edge-triggered, the rest of a large flight (a long chain, a
    /// certificate with many names) would never be announced again, and the handshake would wait forever.
    func continueHandshake(_ fd: Int32) -> (state: TLSHandshakeState, socket: IOResult) {
        guard let tls else { return (.complete, .wouldBlock) }
        while true {
            var socketResult = IOResult.wouldBlock
            var full = false
            withUnsafeTemporaryAllocation(byteCount: 16 * 1024, alignment: 16) { buffer in
                socketResult = Socket.read(fd, into: buffer)
                if case .bytes(let n) = socketResult {
                    full = n == buffer.count
                    tls.receiveCiphertext(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
                }
            }
            if case .endOfFile = socketResult { tls.receiveEndOfCiphertext() }
            let state = advanceHandshake(fd)
            // Done, failed, or the socket is drained: a new edge comes with new bytes.
            if case .inProgress = state, full { continue }
            return (state, socketResult)
        }
    }

    /// Starts or continues a client handshake; its output is flushed.
    func advanceHandshake(_ fd: Int32) -> TLSHandshakeState {
        guard let tls else { return .complete }
        let state = tls.advanceHandshake()
        if case .failed(let why) = state { failure = why }
        _ = flush(fd)
        return state
    }

    /// Queues close_notify and sends what the socket takes now.
    func closeNotify(_ fd: Int32) {
        guard let tls else { return }
        tls.shutdown()
        _ = flush(fd)
    }
}
