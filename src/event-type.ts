/**
 * Event types and the NATS subjects they live on (DESIGN.md §2).
 *
 * An event type is one or more dot-separated tokens of [A-Za-z0-9_-]. Subscriptions may use the NATS
 * wildcards `*` (one token) and `>` (the rest). The first token `dlq` is reserved for dead letters.
 */

const TOKEN = /^[A-Za-z0-9_-]+$/;
export const DLQ_TOKEN = 'dlq';

/** Why `eventType` cannot be published, or undefined when it can. */
export function publishableEventTypeProblem(eventType: string): string | undefined {
  if (eventType.length === 0) return 'empty event type';
  if (eventType.length > 255) return 'event type longer than 255 characters';
  const tokens = eventType.split('.');
  for (const token of tokens) {
    if (token.length === 0) return `empty token in event type "${eventType}"`;
    if (token === '*' || token === '>') return `wildcard in event type "${eventType}"`;
    if (!TOKEN.test(token)) return `invalid characters in event type "${eventType}" (allowed: A-Z a-z 0-9 _ -)`;
  }
  if (tokens[0] === DLQ_TOKEN) return `event type "${eventType}" uses the reserved first token "dlq"`;
  return undefined;
}

/** Why `pattern` cannot be subscribed to, or undefined when it can. */
export function subscriptionPatternProblem(pattern: string): string | undefined {
  if (pattern.length === 0) return 'empty event type';
  const tokens = pattern.split('.');
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    if (token.length === 0) return `empty token in "${pattern}"`;
    if (token === '*') continue;
    if (token === '>') {
      if (i !== tokens.length - 1) return `">" must be the last token in "${pattern}"`;
      continue;
    }
    if (!TOKEN.test(token)) return `invalid characters in "${pattern}" (allowed: A-Z a-z 0-9 _ - and the wildcards * >)`;
  }
  return undefined;
}

export function subjectFor(prefix: string, eventType: string): string {
  return prefix === '' ? eventType : `${prefix}.${eventType}`;
}

export function deadLetterSubject(prefix: string, eventType: string): string {
  return subjectFor(prefix, `${DLQ_TOKEN}.${eventType}`);
}

/** The event type a subject carries, or undefined when the subject is outside the prefix. */
export function eventTypeOfSubject(prefix: string, subject: string): string | undefined {
  if (prefix === '') return subject;
  if (!subject.startsWith(prefix) || subject.charCodeAt(prefix.length) !== 46 /* . */) return undefined;
  return subject.slice(prefix.length + 1);
}

/** True when a subject is a dead letter, which only an explicit `dlq.` subscription may receive. */
export function isDeadLetterEventType(eventType: string): boolean {
  return eventType === DLQ_TOKEN || eventType.startsWith(`${DLQ_TOKEN}.`);
}

/** True when `pattern` names dead letters explicitly (first token `dlq`). */
export function patternTargetsDeadLetters(pattern: string): boolean {
  return pattern === DLQ_TOKEN || pattern.startsWith(`${DLQ_TOKEN}.`);
}

/**
 * Compiles `publish.allow` globs into a predicate. Each glob token matches one event type token: `*`
 * matches any one token, a trailing `>` matches the rest, and a lone `*` allows everything (the default).
 */
export function compileAllowList(globs: readonly string[]): (eventType: string) => boolean {
  if (globs.includes('*') || globs.includes('>')) return () => true;
  const patterns = globs.map((g) => g.split('.'));
  return (eventType) => {
    const tokens = eventType.split('.');
    return patterns.some((p) => tokensMatch(p, tokens));
  };
}

function tokensMatch(pattern: readonly string[], tokens: readonly string[]): boolean {
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i];
    if (p === '>') return tokens.length > i;
    if (i >= tokens.length) return false;
    if (p !== '*' && p !== tokens[i]) return false;
  }
  return pattern.length === tokens.length;
}
