/**
 * Fingerprints of requests, so an idempotency key reused for another request is noticed.
 *
 * @internal
 */

/**
 * A canonical text of a value: object keys sorted, `undefined` properties dropped (as JSON
 * does), so two inputs that encode the same have the same text whatever their key order.
 */
const canonical = (value: unknown, seen: Set<unknown>): string => {
  switch (typeof value) {
    case "string":
      return JSON.stringify(value)
    case "number":
    case "boolean":
      return String(value)
    case "bigint":
      return `${value}n`
    case "undefined":
      return "undefined"
    case "object": {
      if (value === null) return "null"
      if (value instanceof Date) return `Date(${value.toISOString()})`
      if (seen.has(value)) return "[circular]"
      seen.add(value)
      const text = Array.isArray(value)
        ? `[${value.map((item) => canonical(item, seen)).join(",")}]`
        : `{${
          Object.keys(value).sort().filter((key) => (value as Record<string, unknown>)[key] !== undefined).map((key) =>
            `${JSON.stringify(key)}:${canonical((value as Record<string, unknown>)[key], seen)}`
          ).join(",")
        }}`
      seen.delete(value)
      return text
    }
    default:
      return String(value)
  }
}

/** FNV-1a over the text in two independent 32-bit lanes: 64 bits, as 16 hex digits. */
const hash64 = (text: string): string => {
  let a = 0x811c9dc5
  let b = 0xcbf29ce4
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    a = Math.imul(a ^ c, 0x01000193) >>> 0
    b = Math.imul(b ^ c, 0x5bd1e995) >>> 0
  }
  return a.toString(16).padStart(8, "0") + b.toString(16).padStart(8, "0")
}

/** `<command>:<hash of its input>`. */
export const ofCommand = (command: string, input: unknown): string =>
  `${command}:${hash64(canonical(input, new Set()))}`
