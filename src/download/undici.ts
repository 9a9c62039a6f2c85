// The three parts of undici hoard uses, from their own modules: undici's index also loads
// fetch, WebSocket, caches, mocks and more, which took ~100 ms of every download's start.
// The CLI build bundles these into dist/hoard-net.cjs, a file of its own.
import AgentModule from 'undici/lib/dispatcher/agent.js';
import EnvHttpProxyAgentModule from 'undici/lib/dispatcher/env-http-proxy-agent.js';
import errorsModule from 'undici/lib/core/errors.js';
import DispatcherModule from 'undici/lib/dispatcher/dispatcher.js';
import api from 'undici/lib/api/index.js';
import type * as Undici from 'undici';

// As undici's index does: the request/connect/… methods of every dispatcher (a proxy agent
// opens its CONNECT tunnel with dispatcher.connect()).
Object.assign((DispatcherModule as { prototype: object }).prototype, api);

export const Agent = AgentModule as typeof Undici.Agent;
export const EnvHttpProxyAgent = EnvHttpProxyAgentModule as typeof Undici.EnvHttpProxyAgent;
export const errors = errorsModule as typeof Undici.errors;
