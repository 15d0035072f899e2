import { MemoryEventStore } from "eventcore/memory"
import { EventStoreContract } from "eventcore/testing"

EventStoreContract.suite("memory", MemoryEventStore.layer)
