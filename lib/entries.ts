import { routes, streamHandler } from './routes.ts';

/** Every Lambda the project deploys: one per route, plus the stream aggregator. */
export interface LambdaEntry {
  functionName: string;
  /** Relative to the repository root. */
  entry: string;
}

export function lambdaEntries(): LambdaEntry[] {
  return [
    ...routes.map((route) => ({ functionName: route.functionName, entry: route.entry })),
    { functionName: streamHandler.functionName, entry: streamHandler.entry },
  ];
}
