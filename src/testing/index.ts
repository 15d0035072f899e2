/**
 * The test kit: `import { Scenario, TestLayers, ChaosStore, Arbitraries } from "eventcore/testing"`.
 *
 * @since 0.1.0
 */
export * as Arbitraries from "./Arbitraries.ts"
export * as ChaosStore from "./ChaosStore.ts"
export * as EventStoreContract from "./EventStoreContract.ts"
export * as Scenario from "./Scenario.ts"
export * as TestLayers from "./TestLayers.ts"
