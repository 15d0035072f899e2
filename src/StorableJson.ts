/**
 * What a store can keep: JSON that PostgreSQL's `jsonb` holds exactly. Payloads (after the
 * `Serializer`) and metadata are checked against it at append on every backend, so bad input
 * is an `InvalidInput` naming where — never an untyped database error, a stack overflow, or a
 * value that reads back changed — and the memory store gives back exactly what `jsonb` would.
 *
 * The rules: plain objects, arrays, strings, finite numbers, booleans and null; no string or
 * key holding a NUL character or an unpaired UTF-16 surrogate (`jsonb` refuses both); at most
 * `maxDepth` levels of nesting; at most `maxBytes` of JSON text (UTF-8).
 *
 * @since 0.2.0
 */
import { Result, type Schema } from "effect"

/**
 * Where a value breaks the rules, and which rule.
 *
 * @since 0.2.0
 */
export interface Refusal {
  readonly path: ReadonlyArray<string | number>
  readonly reason: string
}

/**
 * How deep and how large stored JSON may be.
 *
 * @since 0.2.0
 */
export interface Limits {
  /** Levels of nesting (an object or array inside another is one level deeper). */
  readonly maxDepth: number
  /** UTF-8 bytes of the JSON text of one payload, or of one event's metadata. */
  readonly maxBytes: number
}

/**
 * 256 levels and 8 MiB: far beyond what events need, well inside what the stack, the
 * PostgreSQL driver's 16 MiB message limit and `jsonb` take.
 *
 * @example
 * ```ts
 * import { StorableJson } from "eventcore"
 *
 * StorableJson.defaultLimits // { maxDepth: 256, maxBytes: 8388608 }
 * ```
 * @since 0.2.0
 */
export const defaultLimits: Limits = { maxDepth: 256, maxBytes: 8 * 1024 * 1024 }

// oxlint-disable-next-line no-control-regex
const unstorableText = /\u0000|\p{Cs}/u

/**
 * Why a string cannot be stored, or undefined: it holds a NUL character, or an unpaired
 * surrogate (ill-formed UTF-16, which has no UTF-8 form).
 *
 * @example
 * ```ts
 * import { StorableJson } from "eventcore"
 *
 * StorableJson.textIssue("caf\u00e9") // undefined
 * StorableJson.textIssue("a\u0000b")  // "contains a NUL character (\\u0000), which PostgreSQL cannot store"
 * StorableJson.textIssue("\ud800")    // "contains an unpaired UTF-16 surrogate (ill-formed Unicode)"
 * ```
 * @since 0.2.0
 */
export const textIssue = (text: string): string | undefined => {
  if (!unstorableText.test(text)) return undefined
  return text.includes("\u0000")
    ? "contains a NUL character (\\u0000), which PostgreSQL cannot store"
    : "contains an unpaired UTF-16 surrogate (ill-formed Unicode)"
}

const describe = (value: unknown): string => {
  switch (typeof value) {
    case "number":
      return String(value)
    case "bigint":
      return `the bigint ${value}n`
    case "object":
      return value === null ? "null" : ((value as object).constructor?.name ?? "an object without a prototype")
    default:
      return typeof value
  }
}

/**
 * The deepest `maxDepth` a store accepts: the check recurses once per level, and this keeps it
 * far from the end of the stack whatever the input.
 *
 * @example
 * ```ts
 * import { StorableJson } from "eventcore"
 *
 * StorableJson.maxDepthLimit // 1000
 * ```
 * @since 0.2.0
 */
export const maxDepthLimit = 1_000

/**
 * Checks a value against the rules but size. Recursive, with a shared path; the depth limit
 * (at most `maxDepthLimit`) keeps the recursion far from the stack's end whatever the input.
 */
const walk = (
  value: unknown,
  path: Array<string | number>,
  ancestors: Set<object>,
  maxDepth: number
): Refusal | undefined => {
  switch (typeof value) {
    case "string": {
      const issue = textIssue(value)
      return issue === undefined ? undefined : { path: [...path], reason: `the string ${issue}` }
    }
    case "boolean":
      return undefined
    case "number":
      return Number.isFinite(value) ? undefined : { path: [...path], reason: `${value} is not a JSON number` }
    case "object": {
      if (value === null) return undefined
      if (ancestors.size >= maxDepth) {
        return { path: [...path], reason: `nested deeper than the limit of ${maxDepth} levels (maxDepth)` }
      }
      if (ancestors.has(value)) return { path: [...path], reason: "the value contains itself (a cycle)" }
      let refusal: Refusal | undefined
      ancestors.add(value)
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length && refusal === undefined; i++) {
          path.push(i)
          refusal = walk(value[i], path, ancestors, maxDepth)
          path.pop()
        }
      } else {
        const proto = Object.getPrototypeOf(value)
        if (proto !== Object.prototype && proto !== null) {
          refusal = { path: [...path], reason: `${describe(value)} is not plain JSON (encode it in the schema)` }
        }
        for (const key of Object.keys(value)) {
          if (refusal !== undefined) break
          const issue = textIssue(key)
          if (issue !== undefined) {
            refusal = { path: [...path, key], reason: `the key ${issue}` }
            break
          }
          const property = (value as Record<string, unknown>)[key]
          // JSON drops properties set to undefined; so does the store.
          if (property === undefined) continue
          path.push(key)
          refusal = walk(property, path, ancestors, maxDepth)
          path.pop()
        }
      }
      ancestors.delete(value)
      return refusal
    }
    default:
      return { path: [...path], reason: `${describe(value)} is not JSON` }
  }
}

