import Foundation
import GatehouseHTTP1
import NIOCore
import NIOEmbedded
import NIOHTTP1

/// What a peer parser made of an input (only its first request is looked at).
enum PeerVerdict: Equatable, CustomStringConvertible {
    case accept(ParsedRequest)
    case refuse(String)
    case incomplete

    var letter: Character {
        switch self {
        case .accept: return "A"
        case .refuse: return "R"
        case .incomplete: return "I"
        }
    }

    var request: ParsedRequest? {
        if case .accept(let r) = self { return r }
        return nil
    }

    var description: String {
        switch self {
        case .accept(let r): return "accept \(r)"
        case .refuse(let e): return "refuse \(e)"
        case .incomplete: return "incomplete"
        }
    }

    init(_ outcome: RequestOutcome) {
        switch outcome {
        case .accepted(let r): self = .accept(r)
        case .refused(let r): self = .refuse("\(r)")
        case .incomplete: self = .incomplete
        }
    }
}

/// llhttp 9 in its default (strict) mode, through NIOHTTP1's HTTPRequestDecoder on an EmbeddedChannel.
func llhttpParse(_ input: [UInt8]) -> PeerVerdict {
    let channel = EmbeddedChannel(handler: ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))
    defer { _ = try? channel.finish() }
    var failure: (any Error)?
    do {
        try channel.writeInbound(channel.allocator.buffer(bytes: input))
    } catch {
        failure = error
    }
    var request: ParsedRequest?
    while let part = try? channel.readInbound(as: HTTPServerRequestPart.self) {
        switch part {
        case .head(let head):
            request = ParsedRequest(
                method: latin1(head.method.rawValue.utf8), target: latin1(head.uri.utf8),
                headers: head.headers.map { .init(name: latin1($0.name.utf8), value: latin1(trimmingTrailingOWS($0.value.utf8))) },
                body: [])
        case .body(var buffer):
            request?.body += buffer.readBytes(length: buffer.readableBytes) ?? []
        case .end:
            if let request { return .accept(request) }
        }
    }
    if let failure { return .refuse("\(failure)") }
    return .incomplete
}

/// llhttp hands over a field value with its trailing whitespace; RFC 9110 §5.5 says it is not part of the value
/// (and Gatehouse and h11 drop it), so it is trimmed before comparing. This is how `Connection: close ` slips
/// past a handler that compares NIO's value with "close" (issue 11); GatehouseHTTP1 honours it.
func trimmingTrailingOWS(_ value: String.UTF8View) -> [UInt8] {
    var bytes = Array(value)
    while let last = bytes.last, last == 0x20 || last == 0x09 { bytes.removeLast() }
    return bytes
}

/// h11 (Debian's python3-h11, installed by scripts/test.sh), all inputs in one run of the peer script.
func h11Parse(_ inputs: [[UInt8]]) throws -> [PeerVerdict] {
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Vectors/http1/h11_peer.py")
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
    process.arguments = [script.path]
    let input = Pipe()
    let output = Pipe()
    process.standardInput = input
    process.standardOutput = output
    try process.run()
    let text = inputs.map { $0.map { String(format: "%02x", $0) }.joined() }.joined(separator: "\n") + "\n"
    // Write on another thread: the peer answers line by line, so a large corpus would fill both pipes. A
    // peer that dies early (h11 missing) fails on its exit status below, rather than trapping on EPIPE here.
    let writer = Thread {
        try? input.fileHandleForWriting.write(contentsOf: Data(text.utf8))
        try? input.fileHandleForWriting.close()
    }
    writer.start()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { throw PeerError.failed("h11 peer exited \(process.terminationStatus)") }
    let lines = data.split(separator: UInt8(ascii: "\n"))
    guard lines.count == inputs.count else { throw PeerError.failed("h11 peer answered \(lines.count) of \(inputs.count)") }
    return try lines.map { line in
        guard let object = try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any],
              let verdict = object["verdict"] as? String
        else { throw PeerError.failed("bad h11 line") }
        switch verdict {
        case "accept":
            let headers = (object["headers"] as? [[String]] ?? []).map { ParsedRequest.Header(name: $0[0], value: $0[1]) }
            let hex = Array((object["body"] as? String ?? "").utf8)
            let body = stride(from: 0, to: hex.count, by: 2).map { UInt8(String(decoding: hex[$0..<($0 + 2)], as: UTF8.self), radix: 16)! }
            return .accept(ParsedRequest(
                method: object["method"] as? String ?? "", target: object["target"] as? String ?? "",
                headers: headers, body: body))
        case "refuse": return .refuse(object["error"] as? String ?? "")
        default: return .incomplete
        }
    }
}

enum PeerError: Error { case failed(String) }
