// A real socket.io-client 4, driven by the api-server's Socket.IO tests.
//
// Usage: [TRANSPORTS=websocket] node client.cjs URL [AUTH_JSON]
// Prints one JSON line per thing that happens: {"event": "connect"}, {"event": NAME, "args":
// [...]} for every event the server emits, {"event": "connect_error", "message", "data"} and
// {"event": "disconnect", "reason": ...}. Never reconnects on its own: the test decides.
const { io } = require("socket.io-client");

const [url, auth] = process.argv.slice(2);
const print = (line) => process.stdout.write(JSON.stringify(line) + "\n");

const socket = io(url, {
  auth: auth ? JSON.parse(auth) : undefined,
  reconnection: false,
  // By default, as the seed's clients: long-polling first, then the upgrade to WebSocket.
  transports: (process.env.TRANSPORTS || "polling,websocket").split(","),
});
socket.on("connect", () => print({ event: "connect" }));
socket.on("connect_error", (error) => {
  print({ event: "connect_error", message: error.message, data: error.data });
  process.exit(0);
});
socket.on("disconnect", (reason) => {
  print({ event: "disconnect", reason });
  process.exit(0);
});
socket.onAny((event, ...args) => print({ event, args }));
// The test closes stdin to ask for a clean disconnect.
process.stdin.on("end", () => socket.disconnect());
process.stdin.resume();
