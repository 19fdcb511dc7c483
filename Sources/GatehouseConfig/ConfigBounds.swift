import GatehouseAuth

/// The range every numeric config key accepts. Values outside are refused with the range in the message;
/// the upper bounds keep every duration far from what a timer conversion (`Int64` nanoseconds) can hold.
/// README "Config reference" lists the same ranges.
extension ConfigLoader {
    public static let integerBounds: [String: ClosedRange<Int>] = [
        "server.threads": 0...256,
        "server.max_connections": 1...1_000_000,
        "server.max_header_bytes": 1024...1_048_576,
        "server.max_header_count": 8...10_000,
        "server.max_body_bytes": 0...(1 << 40),
        "proxy.max_idle_connections": 0...10_000,
        "clerk.token_cache_size": 0...1_000_000,
    ]

    /// Seconds. Zero is only allowed where it means something (`grace_period`: stop at once; `clock_skew`:
    /// none); a zero timeout would fail every request.
    public static let durationBounds: [String: ClosedRange<Double>] = [
        "server.header_timeout": 0.1...3600,
        "server.idle_timeout": 0.1...86_400,
        "server.body_timeout": 0.1...86_400,
        "server.send_timeout": 0.1...86_400,
        "server.grace_period": 0...3600,
        "proxy.connect_timeout": 0.01...600,
        "proxy.response_timeout": 0.1...86_400,
        "proxy.read_timeout": 0.1...86_400,
        "proxy.idle_timeout": 0.1...86_400,
        "proxy.websocket_max_lifetime": 0.1...2_592_000,
        "clerk.clock_skew": 0...300,
        "clerk.jwks_refresh": 10...86_400,
        "clerk.jwks_cooldown": 1...3600,
    ]

    /// The publishable key of `config/gatehouse.example.yaml` (`clerk.example.com`), there so the file
    /// validates on a fresh machine; it names no real instance.
    public static let placeholderPublishableKey = "pk_live_Y2xlcmsuZXhhbXBsZS5jb20k"

    /// A publishable and a secret key of different instance types, or the example's placeholder instance,
    /// are legal but cannot work: tokens and handshakes come from one instance, keys from another.
    static func keyPairWarnings(publishableKey: String?, instance: ClerkInstance?, secretKey: String?) -> [String] {
        var warnings: [String] = []
        if let instance, instance.frontendAPIHost == "clerk.example.com" {
            warnings.append("clerk.publishable_key is the example's placeholder instance (clerk.example.com), not a real Clerk instance: "
                + "set CLERK_PUBLISHABLE_KEY, or NEXT_PUBLIC_CLERK_PUBLISHABLE_KEY (e.g. from a Next.js .env.local)")
        }
        if let instance, let secretKey {
            let secretKind: ClerkInstance.Kind? = secretKey.hasPrefix("sk_live_") ? .production : secretKey.hasPrefix("sk_test_") ? .development : nil
            if let secretKind, secretKind != instance.kind {
                let pk = instance.kind == .production ? "a production key (pk_live_…)" : "a development key (pk_test_…)"
                let sk = secretKind == .production ? "a production key (sk_live_…)" : "a development key (sk_test_…)"
                warnings.append("clerk.publishable_key is \(pk) but clerk.secret_key is \(sk): they belong to different Clerk instances, "
                    + "so Backend API keys and handshakes will not match the sessions")
            }
        }
        return warnings
    }
}
