export * from './machines.js';
export * from './messages.js';
