/**
 * A conference seat-booking app written the way a new user would, from the README and docs
 * only: categories for stream names, the state type stated once, refusals under named rules,
 * a pure decision, scenarios on memory, and the same concurrency test on memory and on
 * PostgreSQL. No casts and no helpers of its own: if this needs one, the API does.
 */
import { assert, describe, it, layer } from "@effect/vitest"
import { Effect, Schedule, Schema } from "effect"
import { Command, CommandExecutor, Event, StreamCategory } from "eventcore"
import { Scenario, TestLayers } from "eventcore/testing"
import { PostgresTesting } from "eventcore/testing/postgres"
import * as Harness from "./postgres/harness.ts"

const Session = StreamCategory.make("session")
const Attendee = StreamCategory.make("attendee")

const SessionScheduled = Schema.TaggedStruct("SessionScheduled", { title: Schema.String, capacity: Schema.Int })
const SeatBooked = Schema.TaggedStruct("SeatBooked", { session: Schema.String, attendee: Schema.String })
const Booking = Event.catalog(SessionScheduled, SeatBooked)

interface BookingState {
  readonly capacity: number
  readonly booked: ReadonlySet<string>
  readonly sessionsOfAttendee: ReadonlySet<string>
}

const maxSessionsPerAttendee = 3

const BookSeat = Command.make<
  BookingState,
  "no-such-session" | "session-full" | "already-booked" | "too-many-sessions"
>()(
  "BookSeat",
  {
    input: Schema.Struct({ session: Session.Id, attendee: Attendee.Id }),
    events: Booking,
    streams: ({ attendee, session }) => ({ session, attendee }),
    initial: { capacity: 0, booked: new Set(), sessionsOfAttendee: new Set() },
    apply: (state, event, role) => {
      if (event._tag === "SessionScheduled") return { ...state, capacity: event.capacity }
      return role === "session"
        ? { ...state, booked: new Set(state.booked).add(event.attendee) }
        : { ...state, sessionsOfAttendee: new Set(state.sessionsOfAttendee).add(event.session) }
    },
    decide: ({ input, refusal, state, streams }) => {
      const session = Session.idOf(input.session) ?? ""
      const attendee = Attendee.idOf(input.attendee) ?? ""
      if (state.capacity === 0) return refusal("no-such-session", `${session} is not scheduled`)
      if (state.booked.has(attendee)) return refusal("already-booked", `${attendee} has a seat in ${session}`)
      if (state.booked.size >= state.capacity) return refusal("session-full", `${session} is full`)
      if (state.sessionsOfAttendee.size >= maxSessionsPerAttendee) {
        return refusal("too-many-sessions", `${attendee} has ${maxSessionsPerAttendee} sessions already`)
      }
      const booked = SeatBooked.make({ session, attendee })
      return [streams.session.append(booked), streams.attendee.append(booked)]
    }
  }
)

const ScheduleSession = Command.make("ScheduleSession", {
  input: Schema.Struct({ session: Session.Id, title: Schema.String, capacity: Schema.Int }),
  events: Booking,
  streams: ({ session }) => ({ session }),
  initial: false,
  apply: () => true,
  decide: ({ input, state, streams, refusal }) =>
    state
      ? refusal("already-scheduled", `${input.session} exists`)
      : [streams.session.append(SessionScheduled.make({ title: input.title, capacity: input.capacity }))]
})

/** What a caller does with the refusals: a switch the compiler checks for every rule. */
const explain = (rule: "no-such-session" | "session-full" | "already-booked" | "too-many-sessions") => {
  switch (rule) {
    case "no-such-session":
      return 404
    case "session-full":
    case "already-booked":
    case "too-many-sessions":
      return 409
  }
}

/** Twenty attendees race for five seats: exactly five get one. */
const race = Effect.gen(function*() {
  const session = `race-${Math.random().toString(36).slice(2, 8)}`
  yield* CommandExecutor.execute(ScheduleSession, { session, title: "Effect in anger", capacity: 5 })
  const outcomes = yield* Effect.forEach(
    Array.from({ length: 20 }, (_, n) => n),
    (n) =>
      // Each conflict means another seat was booked, and only five can be: seven attempts suffice.
      CommandExecutor.execute(BookSeat, { session, attendee: `a${n}` }, { retry: Schedule.recurs(10) }).pipe(
        Effect.map(() => 200),
        Effect.catchTag("BusinessRuleViolation", (error) => Effect.succeed(explain(error.rule)))
      ),
    { concurrency: "unbounded" }
  )
  assert.strictEqual(outcomes.filter((status) => status === 200).length, 5)
  assert.strictEqual(outcomes.filter((status) => status === 409).length, 15)
})

describe("a booking app on memory", () => {
  it.effect("books a seat: one event on the session, one on the attendee", () =>
    Scenario.make(BookSeat)
      .given({ [Session.makeUnsafe("s1")]: [SessionScheduled.make({ title: "Keynote", capacity: 2 })] })
      .when({ session: "s1", attendee: "ann" })
      .thenEvents({
        [Session.makeUnsafe("s1")]: [SeatBooked.make({ session: "s1", attendee: "ann" })],
        [Attendee.makeUnsafe("ann")]: [SeatBooked.make({ session: "s1", attendee: "ann" })]
      })
      .pipe(Effect.provide(TestLayers.memory())))

  it.effect("refuses a full session, a second seat, and an unknown session", () =>
    Effect.gen(function*() {
      const given = { [Session.makeUnsafe("s2")]: [SessionScheduled.make({ title: "Workshop", capacity: 1 })] }
      yield* Scenario.make(BookSeat).given(given).when({ session: "s2", attendee: "ann" }).thenEvents({
        [Session.makeUnsafe("s2")]: [SeatBooked.make({ session: "s2", attendee: "ann" })],
        [Attendee.makeUnsafe("ann")]: [SeatBooked.make({ session: "s2", attendee: "ann" })]
      })
      const again = yield* Scenario.make(BookSeat).when({ session: "s2", attendee: "ann" })
        .thenFails("BusinessRuleViolation")
      assert.strictEqual(again.rule, "already-booked")
      const full = yield* Scenario.make(BookSeat).when({ session: "s2", attendee: "bob" }).thenFails(
        "BusinessRuleViolation"
      )
      assert.strictEqual(full.rule, "session-full")
      const missing = yield* Scenario.make(BookSeat).when({ session: "nope", attendee: "bob" })
        .thenFails("BusinessRuleViolation")
      assert.strictEqual(explain(missing.rule), 404)
    }).pipe(Effect.provide(TestLayers.memory())))

  it.effect("twenty attendees, five seats: five bookings", () =>
    race.pipe(Effect.provide(TestLayers.chaos({ chaos: { faults: { yield: 0.5 } } }))))
})

const url = await Effect.runPromise(Harness.databaseUrl)

layer(PostgresTesting.layer({ url }), { excludeTestServices: true })("the same booking app on PostgreSQL", (pg) => {
  pg.effect("twenty attendees, five seats: five bookings", () => race)
})
