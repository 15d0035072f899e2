/**
 * The lock that keeps one runner per projection name active: in one process (memory) or
 * across processes (PostgreSQL session advisory locks, `PostgresProjectionLock`).
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer, Semaphore } from "effect"
import type { Scope } from "effect"
import type { EventStoreError } from "./Errors.ts"

/**
 * A held lock.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import type { ProjectionLock } from "eventcore"
 *
 * // Work that must stop as soon as the lock is known to be lost.
 * const whileHeld = (lease: ProjectionLock.Lease, work: Effect.Effect<void>) => Effect.raceFirst(work, lease.lost)
 * // Before something that must not run without the lock: ask now (a lock without `held` counts as held).
 * const stillMine = (lease: ProjectionLock.Lease) => lease.held ?? Effect.succeed(true)
 * ```
 * @since 0.1.0
 */
export interface Lease {
  /**
   * Completes if the lock is lost while held (for PostgreSQL: the connection holding it
   * broke, so another process may hold it now). A runner stops processing when it does.
   * It completes once the loss is noticed (on PostgreSQL, by the heartbeat), not when it
   * happens: see `held`.
   */
  readonly lost: Effect.Effect<void>
  /**
   * Whether the lock is still held, checked now (for PostgreSQL: a query on the lock's own
   * connection; a failure or no answer within `heartbeatTimeout` counts as not held, and
   * loses every lease on that connection). A runner asks before each reset of its read model,
   * which are rare, and does not reset when the answer is `false`: the rebuild waits for
   * whoever holds the lock. Without it (a lock of your own), a lease counts as held until
   * `lost` completes.
   *
   * @since 0.3.0
   */
  readonly held?: Effect.Effect<boolean> | undefined
}

/**
 * The lock service.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { ProjectionLock } from "eventcore"
 *
 * const exclusive = <A, E, R>(work: Effect.Effect<A, E, R>) =>
 *   Effect.scoped(Effect.gen(function*() {
 *     const locks = yield* ProjectionLock.ProjectionLock
 *     const lease = yield* locks.acquire("balances") // waits while another runner holds it
 *     yield* Effect.raceFirst(work, lease.lost) // stops working if the lock is lost
 *   }))
 * ```
 * @since 0.1.0
 */
export class ProjectionLock extends Context.Service<ProjectionLock, {
  /** Waits until the lock of `name` is free, takes it, and holds it until the scope closes. */
  readonly acquire: (name: string) => Effect.Effect<Lease, EventStoreError, Scope.Scope>
}>()("eventcore/ProjectionLock") {}

/**
 * An in-process lock: one semaphore per name. Enough when every runner lives in one process
 * (tests, the memory store, a single-instance deployment).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { ProjectionLock } from "eventcore"
 *
 * const locks = Effect.runSync(ProjectionLock.makeMemory)
 * ```
 * @since 0.1.0
 */
export const makeMemory: Effect.Effect<ProjectionLock["Service"]> = Effect.sync(() => {
  const semaphores = new Map<string, Semaphore.Semaphore>()
  const semaphoreOf = (name: string) => {
    let semaphore = semaphores.get(name)
    if (semaphore === undefined) {
      semaphore = Semaphore.makeUnsafe(1)
      semaphores.set(name, semaphore)
    }
    return semaphore
  }
  return ProjectionLock.of({
    // nothing outside the process can take an in-process lock away
    acquire: (name) =>
      Effect.as(Semaphore.takeScoped(semaphoreOf(name), 1), { lost: Effect.never, held: Effect.succeed(true) })
  })
})

/**
 * A layer providing the in-process lock.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { ProjectionLock } from "eventcore"
 * import { PostgresCheckpointStore, PostgresDeadLetterStore } from "eventcore/postgres"
 *
 * // A single-instance deployment: checkpoints and dead letters in PostgreSQL, the lock in process.
 * const Projections = Layer.mergeAll(
 *   PostgresCheckpointStore.layer(),
 *   PostgresDeadLetterStore.layer(),
 *   ProjectionLock.layerMemory
 * )
 * ```
 * @since 0.1.0
 */
export const layerMemory: Layer.Layer<ProjectionLock> = Layer.effect(ProjectionLock, makeMemory)
