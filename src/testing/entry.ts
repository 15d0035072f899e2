/**
 * The runtime entry of `eventcore/testing` (its types are `index.ts`'s). The test kit needs
 * three optional peer dependencies of eventcore — vitest, @effect/vitest and fast-check —
 * that an application which never imports it need not install. A static import of a missing
 * one would fail with the runtime's bare "cannot find package"; loading the kit here instead
 * turns that into an error that names every missing peer and how to install them.
 *
 * @internal
 */
import type * as Kit from "./index.ts"

const peers = ["vitest", "@effect/vitest", "fast-check"] as const

const isMissing = (name: string): boolean => {
  try {
    import.meta.resolve(name)
    return false
  } catch {
    return true
  }
}

const load = async (): Promise<typeof Kit> => {
  try {
    return await import("./index.ts")
  } catch (error) {
    const missing = peers.filter(isMissing)
    if (missing.length === 0) throw error
    throw new Error(
      `eventcore/testing needs ${peers.join(", ")}: optional peer dependencies of eventcore, ` +
        `installed by projects that use its test kit. Missing: ${missing.join(", ")}. ` +
        `Install them with: npm install --save-dev ${peers.join(" ")}`,
      { cause: error }
    )
  }
}

const kit = await load()

export const Arbitraries: typeof Kit.Arbitraries = kit.Arbitraries
export const ChaosStore: typeof Kit.ChaosStore = kit.ChaosStore
export const EventStoreContract: typeof Kit.EventStoreContract = kit.EventStoreContract
export const Scenario: typeof Kit.Scenario = kit.Scenario
export const TestLayers: typeof Kit.TestLayers = kit.TestLayers
