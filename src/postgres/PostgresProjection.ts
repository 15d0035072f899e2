/**
 * PostgreSQL read models with exactly-once effects, and the projection services on
 * PostgreSQL.
 *
 * `transactional` builds a projection whose runner writes each batch of events to your
 * tables and advances the checkpoint in the same transaction (`sql.withTransaction`), each
 * event in its own savepoint: after a crash the read model and the checkpoint agree, so no
 * event is applied twice and none is lost. It requires the PostgreSQL `CheckpointStore` on
 * the same `SqlClient` (`layer` below provides it).
 *
 * @since 0.1.0
 */
import type { PgClient } from "@effect/sql-pg"
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { isSqlError, type SqlError } from "effect/sql/SqlError"
import type { ActiveVersions } from "../BlueGreen.ts"
import type { CheckpointStore } from "../CheckpointStore.ts"
import type { DeadLetterStore } from "../DeadLetterStore.ts"
import type { EventStoreError, InvalidInput } from "../Errors.ts"
import type * as Event from "../Event.ts"
import * as Projection from "../Projection.ts"
import type { ProjectionLock } from "../ProjectionLock.ts"
import type { StoredEvent } from "../StoredEvent.ts"
import { fromSqlError } from "./errors.ts"
import * as PostgresBlueGreen from "./PostgresBlueGreen.ts"
import * as PostgresCheckpointStore from "./PostgresCheckpointStore.ts"
import * as PostgresDeadLetterStore from "./PostgresDeadLetterStore.ts"
import * as PostgresProjectionLock from "./PostgresProjectionLock.ts"

/**
 * A projection that applies events to SQL tables and saves its checkpoint in the same
 * transaction: exactly-once effects on the read model. `handle` runs inside the transaction
 * (use the `SqlClient` from context); `reset` clears the tables before a rebuild.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { SqlClient } from "effect/sql"
 * import { Event, ProjectionRunner } from "eventcore"
 * import { PostgresProjection } from "eventcore/postgres"
 *
 * const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Number })
 *
 * const Balances = PostgresProjection.transactional({
 *   name: "balances",
 *   events: Event.catalog(Deposited),
 *   handle: (event, stored) =>
 *     Effect.flatMap(SqlClient.SqlClient, (sql) =>
 *       sql`insert into balances (account, balance) values (${stored.streamId}, ${event.amount})
 *           on conflict (account) do update set balance = balances.balance + excluded.balance`),
 *   reset: Effect.flatMap(SqlClient.SqlClient, (sql) => sql`truncate balances`)
 * })
 * const running = Effect.flatMap(Balances, (projection) => ProjectionRunner.start(projection))
 * ```
 * @since 0.1.0
 */
export const transactional = <E extends Event.Tagged, Err = never, R = never>(
  options: Projection.CommonOptions<E> & {
    readonly handle: (event: E, stored: StoredEvent) => Effect.Effect<void, Err, R>
    readonly reset?: Effect.Effect<void, Err, R> | undefined
  }
): Effect.Effect<
  Projection.Projection<E, void, Err | SqlError | EventStoreError, R>,
  never,
  SqlClient.SqlClient
> =>
  Effect.map(SqlClient.SqlClient, (sql) =>
    Projection.make<E, Err | SqlError | EventStoreError, R>({
      ...options,
      // A lost connection or a deadlock (two zombie batches on the same rows) becomes a
      // transient `EventStoreError`: the runner retries the batch from its checkpoint after a
      // pause instead of faulting, dead-lettering or failing the event over it.
      transaction: (self) =>
        sql.withTransaction(self).pipe(
          Effect.mapError((error) => {
            if (!isSqlError(error)) return error
            const mapped = fromSqlError("projection transaction", error)
            return mapped.transient ? mapped : error
          })
        )
    }))

/**
 * The projection services' schema (the store's, default `"eventcore"`) and lock settings.
 *
 * @example
 * ```ts
 * import { PostgresProjection } from "eventcore/postgres"
 *
 * const options: PostgresProjection.Options = {
 *   schema: "billing",
 *   lock: { pollInterval: "2 seconds" } // a waiting runner tries the lock every 2 seconds
 * }
 * const ProjectionsLive = PostgresProjection.layer(options) // needs a SqlClient and a PgClient
 * ```
 * @since 0.1.0
 */
export interface Options {
  readonly schema?: string | undefined
  /** Lock polling and heartbeat (see `PostgresProjectionLock`). */
  readonly lock?: Omit<PostgresProjectionLock.Options, "schema"> | undefined
}

/**
 * The projection services on PostgreSQL: checkpoints, dead letters and the active versions of
 * blue/green read models on the `SqlClient` in context, in the store's schema, and the
 * cross-process lock on a connection of its own opened with the `PgClient`'s settings.
 *
 * @example
 * ```ts
 * import { PgClient } from "@effect/sql-pg"
 * import { Layer, Redacted } from "effect"
 * import { PostgresEventStore, PostgresProjection } from "eventcore/postgres"
 *
 * const PgClientLive = PgClient.layer({ url: Redacted.make("postgres://postgres@localhost:5432/app") })
 * const Live = Layer.mergeAll(PostgresEventStore.layer(), PostgresProjection.layer()).pipe(
 *   Layer.provideMerge(PgClientLive)
 * )
 * ```
 * @since 0.1.0
 */
export const layer = (
  options?: Options
): Layer.Layer<
  CheckpointStore | DeadLetterStore | ProjectionLock | ActiveVersions,
  InvalidInput | SqlError,
  SqlClient.SqlClient | PgClient.PgClient
> =>
  Layer.mergeAll(
    PostgresCheckpointStore.layer({ schema: options?.schema }),
    PostgresBlueGreen.layer({ schema: options?.schema }),
    PostgresDeadLetterStore.layer({ schema: options?.schema }),
    PostgresProjectionLock.layer({ ...options?.lock, schema: options?.schema })
  )
