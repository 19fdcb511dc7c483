import GatehouseCore
import GatehouseHTTP1

/// Writes a response Gatehouse makes itself (a denial, a redirect, a refusal, a forward-auth answer).
enum LocalAnswer {
    /// Returns the body bytes written.
    @discardableResult
    static func write(_ decision: Decision, version: HTTPVersion, omitBody: Bool, requestID: String?, closing: Bool,
                      into out: inout ByteQueue) -> Int {
        out.append(version == .http10 ? "HTTP/1.0 " : "HTTP/1.1 ")
        out.append(String(decision.status))
        out.append(" ")
        out.append(reason(decision.status))
        out.append("\r\n")
        for field in decision.responseHeaders {
            // Content-Length and Connection are this writer's to say.
            if asciiCaseInsensitiveEquals(field.name, "content-length") || asciiCaseInsensitiveEquals(field.name, "connection") { continue }
            out.append(field.name)
            out.append(": ")
            out.append(field.value)
            out.append("\r\n")
        }
        let body = decision.body.map { $0 + "\n" } ?? ""
        out.append("Content-Length: ")
        out.append(String(body.utf8.count))
        out.append("\r\n")
        if let requestID {
            out.append("X-Request-Id: ")
            out.append(requestID)
            out.append("\r\n")
        }
        if closing {
            out.append("Connection: close\r\n")
        } else if version == .http10 {
            out.append("Connection: keep-alive\r\n")
        }
        out.append("\r\n")
        guard !omitBody else { return 0 }
        out.append(body)
        return body.utf8.count
    }

    static func reason(_ status: Int) -> String {
        switch status {
        case 100: return "Continue"
        case 101: return "Switching Protocols"
        case 200: return "OK"
        case 204: return "No Content"
        case 301: return "Moved Permanently"
        case 302: return "Found"
        case 303: return "See Other"
        case 307: return "Temporary Redirect"
        case 308: return "Permanent Redirect"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 408: return "Request Timeout"
        case 413: return "Content Too Large"
        case 414: return "URI Too Long"
        case 417: return "Expectation Failed"
        case 429: return "Too Many Requests"
        case 431: return "Request Header Fields Too Large"
        case 500: return "Internal Server Error"
        case 501: return "Not Implemented"
        case 502: return "Bad Gateway"
        case 503: return "Service Unavailable"
        case 504: return "Gateway Timeout"
        case 505: return "HTTP Version Not Supported"
        default: return "Status"
        }
    }
}
