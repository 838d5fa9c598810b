// emdash-fb in a browser: join a shared agent session by invite code and follow it live.
//
// No server of ours: the page signs in anonymously with Firebase Auth's REST API,
// reads and writes the Realtime Database over REST, and follows it with
// EventSource (RTDB REST streaming is Server-Sent Events). The security rules
// decide everything, exactly as for the terminal client (docs/DATA-MODEL.md is
// the contract; these writes are the ones listed there). Everything people and
// the agent wrote is shown as text, never as HTML, with invisible and bidi
// characters made visible.

const SV = { ".sv": "timestamp" };
const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const RECENT = 20; // messages shown on joining, as the terminal does
const HEARTBEAT_MS = 20000;
const ONLINE_MS = 45000; // as the terminal: away after 45 s without a heartbeat
const STORE = "emdash-fb-web";
const VIEWER_REFUSED =
  "refused: you joined as a viewer, and only editors can send (the owner can make you an editor)";

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------------------
// Text that can't pretend: every character visible, nothing interpreted.

// Controls (but tab and newline), bidi controls, zero-width and other invisible
// format characters, line/paragraph separators, and the BOM.
const INVISIBLE =
  /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u00ad\u061c\u115f\u1160\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufeff\ufff9-\ufffb]/g;

function visible(text) {
  const out = document.createDocumentFragment();
  let last = 0;
  for (const match of String(text).matchAll(INVISIBLE)) {
    if (match.index > last) out.append(text.slice(last, match.index));
    const mark = document.createElement("span");
    mark.className = "cc";
    const code = match[0].codePointAt(0).toString(16).toUpperCase().padStart(4, "0");
    mark.textContent = `U+${code}`;
    mark.title = "an invisible or direction-changing character, shown so it can't hide text";
    out.append(mark);
    last = match.index + match[0].length;
  }
  if (last < text.length) out.append(text.slice(last));
  return out;
}

function el(tag, className, ...children) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  for (const child of children) {
    node.append(typeof child === "string" ? visible(child) : child);
  }
  return node;
}

// ---------------------------------------------------------------------------
// Configuration: Firebase Hosting's reserved /__/firebase/init.json (the
// project's web app config) where the page is deployed; `emdash-fb web` serves
// the same URL, naming the emulators when it runs against them.

async function loadConfig() {
  let r;
  try {
    r = await fetch("/__/firebase/init.json", { cache: "no-store" });
  } catch (_) {
    throw new Error("can't load the page's configuration: check the connection and reload");
  }
  if (!r.ok) throw new Error("this page has no Firebase configuration: serve it with `emdash-fb web` or Firebase Hosting");
  return normalizeConfig(await r.json());
}

function normalizeConfig(c) {
  const cfg = { apiKey: c.apiKey || "demo-key", ns: c.namespace || null };
  if (c.databaseEmulatorHost) {
    cfg.db = `http://${c.databaseEmulatorHost}`;
    cfg.ns = cfg.ns || `${c.projectId}-default-rtdb`;
  } else {
    cfg.db = String(c.databaseURL).replace(/\/$/, "");
  }
  const auth = c.authEmulatorHost ? `http://${c.authEmulatorHost}/` : "https://";
  cfg.signUp = `${auth}identitytoolkit.googleapis.com/v1/accounts:signUp?key=${cfg.apiKey}`;
  cfg.refresh = `${auth}securetoken.googleapis.com/v1/token?key=${cfg.apiKey}`;
  return cfg;
}

// ---------------------------------------------------------------------------
// Identity: one anonymous account per browser, kept across reloads.

class Identity {
  constructor(cfg) {
    this.cfg = cfg;
    this.saved = JSON.parse(localStorage.getItem(STORE) || "null");
  }

  get uid() {
    return this.saved && this.saved.uid;
  }

  async token() {
    if (this.saved && this.saved.expiresAt - Date.now() > 60000) return this.saved.idToken;
    if (this.saved && this.saved.refreshToken) {
      const r = await postJson(this.cfg.refresh, {
        grant_type: "refresh_token",
        refresh_token: this.saved.refreshToken,
      });
      this.keep(r.user_id, r.id_token, r.refresh_token, r.expires_in);
    } else {
      const r = await postJson(this.cfg.signUp, { returnSecureToken: true });
      this.keep(r.localId, r.idToken, r.refreshToken, r.expiresIn);
    }
    return this.saved.idToken;
  }

