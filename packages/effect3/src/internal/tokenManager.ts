import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import type * as Schedule from "effect/Schedule"
import * as ScheduleDecision from "effect/ScheduleDecision"
import * as Intervals from "effect/ScheduleIntervals"
import * as Scope from "effect/Scope"
import * as SynchronizedRef from "effect/SynchronizedRef"
import type { Service as AuthApiService } from "../AuthApi.js"
import { type Service as AuthConfigService, minRefreshInterval } from "../AuthConfig.js"
import { type AuthError, AuthServiceClosedError, type Operation, TransportError } from "../AuthError.js"
import type { TokenSet } from "../TokenSet.js"
import { skewFor } from "./shared/expirySkew.js"

/** A token set with the times the manager computed for it (epoch milliseconds). */
export interface Cached<S> {
  readonly tokenSet: TokenSet
  readonly source: "authenticate" | "refresh"
  readonly sentAt: number
  readonly obtainedAt: number
  readonly expiresAt: number
  readonly refreshExpiresAt: number
  /** The access token is handed out until then: `expiresAt` less the skew. */
  readonly usableUntil: number
  /** The refresh token is used until then: `refreshExpiresAt` less the skew. */
  readonly refreshUsableUntil: number
  readonly session: S
}

/**
 * A token set with its absolute times, as persisted. What depends on the configuration (the
 * skew) is left out and computed again by whoever reads it.
 */
export type Acquired = Omit<Cached<unknown>, "session" | "usableUntil" | "refreshUsableUntil">

/**
 * Where token sets outlive the process. Optional: without it, every process starts empty. Its
 * failures are logged and never reach a token reader.
 */
export interface Persistence {
  readonly load: Effect.Effect<Option.Option<Acquired>, unknown>
  readonly save: (acquired: Acquired) => Effect.Effect<void, unknown>
}

/** Why an acquisition started; a span attribute. */
export type Reason = "initial" | "ahead" | "expired" | "invalidated" | "forced" | "retry"

interface Failure {
  /** What readers get until `retryAt`: the error, or the defect or interruption, as it was. */
  readonly cause: Cause.Cause<AuthError>
  /** No reader starts a new attempt before this time. */
  readonly retryAt: number
}

interface State<S> {
  readonly current: Option.Option<Cached<S>>
  /** The access token was rejected by a resource: do not hand it out, keep its refresh token. */
  readonly invalidated: boolean
  readonly inflight: Option.Option<Deferred.Deferred<Cached<S>, AuthError>>
  readonly failure: Option.Option<Failure>
  /** The step state of `retrySchedule` and `permanentRetrySchedule`; reset by a success. */
  readonly transientStep: unknown
  readonly permanentStep: unknown
  /** When the background refresh ahead of `current` is due, as the refresh schedule put it. */
  readonly aheadAt: number
  /** The step state of `refreshSchedule`, one step per token; `Done` once the schedule is done. */
  readonly aheadStep: { readonly _tag: "Running"; readonly state: unknown } | { readonly _tag: "Done" }
  /** The scope the manager was built in is closed: every read fails at once. */
  readonly closed: boolean
}

/**
 * The longest a store read or write may take. A write sits between a token's arrival and its
 * readers, so that a short-lived process never exits before its token is saved: a hung store
 * must not hold readers for long.
 */
const persistenceTimeout = Duration.seconds(2)

/** The largest time a `Date` holds: ±100,000,000 days around the epoch. */
const maxDateMillis = 8.64e15

/**
 * How far in the future a stored set's `obtainedAt` may lie and still be trusted: clocks kept by
 * NTP agree to within milliseconds, so one second only absorbs coarse clocks, and is far below
 * the default 30 s skew that already covers a set that late.
 */
const futureTolerance = 1_000

/** The longest a 429's `Retry-After` is honoured. */
const maxRetryAfter = Duration.seconds(60)

/**
 * The longest sleep of the background driver, which wakes up and looks again. Effect treats a
 * sleep beyond 2^31 - 1 ms (the JavaScript timer limit, about 24.8 days) as infinite: a token
 * living longer would never be refreshed ahead.
 */
const maxSleep = Duration.days(24)

