/** How server error codes become the store's typed errors. */
import { assert, describe, it } from "@effect/vitest"
import { SqlError, UnknownError } from "effect/sql/SqlError"
import { fromAppendError, fromSqlError } from "../../src/postgres/errors.ts"
import * as StreamId from "../../src/StreamId.ts"

const serverError = (code: string) =>
  new SqlError({ reason: new UnknownError({ cause: Object.assign(new Error(`server said ${code}`), { code }) }) })

describe("PostgreSQL error mapping", () => {
  it("a lost or refused connection is transient: terminated backends, class 08, no connection slot free", () => {
    for (const code of ["57P01", "57P03", "08006", "53300"]) {
      const error = fromSqlError("readStreams", serverError(code))
      assert.isTrue(error.transient, code)
    }
  })

  it("errors that would repeat are not transient: out of (shared) memory, disk full, configuration limits, bad SQL", () => {
    for (const code of ["53200", "53100", "53400", "42P01", "22P02"]) {
      assert.isFalse(fromSqlError("readStreams", serverError(code)).transient, code)
    }
  })

  it("inside a caller's transaction nothing is transient: the transaction is gone with its connection", () => {
    assert.isFalse(fromSqlError("append", serverError("08006"), { inTransaction: true }).transient)
    assert.isFalse(fromSqlError("append", serverError("40001"), { inTransaction: true }).transient)
  })

  it("an append in a transaction that already wrote is TransactionAlreadyWritten; a reused key InvalidInput", () => {
    const streamId = StreamId.makeUnsafe("a")
    const refused = fromAppendError(
      new SqlError({
        reason: new UnknownError({ cause: Object.assign(new Error("refused"), { code: "EC425", detail: "1234" }) })
      }),
      [{ streamId, expected: 0 }]
    )
    assert.strictEqual(refused._tag, "TransactionAlreadyWritten")
    const reused = fromAppendError(
      new SqlError({
        reason: new UnknownError({ cause: Object.assign(new Error("reused"), { code: "EC422", detail: "k-1" }) })
      }),
      [{ streamId, expected: 0 }]
    )
    assert.strictEqual(reused._tag, "InvalidInput")
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
