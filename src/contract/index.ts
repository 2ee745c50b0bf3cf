export * from './names.js';
export * from './time.js';
export * from './bytes.js';
export * from './api.js';
export * from './files.js';
export * from './config.js';
export * from './ops.js';
export * from './errors.js';
