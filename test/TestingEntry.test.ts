/**
 * `eventcore/testing` resolves at runtime to src/testing/entry.ts (which names missing optional
 * peers) while its types come from src/testing/index.ts: the two must export the same values,
 * or a consumer would compile against an export that is undefined at runtime.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Entry from "../src/testing/entry.ts"
import * as Kit from "../src/testing/index.ts"

describe("eventcore/testing's runtime entry", () => {
  it("exports exactly what its types declare, the same values", () => {
    assert.deepStrictEqual(Object.keys(Entry).toSorted(), Object.keys(Kit).toSorted())
    for (const name of Object.keys(Kit) as Array<keyof typeof Kit>) {
      assert.strictEqual(Entry[name as keyof typeof Entry], Kit[name], name)
    }
  })
})
