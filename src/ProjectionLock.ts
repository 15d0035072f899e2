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
 * @since 0.1.0
 */
export interface Lease {
  /**
   * Completes if the lock is lost while held (for PostgreSQL: the connection holding it
   * broke, so another process may hold it now). A runner stops processing when it does.
   */
  readonly lost: Effect.Effect<void>
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
    acquire: (name) => Effect.as(Semaphore.takeScoped(semaphoreOf(name), 1), { lost: Effect.never })
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
