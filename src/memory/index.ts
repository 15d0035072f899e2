/**
 * The in-memory backend: `import { MemoryEventStore } from "eventcore/memory"`.
 *
 * @since 0.1.0
 */
export * as MemoryCheckpointStore from "./MemoryCheckpointStore.ts"
export * as MemoryDeadLetterStore from "./MemoryDeadLetterStore.ts"
export * as MemoryEventStore from "./MemoryEventStore.ts"
export * as MemoryProjections from "./MemoryProjections.ts"
