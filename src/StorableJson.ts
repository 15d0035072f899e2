/**
 * What a store can keep: JSON that PostgreSQL's `jsonb` holds exactly. Payloads (after the
 * `Serializer`) and metadata are checked against it at append on every backend, so bad input
 * is an `InvalidInput` naming where — never an untyped database error, a stack overflow, or a
 * value that reads back changed — and the memory store gives back exactly what `jsonb` would.
 *
 * The rules: plain objects, arrays, strings, finite numbers, booleans and null; no string or
 * key holding a NUL character or an unpaired UTF-16 surrogate (`jsonb` refuses both); at most
 * `maxDepth` levels of nesting; at most `maxBytes` of JSON text (UTF-8). Properties set to
 * `undefined` are dropped, as JSON does.
 *
 * @since 0.2.0
 */
import { Result, type Schema } from "effect"

/**
 * Where a value breaks the rules, and which rule.
 *
 * @example
 * ```ts
 * import { StorableJson } from "eventcore"
 *
 * const refusal: StorableJson.Refusal | undefined = StorableJson.check({ items: [1, Number.NaN] })
 * const message = refusal === undefined ? "storable" : `${refusal.path.join(".")}: ${refusal.reason}` // items.1: …
 * ```
 * @since 0.2.0
 */
export interface Refusal {
  readonly path: ReadonlyArray<string | number>
  readonly reason: string
}

