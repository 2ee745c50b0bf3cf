export * from './state.js';
export * from './evict.js';
export * from './decide.js';
export * from './reconcile.js';
export * from './autostart.js';
export * from './views.js';
export * from './errors.js';
export type * from './driver.js';
export * from './event-text.js';
