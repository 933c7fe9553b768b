// The chat page: plain JavaScript, no framework. Talks to /chat/<room>?user=<name> over a
// WebSocket (JSON frames, see app.py) and reconnects with exponential backoff when it drops.
// What the room publishes comes in a history envelope ({epoch, offset, topic, data}); the
// page keeps the last (epoch, offset) it saw and gives it back when it reconnects, so the
// server sends exactly what was missed (docs/realtime.md, "The client's side").
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const ui = {
    status: $("status"),
    joinForm: $("join-form"),
    name: $("name"),
    room: $("room"),
    join: $("join"),
    leave: $("leave"),
    roomList: $("room-list"),
    rooms: $("rooms"),
    members: $("members"),
    roomTitle: $("room-title"),
    messages: $("messages"),
    error: $("error"),
    composer: $("composer"),
    message: $("message"),
    send: $("send"),
  };

  const ROOM_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$/;
  const MAX_ENTRIES = 500;         // older entries are dropped from the page
  const BACKOFF_FIRST_MS = 500;
  const BACKOFF_MAX_MS = 15000;

  let socket = null;     // the current WebSocket, or null
  let wanted = null;     // {name, room} while the user wants to be in a room
  let attempt = 0;       // failed connection attempts since the last welcome
  let retryTimer = 0;
  let fatal = false;     // the server refused us (bad name or room): do not retry
  let me = null;         // {id, user}: the user from join(), the id from the last welcome
  let position = null;   // {epoch, offset} of the last room message shown, for recovery
  let errorTimer = 0;

  // ---- rendering ----------------------------------------------------------------------

  function setStatus(state, text) {
    ui.status.dataset.state = state;
    ui.status.textContent = text;
    document.body.dataset.state = state;
  }

  function showError(text, sticky) {
    clearTimeout(errorTimer);
    ui.error.textContent = text;
    ui.error.hidden = !text;
    if (text && !sticky) errorTimer = setTimeout(() => showError(""), 6000);
  }

  function timeOf(ts) {
    const when = new Date(typeof ts === "number" ? ts : Date.now());
    const el = document.createElement("time");
    el.dateTime = when.toISOString();
    el.textContent = when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    return el;
  }

  function hue(name) {
    let h = 0;
    for (const ch of name) h = (h * 31 + ch.codePointAt(0)) % 360;
    return h;
  }

  function append(li) {
    const list = ui.messages;
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 48;
    list.append(li);
    while (list.children.length > MAX_ENTRIES) list.firstElementChild.remove();
    if (atBottom || li.classList.contains("mine")) list.scrollTop = list.scrollHeight;
  }

  function addMessage(msg) {
    const li = document.createElement("li");
    const mine = me !== null && msg.user === me.user;
    li.className = "entry message" + (mine ? " mine" : "");
    li.dataset.user = msg.user;

    const avatar = document.createElement("span");
    avatar.className = "avatar";
    avatar.setAttribute("aria-hidden", "true");
    avatar.textContent = (msg.user || "?").slice(0, 1).toUpperCase();
    avatar.style.setProperty("--hue", hue(msg.user || ""));

    const body = document.createElement("div");
    body.className = "bubble";
    const meta = document.createElement("div");
    meta.className = "meta";
    const user = document.createElement("span");
    user.className = "user";
    user.textContent = msg.user;
    meta.append(user, " ", timeOf(msg.ts));
    const text = document.createElement("p");
    text.className = "text";
    text.textContent = msg.text;   // never innerHTML: messages are untrusted
    body.append(meta, text);

    li.append(avatar, body);
    append(li);
  }

  function addNotice(kind, text, ts) {
    const li = document.createElement("li");
    li.className = "entry " + kind;
    const span = document.createElement("span");
    span.className = "text";
    span.textContent = text;
    li.append(span, " ", timeOf(ts));
    append(li);
  }

  function showMembers(names) {
    ui.members.replaceChildren(...(names || []).map((name) => {
      const li = document.createElement("li");
      li.textContent = name;
      if (me && name === me.user) {
        const you = document.createElement("span");
        you.className = "you";
        you.textContent = " (you)";
        li.append(you);
      }
      return li;
    }));
  }

  function setComposer(enabled) {
    ui.message.disabled = !enabled;
    ui.send.disabled = !enabled;
    ui.message.placeholder = enabled ? `Message #${wanted.room}` :
      wanted ? "Waiting for the connection…" : "Join a room to chat";
  }

  // ---- rooms list -----------------------------------------------------------------------

  let roomsTimer = 0;
  function refreshRoomsSoon() {   // presence changes come in bursts: one fetch per burst
    clearTimeout(roomsTimer);
    roomsTimer = setTimeout(refreshRooms, 300);
  }

  async function refreshRooms() {
    try {
      const response = await fetch("/rooms", { cache: "no-store" });
      if (!response.ok) return;
      const { rooms } = await response.json();
      ui.roomList.replaceChildren(...rooms.map((r) => new Option(r.name, r.name)));
      ui.rooms.replaceChildren(...rooms.map((r) => {
        const li = document.createElement("li");
        const button = document.createElement("button");
        button.type = "button";
        button.className = "room-button";
        if (wanted && wanted.room === r.name) button.setAttribute("aria-current", "true");
        const label = document.createElement("span");
        label.textContent = "#" + r.name;
        const count = document.createElement("span");
        count.className = "count";
        count.textContent = String(r.subscribers);
        count.setAttribute("aria-label", `${r.subscribers} connected`);
        button.append(label, count);
        button.addEventListener("click", () => {
          ui.room.value = r.name;
          if (ui.name.value.trim()) ui.joinForm.requestSubmit();
          else ui.name.focus();
        });
        li.append(button);
        return li;
      }));
    } catch (_) {
      // The server is away; the next refresh tries again.
    }
  }

  // ---- the connection ---------------------------------------------------------------------

  function socketUrl(room, name) {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    let url = `${scheme}//${location.host}/chat/${encodeURIComponent(room)}?user=${encodeURIComponent(name)}`;
    if (position) url += `&epoch=${encodeURIComponent(position.epoch)}&offset=${position.offset}`;
    return url;
  }

  function connect() {
    clearTimeout(retryTimer);
    if (!wanted) return;
    fatal = false;
    setStatus("connecting", `Connecting to #${wanted.room}…`);
    const ws = new WebSocket(socketUrl(wanted.room, wanted.name));
    socket = ws;

    ws.addEventListener("message", (ev) => {
      if (ws !== socket) return;
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch (_) {
        return;
      }
      if (msg && typeof msg.offset === "number" && typeof msg.epoch === "string") {
        // A room message in its envelope: the server sends each offset once, in order,
        // across reconnects too, so the last one seen is where to resume.
        position = { epoch: msg.epoch, offset: msg.offset };
        msg = msg.data;
        if (!msg || typeof msg !== "object") return;
      }
      receive(msg);
    });

    ws.addEventListener("close", (ev) => {
      if (ws !== socket) return;   // a socket we replaced or left on purpose
      socket = null;
      if (fatal || ev.code === 1008) {
        wanted = null;
        setComposer(false);
        ui.leave.hidden = true;
        setStatus("refused", "Not connected: " + (ev.reason || "the server refused the connection"));
        return;
      }
      setComposer(false);
      if (wanted) reconnectLater();
    });
  }

  function reconnectLater() {
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** attempt);
    const delay = Math.round(base * (0.75 + Math.random() * 0.5));   // jitter
    attempt += 1;
    setStatus("reconnecting", `Connection lost. Reconnecting in ${Math.max(1, Math.round(delay / 1000))} s…`);
    retryTimer = setTimeout(connect, delay);
  }

  function receive(msg) {
    switch (msg.type) {
      case "welcome": {
        const again = attempt > 0;
        attempt = 0;
        me = { id: msg.id, user: msg.user };
        setStatus("connected", `Connected to #${msg.room} as ${msg.user}`);
        setComposer(true);
        showMembers(msg.members);
        if (again && msg.recovered) {
          const n = msg.recovered;
          addNotice("presence", `Reconnected: ${n} missed message${n === 1 ? "" : "s"} recovered.`, msg.ts);
        } else if (again) {
          addNotice("presence", "Reconnected.", msg.ts);
        }
        break;
      }
      case "reload":
        // What was missed is no longer held (or the server restarted): start over from
        // the room's last messages, which follow.
        position = null;
        ui.messages.replaceChildren();
        break;
      case "message":
        addMessage(msg);
        break;
      case "join":
        showMembers(msg.members);
        refreshRoomsSoon();
        addNotice("presence", me && msg.user === me.user ? `You joined #${wanted.room}.` : `${msg.user} joined.`, msg.ts);
        break;
      case "leave":
        showMembers(msg.members);
        refreshRoomsSoon();
        addNotice("presence", `${msg.user} left.`, msg.ts);
        break;
      case "announce":
        addNotice("announce", `Announcement: ${msg.text}`, msg.ts);
        break;
      case "error":
        if (msg.fatal) fatal = true;
        showError(msg.error, msg.fatal);
        break;
      default:
        break;
    }
  }

  function join(name, room) {
    leave(false);
    wanted = { name, room };
    me = { id: null, user: name };
    position = null;
    attempt = 0;
    ui.messages.replaceChildren();
    showMembers([]);
    showError("");
    ui.roomTitle.textContent = "#" + room;
    document.title = `#${room} · Robyn chat`;
    ui.leave.hidden = false;
    try {
      localStorage.setItem("chat.name", name);
    } catch (_) { /* storage may be disabled */ }
    if (location.hash !== "#" + room) history.replaceState(null, "", "#" + room);
    connect();
  }

  function leave(byUser) {
    clearTimeout(retryTimer);
    const ws = socket;
    socket = null;
    me = null;
    wanted = null;
    if (ws) ws.close(1000, "left");
    setComposer(false);
    if (byUser) {
      ui.leave.hidden = true;
      showMembers([]);
      addNotice("presence", "You left the room.");
      setStatus("idle", "Not connected");
      refreshRooms();
    }
  }

  // ---- wiring ------------------------------------------------------------------------------

  ui.joinForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const name = ui.name.value.trim().replace(/\s+/g, " ");
    const room = ui.room.value.trim();
    if (!name) {
      showError("Please enter your name.", true);
      ui.name.focus();
      return;
    }
    if (!ROOM_NAME.test(room)) {
      showError("Room names are 1 to 32 letters, digits, “-” or “_”.", true);
      ui.room.focus();
      return;
    }
    join(name, room);
    ui.message.focus();
  });

  ui.leave.addEventListener("click", () => leave(true));

  ui.composer.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = ui.message.value.trim();
    if (!text || !socket || socket.readyState !== WebSocket.OPEN) return;
    socket.send(JSON.stringify({ type: "message", text }));
    ui.message.value = "";
    ui.message.focus();
  });

  // Try again at once when the network comes back instead of waiting out the backoff.
  window.addEventListener("online", () => {
    if (wanted && !socket) {
      attempt = 0;
      connect();
    }
  });

  try {
    ui.name.value = localStorage.getItem("chat.name") || "";
  } catch (_) { /* storage may be disabled */ }
  const fromHash = decodeURIComponent(location.hash.slice(1));
  if (ROOM_NAME.test(fromHash)) ui.room.value = fromHash;

  refreshRooms();
  setInterval(refreshRooms, 10000);
})();