/**
 * How deep and how large stored JSON may be.
 *
 * @example
 * ```ts
 * import { StorableJson } from "eventcore"
 *
 * // Stricter than the defaults: shallow, small payloads.
 * const limits: StorableJson.Limits = { maxDepth: 16, maxBytes: 64 * 1024 }
 * const refusal = StorableJson.check({ deep: { deeper: { deepest: [] } } }, limits)
 * ```
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

// `String.prototype.isWellFormed` (ES2024) where the runtime has it; a regex otherwise.
const wellFormed: (text: string) => boolean =
  typeof (String.prototype as { isWellFormed?: unknown }).isWellFormed === "function"
    ? (text) => (text as unknown as { isWellFormed: () => boolean }).isWellFormed()
    : (text) => !/\p{Cs}/u.test(text)

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
  if (text.includes("\u0000")) return "contains a NUL character (\\u0000), which PostgreSQL cannot store"
  return wellFormed(text) ? undefined : "contains an unpaired UTF-16 surrogate (ill-formed Unicode)"
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

/** The UTF-8 length of a key or string as `jsonb` compares keys. */
const byteLength = (text: string): number => {
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
 * Compares two keys as `jsonb` orders them: by UTF-8 length, then by their UTF-8 bytes (that
 * is, by code point).
 */
const jsonbKeyOrder = (a: string, b: string): number => {
  const la = byteLength(a)
  const lb = byteLength(b)
  if (la !== lb) return la - lb
  for (let i = 0, j = 0; i < a.length && j < b.length;) {
    const ca = a.codePointAt(i) as number
    const cb = b.codePointAt(j) as number
    if (ca !== cb) return ca - cb
    i += ca > 0xffff ? 2 : 1
    j += cb > 0xffff ? 2 : 1
  }
  return 0
}

/**
 * Shapes seen (sequences of keys), as a trie: each remembers `jsonb`'s order of its keys, or
 * `null` when it is theirs. The events of one type come again and again with the same shape,
 * so sorting happens once per shape.
 */
interface Shape {
  readonly next: Map<string, Shape>
  order: ReadonlyArray<string> | null | undefined
}
const shapes: Shape = { next: new Map(), order: null }
let shapeCount = 0

const sortKeys = (keys: ReadonlyArray<string>): ReadonlyArray<string> | null => {
  const sorted = keys.slice()
  // Insertion sort: objects have few keys.
  for (let i = 1; i < sorted.length; i++) {
    const key = sorted[i] as string
    let j = i - 1
    while (j >= 0 && jsonbKeyOrder(sorted[j] as string, key) > 0) {
      sorted[j + 1] = sorted[j] as string
      j--
    }
    sorted[j + 1] = key
  }
  return sorted.every((key, i) => key === keys[i]) ? null : sorted
}

/**
 * The shape of these keys if it was seen before — then every key was checked storable, and its
 * order is known — else undefined.
 */
const knownShape = (keys: ReadonlyArray<string>): Shape | undefined => {
  let node: Shape | undefined = shapes
  for (let i = 0; i < keys.length && node !== undefined; i++) node = node.next.get(keys[i] as string)
  return node?.order === undefined ? undefined : node
}

/** Remembers a shape whose keys were all checked storable; gives `jsonb`'s order of them. */
const rememberShape = (keys: ReadonlyArray<string>): ReadonlyArray<string> | null => {
  const order = sortKeys(keys)
  if (keys.length > 16) return order
  let node = shapes
  for (const key of keys) {
    let child = node.next.get(key)
    if (child === undefined) {
      // Bounded: a flood of shapes (objects used as maps) starts the trie over.
      if (++shapeCount > 65_536) {
        shapes.next.clear()
        shapeCount = 0
      }
      child = { next: new Map(), order: undefined }
      node.next.set(key, child)
    }
    node = child
  }
  node.order = order
  return order
}

/** `jsonb`'s order of an object's keys when it differs from theirs, else undefined. */
const reordered = (keys: ReadonlyArray<string>): ReadonlyArray<string> | undefined => {
  if (keys.length < 2) return undefined
  const known = knownShape(keys)
  return (known === undefined ? rememberShape(keys) : known.order) ?? undefined
}

/** What the walk learns about a value besides its refusal. */
interface Walk {
  /** The value is already what `jsonb` gives back: no `-0`, no undefined properties, keys in order. */
  canonical: boolean
  /** An upper bound of the UTF-8 bytes of its JSON text (escapes counted at their longest). */
  bytes: number
}

/**
 * Checks a value against every rule but size, and measures it. Recursive with a shared path;
 * the depth limit (at most `maxDepthLimit`) keeps the recursion far from the stack's end
 * whatever the input — a value that contains itself meets it too.
 */
const walk = (
  value: unknown,
  path: Array<string | number>,
  depth: number,
  maxDepth: number,
  state: Walk
): Refusal | undefined => {
  switch (typeof value) {
    case "string": {
      const issue = textIssue(value)
      state.bytes += value.length * 6 + 2
      return issue === undefined ? undefined : { path: [...path], reason: `the string ${issue}` }
    }
    case "boolean":
      state.bytes += 5
      return undefined
    case "number":
      if (!Number.isFinite(value)) return { path: [...path], reason: `${value} is not a JSON number` }
      if (Object.is(value, -0)) state.canonical = false
      state.bytes += 25
      return undefined
    case "object": {
      if (value === null) {
        state.bytes += 4
        return undefined
      }
      if (depth >= maxDepth) {
        return {
          path: [...path],
          reason: `nested deeper than the limit of ${maxDepth} levels (maxDepth), or the value contains itself`
        }
      }
      state.bytes += 2
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          path.push(i)
          const refusal = walk(value[i], path, depth + 1, maxDepth, state)
          path.pop()
          if (refusal !== undefined) return refusal
          state.bytes += 1
        }
        return undefined
      }
      const proto = Object.getPrototypeOf(value)
      if (proto !== Object.prototype && proto !== null) {
        return { path: [...path], reason: `${describe(value)} is not plain JSON (encode it in the schema)` }
      }
      const keys = Object.keys(value)
      // A shape seen before had its keys checked then.
      const known = keys.length > 16 ? undefined : knownShape(keys)
      for (const key of keys) {
        if (known === undefined) {
          const issue = textIssue(key)
          if (issue !== undefined) return { path: [...path, key], reason: `the key ${issue}` }
        }
        const property = (value as Record<string, unknown>)[key]
        // JSON drops properties set to undefined; so does the store.
        if (property === undefined) {
          state.canonical = false
          continue
        }
        state.bytes += key.length * 6 + 4
        path.push(key)
        const refusal = walk(property, path, depth + 1, maxDepth, state)
        path.pop()
        if (refusal !== undefined) return refusal
      }
      const order = known !== undefined ? known.order : keys.length < 2 ? null : rememberShape(keys)
      if (order !== null && order !== undefined) state.canonical = false
      return undefined
    }
    default:
      return { path: [...path], reason: `${describe(value)} is not JSON` }
  }
}

