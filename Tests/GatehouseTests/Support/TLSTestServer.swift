import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// Certificates made at test time by the `openssl` command (nothing private is committed): a test CA, leaves it
/// signed for `localhost` and for another name, and a self-signed `localhost` certificate no one trusts.
struct TestCertificates {
    let directory: URL
    var caFile: String { path("ca.pem") }
    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    enum Leaf: String {
        case trustedLocalhost = "localhost"
        case trustedWrongName = "wrong-name"
        case selfSignedLocalhost = "self-signed"
    }

    func certificate(_ leaf: Leaf) -> String { path(leaf.rawValue + ".pem") }
    func key(_ leaf: Leaf) -> String { path(leaf.rawValue + ".key") }

    /// Made once per test run.
    static let shared: Result<TestCertificates, any Error> = Result { try TestCertificates.make() }

    private static func make() throws -> TestCertificates {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-certs-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let certs = TestCertificates(directory: directory)
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        try run(["req", "-x509"] + ec + ["-keyout", certs.path("ca.key"), "-out", certs.caFile, "-days", "2",
                 "-subj", "/CN=Gatehouse Test CA", "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        for (leaf, name) in [(Leaf.trustedLocalhost, "localhost"), (.trustedWrongName, "wrong.example")] {
            let ext = certs.path(leaf.rawValue + ".ext")
            try "subjectAltName=DNS:\(name)\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n".write(toFile: ext, atomically: true, encoding: .utf8)
            try run(["req"] + ec + ["-keyout", certs.key(leaf), "-out", certs.path(leaf.rawValue + ".csr"), "-subj", "/CN=\(name)"])
            try run(["x509", "-req", "-in", certs.path(leaf.rawValue + ".csr"), "-CA", certs.caFile, "-CAkey", certs.path("ca.key"),
                     "-set_serial", String(UInt64.random(in: 1...UInt64(Int64.max))), "-out", certs.certificate(leaf), "-days", "2", "-extfile", ext])
        }
        try run(["req", "-x509"] + ec + ["-keyout", certs.key(.selfSignedLocalhost), "-out", certs.certificate(.selfSignedLocalhost),
                 "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"])
        return certs
    }

    private static func run(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw StartFailure(description: "openssl \(arguments.joined(separator: " ")) failed: \(String(decoding: message, as: UTF8.self))")
        }
    }
}

/// An HTTPS upstream on 127.0.0.1. It records every decrypted byte it receives, so a test can tell that a
/// gateway which refused the certificate never sent the request (nor its `Clerk-Secret-Key`).
final class TLSTestUpstream: Sendable {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let channel: any Channel
    /// TCP connections accepted (the gateway did try).
    let connections = Atomic<Int>(0)
    /// Plain-text bytes received after a completed handshake.
    let received = Mutex<[UInt8]>([])
    private let stopOnce = StopOnce()

    var port: Int { channel.localAddress!.port! }
    var receivedText: String { String(decoding: received.withLock { $0 }, as: UTF8.self) }

    init(certificate: String, key: String) async throws {
        let configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
        let context = try NIOSSLContext(configuration: configuration)
        let box = TLSUpstreamBox()
        channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    box.upstream?.connections.wrappingAdd(1, ordering: .relaxed)
                    let ops = channel.pipeline.syncOperations
                    try ops.addHandler(NIOSSLServerHandler(context: context))
                    try ops.addHandler(PlainTextRecorder(box: box))
                    try ops.configureHTTPServerPipeline()
                    try ops.addHandler(TLSUpstreamResponder())
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        box.upstream = self
        ServerRegistry.register { [self] in await self.stop() }
    }

    func stop() async {
        await stopOnce.run { [channel, group] in
            try? await channel.close()
            try? await group.shutdownGracefully()
        }
    }
}

final class TLSUpstreamBox: @unchecked Sendable {
    weak var upstream: TLSTestUpstream?
}

/// Sits right after TLS: sees the decrypted bytes before HTTP parsing.
final class PlainTextRecorder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    let box: TLSUpstreamBox
    init(box: TLSUpstreamBox) { self.box = box }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = Array(buffer: unwrapInboundIn(data))
        box.upstream?.received.withLock { $0.append(contentsOf: bytes) }
        context.fireChannelRead(data)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// Answers every request with `tls ok <target>`.
final class TLSUpstreamResponder: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private var target = ""

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): target = head.uri
        case .body: break
        case .end:
            let body = "tls ok \(target)"
            let headers = HTTPHeaders([("Content-Type", "text/plain"), ("Content-Length", String(body.utf8.count))])
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}
