/**
 * PostgreSQL for tests: `import { PostgresTesting } from "eventcore/testing/postgres"`. Needs
 * `@effect/sql-pg` (an optional peer of eventcore), and nothing from the rest of the test kit.
 *
 * @since 0.3.0
 */
export * as PostgresTesting from "../PostgresTesting.ts"
