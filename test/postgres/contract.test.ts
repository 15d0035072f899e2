import { EventStoreContract } from "eventcore/testing"
import * as Harness from "./harness.ts"

EventStoreContract.suite("postgres", Harness.layer())
