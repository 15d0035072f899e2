/** How server error codes become the store's typed errors. */
import { assert, describe, it } from "@effect/vitest"
import { SqlError, UnknownError } from "effect/sql/SqlError"
import { fromAppendError, fromSqlError } from "../../src/postgres/errors.ts"
import * as StreamId from "../../src/StreamId.ts"

const serverError = (code: string) =>
  new SqlError({ reason: new UnknownError({ cause: Object.assign(new Error(`server said ${code}`), { code }) }) })

describe("PostgreSQL error mapping", () => {
  it("a lost or refused connection is transient: terminated backends, class 08, out of resources (class 53)", () => {
    for (const code of ["57P01", "08006", "53300", "53200"]) {
      const error = fromSqlError("readStreams", serverError(code))
      assert.isTrue(error.transient, code)
    }
  })

  it("other server errors are not transient", () => {
    for (const code of ["42P01", "22P02"]) {
      assert.isFalse(fromSqlError("readStreams", serverError(code)).transient, code)
    }
  })

  it("contention during an append is a ConcurrencyConflict over the boundary, with the version unknown", () => {
    const streamId = StreamId.makeUnsafe("a")
    const error = fromAppendError(serverError("40P01"), [{ streamId, expected: 3 }])
    assert.strictEqual(error._tag, "ConcurrencyConflict")
    if (error._tag === "ConcurrencyConflict") {
      assert.deepStrictEqual(error.conflicts, [{ streamId, expected: 3, actual: null }])
    }
  })
})
