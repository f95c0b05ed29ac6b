export * from './machines.js';
export * from './messages.js';
export * from './templates.js';
