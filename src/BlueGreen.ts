/**
 * Blue/green rebuilds of read models: a new version of a read model is built beside the live
 * one, under its own name (checkpoint, lock, dead letters) and its own tables, while the old
 * one keeps serving; once the new one has caught up it is promoted, and readers in every
 * process answer from it. The version readers are served from — the active version — is
 * stored (`ActiveVersions`: in memory, or the store schema's `read_model_versions` table), so
 * all processes agree and a restart keeps it.
 *
 * `ReadModel.blueGreen` serves several versions as one read model; `PostgresBlueGreen` lists,
 * promotes and retires versions from the store alone (the CLI's `read-models` commands).
 *
 * @since 0.3.0
 */
import { Context, Effect, Layer, Schema } from "effect"
import { type EventStoreError, InvalidInput } from "./Errors.ts"

/**
 * A read model version: an integer from 1.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { BlueGreen } from "eventcore"
 *
 * Schema.decodeUnknownSync(BlueGreen.Version)(2) // 2
 * ```
 * @since 0.3.0
 */
export const Version = Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))

/**
 * Parses a version, failing with `InvalidInput` naming the read model.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { BlueGreen } from "eventcore"
 *
 * Effect.runSync(BlueGreen.parseVersion("orders", 2)) // 2
 * BlueGreen.parseVersion("orders", 0) // fails with InvalidInput
 * ```
 * @since 0.3.0
 */
export const parseVersion = (name: string, version: unknown): Effect.Effect<number, InvalidInput> =>
  Schema.decodeUnknownEffect(Version)(version).pipe(
    Effect.mapError((error) => InvalidInput.fromIssue(`version of read model ${name}`, error.issue))
  )

/**
 * The name a version of a read model runs under — its checkpoint, lock and dead letters:
 * version 1 is the read model's own name (so a read model that predates versions is its
 * version 1, with nothing to rebuild), version `n` is `<name>@v<n>`.
 *
 * @example
 * ```ts
 * import { BlueGreen } from "eventcore"
 *
 * BlueGreen.versionedName("orders", 1) // "orders"
 * BlueGreen.versionedName("orders", 2) // "orders@v2"
 * ```
 * @since 0.3.0
 */
export const versionedName = (name: string, version: number): string => version === 1 ? name : `${name}@v${version}`

/**
 * The version a versioned name stands for, when it is `name` or `<name>@v<n>`.
 *
 * @example
 * ```ts
 * import { BlueGreen } from "eventcore"
 *
 * BlueGreen.versionOf("orders", "orders@v3") // 3
 * BlueGreen.versionOf("orders", "orders") // 1
 * BlueGreen.versionOf("orders", "invoices") // undefined
 * ```
 * @since 0.3.0
 */
export const versionOf = (name: string, versioned: string): number | undefined => {
  if (versioned === name) return 1
  if (!versioned.startsWith(`${name}@v`)) return undefined
  const digits = versioned.slice(name.length + 2)
  return /^[1-9][0-9]{0,8}$/.test(digits) ? Number(digits) : undefined
}

/**
 * A table name for one version of a read model: `base` for version 1, `<base>_v<n>` after,
 * so that each version writes its own tables while the others serve.
 *
 * @example
 * ```ts
 * import { BlueGreen } from "eventcore"
 *
 * BlueGreen.tableName("app.orders", 1) // "app.orders"
 * BlueGreen.tableName("app.orders", 2) // "app.orders_v2"
 * ```
 * @since 0.3.0
 */
export const tableName = (base: string, version: number): string => version === 1 ? base : `${base}_v${version}`

/**
 * A version was asked to serve before it has caught up: readers would see less than the
 * version serving now. Nothing changed. Promote it once it has caught up, or force it.
 *
 * @example
 * ```ts
 * import { BlueGreen } from "eventcore"
 *
 * new BlueGreen.NotCaughtUp({ name: "orders", version: 2, detail: "12 events behind" }).message
 * // "Version 2 of read model orders has not caught up (12 events behind); promote it once it has, or force it"
 * ```
 * @since 0.3.0
 */
export class NotCaughtUp extends Schema.TaggedError<NotCaughtUp>()("NotCaughtUp", {
  name: Schema.String,
  version: Schema.Number,
  /** How far behind, or why it cannot tell. */
  detail: Schema.String
}) {
  override get message(): string {
    return `Version ${this.version} of read model ${this.name} has not caught up (${this.detail}); promote it once it has, or force it`
  }
}

