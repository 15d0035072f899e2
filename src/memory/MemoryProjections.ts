/**
 * Everything a projection runner needs besides the event store, in memory: checkpoints,
 * dead letters, an in-process lock, and the active versions of blue/green read models.
 *
 * @since 0.1.0
 */
import { Layer } from "effect"
import * as BlueGreen from "../BlueGreen.ts"
import type { CheckpointStore } from "../CheckpointStore.ts"
import type { DeadLetterStore } from "../DeadLetterStore.ts"
import * as ProjectionLock from "../ProjectionLock.ts"
import * as MemoryCheckpointStore from "./MemoryCheckpointStore.ts"
import * as MemoryDeadLetterStore from "./MemoryDeadLetterStore.ts"

/**
 * The in-memory projection services.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { MemoryEventStore, MemoryProjections } from "eventcore/memory"
 *
 * const Live = Layer.mergeAll(MemoryEventStore.layer, MemoryProjections.layer)
 * ```
 * @since 0.1.0
 */
export const layer: Layer.Layer<
  CheckpointStore | DeadLetterStore | ProjectionLock.ProjectionLock | BlueGreen.ActiveVersions
> = Layer.mergeAll(
  MemoryCheckpointStore.layer,
  BlueGreen.layerMemory,
  MemoryDeadLetterStore.layer,
  ProjectionLock.layerMemory
)
