import { describe, expect, it } from 'vitest';
import {
  DLQ_TOKEN,
  compileAllowList,
  deadLetterSubject,
  eventTypeOfSubject,
  isDeadLetterEventType,
  patternTargetsDeadLetters,
  publishableEventTypeProblem,
  subjectFor,
  subscriptionPatternProblem,
} from '../../src/event-type.js';

describe('publishableEventTypeProblem', () => {
  it.each([
    'order',
    'order.created',
    'Order.Created',
    'a.b.c.d.e.f',
    'order_line-item.v2',
    '0.1.2',
    'x'.repeat(255),
    'dlqx.created', // only the exact token "dlq" is reserved
    'order.dlq', // and only as the first token
    'DLQ.order', // subjects are case-sensitive: "DLQ" is not the reserved token
  ])('accepts %j', (eventType) => {
    expect(publishableEventTypeProblem(eventType)).toBeUndefined();
  });

  it.each([
    ['', /empty event type/],
    ['order.*', /wildcard/],
    ['order.>', /wildcard/],
    ['*', /wildcard/],
    ['>', /wildcard/],
    ['*.created', /wildcard/],
    ['order created', /invalid characters/],
    ['order. created', /invalid characters/],
    [' order', /invalid characters/],
    ['order\tcreated', /invalid characters/],
    ['order/created', /invalid characters/],
    ['order.cre*ted', /invalid characters/],
    ['order.créé', /invalid characters/],
    ['order..created', /empty token/],
    ['.order', /empty token/],
    ['order.', /empty token/],
    ['.', /empty token/],
    ['dlq', /reserved first token "dlq"/],
    ['dlq.order.created', /reserved first token "dlq"/],
    ['x'.repeat(256), /longer than 255/],
    [`${'a.'.repeat(127)}ab`, /longer than 255/], // 256 characters of valid tokens
  ])('refuses %j', (eventType, message) => {
    const problem = publishableEventTypeProblem(eventType);
    expect(problem).toBeDefined();
    expect(problem).toMatch(message);
  });

  it('names the event type in the problem', () => {
    expect(publishableEventTypeProblem('order..x')).toContain('"order..x"');
  });
});

describe('subscriptionPatternProblem', () => {
  it.each([
    'order.created',
    'order.*',
    'order.>',
    '*',
    '>',
    '*.created',
    '*.*',
    'a.*.c.>',
    'dlq.order.created', // an explicit dead-letter subscription is allowed
    'dlq.>',
    'x'.repeat(300), // no length limit on patterns
  ])('accepts %j', (pattern) => {
    expect(subscriptionPatternProblem(pattern)).toBeUndefined();
  });

  it.each([
    ['', /empty event type/],
    ['order..created', /empty token/],
    ['order.', /empty token/],
    ['.order', /empty token/],
    ['order.>.x', /">" must be the last token/],
    ['>.x', /">" must be the last token/],
    ['order created', /invalid characters/],
    ['order.cre*', /invalid characters/],
    ['order.>>', /invalid characters/],
    ['order.**', /invalid characters/],
    ['order.a b', /invalid characters/],
  ])('refuses %j', (pattern, message) => {
    expect(subscriptionPatternProblem(pattern)).toMatch(message);
  });
});

describe('subjects', () => {
  it('subjectFor joins prefix and event type, or uses the type alone with an empty prefix', () => {
    expect(subjectFor('events', 'order.created')).toBe('events.order.created');
    expect(subjectFor('acme.events', 'order.created')).toBe('acme.events.order.created');
    expect(subjectFor('', 'order.created')).toBe('order.created');
  });

  it('deadLetterSubject is <prefix>.dlq.<event_type>', () => {
    expect(DLQ_TOKEN).toBe('dlq');
    expect(deadLetterSubject('events', 'order.created')).toBe('events.dlq.order.created');
    expect(deadLetterSubject('acme.events', 'x')).toBe('acme.events.dlq.x');
    expect(deadLetterSubject('', 'order.created')).toBe('dlq.order.created');
  });

  it.each([
    ['events', 'events.order.created', 'order.created'],
    ['events', 'events.x', 'x'],
    ['events', 'events.dlq.order.created', 'dlq.order.created'],
    ['acme.events', 'acme.events.order.created', 'order.created'],
    ['', 'order.created', 'order.created'],
    ['events', 'events', undefined],
    ['events', 'eventsx.order', undefined],
    ['events', 'other.order.created', undefined],
    ['events', 'order.events.created', undefined],
    ['acme.events', 'acme.order.created', undefined],
  ])('eventTypeOfSubject(%j, %j) = %j', (prefix, subject, expected) => {
    expect(eventTypeOfSubject(prefix, subject)).toBe(expected);
  });

  it('round-trips subjectFor through eventTypeOfSubject', () => {
    for (const prefix of ['events', 'a.b', '']) {
      for (const type of ['order.created', 'x', 'a.b.c']) {
        expect(eventTypeOfSubject(prefix, subjectFor(prefix, type))).toBe(type);
      }
    }
  });

  it.each([
    ['dlq', true],
    ['dlq.order.created', true],
    ['dlqx', false],
    ['order.dlq', false],
    ['order.created', false],
  ])('isDeadLetterEventType(%j) = %j', (type, expected) => {
    expect(isDeadLetterEventType(type)).toBe(expected);
  });

  it.each([
    ['dlq.>', true],
    ['dlq', true],
    ['dlq.order.*', true],
    ['>', false],
    ['*.order', false],
    ['dlqs.>', false],
  ])('patternTargetsDeadLetters(%j) = %j', (pattern, expected) => {
    expect(patternTargetsDeadLetters(pattern)).toBe(expected);
  });
});

describe('compileAllowList', () => {
  const cases: Array<[string[], string, boolean]> = [
    // A lone "*" (the default) or ">" allows everything, whatever the number of tokens.
    [['*'], 'order', true],
    [['*'], 'order.created', true],
    [['*'], 'a.b.c.d', true],
    [['>'], 'a.b.c.d', true],
    [['order.created', '*'], 'anything.at.all', true],
    // Exact.
    [['order.created'], 'order.created', true],
    [['order.created'], 'order.updated', false],
    [['order.created'], 'order', false],
    [['order.created'], 'order.created.v2', false],
    [['order.created'], 'Order.created', false],
    // "*" is exactly one token.
    [['order.*'], 'order.created', true],
    [['order.*'], 'order.updated', true],
    [['order.*'], 'order', false],
    [['order.*'], 'order.created.v2', false],
    [['order.*'], 'invoice.created', false],
    [['*.created'], 'order.created', true],
    [['*.created'], 'order.updated', false],
    [['*.*'], 'a.b', true],
    [['*.*'], 'a', false],
    [['*.*'], 'a.b.c', false],
    // ">" is one or more tokens.
    [['order.>'], 'order.created', true],
    [['order.>'], 'order.created.v2', true],
    [['order.>'], 'order', false],
    [['order.>'], 'orders.created', false],
    [['a.*.>'], 'a.b.c', true],
    [['a.*.>'], 'a.b', false],
    // Several globs: any of them.
    [['order.*', 'invoice.paid'], 'invoice.paid', true],
    [['order.*', 'invoice.paid'], 'invoice.sent', false],
    [['order.*', 'invoice.paid'], 'order.x', true],
    // Nothing allowed.
    [[], 'order.created', false],
  ];
  it.each(cases)('%j allows %j: %j', (globs, eventType, expected) => {
    expect(compileAllowList(globs)(eventType)).toBe(expected);
  });
});
