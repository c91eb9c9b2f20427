/**
 * A deterministic simulated `Clock` for long simulations (B4).
 *
 * `TestClock.adjust` wakes sleepers one by one and, after each, waits for the fibers it woke to
 * go idle (a scheduler that tracks the tasks they schedule) and yields, plus a forked yield and a
 * semaphore per adjust: tens of microseconds to milliseconds of real time a tick, so a reader every
 * simulated second for 7 days would take many minutes. This clock keeps its sleepers in a binary
 * heap and `advanceTo` wakes them in time order; after each wake-up the advancing fiber yields
 * (`Effect.yieldNow`) until the woken fibers have gone quiet. "Quiet" means that for
 * `quietYields` consecutive yields no fiber read the time, started, cancelled or finished a
 * sleep; `maxYields` bounds it. Its monotonic time moves with its wall time, as a real clock's
 * does while nothing steps it.
 */
import type * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"

interface Sleeper {
  readonly at: number
  readonly seq: number
  readonly wake: () => void
  cancelled: boolean
}

const before = (a: Sleeper, b: Sleeper): boolean => a.at < b.at || (a.at === b.at && a.seq < b.seq)

const nanosPerMilli = BigInt(1_000_000)

export interface SimClockOptions {
  readonly quietYields?: number
  readonly maxYields?: number
}

export class SimClock implements Clock.Clock {
  private now: number
  private seq = 0
  private readonly heap: Array<Sleeper> = []
  private readonly quietYields: number
  private readonly maxYields: number
  /** Bumped by every interaction with the clock; `advanceTo` watches it to tell when fibers settle. */
  private activity = 0
  /** Wake-ups performed, and yields spent settling after them. */
  wakeUps = 0
  yields = 0

  constructor(startMillis: number, options: SimClockOptions = {}) {
    this.now = startMillis
    this.quietYields = options.quietYields ?? 3
    this.maxYields = options.maxYields ?? 200
  }

  currentTimeMillisUnsafe(): number {
    this.activity++
    return this.now
  }

  currentTimeNanosUnsafe(): bigint {
    this.activity++
    return BigInt(Math.round(this.now)) * nanosPerMilli
  }

  monotonicTimeNanosUnsafe(): bigint {
    return this.currentTimeNanosUnsafe()
  }

  readonly currentTimeMillis: Effect.Effect<number> = Effect.sync(() => this.currentTimeMillisUnsafe())

  readonly currentTimeNanos: Effect.Effect<bigint> = Effect.sync(() => this.currentTimeNanosUnsafe())

  readonly monotonicTimeNanos: Effect.Effect<bigint> = Effect.sync(() => this.monotonicTimeNanosUnsafe())

  sleep(duration: Duration.Duration): Effect.Effect<void> {
    return Effect.callback<void>((resume) => {
      this.activity++
      const sleeper: Sleeper = {
        at: this.now + Math.max(0, Duration.toMillis(duration)),
        seq: this.seq++,
        wake: () => resume(Effect.void),
        cancelled: false
      }
      this.push(sleeper)
      return Effect.sync(() => {
        this.activity++
        sleeper.cancelled = true
      })
    })
  }

  /** Sleepers not yet woken (cancelled ones still waiting for their time included). */
  get pending(): number {
    return this.heap.length
  }

  /** Lets runnable fibers run until none of them touches the clock for `quietYields` yields. */
  readonly settle: Effect.Effect<void> = Effect.suspend(() => {
    let quiet = 0
    let seen = this.activity
    let spent = 0
    return Effect.whileLoop({
      while: () => quiet < this.quietYields && spent < this.maxYields,
      body: () => Effect.yieldNow,
      step: () => {
        spent++
        this.yields++
        if (this.activity === seen) quiet++
        else {
          quiet = 0
          seen = this.activity
        }
      }
    })
  })

  /** Moves time to `to`, waking every sleeper due by then in time order, settling after each. */
  advanceTo(to: number): Effect.Effect<void> {
    return Effect.suspend(() => {
      let next = this.heap[0]
      while (next?.cancelled === true) {
        this.pop()
        next = this.heap[0]
      }
      if (next === undefined || next.at > to) {
        this.now = Math.max(this.now, to)
        return Effect.void
      }
      this.pop()
      this.now = Math.max(this.now, next.at)
      this.activity++
      this.wakeUps++
      next.wake()
      return Effect.andThen(
        this.settle,
        Effect.suspend(() => this.advanceTo(to))
      )
    })
  }

  private push(sleeper: Sleeper): void {
    const heap = this.heap
    heap.push(sleeper)
    let i = heap.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      const p = heap[parent]
      if (p === undefined || !before(sleeper, p)) break
      heap[i] = p
      heap[parent] = sleeper
      i = parent
    }
  }

  private pop(): void {
    const heap = this.heap
    const last = heap.pop()
    if (last === undefined || heap.length === 0) return
    heap[0] = last
    let i = 0
    for (;;) {
      const l = 2 * i + 1
      const r = l + 1
      let smallest = i
      const ls = heap[l]
      const rs = heap[r]
      const cur = heap[smallest]
      if (cur === undefined) break
      if (ls !== undefined && before(ls, heap[smallest] ?? cur)) smallest = l
      if (rs !== undefined && before(rs, heap[smallest] ?? cur)) smallest = r
      if (smallest === i) break
      const s = heap[smallest]
      if (s === undefined) break
      heap[smallest] = cur
      heap[i] = s
      i = smallest
    }
  }
}