/**
 * The UTF-8 length of a string, counted without encoding it.
 *
 * @example
 * ```ts
 * import { StorableJson } from "eventcore"
 *
 * StorableJson.utf8Length("caf\u00e9") // 5
 * ```
 * @since 0.2.0
 */
export const utf8Length = (text: string): number => {
  let bytes = text.length
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c < 0x80) continue
    if (c < 0x800) bytes += 1
    else if (c >= 0xd800 && c <= 0xdbff) i++ // a pair: 4 bytes for 2 units
    else bytes += 2
  }
  return bytes
}

/**
 * Checks a value against every rule but size: the refusal, or undefined.
 *
 * @example
 * ```ts
 * import { StorableJson } from "eventcore"
 *
 * StorableJson.check({ at: new Date() }) // { path: ["at"], reason: "Date is not plain JSON (encode it in the schema)" }
 * ```
 * @since 0.2.0
 */
export const check = (value: unknown, limits: Limits = defaultLimits): Refusal | undefined =>
  walk(value, [], new Set(), Math.min(limits.maxDepth, maxDepthLimit))

/**
 * Checks a value against the rules and gives its JSON text (what PostgreSQL receives), or the
 * refusal. Properties set to `undefined` are dropped, as JSON does.
 *
 * @example
 * ```ts
 * import { Result } from "effect"
 * import { StorableJson } from "eventcore"
 *
 * StorableJson.encode({ amount: 10 })                        // Success: '{"amount":10}'
 * Result.isFailure(StorableJson.encode({ note: "a\u0000b" })) // true: the path is ["note"]
 * ```
 * @since 0.2.0
 */
export const encode = (value: unknown, limits: Limits = defaultLimits): Result.Result<string, Refusal> => {
  const refusal = check(value, limits)
  if (refusal !== undefined) return Result.fail(refusal)
  const text = JSON.stringify(value)
  // Each UTF-16 unit is at most 3 UTF-8 bytes: count exactly only near the limit.
  if (text.length * 3 > limits.maxBytes && utf8Length(text) > limits.maxBytes) {
    return Result.fail({
      path: [],
      reason: `${utf8Length(text)} bytes of JSON, more than the limit of ${limits.maxBytes} (maxBytes)`
    })
  }
  return Result.succeed(text)
}

/** Compares two keys as `jsonb` orders them: by UTF-8 length, then by their UTF-8 bytes. */
const jsonbKeyOrder = (a: string, b: string): number => {
  const la = utf8Length(a)
  const lb = utf8Length(b)
  if (la !== lb) return la - lb
  // UTF-8 byte order is code point order; UTF-16 unit order differs only past U+D7FF.
  for (let i = 0, j = 0; i < a.length && j < b.length;) {
    const ca = a.codePointAt(i) as number
    const cb = b.codePointAt(j) as number
    if (ca !== cb) return ca - cb
    i += ca > 0xffff ? 2 : 1
    j += cb > 0xffff ? 2 : 1
  }
  return 0
}

const reorder = (value: unknown): unknown => {
  if (typeof value !== "object" || value === null) return value
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = reorder(value[i])
    return value
  }
  const keys = Object.keys(value)
  if (keys.length < 2) {
    if (keys.length === 1) {
      const key = keys[0] as string
      ;(value as Record<string, unknown>)[key] = reorder((value as Record<string, unknown>)[key])
    }
    return value
  }
  const sorted = keys.slice().sort(jsonbKeyOrder)
  const out: Record<string, unknown> = {}
  for (const key of sorted) out[key] = reorder((value as Record<string, unknown>)[key])
  return out
}

/**
 * The value PostgreSQL gives back for JSON text stored in `jsonb`: parsed (so `-0` is `0`
 * and `1.0` is `1`), with every object's keys in `jsonb`'s order (shorter first, then by
 * their bytes). The memory store returns this, so what a test reads on memory is what
 * production reads.
 *
 * @example
 * ```ts
 * import { StorableJson } from "eventcore"
 *
 * StorableJson.asStored('{"bb":1,"a":-0}') // { a: 0, bb: 1 }
 * ```
 * @since 0.2.0
 */
export const asStored = (text: string): Schema.Json => reorder(JSON.parse(text)) as Schema.Json