  keep(uid, idToken, refreshToken, expiresIn) {
    const expiresAt = Date.now() + Number(expiresIn || 3600) * 1000;
    this.saved = { uid, idToken, refreshToken, expiresAt };
    localStorage.setItem(STORE, JSON.stringify(this.saved));
  }

  // The ID token was refused or revoked: the next token() refreshes it with the
  // refresh token, so the identity (the uid, and the memberships) stays the same.
  expire() {
    if (this.saved) this.saved.expiresAt = 0;
  }
}

async function postJson(url, body) {
  let r;
  try {
    r = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  } catch (_) {
    throw new Error("can't reach the sign-in service: check the connection and try again");
  }
  const data = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(`sign-in refused: ${(data.error && data.error.message) || r.status}`);
  return data;
}

// ---------------------------------------------------------------------------
// The database over REST.

class Database {
  constructor(cfg, identity) {
    this.cfg = cfg;
    this.identity = identity;
  }

  async url(path, params = {}) {
    const q = new URLSearchParams(params);
    if (this.cfg.ns) q.set("ns", this.cfg.ns);
    q.set("auth", await this.identity.token());
    return `${this.cfg.db}/${path}.json?${q}`;
  }

  async request(method, path, body, retried = false) {
    const url = await this.url(path);
    let r;
    try {
      r = await fetch(url, {
        method,
        headers: body === undefined ? {} : { "Content-Type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (_) {
      throw new NetworkError();
    }
    if (r.status === 401) {
      const why = await r.json().catch(() => ({}));
      if (why.error === "Permission denied" || retried) throw new Denied();
      this.identity.expire(); // the token itself was refused (expired, revoked): renew, once
      return this.request(method, path, body, true);
    }
    if (!r.ok) throw new Error(`the database answered ${r.status}`);
    return r.json();
  }

  get(path) { return this.request("GET", path); }
  patch(path, body) { return this.request("PATCH", path, body); }
  put(path, body) { return this.request("PUT", path, body); }
}

class Denied extends Error {}
class NetworkError extends Error {
  constructor() { super("can't reach the database: check the connection and try again"); }
}

// ---------------------------------------------------------------------------
// Codes and names, as the terminal client and the rules have them.

function normalizeCode(typed) {
  const cleaned = typed.replace(/[\s-]/g, "").toUpperCase().replace(/[IL]/g, "1").replace(/O/g, "0");
  if (cleaned.length !== 10 || [...cleaned].some((c) => !ALPHABET.includes(c))) return null;
  return cleaned;
}

const display = (code) => `${code.slice(0, 5)}-${code.slice(5)}`;

async function loadNames() {
  const r = await fetch("names.json", { cache: "no-store" });
  const n = await r.json();
  return { ...n, forbiddenRe: new RegExp(`[${n.forbidden}]`) };
}

function nameKey(names, name) {
  let key = name.toLowerCase();
  for (const [from, to] of names.confusables) key = key.split(from).join(to);
  return key;
}

function checkName(names, raw) {
  const name = raw.normalize("NFKC").replace(/\s+/g, " ").trim();
  if (!name) return [null, "a name can't be empty"];
  const bad = name.match(names.forbiddenRe);
  if (bad) return [null, `a name can't contain U+${bad[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")}`];
  if (name.length > names.max) return [null, `a name can have at most ${names.max} characters`];
  if (names.reservedKeys.includes(nameKey(names, name))) return [null, `"${name}" is reserved (it would look like the agent)`];
  return [name, null];
}

// ---------------------------------------------------------------------------
// Streams: one EventSource per window, applied to a local copy.

class Stream {
  constructor(db, path, params, { windowed, onChange, onState }) {
    this.db = db;
    this.path = path;
    this.params = params;
    this.windowed = windowed; // a query window: children leaving it are not deleted
    this.onChange = onChange;
    this.onState = onState;
    this.tree = {};
    this.state = "connecting";
    this.closed = false;
  }

  async open() {
    if (this.closed) return;
    this.setState("connecting");
    const source = new EventSource(await this.db.url(this.path, this.params));
    this.source = source;
    source.onopen = () => {
      this.retryMs = 0;
      this.setState("live");
    };
    source.onerror = () => {
      if (source.readyState !== EventSource.CLOSED) {
        this.setState("reconnecting"); // the browser retries by itself
        return;
      }
      // refused outright (a token that expired while we were away, say): renew and retry
      this.setState("reconnecting");
      this.retryMs = Math.min(30000, (this.retryMs || 1000) * 2);
      setTimeout(() => this.reopen(true), this.retryMs);
    };
    source.addEventListener("put", (e) => this.apply(e, false));
    source.addEventListener("patch", (e) => this.apply(e, true));
    source.addEventListener("auth_revoked", () => this.reopen(true));
    source.addEventListener("cancel", () => {
      source.close();
      this.state = "offline";
      this.onState(this, "cancelled");
    });
  }

  reopen(freshToken) {
    if (this.source) this.source.close();
    if (freshToken) this.db.identity.expire();
    this.open();
  }

  close() {
    this.closed = true;
    if (this.source) this.source.close();
  }

  setState(state) {
    this.state = state;
    this.onState(this, state);
  }

  apply(event, isPatch) {
    const { path, data } = JSON.parse(event.data);
    const base = path.split("/").filter(Boolean);
    if (isPatch) {
      for (const [key, value] of Object.entries(data || {})) this.set([...base, ...key.split("/").filter(Boolean)], value);
    } else {
      this.set(base, data);
    }
    this.setState("live");
    this.onChange(this);
  }

  set(keys, value) {
    if (keys.length === 0) {
      if (this.windowed) Object.assign(this.tree, value || {}); // a window only adds
      else this.tree = value && typeof value === "object" ? value : {};
      return;
    }
    if (this.windowed && keys.length === 1 && value === null) return; // left the window
    let node = this.tree;
    for (const key of keys.slice(0, -1)) {
      if (typeof node[key] !== "object" || node[key] === null) node[key] = {};
      node = node[key];
    }
    const last = keys[keys.length - 1];
    if (value === null) delete node[last];
    else node[last] = value;
  }
}

// ---------------------------------------------------------------------------
// The session view.

class SessionView {
  constructor(db, identity, sid) {
    this.db = db;
    this.identity = identity;
    this.sid = sid;
    this.pending = false;
    const onChange = () => this.schedule();
    const onState = (stream, state) => this.streamState(stream, state);
    const at = `sessions/${sid}`;
    this.live = new Stream(db, at, { orderBy: '"$key"', endAt: '"slots"' }, { windowed: false, onChange, onState });
    this.transcript = new Stream(db, `${at}/transcript`, { orderBy: '"at"', limitToLast: String(RECENT) }, { windowed: true, onChange, onState });
    this.turns = new Stream(db, `${at}/turns`, { orderBy: '"startedAt"', limitToLast: String(RECENT) }, { windowed: true, onChange, onState });
    this.streams = [this.live, this.transcript, this.turns];
  }

  start() {
    for (const s of this.streams) s.open();
    this.heartbeat();
    this.beat = setInterval(() => this.heartbeat(), HEARTBEAT_MS);
    this.tick = setInterval(() => this.schedule(), 5000); // presence and expiry age
    window.addEventListener("online", () => this.gone || this.streams.forEach((s) => s.reopen(false)));
    window.addEventListener("offline", () => this.render());
    // leaving the page closes the streams first (a browser otherwise reports them cut)
    window.addEventListener("beforeunload", () => this.stop());
    window.addEventListener("pagehide", () => this.stop());
  }

  async heartbeat() {
    try {
      await this.db.put(`sessions/${this.sid}/presence/${this.identity.uid}`, { lastSeen: SV });
    } catch (_) {
      /* presence is best effort; the streams show the connection */
    }
  }

  streamState(stream, state) {
    if (state === "cancelled" && !this.gone) {
      // read access ended (removed by the owner, or the session went away): stop asking
      this.gone = true;
      this.stop();
      localStorage.removeItem(`${STORE}:session`);
      $("send-status").className = "error";
      $("send-status").textContent = "you are no longer a member of this session: the owner removed you, or it was deleted";
      $("send-button").disabled = true;
    }
    this.renderConnection();
  }

  stop() {
    for (const s of this.streams) s.close();
    clearInterval(this.beat);
    clearInterval(this.tick);
  }

  schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.render();
    });
  }