const inspect = (value: unknown, limits: Limits): Refusal | Walk => {
  const state: Walk = { canonical: true, bytes: 0 }
  const refusal = walk(value, [], 0, Math.min(limits.maxDepth, maxDepthLimit), state)
  return refusal ?? state
}

const isRefusal = (u: Refusal | Walk): u is Refusal => "reason" in u

const tooLarge = (bytes: number, limits: Limits): Refusal => ({
  path: [],
  reason: `${bytes} bytes of JSON, more than the limit of ${limits.maxBytes} (maxBytes)`
})

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
export const check = (value: unknown, limits: Limits = defaultLimits): Refusal | undefined => {
  const inspected = inspect(value, limits)
  return isRefusal(inspected) ? inspected : undefined
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
export const utf8Length: (text: string) => number = byteLength

/**
 * Checks a value against the rules and gives its JSON text (what PostgreSQL receives), or the
 * refusal.
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
  const inspected = inspect(value, limits)
  if (isRefusal(inspected)) return Result.fail(inspected)
  const text = JSON.stringify(value)
  if (inspected.bytes > limits.maxBytes) {
    const bytes = byteLength(text)
    if (bytes > limits.maxBytes) return Result.fail(tooLarge(bytes, limits))
  }
  return Result.succeed(text)
}

const reorder = (value: unknown): unknown => {
  if (typeof value !== "object" || value === null) return value
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = reorder(value[i])
    return value
  }
  const keys = Object.keys(value)
  const out: Record<string, unknown> = {}
  for (const key of reordered(keys) ?? keys) out[key] = reorder((value as Record<string, unknown>)[key])
  return out
}

/**
 * The value PostgreSQL gives back for JSON text stored in `jsonb`: parsed (so `-0` is `0`
 * and `1.0` is `1`), with every object's keys in `jsonb`'s order (shorter first, then by
 * their bytes).
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

/**
 * Checks a value against the rules and gives what a `jsonb` column would give back for it —
 * the value itself when it already is that (the common case: no copy), a normalized copy
 * otherwise — or the refusal. The memory store keeps this, so what a test reads on memory is
 * what production reads.
 *
 * @example
 * ```ts
 * import { StorableJson } from "eventcore"
 *
 * StorableJson.toStored({ b: 1, a: -0 }) // Success: { a: 0, b: 1 }
 * ```
 * @since 0.2.0
 */
export const toStored = (value: unknown, limits: Limits = defaultLimits): Result.Result<Schema.Json, Refusal> => {
  const inspected = inspect(value, limits)
  if (isRefusal(inspected)) return Result.fail(inspected)
  if (inspected.bytes > limits.maxBytes) {
    const bytes = byteLength(JSON.stringify(value))
    if (bytes > limits.maxBytes) return Result.fail(tooLarge(bytes, limits))
  }
  return Result.succeed(inspected.canonical ? value as Schema.Json : normalize(value) as Schema.Json)
}

/**
 * A copy of a checked value as `jsonb` gives it back — what `JSON.parse(JSON.stringify(value))`
 * with `jsonb`'s key order gives, without the text: `-0` becomes `0`, properties set to
 * `undefined` go, keys are sorted.
 */
const normalize = (value: unknown): unknown => {
  if (typeof value === "number") return value === 0 ? 0 : value
  if (typeof value !== "object" || value === null) return value
  if (Array.isArray(value)) return value.map(normalize)
  const own = Object.keys(value)
  const keys = reordered(own) ?? own
  const out: Record<string, unknown> = {}
  for (const key of keys) {
    const property = (value as Record<string, unknown>)[key]
    if (property !== undefined) out[key] = normalize(property)
  }
  return out
}
