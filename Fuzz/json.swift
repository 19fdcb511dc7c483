// Fuzz target: JSONParser. Accepted documents round-trip through the serialiser (compact and pretty), the
// serialiser's output is a fixed point, objects never hold two members of one name, nesting stays within
// maxDepth, and adding a duplicate member to an accepted object makes it rejected.
import GatehouseCore

private func check(_ value: JSONValue, depth: Int) {
    require(depth <= JSONParser.maxDepth, "value nested \(depth) deep accepted")
    switch value {
    case .object(let object):
        let keys = object.keys
        for i in keys.indices {
            for j in keys.indices where j > i { require(keys[i] != keys[j], "duplicate member \(keys[i].debugDescription) accepted") }
        }
        for member in object.members { check(member.value, depth: depth + 1) }
    case .array(let elements):
        for element in elements { check(element, depth: depth + 1) }
    case .number(let n):
        require(n.doubleValue != nil, "accepted number \(n.text) does not read as a Double")
    default:
        break
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSON(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let value = try? JSONParser.parse(bytes) else { return 0 }
    check(value, depth: value.arrayValue != nil || value.objectValue != nil ? 1 : 0)

    let compact = value.serialized()
    let reparsed: JSONValue
    do { reparsed = try JSONParser.parse(compact) } catch {
        require(false, "serialised form \(compact.debugDescription) is rejected: \(error)")
        return 0
    }
    require(reparsed == value, "parse ∘ serialise ≠ id for \(compact.debugDescription)")
    require(reparsed.serialized() == compact, "serialise is not a fixed point for \(compact.debugDescription)")
    let pretty = value.serialized(pretty: true)
    require((try? JSONParser.parse(pretty)) == value, "pretty form does not round-trip: \(pretty.debugDescription)")

    // A duplicate of an existing member name must turn an accepted object into a rejected document.
    if case .object(let object) = value, let key = object.keys.first {
        var text = compact
        text.removeLast()  // "}"
        text += "," + JSONValue.string(key).serialized() + ":null}"
        require((try? JSONParser.parse(text)) == nil, "duplicate member \(key.debugDescription) accepted in \(text.debugDescription)")
    }
    return 0
}
