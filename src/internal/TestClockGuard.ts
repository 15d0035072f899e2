/**
 * Retries that would wait on a `TestClock` nobody moves. Under `it.effect` (and
 * `TestLayers.memory()`) time stands still until the test adjusts it, so a retry schedule
 * that sleeps — the executor's default, or a `retry` passed to `execute` — leaves the test
 * hanging until the runner's timeout, with nothing saying why. Each delay is waited for on the
 * test clock as usual; if the clock has not reached the wake-up time after `grace` of real
 * time, the execution dies with a message saying what to do instead.
 *
 * @internal
 */
import { Clock, Duration, Effect, Schedule } from "effect"

/** Real time a retry may wait on a test clock before we call it stuck. */
const grace = Duration.seconds(2)

interface TestClockLike extends Clock.Clock {
  readonly withLive: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  readonly adjust: (duration: Duration.Input) => Effect.Effect<void>
}

const isTestClock = (clock: Clock.Clock): clock is TestClockLike =>
  "withLive" in clock && "adjust" in clock && typeof clock.withLive === "function"

const stuckMessage = (what: string, delay: Duration.Duration): string =>
  `eventcore: ${what} waited ${Duration.format(delay)} on a TestClock that nobody advanced: under it.effect ` +
  "time stands still, so a retry that sleeps never wakes. Run the test on the live clock (it.live, or " +
  "layer(..., { excludeTestServices: true })), give the execution a schedule that does not sleep " +
  "(e.g. Schedule.recurs(5), as TestLayers.defaultRetry does), or advance the clock with TestClock.adjust."

/**
 * The schedule, waiting out each delay itself: on a test clock, racing a live timer.
 */
export const guard = <O, I, E, R>(
  schedule: Schedule.Schedule<O, I, E, R>,
  what: () => string
): Schedule.Schedule<O, I, E, R> =>
  Schedule.modifyDelay(schedule, ({ duration }) =>
    Clock.clockWith((clock) => {
      if (!isTestClock(clock) || Duration.isZero(duration)) return Effect.succeed(duration)
      const stuck = clock.withLive(Effect.sleep(grace)).pipe(
        Effect.andThen(Effect.suspend(() => Effect.die(new Error(stuckMessage(what(), duration)))))
      )
      // Waited here, on the test clock; the schedule itself then goes on at once.
      return Effect.raceFirst(Effect.as(Effect.sleep(duration), Duration.zero), stuck)
    }))
