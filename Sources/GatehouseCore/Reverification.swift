/// Clerk's reverification (`packages/shared/src/authorization.ts`): a route may demand that the session's
/// factors were verified recently, read from the `fva` claim `[firstFactorAgeMinutes, secondFactorAgeMinutes]`
/// (`-1`: that factor group is not enabled).
public struct ReverificationRule: Sendable, Equatable {
    public enum Level: String, Sendable, Equatable, CaseIterable {
        case firstFactor = "first_factor", secondFactor = "second_factor", multiFactor = "multi_factor"
    }

    /// The preset's name, or nil for a custom `{level, after_minutes}`.
    public let preset: String?
    public let level: Level
    public let afterMinutes: Int

    /// `TYPES_TO_OBJECTS`.
    public static let presets: [String: (afterMinutes: Int, level: Level)] = [
        "strict_mfa": (10, .multiFactor), "strict": (10, .secondFactor), "moderate": (60, .secondFactor), "lax": (1440, .secondFactor),
    ]

    public init?(preset: String) {
        guard let found = ReverificationRule.presets[preset] else { return nil }
        self.preset = preset
        self.level = found.level
        self.afterMinutes = found.afterMinutes
    }

    /// Clerk accepts a custom config only with a known level and `afterMinutes > 0`.
    public init?(level: Level, afterMinutes: Int) {
        guard afterMinutes > 0 else { return nil }
        self.preset = nil
        self.level = level
        self.afterMinutes = afterMinutes
    }

    /// `checkReverificationAuthorization`: `fva` must be an array of exactly two finite numbers, each `-1` or
    /// `≥ 0`, not both `-1`; a factor is fresh when its age is not `-1` and `afterMinutes > age`.
    public func isSatisfied(fva: JSONValue?) -> Bool {
        guard case .array(let values)? = fva, values.count == 2,
            let f1 = ReverificationRule.age(values[0]), let f2 = ReverificationRule.age(values[1]), !(f1 == -1 && f2 == -1)
        else { return false }
        func fresh(_ age: Double) -> Bool { age != -1 && Double(afterMinutes) > age }
        switch level {
        case .firstFactor: return fresh(f1)
        case .secondFactor: return f2 == -1 ? fresh(f1) : fresh(f2)
        case .multiFactor:
            if f2 == -1 { return fresh(f1) }
            if f1 == -1 { return false }
            return fresh(f1) && fresh(f2)
        }
    }

    static func age(_ value: JSONValue) -> Double? {
        guard case .number = value, let number = value.doubleValue, number.isFinite, number == -1 || number >= 0 else { return nil }
        return number
    }

    /// What Clerk's `useReverification` reads: the preset's name, or `{level, afterMinutes}` (JS keys).
    public var metadata: JSONValue {
        if let preset { return .string(preset) }
        return .object(JSONObject([("level", .string(level.rawValue)), ("afterMinutes", .number(JSONNumber(afterMinutes)))]))
    }

    /// Clerk's `reverificationErrorResponse` body.
    public var errorBody: String {
        JSONValue.object(JSONObject([("clerk_error", .object(JSONObject([
            ("type", "forbidden"), ("reason", "reverification-error"),
            ("metadata", .object(JSONObject([("reverification", metadata)]))),
        ])))])).serialized()
    }

    public var description: String { preset ?? "\(level.rawValue) within \(afterMinutes) min" }
}