/** A step back of the wall clock smaller than this is ignored (timer and clock-read jitter). */
const clockStepTolerance = 1_000

const acquisitions = Metric.counter("revault_auth_acquisitions_total", {
  description: "Token acquisitions, by source (authenticate | refresh) and outcome (success | failure)",
  incremental: true
})

const remainingSeconds = Metric.gauge("revault_auth_token_remaining_seconds", {
  description: "Seconds the current access token has left, as of the last acquisition or background check"
})

/**
 * Whether a manager's metrics carry its `workspace` tag. Effect's metric registry never forgets a
 * tag value, so a pool of many workspaces turns this off: its counters are summed over the pool
 * and the gauge, meaningless for many tokens at once, is not recorded.
 */
export class MetricsByWorkspace extends Context.Reference<MetricsByWorkspace>()(
  "effect-revault-auth/internal/MetricsByWorkspace",
  { defaultValue: () => true }
) {}

const isPermanent = (error: AuthError): boolean =>
  error.operation === "authenticate" &&
  (error._tag === "BadRequestError" || error._tag === "UnauthorizedError" || error._tag === "ForbiddenError")

/** A refresh the server refused: the refresh token is dead, so fall back to the API key. */
const isRefreshRejected = (error: AuthError): boolean =>
  error._tag === "BadRequestError" || error._tag === "UnauthorizedError" || error._tag === "ForbiddenError"

const describe = (error: AuthError): Record<string, string | number> =>
  error._tag === "TransportError"
    ? { operation: error.operation, error: error._tag, reason: error.reason }
    : error._tag === "ResponseDecodeError" || error._tag === "UnexpectedStatusError"
      ? { operation: error.operation, error: error._tag, status: error.status }
      : { operation: error.operation, error: error._tag, status: error.status, code: error.code }