/**
 * A version that does not exist was asked to serve: this process has no such version (in
 * `ReadModel.blueGreen`), or the store has no checkpoint for it (it never ran). Nothing changed.
 *
 * @example
 * ```ts
 * import { BlueGreen } from "eventcore"
 *
 * new BlueGreen.UnknownVersion({ name: "orders", version: 3, known: [1, 2] }).message
 * // "Read model orders has no version 3 (known: 1, 2)"
 * ```
 * @since 0.3.0
 */
export class UnknownVersion extends Schema.TaggedError<UnknownVersion>()("UnknownVersion", {
  name: Schema.String,
  version: Schema.Number,
  known: Schema.Array(Schema.Number)
}) {
  override get message(): string {
    return `Read model ${this.name} has no version ${this.version} (known: ${this.known.join(", ") || "none"})`
  }
}

/**
 * A version cannot be retired: it is the active one, or a runner still runs it. Nothing changed.
 *
 * @example
 * ```ts
 * import { BlueGreen } from "eventcore"
 *
 * new BlueGreen.RetireRefused({ name: "orders", version: 2, detail: "it is the active version" }).message
 * // "Version 2 of read model orders cannot be retired: it is the active version"
 * ```
 * @since 0.3.0
 */
export class RetireRefused extends Schema.TaggedError<RetireRefused>()("RetireRefused", {
  name: Schema.String,
  version: Schema.Number,
  detail: Schema.String
}) {
  override get message(): string {
    return `Version ${this.version} of read model ${this.name} cannot be retired: ${this.detail}`
  }
}

/**
 * Where the active version of each read model is kept: shared by every process using the
 * store (PostgreSQL: the `read_model_versions` table, `PostgresBlueGreen.layer`, part of
 * `PostgresProjection.layer`; in memory: `layerMemory`, part of `MemoryProjections.layer`).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { BlueGreen } from "eventcore"
 *
 * const program = Effect.gen(function*() {
 *   const versions = yield* BlueGreen.ActiveVersions
 *   yield* versions.initialize("orders", 1)
 *   yield* versions.activate("orders", 2)
 *   return yield* versions.get("orders") // 2
 * }).pipe(Effect.provide(BlueGreen.layerMemory))
 * ```
 * @since 0.3.0
 */
export class ActiveVersions extends Context.Service<ActiveVersions, {
  /** The active version, or `undefined` when none is recorded (version 1 serves then). */
  readonly get: (name: string) => Effect.Effect<number | undefined, EventStoreError>
  /** Records `version` as active unless a version is recorded already; returns the active one. */
  readonly initialize: (name: string, version: number) => Effect.Effect<number, EventStoreError>
  /**
   * Makes `version` the active one; with `onlyUpward`, only when the active one is older (a
   * process promoting automatically never takes a newer version back). Returns the active one.
   */
  readonly activate: (
    name: string,
    version: number,
    options?: { readonly onlyUpward?: boolean | undefined }
  ) => Effect.Effect<number, EventStoreError>
}>()("eventcore/BlueGreen/ActiveVersions") {}

/**
 * Active versions in memory, for one process.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { BlueGreen } from "eventcore"
 *
 * const versions = Effect.runSync(BlueGreen.makeMemory)
 * ```
 * @since 0.3.0
 */
export const makeMemory: Effect.Effect<ActiveVersions["Service"]> = Effect.sync(() => {
  const active = new Map<string, number>()
  return ActiveVersions.of({
    get: (name) => Effect.sync(() => active.get(name)),
    initialize: (name, version) =>
      Effect.sync(() => {
        const current = active.get(name)
        if (current !== undefined) return current
        active.set(name, version)
        return version
      }),
    activate: (name, version, options) =>
      Effect.sync(() => {
        const current = active.get(name)
        if (options?.onlyUpward === true && current !== undefined && current >= version) return current
        active.set(name, version)
        return version
      })
  })
})

/**
 * A layer of in-memory active versions (included in `MemoryProjections.layer`).
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { BlueGreen } from "eventcore"
 * import { MemoryEventStore } from "eventcore/memory"
 *
 * const Live = Layer.mergeAll(MemoryEventStore.layer, BlueGreen.layerMemory)
 * ```
 * @since 0.3.0
 */
export const layerMemory: Layer.Layer<ActiveVersions> = Layer.effect(ActiveVersions, makeMemory)
