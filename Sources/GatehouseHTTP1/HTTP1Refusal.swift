/// Why a message was refused. Offsets (`at:`) are byte offsets into the buffer the parser was given.
/// For a request, `status` is the answer to send (then close); for a response from an upstream, any refusal
/// means 502 to the client and the upstream connection is not reused.
public enum HTTP1Refusal: Error, Sendable, Equatable {
    // Lines
    /// An LF not preceded by CR. Gatehouse requires CRLF everywhere (stricter than RFC 9112 §2.2 allows, and
    /// as strict as llhttp): a peer that splits lines on bare LF would see other lines than we do.
    case bareLineFeed(at: Int)
    /// A CR not followed by LF (RFC 9112 §2.2).
    case bareCarriageReturn(at: Int)
    /// The head (or a line in it) does not end within `maxHeadSize` bytes.
    case headTooLarge
    case tooManyFields
    /// A line starting with whitespace: obs-fold (RFC 9112 §5.2), or whitespace before the first field.
    case obsoleteLineFolding(at: Int)

    // Request line
    /// Not a method this gateway relays (the llhttp list of safe methods), or not a token.
    case unknownMethod
    /// A method token with lower-case letters: methods are case-sensitive, `post` is not POST (→ 400).
    case lowercaseMethod
    case invalidRequestLine(at: Int)
    case targetTooLong
    /// A byte outside the request-target grammar (controls, space, '#', non-ASCII).
    case invalidTarget(at: Int)
    /// `*` for a method other than OPTIONS, authority-form, a rootless or non-HTTP absolute form.
    case unsupportedTargetForm
    /// CONNECT: Gatehouse does not tunnel (answered 501, never read further).
    case connectNotSupported
    case invalidVersion(at: Int)
    /// A well-formed version other than HTTP/1.0 and HTTP/1.1 (→ 505).
    case unsupportedVersion

    // Field lines
    case invalidFieldName(at: Int)
    case whitespaceBeforeColon(at: Int)
    case missingColon(at: Int)
    case invalidFieldValue(at: Int)
    /// A name that reads as a framing or routing field once `_`/`.` are folded to `-` (`Transfer_Encoding`):
    /// some upstreams fold them, so it would carry framing past our parser.
    case lookAlikeFieldName(at: Int)

    // Field semantics
    case missingHost
    case duplicateHost
    case invalidHost
    case invalidContentLength
    case duplicateContentLength
    case duplicateTransferEncoding
    /// Any Transfer-Encoding other than exactly `chunked` (→ 501, RFC 9112 §6.1).
    case unsupportedTransferEncoding
    case contentLengthWithTransferEncoding
    /// Transfer-Encoding in an HTTP/1.0 message: faulty framing (RFC 9112 §6.1).
    case transferEncodingInHTTP10
    case invalidConnection
    /// An Expect other than `100-continue` (→ 417).
    case unsupportedExpectation

    // Status line (responses)
    case invalidStatusLine(at: Int)

    // Bodies
    case invalidChunkSize(at: Int)
    case chunkTooLarge
    case invalidChunkExtension(at: Int)
    case chunkLineTooLong
    /// Missing CRLF after chunk data.
    case invalidChunkEnd(at: Int)
    case trailerTooLarge
    /// Content-Length, Transfer-Encoding, Host or a look-alike in a trailer section (RFC 9110 §6.5.1).
    case forbiddenTrailerField
    /// The connection ended before the body's framing did.
    case truncatedBody

    /// The status to answer a client whose request was refused.
    public var status: Int {
        switch self {
        case .headTooLarge, .tooManyFields, .trailerTooLarge: return 431
        case .targetTooLong: return 414
        case .unknownMethod, .connectNotSupported, .unsupportedTransferEncoding: return 501
        case .unsupportedVersion: return 505
        case .unsupportedExpectation: return 417
        case .chunkTooLarge: return 413
        default: return 400
        }
    }
}
