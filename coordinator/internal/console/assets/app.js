// Shoal operator console. Every outside string (ids, reasons, tags) goes
// into the page with textContent, never as markup. The token lives in
// sessionStorage and travels only in the Authorization header.
"use strict";

const TOKEN_KEY = "shoal.token";
const SVGNS = "http://www.w3.org/2000/svg";
const WINDOW_MS = 15 * 60 * 1000;

let who = null;        // /whoami answer
let current = null;    // AbortController of the page's event stream
let actionsNode = null, actionsKey = "";

function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }
function authHeaders() {
  const h = {};
  if (token()) h["Authorization"] = "Bearer " + token();
  return h;
}

// el builds an element; text children become text nodes.
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "testid") e.dataset.testid = v;
    else if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const k of kids) {
    if (k === null || k === undefined) continue;
    e.append(typeof k === "string" || typeof k === "number" ? document.createTextNode(String(k)) : k);
  }
  return e;
}
function svg(tag, attrs) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "testid") e.setAttribute("data-testid", v);
    else e.setAttribute(k, String(v));
  }
  return e;
}
function main() { return document.getElementById("main"); }
function setMain(...kids) { main().replaceChildren(...kids); }

function banner(kind, text, testid) {
  document.getElementById("banners").append(el("div", { class: "banner " + kind, testid }, text));
}
function clearBanners() { document.getElementById("banners").replaceChildren(); }

function setBadge(h) {
  const b = document.getElementById("badges");
  b.replaceChildren();
  if (!h) return;
  if (h.stale) b.append(el("span", { class: "badge stale", testid: "stale-badge", title: h.stale_reason || "" }, "stale: " + (h.stale_reason || "leader unreachable")));
  else b.append(el("span", { class: "badge live", testid: "live-badge" }, "live via " + h.node));
}

// headerBanners shows the banners every event may call for.
function headerBanners(h, extra) {
  clearBanners();
  if (h.insecure) banner("insecure", "This node runs with --insecure: no TLS and no ACLs. Anyone who reaches it can run every command.", "insecure-banner");
  if (extra) extra();
  setBadge(h);
}

// stream reads one page's server-sent events with fetch, so the token goes
// in a header (EventSource cannot send one) and never in the URL.
async function stream(path, onEvent) {
  if (current) current.abort();
  const ctl = new AbortController();
  current = ctl;
  let backoff = 500;
  while (!ctl.signal.aborted) {
    try {
      const resp = await fetch(path, { headers: authHeaders(), signal: ctl.signal, cache: "no-store" });
      if (resp.status === 401 || resp.status === 403) {
        const msg = (await resp.text()).trim();
        showTokenForm("The console needs a read token: " + msg);
        return;
      }
      if (!resp.ok) throw new Error(resp.status + " " + (await resp.text()).trim());
      backoff = 500;
      const reader = resp.body.getReader();
      const dec = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const raw = buf.slice(0, i);
          buf = buf.slice(i + 2);
          let name = "message", data = "";
          for (const line of raw.split("\n")) {
            if (line.startsWith("event: ")) name = line.slice(7);
            else if (line.startsWith("data: ")) data += line.slice(6);
          }
          if (name === "denied") { sessionStorage.removeItem(TOKEN_KEY); showTokenForm(JSON.parse(data).error); return; }
          onEvent(name, JSON.parse(data));
        }
      }
    } catch (e) {
      if (ctl.signal.aborted) return;
      setBadge({ stale: true, stale_reason: "connection to this node lost: " + e.message });
    }
    await new Promise((r) => setTimeout(r, backoff));
    backoff = Math.min(backoff * 2, 5000);
  }
}

function showTokenForm(why) {
  if (current) current.abort();
  clearBanners();
  setBadge(null);
  document.getElementById("logout").hidden = true;
  const input = el("input", { type: "password", autocomplete: "off", testid: "token-input", placeholder: "shoal_…" });
  const form = el("form", { class: "token", testid: "token-form" },
    el("h1", {}, "Sign in with a token"),
    el("p", { class: "muted" }, "A read token or better (shoal-coordinator acl token create). It is kept in this tab's session storage only."),
    why ? el("p", { testid: "token-error" }, why) : null,
    input,
    el("button", { type: "submit", testid: "token-submit" }, "Open the console"));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    start();
  });
  setMain(form);
}

