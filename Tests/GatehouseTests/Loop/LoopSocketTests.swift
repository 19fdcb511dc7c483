import GatehouseLoop
import Glibc
import Testing

/// poll(2) with a timeout: the tests wait for readiness without an event loop.
private func waitFor(_ fd: Int32, _ events: Int32, milliseconds: Int32 = 2000) -> Bool {
    var entry = pollfd(fd: fd, events: Int16(events), revents: 0)
    return poll(&entry, 1, milliseconds) == 1
}

private func acceptOne(_ listener: Int32) throws -> (Int32, SocketEndpoint) {
    for _ in 0..<3 {
        _ = waitFor(listener, POLLIN)
        if case .accepted(let fd, let peer) = Socket.accept(listener) { return (fd, peer) }
    }
    throw SystemError("accept", errno: EAGAIN)
}

/// Connects to 127.0.0.1:port and waits until the connect completed.
private func connectLoopback(_ port: Int, host: String = "127.0.0.1") throws -> Int32 {
    let address = try #require(Socket.resolve(host: host, port: port).first)
    switch Socket.connect(address) {
    case .connected(let fd):
        return fd
    case .inProgress(let fd):
        #expect(waitFor(fd, POLLOUT))
        #expect(Socket.connectOutcome(fd) == 0)
        return fd
    case .failed(let failure):
        throw SystemError("connect", errno: failure)
    }
}

private func send(_ fd: Int32, _ text: String) -> IOResult {
    Array(text.utf8).withUnsafeBytes { Socket.write(fd, $0) }
}

/// Reads what is there (after waiting for it) as text.
private func receive(_ fd: Int32, waiting: Bool = true) -> (IOResult, String) {
    if waiting { _ = waitFor(fd, POLLIN) }
    var buffer = [UInt8](repeating: 0, count: 4096)
    let result = buffer.withUnsafeMutableBytes { Socket.read(fd, into: $0) }
    if case .bytes(let n) = result { return (result, String(decoding: buffer[0..<n], as: UTF8.self)) }
    return (result, "")
}

private func intOption(_ fd: Int32, _ level: Int32, _ name: Int32) -> Int32 {
    var value: Int32 = -1
    var length = socklen_t(MemoryLayout<Int32>.size)
    _ = getsockopt(fd, level, name, &value, &length)
    return value
}

@Suite("Loop: sockets over loopback")
struct LoopSocketTests {
    @Test func listenConnectAcceptExchangeAndHalfClose() throws {
        let listener = try Socket.listen(host: "127.0.0.1", port: 0, reusePort: false)
        defer { Socket.close(listener) }
        let local = try #require(Socket.localAddress(listener))
        #expect(local.ip == "127.0.0.1" && local.port > 0)
        #expect(Socket.accept(listener) == .wouldBlock, "non-blocking: nobody is connecting yet")

        let client = try connectLoopback(local.port)
        defer { Socket.close(client) }
        let (server, peer) = try acceptOne(listener)
        defer { Socket.close(server) }
        #expect(peer == Socket.localAddress(client))
        #expect(Socket.peerAddress(server) == peer)
        #expect(Socket.peerAddress(client) == local)
        #expect(fcntl(server, F_GETFL) & O_NONBLOCK != 0, "accepted sockets are non-blocking")
        #expect(fcntl(server, F_GETFD) & FD_CLOEXEC != 0, "and close-on-exec")
        #expect(fcntl(client, F_GETFD) & FD_CLOEXEC != 0)
        #expect(intOption(client, Int32(IPPROTO_TCP), TCP_NODELAY) != 0)
        #expect(intOption(server, Int32(IPPROTO_TCP), TCP_NODELAY) != 0, "inherited from the listener")

        #expect(receive(server, waiting: false).0 == .wouldBlock)
        #expect(send(client, "ping") == .bytes(4))
        #expect(receive(server) == (.bytes(4), "ping"))

        // Half-close: the server sees end of file, and can still answer.
        #expect(Socket.shutdownWrite(client) == 0)
        #expect(receive(server).0 == .endOfFile)
        #expect(send(server, "pong") == .bytes(4))
        #expect(receive(client) == (.bytes(4), "pong"))
        // Shut down, not closed: the deferred close closes it (closed here as well, the second close could hit
        // a descriptor a test running in parallel had just been given that number for).
        _ = Glibc.shutdown(server, Int32(SHUT_RDWR))
        #expect(receive(client).0 == .endOfFile)
    }

