// A Herald stream client for end-to-end tests, built on the unmodified client libraries
// (socket.io-client, and the eventsource package's EventSource) so that what it sees is what
// an application using them would see, reconnections included.
//
//   npm ci --prefix e2e
//   node e2e/watch.mjs --url http://HOST:PORT --transport socketio|sse [--since N] [--name LABEL]
//
// One JSON line on stdout per thing that happens:
//   {"t": ms since epoch, "name", "transport", "kind", "sequence"?, "id"?, "status"?, "detail"?}
// kinds: connected, upgraded (Socket.IO moved from long-polling to WebSocket), notification,
// updated, recovered, reset, error, disconnected, reconnecting, stopped. For notification and
// updated, "sequence" is the event's sequence (the resume point), "id" and "status" the
// notification's, "detail" the notification object; on other kinds "sequence" is the resume
// point at that moment. Reconnections are the libraries' own and resume from the last sequence
// received, as an application's would: Socket.IO through the handshake `auth.lastSequence`,
// SSE through EventSource's Last-Event-ID. Sequences can arrive out of order (a status event
// published just after a later create), so compare them as a set, not as a run.
//
// Exit status: 0 after SIGTERM or SIGINT (the last line is "stopped"); 2 for bad arguments;
// 1 when the client library gives up on its own (a refused Socket.IO handshake, or an SSE
// response that is not a 200 event stream, after which EventSource does not reconnect).

import { parseArgs } from "node:util";
import { EventSource } from "eventsource";
import { io } from "socket.io-client";

const USAGE =
  "usage: node e2e/watch.mjs --url http://HOST:PORT --transport socketio|sse [--since N] [--name LABEL] [--token TOKEN]";

function parseOptions(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      url: { type: "string" },
      transport: { type: "string" },
      since: { type: "string" },
      name: { type: "string" },
      token: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  if (values.url === undefined) throw new Error("--url is required");
  let url;
  try {
    url = new URL(values.url);
  } catch {
    throw new Error(`--url ${JSON.stringify(values.url)} is not a URL`);
  }
  // socket.io-client would take a path as a namespace, and the SSE path is fixed.
  if (!["http:", "https:"].includes(url.protocol) || url.pathname !== "/" || url.search || url.hash) {
    throw new Error(`--url must look like http://HOST:PORT, not ${JSON.stringify(values.url)}`);
  }
  if (!["socketio", "sse"].includes(values.transport)) {
    throw new Error(`--transport must be socketio or sse, not ${JSON.stringify(values.transport ?? "")}`);
  }
  let since = null;
  if (values.since !== undefined) {
    since = /^\d+$/.test(values.since) ? Number(values.since) : NaN;
    if (!Number.isSafeInteger(since)) {
      throw new Error(`--since must be a sequence number (0 or more), not ${JSON.stringify(values.since)}`);
    }
  }
  // The credential (a user token or an API key): Socket.IO's `auth.token`, and for SSE the
  // `access_token` query parameter, as a browser's EventSource (which cannot set headers) does.
  const token = values.token ?? process.env.HERALD_TOKEN;
  return { url, transport: values.transport, since, name: values.name ?? values.transport, token };
}

let options;
try {
  options = parseOptions(process.argv.slice(2));
} catch (error) {
  process.stderr.write(`watch.mjs: ${error.message}\n${USAGE}\n`);
  process.exit(2);
}

// Where a reconnection resumes: the latest sequence seen, else --since, else live only.
let lastSequence = options.since;
const position = () => lastSequence ?? undefined;

