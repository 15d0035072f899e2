/**
 * `streams list | show` and `events tail` on a store populated through the library, plus a row
 * written by hand that the library cannot read (shown raw and flagged, never hidden).
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import * as Harness from "../postgres/harness.ts"
import { cli, databaseUrl, deposit, dropSchema, json, query, start } from "./harness.ts"

const schema = Harness.freshSchemaName()
let url = ""
const env = () => ({ DATABASE_URL: url })

beforeAll(async () => {
  url = await databaseUrl()
  await deposit(url, schema, [["1", 5], ["1", 7], ["2", 1]])
  // As 0.1.0 could write it (docs/operations.md): metadata that is not EventCore metadata.
  await query(
    `with s as (insert into ${schema}.streams (stream_id, version) values ('legacy-1', 1))
     insert into ${schema}.events (event_id, stream_id, stream_version, type, schema_version, payload, metadata, recorded_at)
     values (gen_random_uuid(), 'legacy-1', 1, 'Imported', 1, '{"note":"by hand"}', '{"userId":42}', now())`
  )
})
afterAll(() => dropSchema(schema))

describe("streams", () => {
  it("list: ids and versions as a table, --prefix, --limit, --json", async () => {
    const [all, prefixed, limited, asJson] = await Promise.all([
      cli(["streams", "list", "--schema", schema], env()),
      cli(["streams", "list", "--prefix", "account-2", "--schema", schema], env()),
      cli(["streams", "list", "--limit", "1", "--schema", schema], env()),
      cli(["streams", "list", "--json", "--schema", schema], env())
    ])
    assert.strictEqual(all.code, 0, all.stderr)
    const lines = all.stdout.trim().split("\n")
    assert.match(lines[0] ?? "", /^STREAM\s+VERSION\s+LAST EVENT AT$/)
    assert.match(lines[1] ?? "", /^account-1\s+2\s+\d{4}-/)
    assert.match(lines[2] ?? "", /^account-2\s+1\s+/)
    assert.match(lines[3] ?? "", /^legacy-1\s+1\s+/)
    assert.strictEqual(prefixed.stdout.trim().split("\n").length, 2)
    assert.include(prefixed.stdout, "account-2")
    assert.include(limited.stdout, "(more than 1: narrow with --prefix or raise --limit)")
    const parsed = json<{ streams: Array<{ streamId: string; version: number }>; more: boolean }>(asJson)
    assert.deepStrictEqual(parsed.streams.map((s) => [s.streamId, s.version]), [
      ["account-1", 2],
      ["account-2", 1],
      ["legacy-1", 1]
    ])
    assert.isFalse(parsed.more)
  })

  it("show: every event with version, type, metadata and payload; an unreadable row flagged; unknown: exit 4", async () => {
    const [shown, asJson, legacy, unknown] = await Promise.all([
      cli(["streams", "show", "account-1", "--schema", schema], env()),
      cli(["streams", "show", "account-1", "--json", "--schema", schema], env()),
      cli(["streams", "show", "legacy-1", "--json", "--schema", schema], env()),
      cli(["streams", "show", "account-404", "--schema", schema], env())
    ])
    assert.strictEqual(shown.code, 0, shown.stderr)
    assert.include(shown.stdout, "Stream account-1: version 2")
    assert.match(shown.stdout, /#1 {2}Deposited \(schema v1\) {2}position \d+\.\d+/)
    assert.include(shown.stdout, `payload:  {"_tag":"Deposited","amount":5}`)
    assert.include(shown.stdout, `payload:  {"_tag":"Deposited","amount":7}`)
    assert.match(shown.stdout, /metadata: \{.*"correlationId"/)
    const events = json<{ events: Array<{ streamVersion: number; payload: unknown; readable: boolean }> }>(asJson)
      .events
    assert.deepStrictEqual(events.map((e) => [e.streamVersion, e.payload, e.readable]), [
      [1, { _tag: "Deposited", amount: 5 }, true],
      [2, { _tag: "Deposited", amount: 7 }, true]
    ])
    const raw = json<{ events: Array<{ readable: boolean; problem: string; metadata: unknown; payload: unknown }> }>(
      legacy
    ).events[0]
    assert.isFalse(raw?.readable)
    assert.include(raw?.problem, "not EventCore metadata")
    assert.deepStrictEqual(raw?.metadata, { userId: 42 })
    assert.deepStrictEqual(raw?.payload, { note: "by hand" })
    assert.strictEqual(unknown.code, 4)
    assert.include(unknown.stderr, `No stream "account-404" in schema ${schema}.`)
  })

  it("show in a table: the unreadable row says so", async () => {
    const outcome = await cli(["streams", "show", "legacy-1", "--schema", schema], env())
    assert.strictEqual(outcome.code, 0, outcome.stderr)
    assert.include(outcome.stdout, "UNREADABLE: the stored metadata is not EventCore metadata")
    assert.include(outcome.stdout, `metadata: {"userId":42}`)
    assert.include(outcome.stdout, "1 event(s) cannot be read by the library")
  })
})

describe("events tail", () => {
  it("--from start prints the history in the global order; --filter, --type and --limit narrow it", async () => {
    const [history, filtered, typed, asJson, badFrom] = await Promise.all([
      cli(["events", "tail", "--from", "start", "--limit", "4", "--schema", schema], env()),
      cli(["events", "tail", "--from", "start", "--filter", "account-2", "--limit", "1", "--schema", schema], env()),
      cli(["events", "tail", "--from", "start", "--type", "Imported", "--limit", "1", "--schema", schema], env()),
      cli(["events", "tail", "--from", "start", "--limit", "2", "--json", "--schema", schema], env()),
      cli(["events", "tail", "--from", "yesterday", "--schema", schema], env())
    ])
    assert.strictEqual(history.code, 0, history.stderr)
    const lines = history.stdout.trim().split("\n")
    assert.lengthOf(lines, 4)
    assert.match(lines[0] ?? "", /^\d+\.\d+ {2}\S+ {2}account-1@1 {2}Deposited {2}\{"_tag":"Deposited","amount":5\}$/)
    assert.match(lines[1] ?? "", /account-1@2 {2}Deposited/)
    assert.match(lines[2] ?? "", /account-2@1 {2}Deposited/)
    assert.match(lines[3] ?? "", /legacy-1@1 {2}Imported {2}UNREADABLE \(the stored metadata/)
    assert.match(filtered.stdout.trim(), /^\S+ {2}\S+ {2}account-2@1 {2}Deposited/)
    assert.match(typed.stdout.trim(), /legacy-1@1 {2}Imported/)
    const objects = asJson.stdout.trim().split("\n").map((line) => JSON.parse(line) as { streamId: string })
    assert.deepStrictEqual(objects.map((o) => o.streamId), ["account-1", "account-1"])
    assert.strictEqual(badFrom.code, 2)
    assert.include(badFrom.stderr, "--from: \"yesterday\" is not a position")
  })

  it("follows live: prints what is appended after it is ready, stops at --limit", async () => {
    // From the last committed event rather than the visible head: another test file's open
    // transaction may hold the read horizon, and the head would then lag the events above.
    const last = await query<{ at: string }>(
      `select tx_id::text || '.' || position::text as at from ${schema}.events order by tx_id desc, position desc limit 1`
    )
    const from = last[0]?.at ?? "0.0"
    const tail = start(
      ["events", "tail", "--from", from, "--filter", "account-", "--limit", "2", "--json", "--schema", schema],
      env()
    )
    await tail.printed(/following .* \(Ctrl-C to stop\)/)
    await deposit(url, schema, [["3", 30], ["4", 40]])
    const outcome = await tail.done
    assert.strictEqual(outcome.code, 0, outcome.stderr)
    const printed = outcome.stdout.trim().split("\n").map((line) =>
      JSON.parse(line) as { streamId: string; payload: unknown }
    )
    assert.deepStrictEqual(printed.map((e) => [e.streamId, e.payload]), [
      ["account-3", { _tag: "Deposited", amount: 30 }],
      ["account-4", { _tag: "Deposited", amount: 40 }]
    ])
  })

  it("stops on Ctrl-C with exit 130", async () => {
    const tail = start(["events", "tail", "--schema", schema], env())
    await tail.printed(/following/)
    tail.child.kill("SIGINT")
    const outcome = await tail.done
    assert.strictEqual(outcome.code, 130, outcome.stderr)
  })
})