    @Test func writevGathersBuffersAndWritesToAGonePeerFailWithoutSIGPIPE() throws {
        let listener = try Socket.listen(host: "127.0.0.1", port: 0, reusePort: false)
        defer { Socket.close(listener) }
        let client = try connectLoopback(Socket.localAddress(listener)!.port)
        let (server, _) = try acceptOne(listener)
        defer { Socket.close(server) }
        let parts = ["GET / HTTP/1.1\r\n", "Host: a\r\n", "\r\n"].map { Array($0.utf8) }
        let written = parts[0].withUnsafeBytes { a in
            parts[1].withUnsafeBytes { b in parts[2].withUnsafeBytes { c in Socket.writev(client, [a, b, c]) } }
        }
        #expect(written == .bytes(27))
        #expect(receive(server) == (.bytes(27), "GET / HTTP/1.1\r\nHost: a\r\n\r\n"))

        // The peer is gone. SIGPIPE is blocked on this thread, so a write that raised it would leave it pending
        // here (unless the process ignores SIGPIPE: then the control write below shows nothing either).
        Socket.close(client)
        var pipe = sigset_t()
        sigemptyset(&pipe)
        sigaddset(&pipe, SIGPIPE)
        var previous = sigset_t()
        pthread_sigmask(SIG_BLOCK, &pipe, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        func sigpipePending() -> Bool {
            var pending = sigset_t()
            sigpending(&pending)
            guard sigismember(&pending, SIGPIPE) == 1 else { return false }
            var zero = timespec()
            _ = sigtimedwait(&pipe, nil, &zero)  // consume it
            return true
        }
        var outcome = IOResult.bytes(0)
        for _ in 0..<50 {
            outcome = send(server, "after close")
            if case .failed = outcome { break }
            usleep(2_000)
        }
        #expect(outcome == .failed(errno: EPIPE) || outcome == .failed(errno: ECONNRESET))
        let one = Array("x".utf8)
        let gathered = one.withUnsafeBytes { Socket.writev(server, [$0, $0]) }
        #expect(gathered == .failed(errno: EPIPE))
        #expect(!sigpipePending(), "MSG_NOSIGNAL: no SIGPIPE")
        // Control: a plain write(2) does raise it, so the check above can fail.
        var byte: UInt8 = 0
        #expect(Glibc.write(server, &byte, 1) == -1)
        var disposition = sigaction()
        sigaction(SIGPIPE, nil, &disposition)
        let ignored = withUnsafeBytes(of: disposition.__sigaction_handler) { $0.load(as: Int.self) } == 1  // SIG_IGN
        if !ignored {
            #expect(sigpipePending(), "write(2) without MSG_NOSIGNAL raised SIGPIPE")
        }
    }

    @Test func reusePortListenersShareThePortAndBothAccept() throws {
        let first = try Socket.listen(host: "127.0.0.1", port: 0, reusePort: true)
        defer { Socket.close(first) }
        let port = Socket.localAddress(first)!.port
        // Without SO_REUSEPORT on both, the second bind is refused.
        #expect(throws: SystemError.self) { try Socket.listen(host: "127.0.0.1", port: port, reusePort: false) }
        let second = try Socket.listen(host: "127.0.0.1", port: port, reusePort: true)
        defer { Socket.close(second) }

        var clients: [Int32] = []
        defer { clients.forEach(Socket.close) }
        for _ in 0..<32 { clients.append(try connectLoopback(port)) }
        // Handshakes finish in their own time on a loaded machine: accept until all 32 arrived or 5 s passed.
        var acceptedBy = [0, 0]
        let deadline = ContinuousClock.now + .seconds(5)
        while acceptedBy[0] + acceptedBy[1] < 32, ContinuousClock.now < deadline {
            for (index, listener) in [first, second].enumerated() {
                while case .accepted(let fd, _) = Socket.accept(listener) {
                    acceptedBy[index] += 1
                    Socket.close(fd)
                }
            }
            if acceptedBy[0] + acceptedBy[1] < 32 { usleep(5_000) }
        }
        // The kernel spreads connections by hash: all 32 on one listener has odds of 2^-31.
        #expect(acceptedBy[0] + acceptedBy[1] == 32)
        #expect(acceptedBy[0] > 0 && acceptedBy[1] > 0, "\(acceptedBy)")
    }

    @Test func ipv6LoopbackAndNames() throws {
        guard let listener = try? Socket.listen(host: "::1", port: 0, reusePort: false) else {
            return  // no IPv6 on this machine's loopback
        }
        defer { Socket.close(listener) }
        let local = try #require(Socket.localAddress(listener))
        #expect(local.ip == "::1")
        #expect(local.description == "[::1]:\(local.port)")
        let client = try connectLoopback(local.port, host: "::1")
        defer { Socket.close(client) }
        let (server, peer) = try acceptOne(listener)
        defer { Socket.close(server) }
        #expect(peer.ip == "::1")

        // A name resolves (through getaddrinfo) to something listen can bind.
        let named = try Socket.listen(host: "localhost", port: 0, reusePort: false)
        Socket.close(named)
    }

    @Test func refusedConnectAndBadInput() throws {
        // A port nobody listens on: take one, then close it.
        let probe = try Socket.listen(host: "127.0.0.1", port: 0, reusePort: false)
        let port = Socket.localAddress(probe)!.port
        Socket.close(probe)
        let address = try #require(Socket.resolve(host: "127.0.0.1", port: port).first)
        #expect(address.endpoint == SocketEndpoint(ip: "127.0.0.1", port: port))
        switch Socket.connect(address) {
        case .failed(let failure):
            #expect(failure == ECONNREFUSED)
        case .inProgress(let fd), .connected(let fd):
            _ = waitFor(fd, POLLOUT)
            #expect(Socket.connectOutcome(fd) == ECONNREFUSED)
            Socket.close(fd)
        }
        #expect(Socket.resolve(host: "127.0.0.1", port: 70000).isEmpty)
        #expect(Socket.resolve(host: "no such host.invalid", port: 80).isEmpty)
        #expect(throws: SystemError.self) { try Socket.listen(host: "127.0.0.1", port: -1, reusePort: false) }
        #expect(throws: SystemError.self) { try Socket.listen(host: "256.1.1.1", port: 0, reusePort: false) }
        #expect(Socket.accept(-1) == .failed(errno: EBADF))
        var byte: UInt8 = 0
        #expect(withUnsafeMutableBytes(of: &byte) { Socket.read(-1, into: $0) } == .failed(errno: EBADF))
    }
}
