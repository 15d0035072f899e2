/**
 * EventCore for Effect: multi-stream event sourcing with dynamic consistency boundaries.
 *
 * @example
 * ```ts
 * import { Command, CommandExecutor, Event, EventStore, StreamId, Subscription } from "eventcore"
 * ```
 * @since 0.1.0
 */
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
  UndeclaredStream,
  VersionMismatch
} from "./Errors.ts"
export * as Event from "./Event.ts"
export * as EventId from "./EventId.ts"
export * as EventStore from "./EventStore.ts"
export * as Metadata from "./Metadata.ts"
export * as Position from "./Position.ts"
export * as Projection from "./Projection.ts"
export * as ProjectionLock from "./ProjectionLock.ts"
export * as ProjectionRunner from "./ProjectionRunner.ts"
export * as Serializer from "./Serializer.ts"
export * as StoredEvent from "./StoredEvent.ts"
export * as StreamId from "./StreamId.ts"
export * as Subscription from "./Subscription.ts"
