// HTTP errors in OpenAI's shape: {"error": {"message", "type", "param", "code"}}. Every error a
// client can cause is an HttpError with a 4xx status naming the parameter; typed engine errors
// (src/errors.ts) are mapped by their httpStatus, with camelCase fields renamed to the API's names.
import { TllmError, UnknownOptionError, ValidationError } from "../errors.js";

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly param: string | null = null,
    readonly type: string = defaultType(status),
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "HttpError";
  }
}

function defaultType(status: number): string {
  if (status === 401) return "AuthenticationError";
  if (status === 404) return "NotFoundError";
  if (status === 413) return "RequestTooLargeError";
  if (status === 429) return "RateLimitError";
  if (status === 501) return "NotImplementedError";
  if (status === 503) return "ServiceUnavailableError";
  return status >= 500 ? "InternalServerError" : "BadRequestError";
}

/** 400 naming `param` (the API's snake_case name). */
export function badRequest(param: string | null, message: string): HttpError {
  return new HttpError(400, param ? `${param}: ${message}` : message, param);
}

export interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: number };
}

export function errorBody(e: HttpError): ErrorBody {
  return { error: { message: e.message, type: e.type, param: e.param, code: e.status } };
}

/** camelCase engine field (e.g. "maxTokens", "prompts[0]") -> the API's name via `names`, else snake_case. */
function apiParam(field: string, names: Readonly<Record<string, string>>): string {
  const head = /^[A-Za-z]+/.exec(field)?.[0] ?? field;
  const mapped = names[head] ?? head.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  return mapped + field.slice(head.length);
}

/** Any thrown value -> HttpError. Typed validation errors become 400s naming the API parameter. */
export function toHttpError(e: unknown, names: Readonly<Record<string, string>> = {}): HttpError {
  if (e instanceof HttpError) return e;
  if (e instanceof UnknownOptionError) return new HttpError(400, e.message, apiParam(e.field, names));
  if (e instanceof ValidationError) {
    const param = apiParam(e.field, names);
    const msg = e.message.replace(`invalid ${e.field}=`, `invalid ${param}=`);
    return new HttpError(400, msg, param);
  }
  if (e instanceof TllmError) return new HttpError(e.httpStatus, e.message);
  return new HttpError(500, `internal error: ${(e as Error)?.message ?? String(e)}`);
}
