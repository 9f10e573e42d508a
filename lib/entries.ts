import { fallbackHandler, routes, streamHandler } from './routes.ts';

/** Every Lambda the project deploys: one per route, the `$default` fallback, and the stream aggregator. */
export interface LambdaEntry {
  functionName: string;
  /** Relative to the repository root. */
  entry: string;
}

export function lambdaEntries(): LambdaEntry[] {
  return [
    ...routes.map((route) => ({ functionName: route.functionName, entry: route.entry })),
    { functionName: fallbackHandler.functionName, entry: fallbackHandler.entry },
    { functionName: streamHandler.functionName, entry: streamHandler.entry },
  ];
}
