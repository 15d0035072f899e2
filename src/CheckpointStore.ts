/**
 * Checkpoints: where a named consumer (a projection, a process manager) has got to in the
 * global order. A consumer that restarts loads its checkpoint and subscribes after it.
 *
 * Backends: `MemoryCheckpointStore` (`eventcore/memory`), `PostgresCheckpointStore`
 * (`eventcore/postgres`, the `checkpoints` table, writable inside a read model's transaction).
 *
 * @since 0.1.0
 */
import { Context, Effect, Schema } from "effect"
import type { EventStoreError } from "./Errors.ts"
import { Position } from "./Position.ts"

/**
 * A runner's checkpoint was not where the runner last left it: another runner moved it (the
 * new holder of a lock this runner lost without noticing yet) or a rebuild reset it. Nothing
 * was saved; the runner reloads the checkpoint and goes on from there.
 *
 * @example
 * ```ts
 * import { CheckpointStore, Position } from "eventcore"
 *
 * new CheckpointStore.CheckpointMoved({ name: "balances", expected: Position.make(3, 7) })
 * ```
 * @since 0.1.0
 */
export class CheckpointMoved extends Schema.TaggedError<CheckpointMoved>()("CheckpointMoved", {
  name: Schema.String,
  /** Where the runner expected it; `undefined` for no checkpoint. */
  expected: Schema.UndefinedOr(Position)
}) {
  override get message(): string {
    return `The checkpoint of ${this.name} is no longer at ${
      this.expected ?? "(none)"
    }: another runner moved it, or a rebuild reset it`
  }
}

/**
 * The checkpoint service.
 *
 * `save` only moves a checkpoint forward: saving a position at or before the stored one
 * leaves it unchanged. Runners save with `advance`, a compare-and-set, so a runner that lost
 * its lock and saves late can move the new holder's checkpoint neither back nor forward.
 * `reset` deletes it (the next run starts from the projection's starting point).
 * `beginRebuild` marks a rebuild in progress, so that one interrupted halfway (a crash, a
 * failed reset) is finished before anything is processed again.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { CheckpointStore, Position } from "eventcore"
 *
 * const program = Effect.gen(function*() {
 *   const checkpoints = yield* CheckpointStore.CheckpointStore
 *   yield* checkpoints.save("balances", Position.make(1, 1))
 *   return yield* checkpoints.load("balances") // Position.make(1, 1)
 * })
 * ```
 * @since 0.1.0
 */
export class CheckpointStore extends Context.Service<CheckpointStore, {
  /** The saved position, or `undefined` when the consumer never saved one (or was reset). */
  readonly load: (name: string) => Effect.Effect<Position | undefined, EventStoreError>
  /** Saves a position, unless the stored one is already at or after it. */
  readonly save: (name: string, position: Position) => Effect.Effect<void, EventStoreError>
  /**
   * Moves the checkpoint from `from` (`undefined`: none saved) to `to`, or fails with
   * `CheckpointMoved` and changes nothing when it is elsewhere. Runners save this way, so a
   * runner that lost its lock without noticing can neither commit a batch over the new
   * holder's (inside a transactional projection's transaction the failure rolls the batch
   * back) nor recreate a checkpoint a rebuild has just reset.
   */
  readonly advance: (
    name: string,
    from: Position | undefined,
    to: Position
  ) => Effect.Effect<void, CheckpointMoved | EventStoreError>
  /** Forgets the checkpoint, and any rebuild pending for it. */
  readonly reset: (name: string) => Effect.Effect<void, EventStoreError>
  /**
   * Records, durably, that a rebuild of `name` has begun: until `reset` ends it, `advance`
   * fails with `CheckpointMoved` (a runner that lost its lock cannot save over the rebuild)
   * and `rebuildPending` is true, so a runner that starts later finishes the rebuild before
   * processing anything, and a running one (`ProjectionRunner`) rebuilds at its next save or
   * within its `rebuildCheck`: called from another process, this asks for a rebuild.
   */
  readonly beginRebuild: (name: string) => Effect.Effect<void, EventStoreError>
  /** Whether a rebuild of `name` has begun and not finished. */
  readonly rebuildPending: (name: string) => Effect.Effect<boolean, EventStoreError>
}>()("eventcore/CheckpointStore") {}

/**
 * Loads a checkpoint through the current store.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { CheckpointStore } from "eventcore"
 * import { MemoryCheckpointStore } from "eventcore/memory"
 *
 * const position = CheckpointStore.load("balances").pipe(Effect.provide(MemoryCheckpointStore.layer))
 * Effect.runSync(position) // undefined: nothing saved yet
 * ```
 * @since 0.1.0
 */
export const load = (name: string): Effect.Effect<Position | undefined, EventStoreError, CheckpointStore> =>
  CheckpointStore.use((store) => store.load(name))

/**
 * Saves a checkpoint through the current store.
 *
 * @example
 * ```ts
 * import { CheckpointStore, Position } from "eventcore"
 *
 * const saved = CheckpointStore.save("balances", Position.make(3, 7))
 * ```
 * @since 0.1.0
 */
export const save = (name: string, position: Position): Effect.Effect<void, EventStoreError, CheckpointStore> =>
  CheckpointStore.use((store) => store.save(name, position))

/**
 * Resets a checkpoint through the current store.
 *
 * @example
 * ```ts
 * import { CheckpointStore } from "eventcore"
 *
 * const forgotten = CheckpointStore.reset("balances") // the next run starts from the projection's start
 * ```
 * @since 0.1.0
 */
export const reset = (name: string): Effect.Effect<void, EventStoreError, CheckpointStore> =>
  CheckpointStore.use((store) => store.reset(name))
