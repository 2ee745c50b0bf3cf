// The typed client for host automation. The wire shapes and errors are the daemon's own, re-exported
// so that scripts never define them a second time.
export * from '../src/contract/index.js';
export { DaemonUnreachableError, PermissionDeniedError } from './errors.js';
export { DEFAULT_SOCKET, type PoolClient, type PoolClientOptions, createPoolClient } from './client.js';
export {
  BridgeHttpError,
  BridgeProtocolError,
  BridgeTimeoutError,
  BridgeUnreachableError,
  type BridgeClient,
  type BridgeClientOptions,
  createBridgeClient,
} from './bridge-client.js';
