/**
 * The in-memory dead-letter store.
 *
 * @since 0.1.0
 */
import { Effect, Layer } from "effect"
import { type DeadLetter, DeadLetterStore } from "../DeadLetterStore.ts"

/**
 * Builds a fresh, empty dead-letter store.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { MemoryDeadLetterStore } from "eventcore/memory"
 *
 * const store = Effect.runSync(MemoryDeadLetterStore.make)
 * ```
 * @since 0.1.0
 */
export const make: Effect.Effect<DeadLetterStore["Service"]> = Effect.sync(() => {
  const letters = new Map<string, DeadLetter>()
  const key = (letter: DeadLetter) => `${letter.projection}\u0000${letter.eventId}`
  return DeadLetterStore.of({
    record: (letter) => Effect.sync(() => void letters.set(key(letter), letter)),
    list: (projection) =>
      Effect.sync(() =>
        [...letters.values()]
          .filter((letter) => projection === undefined || letter.projection === projection)
          .sort((a, b) => a.position < b.position ? -1 : a.position > b.position ? 1 : 0)
      ),
    clear: (projection) =>
      Effect.sync(() => {
        for (const [k, letter] of letters) if (letter.projection === projection) letters.delete(k)
      }),
    discard: (projection, eventId) => Effect.sync(() => letters.delete(`${projection}\u0000${eventId}`)),
    counts: Effect.sync(() => {
      const counted = new Map<string, number>()
      for (const letter of letters.values()) counted.set(letter.projection, (counted.get(letter.projection) ?? 0) + 1)
      return Object.fromEntries(counted)
    })
  })
})

/**
 * A layer providing a fresh in-memory `DeadLetterStore`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { DeadLetterStore } from "eventcore"
 * import { MemoryDeadLetterStore } from "eventcore/memory"
 *
 * const none = Effect.runSync(DeadLetterStore.list().pipe(Effect.provide(MemoryDeadLetterStore.layer))) // []
 * ```
 * @since 0.1.0
 */
export const layer: Layer.Layer<DeadLetterStore> = Layer.effect(DeadLetterStore, make)
