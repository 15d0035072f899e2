/**
 * The in-memory checkpoint store: for tests, demos, and read models that live in the same
 * process (and start over with it).
 *
 * @since 0.1.0
 */
import { Effect, Layer } from "effect"
import { CheckpointMoved, CheckpointStore } from "../CheckpointStore.ts"
import * as Position from "../Position.ts"

/**
 * Builds a fresh, empty checkpoint store.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { MemoryCheckpointStore } from "eventcore/memory"
 *
 * const store = Effect.runSync(MemoryCheckpointStore.make)
 * ```
 * @since 0.1.0
 */
export const make: Effect.Effect<CheckpointStore["Service"]> = Effect.sync(() => {
  const checkpoints = new Map<string, Position.Position>()
  const rebuilding = new Set<string>()
  return CheckpointStore.of({
    load: (name) => Effect.sync(() => checkpoints.get(name)),
    save: (name, position) =>
      Effect.sync(() => {
        const current = checkpoints.get(name)
        if (current === undefined || Position.isAfter(position, current)) checkpoints.set(name, position)
      }),
    advance: (name, from, to) =>
      Effect.suspend(() => {
        if (rebuilding.has(name) || checkpoints.get(name) !== from) {
          return Effect.fail(new CheckpointMoved({ name, expected: from }))
        }
        checkpoints.set(name, to)
        return Effect.void
      }),
    reset: (name) =>
      Effect.sync(() => {
        checkpoints.delete(name)
        rebuilding.delete(name)
      }),
    beginRebuild: (name) => Effect.sync(() => void rebuilding.add(name)),
    rebuildPending: (name) => Effect.sync(() => rebuilding.has(name))
  })
})

/**
 * A layer providing a fresh in-memory `CheckpointStore`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { CheckpointStore, Position } from "eventcore"
 * import { MemoryCheckpointStore } from "eventcore/memory"
 *
 * const saved = CheckpointStore.save("balances", Position.make(1, 1)).pipe(Effect.provide(MemoryCheckpointStore.layer))
 * ```
 * @since 0.1.0
 */
export const layer: Layer.Layer<CheckpointStore> = Layer.effect(CheckpointStore, make)
