// A small GraphQL client: queries and mutations over HTTP POST with the API
// key as a Bearer token, and subscriptions over a websocket speaking the
// graphql-transport-ws protocol (the one gqlgen and graphql-ws implement).

/** An error answered by the API, with its extensions.code and, for
 * validation errors, the messages per input field. */
export class APIError extends Error {
  constructor(message, code, fields, status) {
    super(message);
    this.name = 'APIError';
    this.code = code || 'INTERNAL';
    this.fields = fields || {};
    this.status = status || 0;
  }
}

/** Builds an APIError from the first GraphQL error of a response. */
export function errorFrom(errors, status) {
  const e = (errors && errors[0]) || {};
  const ext = e.extensions || {};
  return new APIError(e.message || 'The request failed.', ext.code, ext.fields, status);
}

export class Client {
  constructor(endpoint, key) {
    this.endpoint = endpoint;
    this.key = key;
  }

  /** Runs a query or mutation and returns its data; throws an APIError. */
  async request(query, variables = {}) {
    let res;
    try {
      res = await fetch(this.endpoint, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          Accept: 'application/graphql-response+json, application/json',
          Authorization: 'Bearer ' + this.key,
        },
        body: JSON.stringify({ query, variables }),
        credentials: 'omit',
        cache: 'no-store',
      });
    } catch {
      throw new APIError('The service cannot be reached. Check your connection.', 'NETWORK');
    }
    let body = null;
    try {
      body = await res.json();
    } catch {
      // Not JSON (a proxy's error page): fall through to the status.
    }
    if (body && body.errors && body.errors.length) {
      throw errorFrom(body.errors, res.status);
    }
    if (body && body.error) {
      // An error written before GraphQL ran (the key middleware), REST-style.
      const code = { unauthenticated: 'UNAUTHENTICATED', forbidden: 'FORBIDDEN', rate_limited: 'RATE_LIMITED' }[body.error.code];
      throw new APIError(body.error.message, code || String(body.error.code || '').toUpperCase(), body.error.fields, res.status);
    }
    if (!res.ok || !body || !body.data) {
      const code = res.status === 401 ? 'UNAUTHENTICATED' : res.status === 403 ? 'FORBIDDEN' : res.status === 429 ? 'RATE_LIMITED' : 'INTERNAL';
      throw new APIError(`The service answered ${res.status}.`, code, null, res.status);
    }
    return body.data;
  }
}

/**
 * Live keeps one subscription open over graphql-transport-ws and reconnects
 * with backoff when the connection drops.
 *
 * handlers: onData(data), onError(APIError), onState(state) with state one
 * of 'connecting', 'live', 'offline', 'unauthorized'; onResume() after a
 * reconnect, so the caller can catch up on what it missed.
 */
export class Live {
  constructor(url, key, query, handlers) {
    this.url = url;
    this.key = key;
    this.query = query;
    this.h = handlers;
    this.ws = null;
    this.attempt = 0;
    this.stopped = true;
    this.timers = [];
    this.nextID = 1;
    this.subID = null;
    this.wasLive = false;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    this.clearTimers();
    if (this.ws) {
      if (this.ws.readyState === WebSocket.OPEN && this.subID) {
        this.send({ id: this.subID, type: 'complete' });
      }
      this.ws.close(1000, 'bye');
      this.ws = null;
    }
  }

  clearTimers() {
    this.timers.forEach((t) => clearTimeout(t));
    this.timers = [];
    clearInterval(this.pinger);
  }

  state(s) {
    if (this.h.onState) this.h.onState(s);
  }

  send(msg) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  connect() {
    this.state('connecting');
    const ws = new WebSocket(this.url, 'graphql-transport-ws');
    this.ws = ws;
    ws.onopen = () => {
      // The key travels in the init payload: browsers cannot set headers
      // on a websocket handshake.
      this.send({ type: 'connection_init', payload: { Authorization: 'Bearer ' + this.key } });
      // The server must acknowledge within its init timeout; do not wait
      // for ever on a half-open connection.
      this.timers.push(setTimeout(() => { if (ws.readyState === WebSocket.OPEN && !this.subID) ws.close(4408, 'ack timeout'); }, 10000));
    };
    ws.onmessage = (ev) => this.onMessage(ws, ev);
    ws.onclose = (ev) => this.onClose(ws, ev);
  }

  onMessage(ws, ev) {
    let msg;
    try {
      msg = JSON.parse(ev.data);
    } catch {
      return;
    }
    switch (msg.type) {
      case 'connection_ack':
        this.subID = String(this.nextID++);
        this.send({ id: this.subID, type: 'subscribe', payload: { query: this.query } });
        this.attempt = 0;
        this.state('live');
        if (this.wasLive && this.h.onResume) this.h.onResume();
        this.wasLive = true;
        // Our own pings keep idle proxies from closing the connection.
        clearInterval(this.pinger);
        this.pinger = setInterval(() => this.send({ type: 'ping' }), 25000);
        break;
      case 'ping':
        this.send({ type: 'pong', payload: msg.payload });
        break;
      case 'pong':
        break;
      case 'next':
        if (msg.id === this.subID && msg.payload) {
          if (msg.payload.errors && msg.payload.errors.length && this.h.onError) this.h.onError(errorFrom(msg.payload.errors));
          if (msg.payload.data && this.h.onData) this.h.onData(msg.payload.data);
        }
        break;
      case 'error':
        if (msg.id === this.subID && this.h.onError) this.h.onError(errorFrom(msg.payload));
        break;
      case 'complete':
        // The server ended the subscription: reconnect to get a new one.
        if (msg.id === this.subID) ws.close(1000, 'completed');
        break;
      default:
        break;
    }
  }

  onClose(ws, ev) {
    if (ws !== this.ws) return;
    this.ws = null;
    this.subID = null;
    this.clearTimers();
    if (this.stopped) return;
    if (ev.code === 4401 || ev.code === 4403) {
      // The key is not (or no longer) accepted: retrying will not help.
      this.state('unauthorized');
      return;
    }
    this.state('offline');
    const delay = Math.min(30000, 1000 * 2 ** this.attempt) * (0.75 + Math.random() / 2);
    this.attempt++;
    this.timers.push(setTimeout(() => { if (!this.stopped) this.connect(); }, delay));
  }
}