  get me() {
    return (this.live.tree.members || {})[this.identity.uid] || null;
  }

  renderConnection() {
    const badge = $("connection");
    let state = "live";
    if (!navigator.onLine) state = "offline";
    else if (this.gone) state = "offline";
    else if (this.streams.some((s) => s.state !== "live")) state = this.everLive ? "reconnecting" : "connecting";
    else this.everLive = true;
    badge.dataset.state = state;
    badge.textContent = this.gone ? "no longer a member" : { live: "live", reconnecting: "reconnecting…", connecting: "connecting…", offline: "offline" }[state];
  }

  render() {
    const tree = this.live.tree;
    const meta = tree.meta || {};
    $("title").replaceChildren(visible(meta.title || `emdash-fb session ${this.sid.slice(-6)}`));
    document.title = `${meta.title || "session"} — emdash-fb`;
    const me = this.me;
    const role = $("role");
    role.hidden = !me;
    if (me) role.textContent = `you: ${me.name} (${me.role})`;
    this.renderConnection();
    this.renderMembers(tree);
    this.renderQueue(tree);
    this.renderApprovals(tree);
    this.renderTranscript();
  }

  renderMembers(tree) {
    const presence = tree.presence || {};
    const now = Date.now();
    const items = Object.entries(tree.members || {})
      .sort(([, a], [, b]) => (a.joinedAt || 0) - (b.joinedAt || 0))
      .map(([uid, m]) => {
        const p = presence[uid] || {};
        const online = p.lastSeen && now - p.lastSeen < ONLINE_MS;
        const typing = p.typingUntil && p.typingUntil > now;
        const li = el("li", online ? "online" : "away", el("span", "who", m.name || "?"), el("span", "tag", `#${uid.slice(0, 4)} · ${m.role}${typing ? " · typing…" : ""}`));
        li.dataset.uid = uid;
        return li;
      });
    $("members").replaceChildren(...items);
  }

