/**
 * The PostgreSQL projection lock when its connection breaks: a broken session is handled once,
 * whoever finds it (the heartbeat, a `held` check, a failed unlock), so a process keeps one
 * lock connection and runners already on a fresh one keep their locks.
 */
import { assert, layer } from "@effect/vitest"
import { Duration, Effect, Exit, Scope } from "effect"
import * as PostgresProjectionLock from "../../src/postgres/PostgresProjectionLock.ts"
import type { ProjectionLock } from "../../src/ProjectionLock.ts"
import { eventually, raw } from "./fixtures.ts"
import * as Harness from "./harness.ts"

/** A wait that would hang fails instead, saying what it waited for. */
const within = <A, E, R>(effect: Effect.Effect<A, E, R>, what: string) =>
  effect.pipe(
    Effect.timeoutOrElse({
      duration: Duration.seconds(60),
      orElse: () => Effect.die(new Error(`still waiting after 60 s: ${what}`))
    })
  )

/** The backends of this schema's lock connections. */
const lockSessions = Effect.gen(function*() {
  const { schema } = yield* Harness.TestDatabase
  const rows = yield* raw<{ pid: number }>(
    "select pid from pg_stat_activity where application_name = $1",
    [`eventcore projection locks (${schema})`]
  )
  return rows.map((row) => row.pid)
})

/** The backend holding the lock of `name`, if any. */
const holderOf = (name: string) =>
  Effect.gen(function*() {
    const { schema } = yield* Harness.TestDatabase
    const rows = yield* raw<{ pid: number }>(
      `select pid from pg_locks where locktype = 'advisory' and granted and objsubid = 1
        and ((classid::bigint << 32) | objid::bigint) = hashtextextended('eventcore/projection/' || $1 || '/' || $2, 0)`,
      [schema, name]
    )
    return rows[0]?.pid
  })

const terminate = (pid: number | undefined) => raw("select pg_terminate_backend($1)", [pid])

/** A lease in a scope of its own, to release it mid-test. */
const leaseIn = (locks: ProjectionLock["Service"], name: string) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    yield* Effect.addFinalizer((exit) => Scope.close(scope, exit))
    const lease = yield* Scope.provide(locks.acquire(name), scope)
    return { lease, release: Scope.close(scope, Exit.void) }
  })

layer(Harness.layer({ maxConnections: 3 }), { excludeTestServices: true, timeout: "120 seconds" })(
  "PostgreSQL projection lock, broken sessions",
  (it) => {
    it.effect("found broken by the heartbeat, then by a held check and a release: the fresh session stays the only one", () =>
      Effect.scoped(Effect.gen(function*() {
        const { schema } = yield* Harness.TestDatabase
        const locks = yield* PostgresProjectionLock.make({
          schema,
          pollInterval: "100 millis",
          heartbeat: "100 millis"
        })
        const first = yield* leaseIn(locks, "first")
        const [broken] = yield* lockSessions
        assert.isDefined(broken)
        yield* terminate(broken)
        yield* within(first.lease.lost, "the heartbeat notices the lock connection is gone")
        // runners re-acquire at once, and get a fresh session (the broken one left the ref
        // before its leases heard of the loss)
        const second = yield* locks.acquire("second")
        // later, the held check and the release of the old lease find the old session broken too
        assert.isFalse(yield* first.lease.held ?? Effect.succeed(true))
        yield* first.release
        const third = yield* locks.acquire("third")

        yield* eventually(
          Effect.flatMap(
            lockSessions,
            (pids) => pids.includes(broken) ? Effect.fail("the terminated backend is still there") : Effect.void
          )
        )
        const sessions = yield* lockSessions
        assert.strictEqual(sessions.length, 1, "one lock connection")
        assert.strictEqual(yield* holderOf("second"), sessions[0])
        assert.strictEqual(yield* holderOf("third"), sessions[0])
        assert.isTrue(yield* second.held ?? Effect.succeed(false))
        assert.isTrue(yield* third.held ?? Effect.succeed(false))
      })))

    it.effect("a release that fails loses the session's other leases at once; the next lease gets a fresh session", () =>
      Effect.scoped(Effect.gen(function*() {
        const { schema } = yield* Harness.TestDatabase
        // no heartbeat during the test: only the failed unlock can find the broken session
        const locks = yield* PostgresProjectionLock.make({ schema, pollInterval: "100 millis", heartbeat: "1 hour" })
        const first = yield* leaseIn(locks, "first")
        const other = yield* locks.acquire("other")
        const [broken] = yield* lockSessions
        assert.isDefined(broken)
        yield* terminate(broken)
        yield* first.release
        yield* within(other.lost, "the other lease on the broken session is lost")
        const next = yield* locks.acquire("next")
        assert.isTrue(yield* next.held ?? Effect.succeed(false))
        const holder = yield* holderOf("next")
        assert.notStrictEqual(holder, broken)
        yield* eventually(
          Effect.flatMap(
            lockSessions,
            (pids) => pids.includes(holder ?? -1) && pids.length === 1 ? Effect.void : Effect.fail(pids)
          )
        )
      })))
  }
)
