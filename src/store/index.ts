export * from './atomic.js';
export * from './state-store.js';
export * from './roster.js';
export * from './activity.js';
export * from './events.js';
export * from './shared.js';
