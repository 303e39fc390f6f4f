// The model interface every eval task runs against. The CLI implements it twice: over the
// in-process LLM and over an OpenAI-compatible server (completions with logprobs / echo).

export interface ChatMessage {
  role: "system" | "user" | "assistant" | string;
  content: string;
}

export interface GenerateParams {
  maxTokens: number;
  /** stop strings; the returned text excludes them */
  stop?: string[];
  /** default 0 (greedy) */
  temperature?: number;
  /** constrain the output to this JSON schema when the target supports guided decoding */
  jsonSchema?: Record<string, unknown>;
}

export interface PositionLogprobs {
  /** logprobs[i] = ln p(tokens[i + 1] | tokens[0..i]); length tokens.length - 1 */
  logprobs: Float64Array | number[];
  /**
   * Optional full next-token log-distribution at each position i (predicting tokens[i + 1]):
   * distributions[i] is Float32Array(vocabSize) of natural-log probabilities (log-softmax).
   */
  distributions?: Float32Array[];
}

export interface LoglikelihoodResult {
  /** ln p(continuation | context), summed over the continuation's tokens */
  logprob: number;
  /** whether greedy decoding from the context reproduces the continuation (when known) */
  isGreedy?: boolean;
}

export interface EvalModel {
  tokenize(text: string): Promise<number[]>;
  loglikelihood(context: string, continuation: string): Promise<LoglikelihoodResult>;
  /** a string prompt is a raw completion prompt; messages go through the chat template */
  generate(prompt: string | ChatMessage[], params: GenerateParams): Promise<string>;
  /** scores a token sequence; `distributions: true` asks for the full distribution per position */
  logprobsOfTokens(tokens: readonly number[], opts?: { distributions?: boolean }): Promise<PositionLogprobs>;
}