export const make = <S>(options: {
  readonly api: AuthApiService
  readonly config: AuthConfigService
  /** Stepped with each session obtained; its delay is the time until the next refresh ahead. */
  readonly refreshSchedule: Schedule.Schedule<unknown, S>
  readonly toSession: (cached: Omit<Cached<S>, "session">) => S
  readonly persistence?: Persistence | undefined
}) =>
  Effect.gen(function* () {
    const { api, config, persistence, toSession } = options
    const skew = Duration.toMillis(config.expirySkew)
    const minInterval = Duration.toMillis(minRefreshInterval)
    // Closing runs the finalizers of `own` last in, first out: the driver stops, then the state is
    // marked closed, then the acquisitions are interrupted, whose last act then sees it closed.
    const own = yield* Effect.flatMap(Effect.scope, (outer) => Scope.fork(outer, ExecutionStrategy.sequential))
    const scope = yield* Scope.fork(own, ExecutionStrategy.sequential)
    const wake = yield* Queue.sliding<void>(1)
    const tags = { workspace: config.workspace }
    const byWorkspace = yield* MetricsByWorkspace

    const withSession = (acquired: Acquired): Cached<S> => {
      const lifetime = acquired.expiresAt - acquired.sentAt
      const refreshLifetime = acquired.refreshExpiresAt - acquired.sentAt
      const times = {
        ...acquired,
        usableUntil: acquired.expiresAt - skewFor(skew, lifetime),
        refreshUsableUntil: acquired.refreshExpiresAt - skewFor(skew, refreshLifetime)
      }
      return { ...times, session: toSession(times) }
    }

    // Defects and a store's own interruptions included: nothing the store does reaches a reader.
    // (When this fiber itself is interrupted, the runtime skips this handler and stops.)
    const logStoreFailure = (message: string) => (cause: Cause.Cause<unknown>) =>
      Effect.logWarning(message).pipe(Effect.annotateLogs({ ...tags, cause: Cause.pretty(cause) }))

    const save = (acquired: Acquired): Effect.Effect<void> =>
      persistence === undefined
        ? Effect.void
        : Effect.suspend(() => persistence.save(acquired)).pipe(
            Effect.timeout(persistenceTimeout),
            Effect.catchAllCause(logStoreFailure("token store could not be written; the token is used all the same"))
          )

    // Why a stored set cannot become a session, if it cannot. The store may hold anything: a file
    // written by an older version, by another machine, under another clock. A time beyond the
    // largest `Date` would throw from every `Date` method; a set obtained in the future was written
    // under a clock ahead of this one, so its expiry is that much late and the server would refuse
    // the token before this process stops serving it.
    const untrusted = (acquired: Acquired, now: number): string | undefined => {
      const { expiresAt, obtainedAt, refreshExpiresAt, sentAt } = acquired
      const times = [sentAt, obtainedAt, expiresAt, refreshExpiresAt]
      if (!times.every((t) => Number.isFinite(t) && t >= 0 && t <= maxDateMillis)) return "time-out-of-range"
      if (obtainedAt < sentAt || expiresAt <= sentAt || refreshExpiresAt <= sentAt) return "times-out-of-order"
      if (obtainedAt > now + futureTolerance) return "obtained-in-the-future"
      return undefined
    }

    // A stored set is taken while its access token is usable; with only its refresh token alive,
    // it is kept for that refresh token, which the first acquisition then spends. Nothing here
    // fails or dies: a set that cannot be used is ignored with a debug log.
    const restore: Effect.Effect<Option.Option<Cached<S>>> = Effect.gen(function* () {
      if (persistence === undefined) return Option.none()
      const loaded = yield* persistence.load.pipe(
        Effect.timeout(persistenceTimeout),
        Effect.catchAllCause((cause) =>
          Effect.as(logStoreFailure("token store could not be read; starting without it")(cause), Option.none())
        )
      )
      if (loaded._tag === "None") return Option.none()
      const { expiresAt, obtainedAt, refreshExpiresAt, sentAt, source, tokenSet } = loaded.value
      const acquired: Acquired = { tokenSet, source, sentAt, obtainedAt, expiresAt, refreshExpiresAt }
      const now = yield* Clock.currentTimeMillis
      const ignore = (reason: string) =>
        Effect.as(
          Effect.logDebug("stored token set cannot be used; ignoring it").pipe(
            Effect.annotateLogs({ ...tags, source, reason, sentAt, obtainedAt, expiresAt, now })
          ),
          Option.none<Cached<S>>()
        )
      const rejection = untrusted(acquired, now)
      if (rejection !== undefined) return yield* ignore(rejection)
      const built = yield* Effect.either(Effect.try(() => withSession(acquired)))
      if (built._tag === "Left") return yield* ignore("no-session")
      const cached = built.right
      const annotations = { ...tags, source, expiresAt: new Date(expiresAt).toISOString() }
      if (cached.usableUntil <= now && cached.refreshUsableUntil <= now) {
        yield* Effect.logDebug("stored token set expired; ignoring it").pipe(Effect.annotateLogs(annotations))
        return Option.none()
      }
      yield* Effect.logDebug(
        cached.usableUntil > now
          ? "reusing the stored token set"
          : "stored access token expired; refreshing with the stored refresh token"
      ).pipe(Effect.annotateLogs(annotations))
      return Option.some(cached)
    })

    // The refresh point: refreshAt × lifetime after the request was sent, and never later than
    // the moment the token stops being handed out. A refresh token that is dead by then does not
    // move it: the API key takes over at the same point.
    const defaultAhead = (cached: Cached<S>): number =>
      cached.sentAt + config.refreshAt * (cached.expiresAt - cached.sentAt)
    const refreshDue = (cached: Cached<S>): number => Math.min(defaultAhead(cached), cached.usableUntil)

    // Whatever the schedule asks: never later than the token's usable time (it is not handed out
    // past it), never sooner than `minRefreshInterval` after it arrived, or a schedule with no
    // delay would chain requests back to back. The usable time wins: a token that short-lived is
    // refreshed as often as its lifetime demands, as with the default rule.
    const clampAhead = (cached: Cached<S>, at: number): number =>
      Math.min(cached.usableUntil, Math.max(at, cached.obtainedAt + minInterval))

    // The next refresh ahead of `cached`: `refreshSchedule` stepped with its session. A schedule
    // that is done, or dies, hands over to the default rule for the rest of the manager's life.
    const scheduleAhead = (
      step: State<S>["aheadStep"],
      cached: Cached<S>,
      now: number
    ): Effect.Effect<Pick<State<S>, "aheadAt" | "aheadStep">> => {
      const byDefault = { aheadAt: clampAhead(cached, defaultAhead(cached)), aheadStep: { _tag: "Done" } as const }
      if (step._tag === "Done") return Effect.succeed(byDefault)
      return Effect.suspend(() => options.refreshSchedule.step(now, cached.session, step.state)).pipe(
        Effect.map(([state, , decision]) =>
          ScheduleDecision.isDone(decision)
            ? byDefault
            : {
                aheadAt: clampAhead(cached, Intervals.start(decision.intervals)),
                aheadStep: { _tag: "Running", state } as const
              }
        ),
        Effect.catchAllCause((cause) =>
          Effect.as(
            Effect.logWarning("refreshSchedule failed; refreshing ahead by the default rule from now on").pipe(
              Effect.annotateLogs({ ...tags, cause: Cause.pretty(cause) })
            ),
            byDefault
          )
        )
      )
    }

    const restored = yield* restore
    const restoredAt = yield* Clock.currentTimeMillis
    const firstStep = { _tag: "Running", state: options.refreshSchedule.initial } as const
    const state = yield* SynchronizedRef.make<State<S>>({
      current: restored,
      invalidated: false,
      inflight: Option.none(),
      failure: Option.none(),
      transientStep: config.retrySchedule.initial,
      permanentStep: config.permanentRetrySchedule.initial,
      // A stored token still usable is refreshed ahead like one just obtained; any other is
      // replaced at once by the first acquisition.
      ...(Option.isSome(restored) && restored.value.usableUntil > restoredAt
        ? yield* scheduleAhead(firstStep, restored.value, restoredAt)
        : { aheadAt: restoredAt, aheadStep: firstStep }),
      closed: false
    })
    yield* Scope.addFinalizer(
      own,
      SynchronizedRef.update(state, (s) => ({ ...s, closed: true, current: Option.none() }))
    )
    const closedError = new AuthServiceClosedError({ workspace: config.workspace })

    const counter = (source: string, outcome: string) => {
      const tagged = acquisitions.pipe(Metric.tagged("source", source), Metric.tagged("outcome", outcome))
      return byWorkspace ? Metric.tagged(tagged, "workspace", config.workspace) : tagged
    }

    const setRemaining = (seconds: number): Effect.Effect<void> =>
      byWorkspace ? Metric.set(Metric.tagged(remainingSeconds, "workspace", config.workspace), seconds) : Effect.void

    const usable = (s: State<S>, now: number): Option.Option<Cached<S>> =>
      !s.invalidated && s.current._tag === "Some" && s.current.value.usableUntil > now ? s.current : Option.none()

    // `attempted` names the operation under way, for a defect, which carries no operation.
    const timed = (source: Operation, call: Effect.Effect<TokenSet, AuthError>, attempted: Ref.Ref<Operation>) =>
      Effect.flatMap(Clock.currentTimeMillis, (sentAt) =>
        Effect.zipRight(
          Ref.set(attempted, source),
          Effect.map(call, (tokenSet) => ({ tokenSet, source, sentAt }))
        )
      )

    // Through the refresh token while it lives; on its rejection, once through the API key.
    const obtain = (snapshot: State<S>, now: number, attempted: Ref.Ref<Operation>) =>
      snapshot.current._tag === "Some" && snapshot.current.value.refreshUsableUntil > now
        ? timed("refresh", api.refresh(snapshot.current.value.tokenSet.refreshToken), attempted).pipe(
            Effect.catchIf(isRefreshRejected, (error) =>
              Effect.zipRight(
                Effect.logDebug("refresh token rejected; authenticating with the API key").pipe(
                  Effect.annotateLogs(describe(error))
                ),
                timed("authenticate", api.authenticate, attempted)
              )
            )
          )
        : timed("authenticate", api.authenticate, attempted)

    const failureDelay = (s: State<S>, error: AuthError, now: number) =>
      Effect.gen(function* () {
        const permanent = isPermanent(error)
        const schedule: Schedule.Schedule<unknown, AuthError> = permanent
          ? config.permanentRetrySchedule
          : config.retrySchedule
        const [step, , decision] = yield* schedule.step(now, error, permanent ? s.permanentStep : s.transientStep)
        const scheduled = ScheduleDecision.isDone(decision)
          ? Duration.toMillis(maxRetryAfter)
          : Math.max(0, Intervals.start(decision.intervals) - now)
        const asked =
          error._tag === "UnexpectedStatusError" && error.retryAfter._tag === "Some"
            ? Duration.toMillis(Duration.min(error.retryAfter.value, maxRetryAfter))
            : 0
        const delay = Math.max(scheduled, asked)
        return permanent
          ? { delay, next: { ...s, permanentStep: step } }
          : { delay, next: { ...s, transientStep: step } }
      })

    const failed = (
      s: State<S>,
      cause: Cause.Cause<AuthError>,
      error: AuthError,
      now: number,
      log: (delay: number) => Effect.Effect<void>,
      atOnce = false
    ) =>
      Effect.gen(function* () {
        const stepped = yield* failureDelay(s, error, now)
        const { next } = stepped
        const delay = atOnce ? 0 : stepped.delay
        yield* log(delay)
        return { ...next, inflight: Option.none(), failure: Option.some({ cause, retryAt: now + delay }) }
      })

    const retryIn = (delay: number) => ({ retryInMillis: Math.round(delay) })

    const record = (exit: Exit.Exit<Cached<S>, AuthError>, attempted: Operation) =>
      SynchronizedRef.updateEffect(state, (s) =>
        Effect.gen(function* (): Effect.fn.Return<State<S>> {
          // Interrupted by the closing scope: nothing to retry, nobody to tell.
          if (s.closed) return { ...s, inflight: Option.none() }
          const now = yield* Clock.currentTimeMillis
          if (Exit.isSuccess(exit)) {
            const cached = exit.value
            yield* setRemaining((cached.expiresAt - now) / 1000)
            const landed = { ...s, current: Option.some(cached), invalidated: false }
            if (refreshDue(cached) > now) {
              return {
                ...landed,
                inflight: Option.none(),
                failure: Option.none(),
                transientStep: config.retrySchedule.initial,
                permanentStep: config.permanentRetrySchedule.initial,
                ...(yield* scheduleAhead(s.aheadStep, cached, now))
              }
            }
            // An answer so slow that the token is already due for a refresh: starting the next
            // request now would chain requests back to back, so it waits for the backoff. Readers
            // that waited for this token get it while it lives; readers that find it past its
            // usable time get this error until the next attempt. A token that lands expired is
            // more likely a clock jump while it was on the wire: the first is retried at once.
            const took = cached.obtainedAt - cached.sentAt
            const expired = cached.expiresAt <= now
            const error = new TransportError({
              operation: cached.source,
              reason: "Timeout",
              cause: `the answer took ${took} ms, past the token's ${expired ? "expiry" : "refresh point"} (${(expired ? cached.expiresAt : refreshDue(cached)) - cached.sentAt} ms)`
            })
            return yield* failed(
              { ...landed, aheadAt: refreshDue(cached) },
              Cause.fail(error),
              error,
              now,
              (delay) =>
                Effect.logWarning(
                  `slow token answer: ${took} ms, past the token's ${expired ? "expiry" : "refresh point"}; next attempt after backoff`
                ).pipe(
                  Effect.annotateLogs({ ...tags, operation: cached.source, answerMillis: took, ...retryIn(delay) })
                ),
              expired && s.failure._tag === "None"
            )
          }
          const error = Option.getOrUndefined(Cause.failureOption(exit.cause))
          if (error !== undefined) {
            return yield* failed(s, Cause.fail(error), error, now, (delay) =>
              Effect.logWarning("token acquisition failed; retrying after backoff").pipe(
                Effect.annotateLogs({ ...describe(error), ...retryIn(delay) })
              )
            )
          }
          // A defect or an interruption below AuthApi (a throwing middleware, a custom AuthApi):
          // backed off like a transient failure, or the driver would start again at once, forever.
          // The schedule takes an AuthError; it sees a TransportError carrying the defect.
          const defect = new TransportError({
            operation: attempted,
            reason: "Transport",
            cause: Cause.squash(exit.cause)
          })
          return yield* failed(s, exit.cause, defect, now, (delay) =>
            Effect.logWarning("token acquisition died; retrying after backoff").pipe(
              Effect.annotateLogs({ ...tags, operation: attempted, cause: Cause.pretty(exit.cause), ...retryIn(delay) })
            )
          )
        })
      )

    const acquisition = (snapshot: State<S>, reason: Reason, deferred: Deferred.Deferred<Cached<S>, AuthError>) =>
      Effect.flatMap(Ref.make<Operation>("authenticate"), (attempted) =>
        Effect.gen(function* () {
          const now = yield* Clock.currentTimeMillis
          const { sentAt, source, tokenSet } = yield* obtain(snapshot, now, attempted)
          const obtainedAt = yield* Clock.currentTimeMillis
          const acquired: Acquired = {
            tokenSet,
            source,
            sentAt,
            obtainedAt,
            expiresAt: sentAt + tokenSet.expiresInSeconds * 1000,
            refreshExpiresAt: sentAt + tokenSet.refreshExpiresInSeconds * 1000
          }
          yield* Effect.annotateCurrentSpan("revault.source", source)
          yield* Effect.logDebug("token obtained").pipe(
            Effect.annotateLogs({ source, reason, expiresInSeconds: tokenSet.expiresInSeconds })
          )
          // Before the readers are released, so a process that exits after its first read has saved it.
          yield* save(acquired)
          return withSession(acquired)
        }).pipe(
          Effect.tapBoth({
            onFailure: (error) => Metric.increment(counter(error.operation, "failure")),
            onSuccess: (cached) => Metric.increment(counter(cached.source, "success"))
          }),
          Effect.tapDefect(() =>
            Effect.flatMap(Ref.get(attempted), (operation) => Metric.increment(counter(operation, "failure")))
          ),
          Effect.withSpan("RevaultAuth.acquire", {
            attributes: { "revault.reason": reason, "revault.workspace": config.workspace }
          }),
          // Forked from inside an uninterruptible step: the acquisition itself must stay
          // interruptible, and its exit handler must be in place before anything can interrupt it.
          Effect.interruptible,
          // State first, then waiters, then the background driver, whatever the outcome.
          Effect.onExit((exit) =>
            Effect.flatMap(Ref.get(attempted), (operation) => record(exit, operation)).pipe(
              Effect.zipRight(Deferred.done(deferred, exit)),
              Effect.zipRight(wake.offer(undefined))
            )
          ),
          Effect.forkIn(scope),
          Effect.as(deferred)
        )
      )

    const modify = <A>(f: (s: State<S>) => Effect.Effect<readonly [A, State<S>]>) =>
      Effect.uninterruptible(SynchronizedRef.modifyEffect(state, f))

    type Step =
      | { readonly _tag: "Ready"; readonly cached: Cached<S> }
      | { readonly _tag: "Failed"; readonly cause: Cause.Cause<AuthError> }
      | { readonly _tag: "Wait"; readonly deferred: Deferred.Deferred<Cached<S>, AuthError> }
      | { readonly _tag: "Closed" }

    // Starts an acquisition, or joins the one in flight: never two at once. Runs inside
    // `modifyEffect`, so the check and the start are one atomic step.
    const start = (s: State<S>, reason: Reason) =>
      s.inflight._tag === "Some"
        ? Effect.succeed([s.inflight.value, s] as const)
        : Effect.flatMap(Deferred.make<Cached<S>, AuthError>(), (deferred) =>
            Effect.as(acquisition(s, reason, deferred), [deferred, { ...s, inflight: Option.some(deferred) }] as const)
          )

    const waitFor = (s: State<S>, reason: Reason) =>
      Effect.map(start(s, reason), ([deferred, next]) => [{ _tag: "Wait", deferred } as Step, next] as const)

    const reasonOf = (s: State<S>): Reason =>
      s.invalidated
        ? "invalidated"
        : s.failure._tag === "Some"
          ? "retry"
          : s.current._tag === "Some"
            ? "expired"
            : "initial"

    // Using a manager whose scope is closed is a bug in the program, not a failure of a token
    // operation: a defect, at once (an acquisition can no longer start, so waiting would hang).
    const closed = Effect.die(closedError)

    // Uninterruptible so that a reader interrupted mid-step cannot orphan an acquisition it started.
    const locked: Effect.Effect<Cached<S>, AuthError> = modify((s) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        if (s.closed) return Effect.succeed([{ _tag: "Closed" } as Step, s] as const)
        const cached = usable(s, now)
        if (cached._tag === "Some") return Effect.succeed([{ _tag: "Ready", cached: cached.value } as Step, s] as const)
        if (s.inflight._tag === "None" && s.failure._tag === "Some" && now < s.failure.value.retryAt) {
          return Effect.succeed([{ _tag: "Failed", cause: s.failure.value.cause } as Step, s] as const)
        }
        return waitFor(s, reasonOf(s))
      })
    ).pipe(
      Effect.flatMap(
        (step): Effect.Effect<Cached<S>, AuthError> =>
          step._tag === "Ready"
            ? Effect.succeed(step.cached)
            : step._tag === "Failed"
              ? Effect.failCause(step.cause)
              : step._tag === "Closed"
                ? closed
                : Effect.flatMap(Deferred.await(step.deferred), landed)
      )
    )

    // Joining an acquisition in flight needs no lock: thousands of cold readers must not queue on
    // it one by one only to learn that a request is already under way.
    const slowPath: Effect.Effect<Cached<S>, AuthError> = Effect.flatMap(SynchronizedRef.get(state), (s) =>
      s.closed ? closed : s.inflight._tag === "Some" ? Effect.flatMap(Deferred.await(s.inflight.value), landed) : locked
    )

    // The readers that waited for a token get it while it lives, even past its usable time (a slow
    // answer: `record` then backs off before the next attempt). One that lands expired (a clock
    // jump, an answer slower than the lifetime) is not handed out: the reader goes round again.
    const landed = (cached: Cached<S>): Effect.Effect<Cached<S>, AuthError> =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => (cached.expiresAt > now ? Effect.succeed(cached) : slowPath))

    // The hot path: one Ref read, one clock read, one comparison.
    // Specialised per projection, with no Option and no extra map on the way: this runs on every request.
    const read = <A>(project: (cached: Cached<S>) => A): Effect.Effect<A, AuthError> =>
      Effect.flatMap(SynchronizedRef.get(state), (s) =>
        // `clockWith` + `unsafeCurrentTimeMillis`: one step, where `Clock.currentTimeMillis` under a
        // `flatMap` costs three. Still the `Clock` service, so `TestClock` governs it.
        Effect.clockWith((clock) =>
          !s.invalidated && s.current._tag === "Some" && s.current.value.usableUntil > clock.unsafeCurrentTimeMillis()
            ? Effect.succeed(project(s.current.value))
            : Effect.map(slowPath, project)
        )
      )

    const forced = Effect.flatMap(
      modify((s) =>
        s.closed
          ? Effect.succeed([Option.none(), s] as const)
          : Effect.map(start(s, "forced"), ([d, next]) => [Option.some(d), next] as const)
      ),
      (deferred) => (deferred._tag === "Some" ? Deferred.await(deferred.value) : closed)
    )

    const invalidate = (rejected?: Redacted.Redacted<string>) =>
      SynchronizedRef.update(state, (s) =>
        s.current._tag === "None" ||
        (rejected !== undefined && Redacted.value(rejected) !== Redacted.value(s.current.value.tokenSet.accessToken))
          ? s
          : { ...s, invalidated: true }
      ).pipe(Effect.zipRight(wake.offer(undefined)))

    // The background driver: sleeps until the next thing is due (a refresh ahead of expiry, a
    // retry after backoff, a token for nobody holding one) or until the state changes, then acts.
    // The wall clock less the monotonic one: constant while both run, higher after a sleep of the
    // machine, lower after the wall clock stepped back (an NTP step, a restored VM, a manual
    // change). Token times are wall-clock times: after a step back a token looks younger than it
    // is, and would be handed out past its real expiry.
    const drift = Effect.clockWith((clock) =>
      Effect.sync(() => clock.unsafeCurrentTimeMillis() - Number(clock.unsafeCurrentTimeNanos()) / 1e6)
    )
    const lastDrift = yield* Effect.flatMap(drift, Ref.make)

    const shift = (cached: Cached<S>, by: number): Acquired => ({
      tokenSet: cached.tokenSet,
      source: cached.source,
      sentAt: cached.sentAt - by,
      obtainedAt: cached.obtainedAt - by,
      expiresAt: cached.expiresAt - by,
      refreshExpiresAt: cached.refreshExpiresAt - by
    })

    // Moves the token's times back with the clock. The driver looks before every decision, and
    // sleeps no later than the moment the token stops being usable, so a step back is caught
    // before the token outlives its real usable time.
    const followClockSteps = Effect.gen(function* () {
      const current = yield* drift
      const back = (yield* Ref.getAndSet(lastDrift, current)) - current
      if (back < clockStepTolerance) return
      const moved = yield* SynchronizedRef.modify(state, (s) => {
        const acquired = Option.map(s.current, (cached) => shift(cached, back))
        const next = {
          ...s,
          current: Option.map(acquired, withSession),
          aheadAt: s.aheadAt - back,
          failure: Option.map(s.failure, (failure) => ({ ...failure, retryAt: failure.retryAt - back }))
        }
        return [acquired, next] as const
      })
      yield* Effect.logWarning("the clock stepped back; token times moved back with it").pipe(
        Effect.annotateLogs({ ...tags, stepMillis: Math.round(back) })
      )
      if (moved._tag === "Some") yield* save(moved.value)
    })

    const tick = Effect.gen(function* () {
      yield* followClockSteps
      const s = yield* SynchronizedRef.get(state)
      if (s.inflight._tag === "Some") {
        yield* Deferred.await(s.inflight.value).pipe(Effect.exit)
        return
      }
      const now = yield* Clock.currentTimeMillis
      if (s.current._tag === "Some") {
        yield* setRemaining(Math.max(0, s.current.value.expiresAt - now) / 1000)
      }
      const due =
        s.failure._tag === "Some"
          ? s.failure.value.retryAt
          : s.current._tag === "Some" && !s.invalidated
            ? s.aheadAt
            : now
      if (due > now) {
        // A backoff can outlast the token: wake when it stops being usable, to look at the clock.
        const until =
          s.current._tag === "Some" && !s.invalidated && s.current.value.usableUntil > now
            ? Math.min(due, s.current.value.usableUntil)
            : due
        // Whole milliseconds, at least one. Due times are sums of fractional times, and a gap
        // below the clock's float resolution is a sleep that ends as it starts on a clock that
        // only moves when told (TestClock): the driver would spin and starve the event loop.
        const wait = Duration.min(Duration.millis(Math.max(1, Math.ceil(until - now))), maxSleep)
        yield* Effect.raceFirst(Effect.sleep(wait), wake.take)
        return
      }
      // Act only on the state the decision was made on; anything newer is looked at afresh.
      const deferred = yield* modify((latest) =>
        latest === s
          ? Effect.map(
              start(
                latest,
                s.current._tag === "Some" && s.failure._tag === "None" && !s.invalidated ? "ahead" : reasonOf(s)
              ),
              ([d, next]) => [Option.some(d), next] as const
            )
          : Effect.succeed([Option.none(), latest] as const)
      )
      if (deferred._tag === "Some") yield* Effect.exit(Deferred.await(deferred.value))
    })

    // Prefetch: the first acquisition starts now, so early readers join it; not needed when the
    // store gave a usable token, which the background driver refreshes when due.
    const startedAt = yield* Clock.currentTimeMillis
    if (!(restored._tag === "Some" && restored.value.usableUntil > startedAt)) {
      yield* modify((s) => start(s, "initial"))
    }
    yield* Effect.forkIn(Effect.forever(tick), own)

    return {
      accessToken: read((cached) => cached.tokenSet.accessToken),
      session: read((cached) => cached.session),
      refresh: Effect.map(forced, (cached) => cached.session),
      invalidate
    }
  })
