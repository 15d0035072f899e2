/**
 * The PostgreSQL backend: `import { PostgresEventStore, Migrations } from "eventcore/postgres"`.
 *
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 */
export * as Migrations from "./Migrations.ts"

/**
 * @since 0.1.0
 */
export * as PostgresEventStore from "./PostgresEventStore.ts"
