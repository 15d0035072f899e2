/**
 * The event a projection runner is processing, for commands its handler executes (automatic
 * causation, see `Metadata.causedBy`). A cell the runner provides once per run and assigns per
 * event, instead of providing the ambient metadata around every event: that cost a third of an
 * effectful projection's throughput. `outer` is the ambient metadata when the run started, so
 * that `Metadata` can tell whether a handler set its own (which then already includes the cause).
 *
 * @internal
 */
import { Context } from "effect"
import type { Metadata } from "../Metadata.ts"

export interface Cell {
  event: { readonly eventId: string; readonly metadata: Metadata } | undefined
  readonly outer: unknown
}

export const Current: Context.Reference<Cell | undefined> = Context.Reference<Cell | undefined>(
  "eventcore/internal/Causation",
  { defaultValue: () => undefined }
)
