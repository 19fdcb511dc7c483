/// Size limits for the HTTP/1.1 parser. Every limit is a parameter so the data plane takes them from its config.
public struct HTTP1Limits: Sendable, Equatable {
    /// The whole head: request or status line, fields and the blank line (→ 431 when exceeded).
    public var maxHeadSize: Int
    /// Field lines in one head, or in one trailer section (→ 431).
    public var maxFieldCount: Int
    /// The request-target (→ 414).
    public var maxTargetLength: Int
    /// One chunk's size (→ 413 for requests; responses → 502).
    public var maxChunkSize: Int
    /// A chunk-size line with its extensions, without CRLF (→ 400).
    public var maxChunkLineLength: Int
    /// The trailer section of a chunked body (→ 431).
    public var maxTrailerSize: Int

    public init(
        maxHeadSize: Int = 16 * 1024, maxFieldCount: Int = 100, maxTargetLength: Int = 8 * 1024,
        maxChunkSize: Int = 1 << 40, maxChunkLineLength: Int = 1024, maxTrailerSize: Int = 8 * 1024
    ) {
        self.maxHeadSize = maxHeadSize
        self.maxFieldCount = maxFieldCount
        self.maxTargetLength = maxTargetLength
        self.maxChunkSize = maxChunkSize
        self.maxChunkLineLength = maxChunkLineLength
        self.maxTrailerSize = maxTrailerSize
    }
}
