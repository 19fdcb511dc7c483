// The ceiling for any proxy built on SwiftNIO, measured by scripts/bench beside Gatehouse (not part of the
// gateway). Each client connection gets its own upstream connection on the same event loop, and:
//   bytes  relays raw bytes both ways: no HTTP parsing at all (what a TCP proxy costs on NIO);
//   http   parses and re-encodes every request and response with NIO's HTTP/1.1 codecs, heads passed
//          through unchanged: no routing, no auth, no header rewriting.
// Gatehouse cannot be faster than `http` without its own HTTP codec, nor faster than `bytes` at all.
//   gatehouse-relay-floor bytes|http LISTEN_PORT UPSTREAM_PORT [THREADS]
import NIOCore
import NIOHTTP1
import NIOPosix

/// Writes what one side reads to the other side, flushing once per read burst.
final class Forwarder<In, Out: Sendable>: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = In
    var peer: (any Channel)?
    var pending: [Out] = []
    var wrote = false
    let convert: @Sendable (In) -> Out

    init(convert: @escaping @Sendable (In) -> Out) { self.convert = convert }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = convert(unwrapInboundIn(data))
        if let peer {
            peer.write(part, promise: nil)
            wrote = true
        } else {
            pending.append(part)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if wrote { peer?.flush() }
        wrote = false
    }

    func channelInactive(context: ChannelHandlerContext) { peer?.close(promise: nil) }

    func attach(_ channel: any Channel) {
        peer = channel
        for part in pending { channel.write(part, promise: nil) }
        pending = []
        channel.flush()
    }
}

let arguments = CommandLine.arguments
guard arguments.count >= 4, let listenPort = Int(arguments[2]), let upstreamPort = Int(arguments[3]) else {
    print("usage: gatehouse-relay-floor bytes|http LISTEN_PORT UPSTREAM_PORT [THREADS]")
    exit(2)
}
let http = arguments[1] == "http"
let group = MultiThreadedEventLoopGroup(numberOfThreads: arguments.count > 4 ? Int(arguments[4]) ?? 1 : 1)

/// Sets up one client connection: its forwarder, then an upstream connection with the forwarder back.
@Sendable func relay<ClientIn, UpstreamOut: Sendable, UpstreamIn, ClientOut: Sendable>(
    client: any Channel, forward: @escaping @Sendable (ClientIn) -> UpstreamOut, back: @escaping @Sendable (UpstreamIn) -> ClientOut
) -> EventLoopFuture<Void> {
    let forwarder = Forwarder(convert: forward)
    do {
        let ops = client.pipeline.syncOperations
        if http { try ops.configureHTTPServerPipeline(withPipeliningAssistance: false, withErrorHandling: false) }
        try ops.addHandler(forwarder)
    } catch {
        return client.eventLoop.makeFailedFuture(error)
    }
    return ClientBootstrap(group: client.eventLoop)
        .channelOption(.tcpOption(.tcp_nodelay), value: 1)
        .channelInitializer { upstream in
            upstream.eventLoop.makeCompletedFuture {
                let ops = upstream.pipeline.syncOperations
                if http { try ops.addHTTPClientHandlers() }
                let backward = Forwarder(convert: back)
                backward.peer = client
                try ops.addHandler(backward)
            }
        }
        .connect(host: "127.0.0.1", port: upstreamPort)
        .map { forwarder.attach($0) }
}

@Sendable func requestPart(_ part: HTTPServerRequestPart) -> HTTPClientRequestPart {
    switch part {
    case .head(let head): .head(head)
    case .body(let body): .body(.byteBuffer(body))
    case .end(let trailers): .end(trailers)
    }
}

@Sendable func responsePart(_ part: HTTPClientResponsePart) -> HTTPServerResponsePart {
    switch part {
    case .head(let head): .head(head)
    case .body(let body): .body(.byteBuffer(body))
    case .end(let trailers): .end(trailers)
    }
}

let server = try ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 1024)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
    .childChannelInitializer { client in
        http
            ? relay(client: client, forward: requestPart, back: responsePart)
            : relay(client: client, forward: { (bytes: ByteBuffer) in bytes }, back: { (bytes: ByteBuffer) in bytes })
    }
    .bind(host: "127.0.0.1", port: listenPort).wait()
try server.closeFuture.wait()
