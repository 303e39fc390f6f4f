export { TllmServer, type ServeOptions, type LogLevel } from "./server.js";
export { ServeEngine, type EngineStats } from "./engine.js";
export { HttpError, errorBody, toHttpError } from "./errors.js";
export { parseChatRequest, parseCompletionRequest, guidedFrom } from "./protocol.js";
export { parseToolCalls, toolChoiceGuide, forcedToolCalls, type ToolCall } from "./tools.js";
