/**
 * A tracer that keeps every span it makes, and what tests ask of the tree they form.
 */
import { Option, Tracer } from "effect"

export interface Recorded {
  readonly spans: Array<Tracer.NativeSpan>
  readonly tracer: Tracer.Tracer
}

/** A tracer that keeps every span it makes (a tracer of its own: not Effect's native one). */
export const recordingTracer = (): Recorded => {
  const spans: Array<Tracer.NativeSpan> = []
  const tracer = Tracer.make({
    span(options) {
      const span = new Tracer.NativeSpan(options)
      spans.push(span)
      return span
    }
  })
  return { spans, tracer }
}

/** The span's parent, if it has one. */
export const parentOf = (span: Tracer.AnySpan): Tracer.AnySpan | undefined =>
  span._tag === "Span" ? Option.getOrUndefined(span.parent) : undefined

/** The names from the span up to its root, the root last. */
export const chainOf = (span: Tracer.AnySpan): Array<string> => {
  const names: Array<string> = []
  for (let at: Tracer.AnySpan | undefined = span; at !== undefined; at = parentOf(at)) {
    names.push(at._tag === "Span" ? at.name : `external ${at.spanId}`)
  }
  return names
}

/** The root of the span's chain. */
export const rootOf = (span: Tracer.AnySpan): Tracer.AnySpan => {
  let at = span
  for (let parent = parentOf(at); parent !== undefined; parent = parentOf(at)) at = parent
  return at
}

/** The spans whose parent is the given one. */
export const childrenOf = (spans: ReadonlyArray<Tracer.NativeSpan>, parent: Tracer.AnySpan) =>
  spans.filter((span) => parentOf(span) === parent)

/** The spans with that name. */
export const named = (spans: ReadonlyArray<Tracer.NativeSpan>, name: string) =>
  spans.filter((span) => span.name === name)
