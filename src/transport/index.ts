export { TransportServer, type ServerOptions, type TlsMaterial } from './websocket-server.js';
export { Dialer, formatAddress, type DialOptions } from './websocket-client.js';
export { Connection, type PeerInfo, type CloseInfo, CLOSE_NORMAL, CLOSE_POLICY, CLOSE_TOO_BIG } from './connection.js';
export { encodeFrame, decodeFrame } from './codec.js';
export { Backoff } from './backoff.js';
export * from './settings.js';
