// A real browser (Debian's Chromium, driven by playwright-core) using the api-server as a web
// app would: an EventSource and a WebSocket with the user's token as ?access_token=, and a
// fetch with an Authorization header, from a page on an allowed origin and from one on an
// origin that is not allowed. Driven by api-server/tests/auth/browser.rs.
//
// Environment: API (http://127.0.0.1:PORT), TOKEN (a user token), PUBLISH_KEY (an API key
// with publish), ALLOWED_PORT and FOREIGN_PORT (where to serve the page), CHROMIUM.
// Prints one JSON line: {"allowed": [...], "foreign": [...]}, what each page saw.
const http = require("node:http");
const { chromium } = require("playwright-core");

const { API, TOKEN, PUBLISH_KEY, ALLOWED_PORT, FOREIGN_PORT, CHROMIUM } = process.env;

const PAGE = `<!doctype html><meta charset="utf-8"><title>herald</title><script>
window.seen = [];
const params = new URLSearchParams(location.hash.slice(1));
const api = params.get("api");
const token = encodeURIComponent(params.get("token"));
const see = (entry) => window.seen.push(entry);
const source = new EventSource(api + "/api/sse/notifications?access_token=" + token);
source.addEventListener("recovered", () => see({ via: "sse", kind: "recovered" }));
source.addEventListener("notification", (e) =>
  see({ via: "sse", kind: "notification", message: JSON.parse(e.data).message }));
source.onerror = () => see({ via: "sse", kind: "error", state: source.readyState });
const socket = new WebSocket(api.replace(/^http/, "ws") + "/api/ws?access_token=" + token);
socket.onmessage = (e) => {
  const frame = JSON.parse(e.data);
  see({ via: "ws", kind: frame.type, message: frame.notification && frame.notification.message });
};
socket.onerror = () => see({ via: "ws", kind: "error" });
socket.onclose = (e) => see({ via: "ws", kind: "close", code: e.code });
fetch(api + "/api/notifications", { headers: { Authorization: "Bearer " + params.get("token") } })
  .then((r) => see({ via: "fetch", kind: "status", status: r.status }))
  .catch(() => see({ via: "fetch", kind: "blocked" }));
</script>`;

function serve(port) {
  const server = http.createServer((_, response) => {
    response.writeHead(200, { "content-type": "text/html" });
    response.end(PAGE);
  });
  return new Promise((resolve) => server.listen(Number(port), "127.0.0.1", () => resolve(server)));
}

async function publish(body) {
  const response = await fetch(`${API}/api/notifications`, {
    method: "POST",
    headers: { Authorization: `Bearer ${PUBLISH_KEY}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  if (response.status !== 201) throw new Error(`POST answered ${response.status}`);
}

const seen = (page) => page.evaluate(() => window.seen);

async function until(page, check, what) {
  for (let i = 0; i < 200; i++) {
    if (check(await seen(page))) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}: ${JSON.stringify(await seen(page))}`);
}

(async () => {
  const servers = [await serve(ALLOWED_PORT), await serve(FOREIGN_PORT)];
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  try {
    const hash = `#api=${encodeURIComponent(API)}&token=${encodeURIComponent(TOKEN)}`;
    const allowed = await browser.newPage();
    const foreign = await browser.newPage();
    await allowed.goto(`http://127.0.0.1:${ALLOWED_PORT}/${hash}`);
    await foreign.goto(`http://127.0.0.1:${FOREIGN_PORT}/${hash}`);
    const live = (via) => (s) => s.some((e) => e.via === via && e.kind === "recovered");
    await until(allowed, (s) => live("sse")(s) && live("ws")(s), "both streams to be live");
    await publish({ message: "browser alice", type: "info", userId: "alice" });
    await publish({ message: "browser bob", type: "info", userId: "bob" });
    await publish({ message: "browser everyone", type: "info" });
    await publish({ message: "browser end", type: "info" });
    const ended = (via) => (s) => s.some((e) => e.via === via && e.message === "browser end");
    await until(allowed, (s) => ended("sse")(s) && ended("ws")(s), "the last notification");
    await until(foreign, (s) => s.some((e) => e.via === "ws" && e.kind === "close")
      && s.some((e) => e.via === "fetch"), "the foreign page's refusals");
    process.stdout.write(`${JSON.stringify({ allowed: await seen(allowed), foreign: await seen(foreign) })}\n`);
  } finally {
    await browser.close();
    servers.forEach((server) => server.close());
  }
})().catch((error) => {
  process.stderr.write(`browser: ${error.stack || error}\n`);
  process.exit(1);
});
