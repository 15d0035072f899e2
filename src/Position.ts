/**
 * Global positions: opaque, totally ordered checkpoints into the store's global order.
 *
 * A position is the pair (transaction, sequence) the store commits events under, encoded as
 * a fixed-width string so that plain string comparison is the global order. Users store and
 * compare positions; they never do arithmetic on them.
 *
 * @since 0.1.0
 */
import { type Order as Ord, Schema } from "effect"

const width = 20

/**
 * The schema of a position, for checkpoints kept outside the library.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Position } from "eventcore"
 *
 * const Checkpoint = Schema.Struct({ name: Schema.String, position: Position.Position })
 * ```
 * @since 0.1.0
 */
export const Position = Schema.String.check(Schema.isPattern(/^\d{20}\.\d{20}$/)).pipe(
  Schema.brand("eventcore/Position")
)

/**
 * A place in the global order, as the branded string `Position.make` builds.
 *
 * @example
 * ```ts
 * import { Position } from "eventcore"
 *
 * const checkpoint: Position.Position = Position.make(7, 1)
 * const later = Position.make(8, 0) > checkpoint // positions order as strings
 * ```
 * @since 0.1.0
 */
export type Position = typeof Position.Type

const zero = 48
const buffer = new Uint16Array(width * 2 + 1)

// Writes `n` as `width` zero-padded digits ending before `end`.
const putDigits = (n: bigint | number, end: number): void => {
  const digits = n.toString()
  const start = end - width
  const pad = width - digits.length
  for (let i = 0; i < width; i++) buffer[start + i] = i < pad ? zero : digits.charCodeAt(i - pad)
}

/**
 * Builds a position from the store's (transaction, sequence) pair. For store implementations.
 *
 * @example
 * ```ts
 * import { Position } from "eventcore"
 *
 * const p = Position.make(12n, 40n)
 * ```
 * @since 0.1.0
 */
export const make = (transaction: bigint | number, sequence: bigint | number): Position => {
  // One flat string per position (a template literal would keep a tree of fragments alive).
  putDigits(transaction, width)
  buffer[width] = 46
  putDigits(sequence, width * 2 + 1)
  return String.fromCharCode.apply(null, buffer as unknown as Array<number>) as Position
}

/**
 * The position before every event: reading after it reads everything.
 *
 * @example
 * ```ts
 * import { Position } from "eventcore"
 *
 * Position.isAfter(Position.make(1, 1), Position.initial) // true
 * ```
 * @since 0.1.0
 */
export const initial: Position = make(0, 0)

/**
 * The transaction part of a position. For store implementations.
 *
 * @example
 * ```ts
 * import { Position } from "eventcore"
 *
 * Position.transaction(Position.make(12n, 40n)) // 12n
 * ```
 * @since 0.1.0
 */
export const transaction = (position: Position): bigint => BigInt(position.slice(0, width))

/**
 * The sequence part of a position. For store implementations.
 *
 * @example
 * ```ts
 * import { Position } from "eventcore"
 *
 * Position.sequence(Position.make(12n, 40n)) // 40n
 * ```
 * @since 0.1.0
 */
export const sequence = (position: Position): bigint => BigInt(position.slice(width + 1))

const shape = /^\d{20}\.\d{20}$/

/**
 * Whether a value is a position (the fixed-width string stores build).
 *
 * @example
 * ```ts
 * import { Position } from "eventcore"
 *
 * Position.is(Position.initial) // true
 * Position.is("12")             // false
 * ```
 * @since 0.2.0
 */
export const is = (value: unknown): value is Position => typeof value === "string" && shape.test(value)

/**
 * The global order of positions.
 *
 * @example
 * ```ts
 * import { Position } from "eventcore"
 *
 * Position.Order(Position.make(1, 5), Position.make(2, 3)) // -1
 * ```
 * @since 0.1.0
 */
export const Order: Ord.Order<Position> = (a, b) => a < b ? -1 : a > b ? 1 : 0

/**
 * Whether `self` comes after `that` in the global order.
 *
 * @example
 * ```ts
 * import { Position } from "eventcore"
 *
 * Position.isAfter(Position.make(2, 3), Position.make(1, 5)) // true
 * ```
 * @since 0.1.0
 */
export const isAfter = (self: Position, that: Position): boolean => self > that
