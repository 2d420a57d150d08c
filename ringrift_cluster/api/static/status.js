// The status page: reads this node's JSON routes and redraws every REFRESH_MS. No dependencies.
"use strict";
(function () {
  const params = new URLSearchParams(location.search);
  const REFRESH_MS = Math.max(250, Number(params.get("refresh_ms")) || 1000);
  const $ = (id) => document.getElementById(id);

  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }

  function row(cells, attrs) {
    const tr = el("tr");
    for (const [k, v] of Object.entries(attrs || {})) tr.setAttribute(k, v);
    for (const cell of cells) {
      if (cell instanceof Node) { const td = el("td"); td.appendChild(cell); tr.appendChild(td); }
      else tr.appendChild(el("td", cell === null || cell === undefined || cell === "" ? "–" : cell));
    }
    return tr;
  }

  function fill(table, rows, empty) {
    const body = table.tBodies[0];
    body.replaceChildren(...rows);
    if (!rows.length) {
      const td = el("td", empty, "small");
      td.colSpan = table.tHead.rows[0].cells.length || 1;
      body.appendChild(el("tr")).appendChild(td);
    }
  }

  function badge(state) { return el("span", state, "state-" + state); }
  function secs(v) { return typeof v === "number" ? v.toFixed(1) + " s" : "–"; }
  function clock(t) { return typeof t === "number" ? new Date(t * 1000).toLocaleTimeString() : "–"; }
  function until(t) { return typeof t === "number" ? Math.max(0, t - Date.now() / 1000).toFixed(0) + " s" : "–"; }

  async function getJSON(path) {
    const response = await fetch(path, { cache: "no-store" });
    const body = await response.json();
    if (!response.ok && response.status !== 503) throw new Error(path + ": HTTP " + response.status);
    return body;
  }

  function drawStatus(st, swim) {
    $("self").textContent = "· node " + st.node_id + " (" + st.role + ")";
    const modes = st.swim_raft || {};
    $("modes").textContent = "membership " + modes.membership_mode + ", consensus " + modes.consensus_mode +
      ", version " + st.version;
    $("leader").textContent = st.leader_id || "no leader";
    $("leader").className = "big " + (st.leader_id ? "" : "state-failed");
    $("term").textContent = "term " + st.leader_term + (st.fence_token ? " · fence " + st.fence_token : "");
    const q = st.quorum || {};
    $("quorum").textContent = q.alive_voters + " / " + q.total_voters;
    $("quorum-detail").replaceChildren(el("span", q.health, "health-" + q.health),
      document.createTextNode(" · " + q.required + " needed"));

    const sources = (st.membership && st.membership.sources) || {};
    const perSource = {};
    if (sources.heartbeat) {
      perSource.heartbeat = {};
      for (const [id, p] of Object.entries(sources.heartbeat.peers || {})) perSource.heartbeat[id] = p.state;
    }
    if (sources.swim && swim) {
      perSource.swim = {};
      for (const m of swim.members || []) perSource.swim[m.id] = m.state;
    }
    const names = Object.keys(perSource).sort();
    const head = ["Node", "State", ...names.map((n) => n === "swim" ? "SWIM" : "Heartbeat"), "Silent", "Role", "Address"];
    $("members-head").replaceChildren(...head.map((h) => el("th", h)));

    const rows = [row([el("span", st.node_id, st.leader_id === st.node_id ? "leader" : ""), badge("alive"),
      ...names.map(() => "self"), "–", st.role + " (this node)", location.host], { "data-node": st.node_id, "data-state": "alive" })];
    for (const [id, p] of Object.entries(st.peers || {}).sort()) {
      rows.push(row([el("span", id, st.leader_id === id ? "leader" : ""), badge(p.state),
        ...names.map((n) => perSource[n][id] ? badge(perSource[n][id]) : "–"), secs(p.seconds_since_heartbeat),
        p.role || "–", p.host + ":" + p.port], { "data-node": id, "data-state": p.state }));
    }
    fill($("members"), rows, "no members");
  }

  function drawQueue(queue) {
    if (!queue || queue.error) {
      $("work-counts").textContent = queue ? "unavailable: " + (queue.message || queue.error) : "unavailable";
      fill($("work"), [], "the state is not readable now");
      return;
    }
    const s = queue.stats || {};
    $("work-counts").replaceChildren(...["pending", "claimed", "running", "completed", "failed"].map((k) => {
      const span = el("span", k + " " + (s[k] || 0) + "  ");
      span.setAttribute("data-status", k);
      span.setAttribute("data-count", String(s[k] || 0));
      return span;
    }));
    fill($("work"), (queue.items || []).map((w) => row([w.work_id, w.work_type, w.priority, badge(w.status),
      w.claimed_by, w.claim_token, w.attempts], { "data-work": w.work_id })), "no work items");
  }

  function drawLocks(locks) {
    const list = (locks && locks.locks) || [];
    $("lock-count").textContent = locks && !locks.error ? String(list.length) : "–";
    fill($("locks"), list.map((lk) => row([lk.name, lk.holder, String(lk.fence_token), secs(lk.ttl_s), until(lk.expires_at)],
      { "data-lock": lk.name, "data-fence-token": String(lk.fence_token) })), "no locks held");
  }

  function drawEvents(events) {
    fill($("events"), ((events && events.events) || []).map((e) => row([clock(e.at), e.node_id, badge(e.kind), e.source,
      e.after_s === null ? "–" : secs(e.after_s)], { "data-node": e.node_id, "data-kind": e.kind })), "no membership events yet");
  }

  function drawCompare(compare) {
    const on = compare && compare.enabled;
    $("compare-section").hidden = !on;
    if (!on) return;
    const per = compare.per_source || {};
    $("compare-summary").textContent = Object.entries(per).map(([s, v]) => s + ": " + v.detections +
      " detections, first " + v.first + " times, median lag " + secs(v.median_lag_behind_first_s)).join(" · ") +
      " · disagreements " + (compare.disagreements || 0);
    const lag = (d, s) => d.sources[s] ? "+" + secs(d.sources[s].after_first_s) : "–";
    fill($("compare"), (compare.deaths || []).map((d) => row([d.node_id, clock(d.first_noticed_at), clock(d.declared_failed_at),
      lag(d, "swim"), lag(d, "heartbeat"), clock(d.came_back_at)], { "data-node": d.node_id })), "no deaths seen");
  }

  async function refresh() {
    const names = ["/status", "/swim/members", "/raft/queue?limit=25", "/raft/locks", "/membership/events?limit=25", "/swim/compare"];
    const got = await Promise.allSettled(names.map(getJSON));
    const [st, swim, queue, locks, events, compare] = got.map((g) => g.status === "fulfilled" ? g.value : null);
    const banner = $("banner");
    if (!st) {
      banner.hidden = false;
      banner.textContent = "this node does not answer (" + (got[0].reason || "no reply") + "); retrying";
    } else {
      banner.hidden = true;
      drawStatus(st, swim);
    }
    drawQueue(queue);
    drawLocks(locks);
    drawEvents(events);
    drawCompare(compare);
    $("updated").textContent = "updated " + new Date().toLocaleTimeString() + " (every " + REFRESH_MS / 1000 + " s)";
    document.body.dataset.refreshes = String(Number(document.body.dataset.refreshes) + 1);
  }

  async function loop() {
    try { await refresh(); } catch (e) { console.error(e); }
    setTimeout(loop, REFRESH_MS);
  }
  loop();
})();
