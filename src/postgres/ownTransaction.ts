/**
 * Set by code that opens a transaction only to run an append first in it (an inline read
 * model): the append then needs no savepoint of its own. In a caller's transaction the
 * savepoint keeps a conflict from aborting the caller's work; in one opened for the append, a
 * conflict rolls back the whole transaction, which holds nothing else yet. Saves two round
 * trips per append.
 *
 * @internal
 */
import { Context } from "effect"

export const OwnTransaction: Context.Reference<boolean> = Context.Reference<boolean>(
  "eventcore/postgres/OwnTransaction",
  { defaultValue: () => false }
)
