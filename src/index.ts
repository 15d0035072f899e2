/**
 * EventCore for Effect: multi-stream event sourcing with dynamic consistency boundaries.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { type Command, CommandExecutor } from "eventcore"
 * import { MemoryEventStore } from "eventcore/memory"
 *
 * declare const Transfer: Command.Any // a command of your domain (see `Command.make`)
 *
 * const program = CommandExecutor.execute(Transfer, { from: "alice", to: "bob", amount: 10 }).pipe(
 *   Effect.provide(CommandExecutor.layer().pipe(Layer.provide(MemoryEventStore.layer)))
 * )
 * ```
 * @since 0.1.0
 */
export * as BlueGreen from "./BlueGreen.ts"
export * as CheckpointStore from "./CheckpointStore.ts"
export * as Command from "./Command.ts"
export * as CommandExecutor from "./CommandExecutor.ts"
export * as DeadLetterStore from "./DeadLetterStore.ts"
export {
  BusinessRuleViolation,
  ConcurrencyConflict,
  DiscoveryLimitExceeded,
  EventDecodeError,
  EventStoreError,
  InvalidInput,
  TransactionAlreadyWritten,
  UndeclaredStream,
  VersionMismatch
} from "./Errors.ts"
export * as Event from "./Event.ts"
export * as EventId from "./EventId.ts"
export * as EventStore from "./EventStore.ts"
export * as Health from "./Health.ts"
export * as Metadata from "./Metadata.ts"
export * as Metrics from "./Metrics.ts"
export * as Position from "./Position.ts"
export * as Projection from "./Projection.ts"
export * as ProjectionLock from "./ProjectionLock.ts"
export * as ProjectionRunner from "./ProjectionRunner.ts"
export * as ReadModel from "./ReadModel.ts"
export * as Serializer from "./Serializer.ts"
export * as StorableJson from "./StorableJson.ts"
export * as StoredEvent from "./StoredEvent.ts"
export * as StreamCategory from "./StreamCategory.ts"
export * as StreamId from "./StreamId.ts"
export * as Subscription from "./Subscription.ts"