async function start() {
  try {
    const resp = await fetch("/ui/api/v1/whoami", { headers: authHeaders(), cache: "no-store" });
    if (resp.status === 401 || resp.status === 403) {
      showTokenForm(token() ? (await resp.text()).trim() : "");
      return;
    }
    if (!resp.ok) throw new Error(resp.status + " " + (await resp.text()).trim());
    who = await resp.json();
  } catch (e) {
    setMain(el("p", { testid: "error" }, "Cannot reach this node: " + e.message));
    return;
  }
  document.getElementById("logout").hidden = who.insecure;
  route();
}

function route() {
  if (!who) return;
  const h = location.hash || "#/fleets";
  let m;
  if (h === "#/cluster") return clusterPage();
  if (h === "#/lbs") return lbsPage();
  if ((m = /^#\/fleets\/(.+)$/.exec(h))) return fleetPage(decodeURIComponent(m[1]));
  return fleetsPage();
}

// ---- Cluster ----
function clusterPage() {
  setMain(el("h1", {}, "Cluster"), el("p", { class: "muted" }, "Waiting for the first event…"));
  stream("/ui/api/v1/cluster/events", (_, ev) => {
    const s = ev.status;
    headerBanners(ev, () => {
      if (s.no_leader || !s.leader_id) banner("noleader", "No leader (" + (s.no_leader || "election in progress") + "); members as " + (s.node_id || ev.node) + " sees them.", "noleader-banner");
    });
    const rows = (s.nodes || []).map((n) => el("tr", { testid: "node-row" },
      el("td", {}, n.id), el("td", {}, n.role), el("td", {}, n.voter ? "yes" : "no"),
      el("td", {}, n.rpc_addr), el("td", {}, n.raft_addr),
      el("td", {}, n.id === s.leader_id ? "(leader)" : n.unreachable_since ? "unreachable since " + n.unreachable_since : (s.leader_id ? "heartbeats ok" : "unknown"))));
    setMain(el("h1", {}, "Cluster"),
      el("dl", { class: "kv" },
        el("dt", {}, "leader"), el("dd", { testid: "leader" }, s.leader_id || "none"),
        el("dt", {}, "term"), el("dd", {}, s.term),
        el("dt", {}, "applied index"), el("dd", {}, s.applied_index),
        el("dt", {}, "commit index"), el("dd", {}, s.commit_index),
        el("dt", {}, "answered by"), el("dd", {}, s.node_id)),
      el("h2", {}, "Nodes"),
      el("table", {}, el("thead", {}, el("tr", {}, ...["id", "role", "voter", "rpc", "raft", "last contact"].map((t) => el("th", {}, t)))), el("tbody", {}, ...rows)));
  });
}

// ---- Fleets ----
function fleetsPage() {
  setMain(el("h1", {}, "Fleets"), el("p", { class: "muted" }, "Waiting for the first event…"));
  stream("/ui/api/v1/fleets/events", (_, ev) => {
    headerBanners(ev);
    const cards = ev.fleets.map((c) => {
      const f = c.fleet;
      const alarms = c.alarms.length ? c.alarms.map((a) => a.metric + " " + a.state).join(", ") : "none";
      const d = c.last_decision;
      return el("div", { class: "card", testid: "fleet-card" },
        el("h2", {}, el("a", { href: "#/fleets/" + encodeURIComponent(f.name) }, f.name)),
        el("div", { class: "nums" },
          el("span", {}, "min ", el("b", {}, f.min)), el("span", {}, "desired ", el("b", {}, f.desired)), el("span", {}, "max ", el("b", {}, f.max))),
        el("dl", { class: "kv" },
          el("dt", {}, "instances"), el("dd", {}, `${c.counts.in_service || 0} in service, ${c.counts.pending || 0} pending, ${c.counts.draining || 0} draining`),
          el("dt", {}, "policy"), el("dd", {}, c.policy_words),
          el("dt", {}, "paused"), el("dd", {}, f.paused ? "yes" : "no"),
          el("dt", {}, "last decision"), el("dd", {}, d ? `${d.from} → ${d.to} ${d.status} (${d.reason})` : "none"),
          el("dt", {}, "alarms"), el("dd", {}, alarms),
          c.error ? el("dt", {}, "error") : null, c.error ? el("dd", {}, c.error) : null));
    });
    setMain(el("h1", {}, "Fleets"), cards.length ? el("div", { class: "cards" }, ...cards) : el("p", {}, "No fleets yet."));
  });
}

// ---- Fleet detail ----
function fleetPage(name) {
  let history = [];
  let last = null;
  setMain(el("h1", {}, "Fleet " + name), el("p", { class: "muted" }, "Waiting for the first event…"));
  stream("/ui/api/v1/fleets/" + encodeURIComponent(name) + "/events", (kind, ev) => {
    if (kind === "snapshot") history = ev.history.slice();
    else history.push(...ev.history);
    const cut = Date.now() - WINDOW_MS;
    while (history.length && history[0].t < cut - 5000) history.shift();
    last = ev;
    renderFleet(name, ev, history);
  });
}

function renderFleet(name, ev, history) {
  headerBanners(ev);
  const f = ev.fleet;
  const kids = [
    el("h1", {}, "Fleet " + name),
    el("div", { class: "nums" },
      el("span", {}, "min ", el("b", { testid: "fleet-min" }, f.min)),
      el("span", {}, "desired ", el("b", { testid: "fleet-desired" }, f.desired)),
      el("span", {}, "max ", el("b", { testid: "fleet-max" }, f.max)),
      el("span", {}, "paused ", el("b", { testid: "fleet-paused" }, f.paused ? "yes" : "no"))),
    el("p", {}, "Policy: ", el("span", { testid: "policy-words" }, ev.policy_words)),
  ];
  if (who && who.can_operate) {
    // Kept across events, so a number being typed is not wiped each second.
    const key = name + "/" + f.paused;
    if (actionsKey !== key) { actionsNode = actions(name, f); actionsKey = key; }
    kids.push(actionsNode);
  }
  for (const e of ev.errors || []) kids.push(el("p", { class: "banner error" }, e));
  kids.push(el("h2", {}, "Policy metric and capacity (up to the last 15 minutes)"), chart(ev, history), legend());
  kids.push(el("h2", {}, "Instances"), instanceTable(ev.instances));
  kids.push(el("h2", {}, "Decisions"), decisionTable(ev.decisions));
  kids.push(el("h2", {}, "Explain"), el("pre", { testid: "explain" }, ev.explain || ev.explain_error || ""));
  setMain(...kids);
}

function actions(name, f) {
  const post = async (what, body, question) => {
    if (!window.confirm(question)) return;
    const resp = await fetch("/ui/api/v1/fleets/" + encodeURIComponent(name) + "/" + what, {
      method: "POST", headers: Object.assign({ "Content-Type": "application/json", "X-Shoal-Console": "1" }, authHeaders()),
      body: body ? JSON.stringify(body) : "{}", cache: "no-store" });
    if (!resp.ok) window.alert(what + " failed: " + (await resp.text()).trim());
  };
  const desired = el("input", { type: "number", min: "0", value: String(f.desired), testid: "scale-input" });
  return el("div", { class: "actions", testid: "actions" },
    f.paused
      ? el("button", { type: "button", testid: "btn-resume", onclick: () => post("resume", null, `Resume scaling of ${name}?`) }, "Resume")
      : el("button", { type: "button", testid: "btn-pause", onclick: () => post("pause", null, `Pause scaling of ${name}?`) }, "Pause"),
    el("label", {}, "desired ", desired),
    el("button", { type: "button", testid: "btn-scale", onclick: () => {
      const n = parseInt(desired.value, 10);
      if (!(n >= 0)) { window.alert("desired must be a whole number >= 0"); return; }
      post("scale", { desired: n }, `Scale ${name} to ${n}?`);
    } }, "Scale"));
}

function legend() {
  const item = (cls, t) => el("span", {}, el("i", { class: cls }), t);
  return el("div", { class: "legend muted" }, item("l-metric", "policy metric"), item("l-target", "target"),
    item("l-desired", "desired"), item("l-inservice", "in service"), item("l-draining", "draining"),
    item("l-alarm", "ALARM"), item("l-decision", "decision"));
}

// chart draws metric vs target (left axis) and capacity (right axis) over
// the last 15 minutes, with decisions as markers and ALARM spans shaded.
function chart(ev, history) {
  const W = 960, H = 300, L = 48, R = 40, T = 10, B = 24;
  const now = history.length ? history[history.length - 1].t : Date.now();
  // At most the last 15 minutes; a shorter history (a page opened or a
  // node started recently) fills the width, in whole minutes, at least 2.
  const span = history.length ? now - history[0].t : 0;
  const mins = Math.min(15, Math.max(2, Math.ceil(span / 60000)));
  const win = mins * 60000;
  const t0 = now - win;
  const x = (t) => L + ((t - t0) / win) * (W - L - R);
  const metrics = ev.targets.map((t) => t.metric);
  for (const p of history) for (const m of Object.keys(p.metrics || {})) if (!metrics.includes(m)) metrics.push(m);
  let ymax = 1;
  for (const t of ev.targets) ymax = Math.max(ymax, t.target * 1.5);
  for (const p of history) for (const v of Object.values(p.metrics || {})) ymax = Math.max(ymax, v * 1.1);
  let cmax = Math.max(1, ev.fleet.max);
  for (const p of history) cmax = Math.max(cmax, p.desired, p.in_service, p.draining);
  const y = (v) => H - B - (v / ymax) * (H - T - B);
  const yc = (v) => H - B - (v / cmax) * (H - T - B);
  const s = svg("svg", { viewBox: `0 0 ${W} ${H}`, width: "100%", class: "chart", testid: "chart", "data-points": history.length, role: "img", "aria-label": "policy metric and capacity, last 15 minutes" });
  // ALARM spans: consecutive points with alarm set.
  let spanStart = null;
  history.forEach((p, i) => {
    if (p.alarm && spanStart === null) spanStart = p.t;
    const end = !p.alarm || i === history.length - 1;
    if (spanStart !== null && end) {
      const e = p.alarm ? p.t : p.t;
      s.append(svg("rect", { class: "alarm", testid: "alarm-span", x: x(spanStart), y: T, width: Math.max(1, x(e) - x(spanStart)), height: H - T - B }));
      spanStart = null;
    }
  });
  s.append(svg("line", { class: "axis", x1: L, y1: H - B, x2: W - R, y2: H - B }));
  s.append(svg("line", { class: "axis", x1: L, y1: T, x2: L, y2: H - B }));
  for (let i = 0; i <= 4; i++) {
    const v = (ymax * i) / 4;
    const lab = svg("text", { x: L - 4, y: y(v) + 4, "text-anchor": "end" });
    lab.textContent = v >= 100 ? v.toFixed(0) : v.toFixed(1);
    s.append(lab);
    const cv = Math.round((cmax * i) / 4);
    const cl = svg("text", { x: W - R + 4, y: yc(cv) + 4 });
    cl.textContent = String(cv);
    s.append(cl);
  }
  const step = mins > 6 ? 5 : 1;
  for (let m = mins % step; m <= mins; m += step) {
    const lab = svg("text", { x: x(t0 + m * 60000), y: H - 6, "text-anchor": "middle" });
    lab.textContent = m === mins ? "now" : `-${mins - m} min`;
    s.append(lab);
  }
  for (const t of ev.targets) {
    s.append(svg("line", { class: "target", testid: "target-line", x1: L, x2: W - R, y1: y(t.target), y2: y(t.target) }));
  }
  const line = (cls, testid, pick, scale) => {
    const pts = [];
    for (const p of history) { const v = pick(p); if (v !== undefined && v !== null && p.t >= t0) pts.push(`${x(p.t).toFixed(1)},${scale(v).toFixed(1)}`); }
    if (pts.length) s.append(svg("polyline", { class: cls, testid, points: pts.join(" ") }));
  };
  for (const m of metrics) line("metric", "metric-line", (p) => (p.metrics || {})[m], y);
  line("desired", "desired-line", (p) => p.desired, yc);
  line("inservice", "inservice-line", (p) => p.in_service, yc);
  line("draining", "draining-line", (p) => p.draining, yc);
  for (const d of ev.decisions) {
    const t = Date.parse(d.at);
    if (!(t >= t0)) continue;
    const g = svg("line", { class: "decision", testid: "decision-marker", x1: x(t), x2: x(t), y1: T, y2: H - B });
    const tip = svg("title", {});
    tip.textContent = `${d.from} → ${d.to} ${d.status}: ${d.reason}`;
    g.append(tip);
    s.append(g);
  }
  return s;
}

function instanceTable(ins) {
  const rows = ins.map((i) => {
    const flight = i.in_flight ? Object.entries(i.in_flight).map(([lb, n]) => `${lb}: ${n}`).join(", ") : "";
    const metrics = Object.entries(i.metrics || {}).sort().map(([k, v]) => `${k}=${Number(v).toFixed(1)}`).join(" ");
    const r = el("tr", { testid: "instance-row" },
      el("td", { testid: "instance-id" }, i.id),
      el("td", { class: "state-" + i.state, testid: "instance-state" }, i.state),
      el("td", {}, i.availability_zone || ""), el("td", {}, i.private_ip),
      el("td", {}, i.ready ? "yes" : "no"),
      el("td", {}, i.last_report_age_ms < 0 ? "never" : (i.last_report_age_ms / 1000).toFixed(1) + " s"),
      el("td", {}, metrics), el("td", {}, i.state === "draining" ? "in flight " + (flight || "0") : (i.flag || "")));
    r.dataset.instance = i.id;
    r.dataset.state = i.state;
    return r;
  });
  return el("table", { testid: "instances" },
    el("thead", {}, el("tr", {}, ...["id", "state", "AZ", "private IP", "ready", "last report", "metrics", "drain / flag"].map((t) => el("th", {}, t)))),
    el("tbody", {}, ...rows));
}

function decisionTable(ds) {
  const rows = ds.slice().reverse().map((d) => el("tr", { testid: "decision-row" },
    el("td", {}, d.id), el("td", {}, d.at), el("td", {}, `${d.from} → ${d.to}`), el("td", {}, d.status),
    el("td", {}, d.source || ""), el("td", { testid: "decision-reason" }, d.reason),
    el("td", {}, d.error_class ? d.error_class + ": " + (d.error || "") : (d.error || ""))));
  return el("table", { testid: "decisions" },
    el("thead", {}, el("tr", {}, ...["id", "at", "from → to", "status", "source", "reason", "error"].map((t) => el("th", {}, t)))),
    el("tbody", {}, ...rows));
}

// ---- Load balancers ----
function lbsPage() {
  setMain(el("h1", {}, "Load balancers"), el("p", { class: "muted" }, "Waiting for the first event…"));
  stream("/ui/api/v1/lbs/events", (_, ev) => {
    headerBanners(ev);
    const kids = [el("h1", {}, "Load balancers")];
    if (ev.note) kids.push(el("p", { testid: "lbs-note" }, ev.note));
    if (!ev.lbs.length && !ev.note) kids.push(el("p", {}, "No load balancer is connected."));
    for (const lb of ev.lbs) {
      kids.push(el("h2", {}, `${lb.id} (fleet ${lb.fleet}) — ${lb.rate_per_sec.toFixed(1)} req/s, last report ${lb.last_report}`));
      kids.push(el("table", { testid: "lb-table" },
        el("thead", {}, el("tr", {}, ...["instance", "address", "state", "healthy", "in flight", "req/s"].map((t) => el("th", {}, t)))),
        el("tbody", {}, ...lb.backends.map((b) => el("tr", { testid: "lb-row" },
          el("td", {}, b.instance_id), el("td", {}, b.address), el("td", {}, b.state), el("td", {}, b.healthy ? "yes" : "no"),
          el("td", {}, b.in_flight), el("td", {}, b.rate_per_sec.toFixed(1)))))));
    }
    setMain(...kids);
  });
}

window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", () => {
  document.getElementById("logout").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    who = null;
    showTokenForm("");
  });
  start();
});
