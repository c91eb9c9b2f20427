import * as Fiber from "effect/Fiber"
import * as Tracer from "effect/Tracer"

/**
 * Effect 4 has no `Supervisor`: this tracer notes every fiber that runs under it instead (a fiber
 * inherits its parent's tracer), passing spans through to `base`. `running` lists the noted
 * fibers that have not ended, other than the one asking: finalizers run with the context they
 * were added in, so the fiber closing a scope is noted too.
 */
export const fiberTracker = (base: Tracer.Tracer) => {
  const seen = new Set<Fiber.Fiber<unknown, unknown>>()
  const tracer = Tracer.make({
    span: (options) => base.span(options),
    context: (primitive, fiber) => {
      seen.add(fiber)
      return primitive["~effect/Effect/evaluate"](fiber)
    }
  })
  const running = () => {
    const current = Fiber.getCurrent()
    return [...seen].filter((fiber) => fiber !== current && fiber.pollUnsafe() === undefined)
  }
  return { tracer, running }
}