// stdout writes to files and pipes are synchronous on Linux: each line is out before the next
// event, and before exit.
function emit(kind, fields = {}) {
  const line = { t: Date.now(), name: options.name, transport: options.transport, kind, ...fields };
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

function notificationEvent(kind, notification, sequence) {
  lastSequence = sequence;
  emit(kind, { sequence, id: notification.id, status: notification.status, detail: notification });
}

function positionEvent(kind, payload) {
  lastSequence = payload.lastSequence;
  emit(kind, { sequence: payload.lastSequence, detail: payload });
}

function giveUp(message) {
  process.stderr.write(`watch.mjs (${options.name}): ${message}\n`);
  process.exit(1);
}

// Engine.IO nests a failure's cause: an Error whose `description` is an HTTP status or another
// Error, or `{description, context}` where the context is a WebSocket close event.
function describe(cause) {
  if (cause === undefined || cause === null) return undefined;
  if (typeof cause !== "object") return String(cause);
  if (typeof cause.code === "number" && "reason" in cause) {
    return `close ${cause.code} ${cause.reason}`.trim();
  }
  const text = cause instanceof Error ? cause.message : describe(cause.description);
  const inner = describe(cause instanceof Error ? (cause.description ?? cause.cause) : cause.context);
  return [text, inner].filter(Boolean).join(": ") || undefined;
}

function watchSocketIo() {
  const reconnection = { reconnectionDelay: 200, reconnectionDelayMax: 1000 };
  let resumeFrom = null;
  const socket = io(options.url.origin, {
    ...reconnection,
    // Called at every handshake, so a reconnection carries the latest sequence seen.
    auth: (send) => {
      resumeFrom = lastSequence;
      const auth = options.token === undefined ? {} : { token: options.token };
      send(lastSequence === null ? auth : { ...auth, lastSequence });
    },
  });
  socket.io.on("open", () => {
    socket.io.engine.on("upgrade", (transport) => emit("upgraded", { detail: { transport: transport.name } }));
  });
  socket.on("connect", () => {
    emit("connected", { detail: { resumeFrom, sid: socket.id, transport: socket.io.engine.transport.name } });
  });
  socket.on("notification", (notification, sequence) => notificationEvent("notification", notification, sequence));
  socket.on("notification:updated", (notification, sequence) => notificationEvent("updated", notification, sequence));
  socket.on("recovered", (payload) => positionEvent("recovered", payload));
  socket.on("reset", (payload) => positionEvent("reset", payload));
  socket.on("error", (payload) => emit("error", { sequence: position(), detail: payload }));
  socket.on("connect_error", (error) => {
    emit("error", { detail: { message: describe(error), data: error.data, willRetry: socket.active } });
    if (!socket.active) giveUp(`the server refused the Socket.IO connection: ${error.message}`);
  });
  socket.on("disconnect", (reason, description) => {
    emit("disconnected", { sequence: position(), detail: { reason, description: describe(description) } });
    // The server ends a socket this way after an `error` event that asks the client to come
    // back (slow consumer, event log unavailable); socket.io-client leaves that to the app.
    if (reason === "io server disconnect") {
      emit("reconnecting", { detail: { after: "io server disconnect", delayMs: reconnection.reconnectionDelay } });
      setTimeout(() => socket.connect(), reconnection.reconnectionDelay);
    }
  });
  socket.io.on("reconnect_attempt", (attempt) => emit("reconnecting", { detail: { attempt } }));
  return () => socket.disconnect();
}

// The server takes Last-Event-ID over ?since= (api-server/src/stream/sse.rs), and every event
// but error and shutdown carries an id (recovered too), so the URL can keep --since: it only
// counts until the first id arrives, after which EventSource's own reconnection resumes from
// the header.
function watchSse() {
  const url = new URL("/api/sse/notifications", options.url);
  if (options.since !== null) url.searchParams.set("since", String(options.since));
  if (options.token !== undefined) url.searchParams.set("access_token", options.token);
  const source = new EventSource(url);
  let open = false;
  let attempts = 0;
  source.addEventListener("open", () => {
    open = true;
    attempts = 0;
    emit("connected", { detail: { resumeFrom: lastSequence } });
  });
  const sequenceOf = (event) => Number(event.lastEventId);
  source.addEventListener("notification", (event) =>
    notificationEvent("notification", JSON.parse(event.data), sequenceOf(event)),
  );
  source.addEventListener("notification.updated", (event) =>
    notificationEvent("updated", JSON.parse(event.data), sequenceOf(event)),
  );
  source.addEventListener("recovered", (event) => positionEvent("recovered", JSON.parse(event.data)));
  source.addEventListener("reset", (event) => positionEvent("reset", JSON.parse(event.data)));
  source.addEventListener("shutdown", (event) => {
    open = false;
    const payload = JSON.parse(event.data);
    emit("disconnected", { sequence: position(), detail: { reason: "shutdown", ...payload } });
  });
  // The server's `error` event and EventSource's own connection errors share the name.
  source.addEventListener("error", (event) => {
    if (event instanceof MessageEvent) {
      emit("error", { sequence: position(), detail: JSON.parse(event.data) });
      return;
    }
    const failure = { message: event.message ?? "stream ended", code: event.code };
    if (source.readyState === EventSource.CLOSED) {
      emit("error", { sequence: position(), detail: { ...failure, willRetry: false } });
      return giveUp(`EventSource gave up: ${failure.message}`);
    }
    if (open) {
      open = false;
      emit("disconnected", { sequence: position(), detail: { reason: failure.message } });
    }
    attempts += 1;
    emit("reconnecting", { detail: { attempt: attempts, message: failure.message } });
  });
  return () => source.close();
}

const close = options.transport === "socketio" ? watchSocketIo() : watchSse();

for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => {
    close();
    emit("stopped", { sequence: position(), detail: { signal } });
    process.exit(0);
  });
}
