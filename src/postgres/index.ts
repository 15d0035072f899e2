/**
 * The PostgreSQL backend:
 * `import { PostgresEventStore, PostgresProjection, Migrations } from "eventcore/postgres"`.
 *
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 */
export * as Migrations from "./Migrations.ts"

/**
 * @since 0.3.0
 */
export * as PostgresBlueGreen from "./PostgresBlueGreen.ts"

/**
 * @since 0.1.0
 */
export * as PostgresCheckpointStore from "./PostgresCheckpointStore.ts"

/**
 * @since 0.1.0
 */
export * as PostgresDeadLetterStore from "./PostgresDeadLetterStore.ts"

/**
 * @since 0.1.0
 */
export * as PostgresEventStore from "./PostgresEventStore.ts"

/**
 * @since 0.3.0
 */
export * as PostgresHealth from "./PostgresHealth.ts"

/**
 * @since 0.1.0
 */
export * as PostgresProjection from "./PostgresProjection.ts"

/**
 * @since 0.1.0
 */
export * as PostgresProjectionLock from "./PostgresProjectionLock.ts"
export * as PostgresReadModel from "./PostgresReadModel.ts"

/**
 * @since 0.2.0
 */
export * as Restore from "./Restore.ts"
