/**
 * The banking demo as a function of its settings, so `main.ts` runs it on whichever store
 * is configured and a test runs it small.
 */
import { Clock, Console, Effect, Random, Result } from "effect"
import { CommandExecutor, EventStore, Position, StreamId } from "eventcore"
import { AccountEvents, balanceDelta, Deposit, OpenAccount, Transfer } from "./Account.ts"
import * as Balances from "./Balances.ts"

export interface Settings {
  /** Prefixes every account id, so runs against a persistent store do not meet. */
  readonly prefix: string
  readonly accounts: number
  readonly initialBalance: number
  readonly transfers: number
  readonly fibers: number
}

export interface Report {
  readonly commands: number
  readonly transfersCommitted: number
  readonly transfersRejected: number
  readonly conflictsRetried: number
  readonly transfersGaveUp: number
  readonly totalBefore: number
  readonly totalAfter: number
  readonly readModelTotal: number
  readonly transfersPerSecond: number
}

/** A balance read model the demo can wait for: in memory (`Balances`) or in PostgreSQL. */
export interface ReadModel {
  readonly current: Effect.Effect<Balances.Balances>
  readonly awaitPosition: (position: Position.Position) => Effect.Effect<void, unknown>
}

/**
 * Opens the accounts, runs the transfers from many fibers, and checks that money was
 * conserved, in the events and in the read model (in memory unless another is given).
 */
export const run = <E = never, R = never>(settings: Settings, startReadModel?: Effect.Effect<ReadModel, E, R>) =>
  Effect.scoped(Effect.gen(function*() {
    const readModel: ReadModel = startReadModel === undefined
      ? yield* Balances.start(settings.prefix)
      : yield* startReadModel
    const ids = Array.from(
      { length: settings.accounts },
      (_, i) => StreamId.makeUnsafe(`${settings.prefix}account-${String(i).padStart(4, "0")}`)
    )
    yield* Effect.forEach(
      ids,
      (account, i) =>
        CommandExecutor.execute(OpenAccount, { account, owner: `owner ${i}` }).pipe(
          Effect.andThen(CommandExecutor.execute(Deposit, { account, amount: settings.initialBalance }))
        ),
      { concurrency: 8, discard: true }
    )
    const totalBefore = settings.accounts * settings.initialBalance

    let committed = 0
    let rejected = 0
    let retried = 0
    let gaveUp = 0
    const perFiber = Math.ceil(settings.transfers / settings.fibers)
    const worker = Effect.forEach(Array.from({ length: perFiber }), () =>
      Effect.gen(function*() {
        const from = ids[yield* Random.nextIntBetween(0, ids.length, { halfOpen: true })] as StreamId.StreamId
        const to = ids[yield* Random.nextIntBetween(0, ids.length, { halfOpen: true })] as StreamId.StreamId
        const amount = yield* Random.nextIntBetween(1, settings.initialBalance / 2)
        const result = yield* Effect.result(CommandExecutor.execute(Transfer, { from, to, amount }))
        if (Result.isSuccess(result)) {
          committed++
          retried += result.success.attempts - 1
        } else if (result.failure._tag === "BusinessRuleViolation") {
          rejected++
        } else if (result.failure._tag === "ConcurrencyConflict") {
          // Still conflicting after every retry the schedule allowed: nothing was written.
          gaveUp++
        } else {
          return yield* result.failure
        }
      }), { discard: true })

    const started = yield* Clock.currentTimeMillis
    yield* Effect.forEach(Array.from({ length: settings.fibers }), () => worker, {
      concurrency: "unbounded",
      discard: true
    })
    const elapsed = Math.max(1, (yield* Clock.currentTimeMillis) - started)

    const reads = yield* EventStore.EventStore.use((store) => store.readStreams(ids))
    let totalAfter = 0
    let newest = Position.initial
    for (const read of reads) {
      for (const stored of read.events) {
        const decoded = AccountEvents.decode(stored)
        if (Result.isFailure(decoded)) return yield* decoded.failure
        totalAfter += balanceDelta(decoded.success)
        if (Position.isAfter(stored.position, newest)) newest = stored.position
      }
    }
    // Wait for this run's newest event, not the store's head: on PostgreSQL the head is the
    // last event global readers may see, which trails what has committed while any other
    // transaction on the server is still open.
    yield* readModel.awaitPosition(newest)
    const model = yield* readModel.current
    // A persistent read model holds earlier runs' accounts too: count this run's.
    const readModelTotal = ids.reduce((sum, id) => sum + (model.balances.get(id) ?? 0), 0)

    return {
      commands: settings.accounts * 2 + perFiber * settings.fibers,
      transfersCommitted: committed,
      transfersRejected: rejected,
      conflictsRetried: retried,
      transfersGaveUp: gaveUp,
      totalBefore,
      totalAfter,
      readModelTotal,
      transfersPerSecond: Math.round((perFiber * settings.fibers) / (elapsed / 1000))
    } satisfies Report
  }))

export const print = (report: Report, store: string) =>
  Console.log(
    [
      `EventCore banking demo on the ${store} store`,
      `  commands executed:    ${report.commands}`,
      `  transfers committed:  ${report.transfersCommitted}`,
      `  transfers rejected:   ${report.transfersRejected} (insufficient funds or same account)`,
      `  conflicts retried:    ${report.conflictsRetried}`,
      `  gave up (conflicts):  ${report.transfersGaveUp} (still conflicting after 5 attempts; nothing written)`,
      `  throughput:           ${report.transfersPerSecond} transfers/s`,
      `  total before:         ${report.totalBefore}`,
      `  total after (events): ${report.totalAfter}`,
      `  total (read model):   ${report.readModelTotal}`,
      report.totalBefore === report.totalAfter && report.totalAfter === report.readModelTotal
        ? "  money conserved: yes"
        : "  money conserved: NO"
    ].join("\n")
  )
