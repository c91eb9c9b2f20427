import * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as HttpIncomingMessage from "@effect/platform/HttpIncomingMessage"
import * as Effect from "effect/Effect"
import * as Inspectable from "effect/Inspectable"
import * as Stream from "effect/Stream"

/** What the platform prints for a redacted value, in place of the header's value. */
const redacted = "<redacted>"

/**
 * The request without its bearer: the platform redacts headers only inside Effect's loggers, so
 * `util.inspect`, `JSON.stringify` and `console.error` of a request would print the token.
 */
export const redactAuthorization = (
  request: HttpClientRequest.HttpClientRequest
): HttpClientRequest.HttpClientRequest =>
  request.headers.authorization === undefined
    ? request
    : HttpClientRequest.setHeader(request, "authorization", redacted)

// The platform's response classes are not exported and their `request` is fixed, so a response
// that must name another request is a view over the original that delegates everything else.
class RedactedResponse extends Inspectable.Class implements HttpClientResponse.HttpClientResponse {
  readonly [HttpClientResponse.TypeId]: HttpClientResponse.TypeId = HttpClientResponse.TypeId
  readonly [HttpIncomingMessage.TypeId]: HttpIncomingMessage.TypeId = HttpIncomingMessage.TypeId
  readonly request: HttpClientRequest.HttpClientRequest
  // Private fields are invisible to `util.inspect` and `JSON.stringify`, even with `showHidden`.
  readonly #original: HttpClientResponse.HttpClientResponse

  constructor(original: HttpClientResponse.HttpClientResponse) {
    super()
    this.#original = original
    this.request = redactAuthorization(original.request)
  }

  get status() {
    return this.#original.status
  }
  get headers() {
    return this.#original.headers
  }
  get cookies() {
    return this.#original.cookies
  }
  get remoteAddress() {
    return this.#original.remoteAddress
  }
  get formData() {
    return Effect.mapError(this.#original.formData, this.#redactError)
  }
  get text() {
    return Effect.mapError(this.#original.text, this.#redactError)
  }
  get json() {
    return Effect.mapError(this.#original.json, this.#redactError)
  }
  get urlParamsBody() {
    return Effect.mapError(this.#original.urlParamsBody, this.#redactError)
  }
  get arrayBuffer() {
    return Effect.mapError(this.#original.arrayBuffer, this.#redactError)
  }
  get stream() {
    return Stream.mapError(this.#original.stream, this.#redactError)
  }

  // The platform's rendering (status, headers redacted in a fiber, a body already read), with this request.
  toJSON(): unknown {
    const json = this.#original.toJSON()
    return typeof json === "object" && json !== null ? { ...json, request: this.request.toJSON() } : json
  }

  readonly #redactError = (error: HttpClientError.ResponseError): HttpClientError.ResponseError =>
    new HttpClientError.ResponseError({ ...error, request: this.request, response: this, cause: error.cause })
}

/**
 * The response as the caller receives it: the same status, headers and body, and a `request`
 * (also in the errors its body reads fail with) whose bearer is redacted.
 */
export const redactResponse = (
  response: HttpClientResponse.HttpClientResponse
): HttpClientResponse.HttpClientResponse =>
  response instanceof RedactedResponse ? response : new RedactedResponse(response)

/** The error with its request, and its response, redacted as above. */
export const redactError = (error: HttpClientError.HttpClientError): HttpClientError.HttpClientError =>
  error._tag === "RequestError"
    ? new HttpClientError.RequestError({ ...error, request: redactAuthorization(error.request), cause: error.cause })
    : new HttpClientError.ResponseError({
        ...error,
        request: redactAuthorization(error.request),
        response: redactResponse(error.response),
        cause: error.cause
      })