  renderQueue(tree) {
    const queue = Object.entries(tree.queue || {}).sort(([ka, a], [kb, b]) => (a.createdAt || 0) - (b.createdAt || 0) || (ka < kb ? -1 : 1));
    const items = queue.map(([mid, q], i) => {
      const li = el("li", "", el("span", "who", q.name || "?"), `${q.state === "running" ? "running" : `#${i + 1} waiting`} — `, el("span", "", preview(q.text)));
      li.dataset.mid = mid;
      return li;
    });
    $("queue").replaceChildren(...items);
    $("queue-empty").hidden = items.length > 0;
  }

  renderApprovals(tree) {
    const members = tree.members || {};
    const now = Date.now();
    const items = [];
    const shown = [];
    for (const [mid, turn] of Object.entries(this.turns.tree)) {
      for (const [aid, a] of Object.entries(turn.approvals || {})) {
        let status;
        const open = !a.outcome && !a.answer && turn.state === "running" && !(a.expiresAt && a.expiresAt <= now);
        if (a.outcome) status = `${a.outcome.allow ? "allowed" : "denied"} by ${whoName(members, a.outcome.by)}${a.outcome.reason ? `: ${a.outcome.reason}` : ""}`;
        else if (a.answer) status = `${a.answer.decision === "allow" ? "allowed" : "denied"} by ${whoName(members, a.answer.by)}`;
        else if (turn.state !== "running") status = "closed";
        else if (!open) status = "timed out";
        else status = `waiting${a.expiresAt ? ` (${Math.max(0, Math.round((a.expiresAt - now) / 1000))} s left)` : ""}`;
        const li = el("li", "", el("span", "who", a.tool || "tool"), el("span", "", ` ${status}`), el("div", "tool", a.summary || ""));
        if (open && this.mayAnswer(tree, a)) {
          for (const [decision, label] of [["allow", "Allow"], ["deny", "Deny"]]) {
            const button = el("button", `answer ${decision}`, label);
            button.type = "button";
            Object.assign(button.dataset, { mid, aid, decision });
            li.append(button);
          }
        }
        li.dataset.aid = aid;
        li.dataset.mid = mid;
        shown.push(`${mid}/${aid}/${status}/${li.querySelectorAll("button").length}`);
        if (open) items.unshift(li);
        else items.push(li);
      }
    }
    const signature = shown.join("|");
    if (signature === this.approvalsShown) return; // unchanged: keep focus and a click in progress
    this.approvalsShown = signature;
    $("approvals").replaceChildren(...items.slice(0, 10));
    $("approvals-empty").hidden = items.length > 0;
  }

  // Who the owner's policy lets answer (the rules check the same; this only hides buttons).
  mayAnswer(tree, request) {
    const me = this.me;
    if (!me) return false;
    if (me.role === "owner") return true;
    const approvers = ((tree.meta || {}).policy || {}).approvers || "owner";
    if (approvers === "editors") return me.role === "editor";
    if (approvers === "author") return request.author === this.identity.uid;
    return false;
  }

  async answer(mid, aid, decision) {
    const where = `sessions/${this.sid}/turns/${mid}/approvals/${aid}/answer`;
    try {
      await this.db.put(where, { by: this.identity.uid, decision, at: SV });
    } catch (e) {
      if (!(e instanceof Denied)) throw e;
      throw new Error("refused: it was answered already, it timed out, or the policy doesn't let you answer");
    }
  }

  renderTranscript() {
    const entries = Object.entries(this.transcript.tree).sort(([ka, a], [kb, b]) => (a.at || 0) - (b.at || 0) || (ka < kb ? -1 : 1));
    const seen = new Set(entries.map(([k]) => k));
    const items = [];
    for (const [mid, m] of entries) {
      if (m.role === "assistant") continue; // shown under its question, from the turn
      items.push(this.userMessage(mid, m));
      const turn = this.turns.tree[mid];
      const reply = this.transcript.tree[`${mid}~a`];
      if (turn || reply) items.push(this.reply(mid, turn || {}, reply));
    }
    for (const [mid, m] of entries) {
      if (m.role === "assistant" && !seen.has(m.replyTo)) items.push(this.reply(m.replyTo, this.turns.tree[m.replyTo] || {}, m));
    }
    const list = $("transcript");
    const atBottom = window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
    list.replaceChildren(...items);
    if (atBottom) window.scrollTo(0, document.body.scrollHeight);
  }

  userMessage(mid, m) {
    const li = el("li", "msg user", el("span", "who", m.name || "?"), el("span", "tag", `#${(m.uid || "").slice(0, 4)}`));
    if (m.state === "cancelled") li.append(el("span", "state cancelled", " cancelled"));
    li.append(el("pre", "text", m.text || ""));
    for (const f of Object.values(m.attachments || {})) li.append(el("div", "tool", `[${f.type && f.type.startsWith("image/") ? "image" : "file"} ${f.name} ${Math.round((f.size || 0) / 1024)} KB]`));
    li.dataset.mid = mid;
    return li;
  }

  reply(mid, turn, reply) {
    const agent = this.live.tree.agent || {};
    const name = (reply && reply.name) || agent.name || "agent";
    const li = el("li", "msg assistant", el("span", "who", name));
    const state = turn.state || (reply && reply.state) || "done";
    if (state !== "done") li.append(el("span", `state ${state}`, state === "running" ? "writing…" : state));
    const chunks = Object.keys(turn.chunks || {}).sort((a, b) => a.length - b.length || (a < b ? -1 : 1));
    li.append(el("pre", "text", chunks.map((k) => turn.chunks[k]).join("")));
    const tools = Object.entries(turn.tools || {}).sort(([, a], [, b]) => (a.at || 0) - (b.at || 0));
    for (const [, t] of tools) li.append(el("div", "tool", `⚙ ${t.name || "tool"} ${t.input || ""} — ${t.state || ""}`));
    if (turn.error) li.append(el("div", "state failed", turn.error));
    li.dataset.reply = mid;
    return li;
  }

  async send(text) {
    const me = this.me;
    if (!me) throw new Error("you are not a member of this session any more");
    // The rules refuse a viewer's send anyway; saying so first keeps a refused
    // request out of the browser's console. A stale role still meets the rules below.
    if (me.role === "viewer") throw new Error(VIEWER_REFUSED);
    const uid = this.identity.uid;
    const taken = ((this.live.tree.slots || {})[uid]) || {};
    const slot = [...Array(10).keys()].map((i) => `s${i}`).find((s) => !(s in taken));
    if (!slot) throw new Error("you have 10 messages waiting: wait for the agent");
    const mid = pushId();
    const at = `sessions/${this.sid}`;
    const body = {
      [`${at}/queue/${mid}`]: { uid, name: me.name, text, createdAt: SV, state: "queued", slot },
      [`${at}/transcript/${mid}`]: { role: "user", uid, name: me.name, text, at: SV },
      [`${at}/slots/${uid}/${slot}`]: mid,
      [`work/${mid}`]: { sid: this.sid, uid, at: SV },
      [`${at}/meta/lastMessage`]: mid,
      [`${at}/meta/lastActivity`]: SV,
    };
    try {
      await this.db.patch("", body);
    } catch (e) {
      if (!(e instanceof Denied)) throw e;
      if ((this.me || me).role === "viewer") throw new Error(VIEWER_REFUSED);
      const meta = this.live.tree.meta || {};
      if (meta.status === "closed") throw new Error("refused: the session is closed");
      throw new Error(`refused: you may have ${meta.maxQueued || 5} messages waiting at most, or the session is idle`);
    }
  }
}

function whoName(members, uid) {
  if (uid === "timeout" || uid === "cancel" || uid === "stopped") return uid;
  const m = members[uid];
  return m ? m.name : `#${String(uid).slice(0, 4)}`;
}

function preview(text) {
  const line = String(text || "").split("\n")[0];
  return line.length > 80 ? `${line.slice(0, 79)}…` : line;
}

// Firebase push ids: time-ordered, 20 characters of -0-9A-Za-z_.
const PUSH_CHARS = "-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";
let lastPush = 0;
let lastRandom = [];
function pushId() {
  let now = Date.now();
  const same = now === lastPush;
  lastPush = now;
  const time = [];
  for (let i = 0; i < 8; i++) {
    time.unshift(PUSH_CHARS[now % 64]);
    now = Math.floor(now / 64);
  }
  if (!same) {
    lastRandom = Array.from(crypto.getRandomValues(new Uint8Array(12)), (b) => b % 64);
  } else {
    let i = 11;
    while (i >= 0 && lastRandom[i] === 63) lastRandom[i--] = 0;
    if (i >= 0) lastRandom[i]++;
  }
  return time.join("") + lastRandom.map((n) => PUSH_CHARS[n]).join("");
}

// ---------------------------------------------------------------------------
// Joining.

async function join(db, identity, names, code, rawName, wantRole) {
  const invite = await db.get(`invites/${code}`).catch((e) => {
    if (e instanceof Denied) throw new Error("sign-in failed: reload the page and try again");
    throw e;
  });
  if (!invite || typeof invite.sid !== "string") throw new Error(`no session has invite code ${display(code)}: check it, or ask for a new one`);
  const sid = invite.sid;
  const uid = identity.uid || (await identity.token(), identity.uid);
  if (remembered() === sid && (await isMember(db, sid, uid))) return sid;
  if (invite.revokedAt) throw new Error(`invite ${display(code)} was revoked: ask the owner for a new one`);
  if (invite.expiresAt && invite.expiresAt <= Date.now()) throw new Error(`invite ${display(code)} has expired: ask the owner for a new one`);
  const [name, why] = checkName(names, rawName);
  if (!name) throw new Error(`${why}: pick another name`);
  const key = nameKey(names, name);
  const holder = await db.get(`sessions/${sid}/names/${key}`).catch(() => null);
  if (holder && holder !== uid) throw new Error(`the name "${name}" (or one that looks like it) is taken here: pick another`);
  const sticky = await db.get(`sessions/${sid}/roles/${uid}`).catch(() => null);
  const inviteRole = invite.role === "viewer" ? "viewer" : "editor";
  const role = sticky || (wantRole === "editor" ? inviteRole : "viewer");
  const at = `sessions/${sid}`;
  const body = {
    [`${at}/members/${uid}`]: { name, role, joinedAt: SV, via: code },
    [`${at}/names/${key}`]: uid,
    [`users/${uid}/sessions/${sid}`]: { at: SV },
    [`${at}/meta/memberCount`]: { ".sv": { increment: 1 } },
    [`${at}/meta/lastActivity`]: SV,
  };
  if (!sticky) body[`${at}/roles/${uid}`] = role;
  try {
    await db.patch("", body);
  } catch (e) {
    if (!(e instanceof Denied)) throw e;
    if (await isMember(db, sid, uid)) return sid; // joined already (another tab, or earlier)
    const kicked = await db.get(`${at}/kicked/${uid}`).catch(() => null);
    if (kicked) throw new Error("the owner removed you from this session");
    const taken = await db.get(`${at}/names/${key}`).catch(() => null);
    if (taken && taken !== uid) throw new Error(`the name "${name}" (or one that looks like it) is taken here: pick another`);
    throw new Error("the session refused the join: it may be full, closed or idle");
  }
  return sid;
}

// Only a member may read a membership, so a stranger's probe is a refused request:
// the page asks only when it has reason to think it is one.
async function isMember(db, sid, uid) {
  return Boolean(await db.get(`sessions/${sid}/members/${uid}`).catch(() => null));
}

function remembered() {
  return localStorage.getItem(`${STORE}:session`);
}

// ---------------------------------------------------------------------------
// Start.

function fragment() {
  const params = new URLSearchParams(location.hash.replace(/^#/, ""));
  return { code: params.get("code") || "", role: params.get("role") || "viewer" };
}

async function main() {
  const cfg = await loadConfig();
  const names = await loadNames();
  const identity = new Identity(cfg);
  const db = new Database(cfg, identity);
  const wanted = fragment();
  $("code").value = wanted.code;
  $("name").value = localStorage.getItem(`${STORE}:name`) || "";
  (wanted.code ? $("name") : $("code")).focus();
  // A reload (the code has left the address bar) comes back to the session it was in.
  const sid = remembered();
  if (!wanted.code && sid && identity.uid) {
    if (await isMember(db, sid, identity.uid)) show(new SessionView(db, identity, sid));
    else localStorage.removeItem(`${STORE}:session`);
  }
  document.body.dataset.ready = "true";

  $("join").addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = $("join-error");
    error.textContent = "";
    const code = normalizeCode($("code").value);
    if (!code) {
      error.textContent = "that is not an invite code (codes look like ABCDE-FGHJK)";
      return;
    }
    $("join-button").disabled = true;
    try {
      await identity.token();
      const sid = await join(db, identity, names, code, $("name").value, wanted.role);
      localStorage.setItem(`${STORE}:name`, $("name").value);
      localStorage.setItem(`${STORE}:session`, sid);
      history.replaceState(null, "", "#"); // the code leaves the address bar
      show(new SessionView(db, identity, sid));
    } catch (e) {
      error.replaceChildren(visible(e.message));
    } finally {
      $("join-button").disabled = false;
    }
  });
}

function show(view) {
  window.emdashView = view; // for a console (and tests) to look at what the page holds
  $("join").hidden = true;
  $("session").hidden = false;
  view.start();
  const box = $("message");
  const status = $("send-status");
  const submit = async () => {
    const text = box.value;
    if (!text.trim()) return;
    $("send-button").disabled = true;
    status.className = "";
    status.textContent = "sending…";
    try {
      await view.send(text);
      box.value = "";
      status.textContent = "sent";
    } catch (e) {
      status.className = "error";
      status.replaceChildren(visible(e.message));
    } finally {
      $("send-button").disabled = false;
      box.focus();
    }
  };
  $("approvals").addEventListener("click", async (e) => {
    const button = e.target.closest("button.answer");
    if (!button) return;
    const status = $("approvals-status");
    button.disabled = true;
    status.className = "";
    status.textContent = "";
    try {
      await view.answer(button.dataset.mid, button.dataset.aid, button.dataset.decision);
    } catch (err) {
      status.className = "error";
      status.replaceChildren(visible(err.message));
      button.disabled = false;
    }
  });
  $("send").addEventListener("submit", (e) => {
    e.preventDefault();
    submit();
  });
  box.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      submit();
    }
  });
  box.focus();
}

main().catch((e) => {
  $("join-error").replaceChildren(visible(e.message));
});
