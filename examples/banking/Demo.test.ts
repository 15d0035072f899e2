import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { TestLayers } from "eventcore/testing"
import * as Demo from "./Demo.ts"

describe("banking demo", () => {
  it.effect("conserves money across concurrent transfers, in the events and in the read model", () =>
    Effect.gen(function*() {
      const report = yield* Demo.run({ prefix: "", accounts: 20, initialBalance: 1_000, transfers: 2_048, fibers: 32 })
      assert.strictEqual(report.totalBefore, 20_000)
      assert.strictEqual(report.totalAfter, report.totalBefore)
      assert.strictEqual(report.readModelTotal, report.totalBefore)
      assert.strictEqual(report.transfersCommitted + report.transfersRejected + report.transfersGaveUp, 2_048)
      assert.isAbove(report.transfersCommitted, 0)
      assert.isAbove(report.transfersRejected, 0)
    }).pipe(Effect.provide(TestLayers.memory({ seed: "demo" }))))
})
