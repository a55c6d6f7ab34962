// layerwise page: compare views side by side, and chart stored evaluation runs.
// Plain DOM, no build step. Every request goes to the JSON API under ./api/.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { collection: null, chips: ["all"], result: null, token: sessionStorage.getItem("layerwise-token") || "" };
const IDEAS = ["all", "-1", "0", "-4:", "mean(-4:)", "firstlast()", "concat(-2:)", "bm25", "rrf(bm25 | -1)", "fuse(bm25:0.3 | -1:0.7)", "rrf(all)"];

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

async function api(path, params = {}) {
  const url = new URL("api/" + path, document.baseURI);
  for (const [key, value] of Object.entries(params)) {
    for (const v of [].concat(value)) url.searchParams.append(key, v);
  }
  const headers = state.token ? { Authorization: "Bearer " + state.token } : {};
  const response = await fetch(url, { headers });
  const body = await response.json().catch(() => ({ error: { message: response.statusText } }));
  if (response.status === 401) $("token-box").hidden = false;
  if (!response.ok) throw new Error((body.error && body.error.message) || response.statusText);
  return body;
}

function showError(message) {
  $("error").textContent = message || "";
  $("error").hidden = !message;
}

function setStatus(text) { $("status").textContent = text; }

// ---- collections and the view picker ----------------------------------------------------
async function loadCollections() {
  const data = await api("collections");
  const select = $("collection");
  select.replaceChildren(...data.collections.map((name) => el("option", { value: name, text: name })));
  const wanted = new URLSearchParams(location.search).get("collection");
  if (wanted && data.collections.includes(wanted)) select.value = wanted;
  if (!data.collections.length) { showError("No collection yet: index one with `layerwise index FOLDER --collection NAME`."); return; }
  await chooseCollection(select.value);
}

async function chooseCollection(name) {
  state.collection = name;
  const data = await api(`collections/${encodeURIComponent(name)}/views`);
  const quick = ["all", ...data.views.map((v) => v.kind === "layer" ? v.spec : v.name), "bm25", "rrf(bm25 | -1)"];
  $("quick").replaceChildren(...[...new Set(quick)].map((spec) =>
    el("button", { type: "button", title: `add view ${spec}`, onclick: () => addChip(spec) }, spec)));
  $("spec-ideas").replaceChildren(...[...new Set([...IDEAS, ...data.views.map((v) => v.name)])].map((s) => el("option", { value: s })));
  setStatus(`${name}: ${data.views.filter((v) => v.kind === "layer").length} hidden states, default view ${data.default_view}`);
  if (!$("panel-runs").hidden) loadRuns();
  if ($("query").value.trim()) runSearch();
}

function renderChips() {
  $("chips").replaceChildren(...state.chips.map((spec, i) => el("span", { class: "chip" }, spec,
    el("button", { type: "button", "aria-label": `remove view ${spec}`, onclick: () => { state.chips.splice(i, 1); renderChips(); } }, "×"))));
}

function addChip(spec) {
  spec = spec.trim();
  if (spec && !state.chips.includes(spec)) state.chips.push(spec);
  renderChips();
  if ($("query").value.trim()) runSearch();
}

// ---- searching --------------------------------------------------------------------------
async function runSearch() {
  const query = $("query").value.trim();
  if (!query || !state.collection) return;
  if (!state.chips.length) { showError("Choose at least one view."); return; }
  const started = performance.now();
  try {
    const data = await api(`collections/${encodeURIComponent(state.collection)}/compare`, { q: query, view: state.chips, k: $("k").value || 10 });
    showError("");
    state.result = data;
    renderResult(data, query);
    setStatus(`${data.results.length} views, ${Math.round(performance.now() - started)} ms`);
  } catch (error) {
    showError(error.message);
  }
}

function rankTable(results) {
  // doc id -> [rank in view 0, rank in view 1, ...] (null where the view does not have it)
  const ranks = new Map();
  results.forEach((column, i) => column.hits.forEach((hit) => {
    if (!ranks.has(hit.doc_id)) ranks.set(hit.doc_id, results.map(() => null));
    ranks.get(hit.doc_id)[i] = hit.rank;
  }));
  return ranks;
}

function hue(text) {
  let h = 0;
  for (const c of text) h = (h * 31 + c.codePointAt(0)) % 360;
  return h;
}

function renderResult(data, query) {
  const ranks = rankTable(data.results);
  const terms = queryTerms(query);
  $("columns").replaceChildren(...data.results.map((column, i) => el("section", { class: "column", "data-view": column.view },
    el("h2", { title: column.view, text: column.view }),
    el("ol", {}, ...column.hits.map((hit) => hitCard(hit, i, ranks.get(hit.doc_id), data.results, terms))))));
  renderJaccard(data);
}

function hitCard(hit, column, ranks, results, terms) {
  const seen = ranks.filter((r) => r !== null).length;
  const card = el("li", { class: "hit" + (seen > 1 ? " shared" : ""), tabindex: "0", "data-doc": hit.doc_id, "data-column": column, style: `--hue: ${hue(hit.doc_id)}` },
    el("div", { class: "top" }, el("span", { class: "rank", text: `#${hit.rank}` }),
      el("span", { class: "title", title: hit.title || hit.doc_id, text: hit.title || hit.doc_id }),
      el("span", { class: "score", text: hit.score.toFixed(3) })),
    el("div", { class: "id", title: hit.doc_id, text: hit.doc_id }),
    snippet(hit.text, terms),
    el("div", { class: "span", text: `passage chars ${hit.char_start}–${hit.char_end}` }),
    el("div", { class: "ranks", "aria-label": "rank in every view" }, ...ranks.map((r, j) => el("span", {
      class: j === column ? "self" : r !== null ? "in" : "", title: `${results[j].view}: ${r === null ? "not in top k" : "#" + r}`, text: r === null ? "·" : r,
    }))));
  card.addEventListener("mouseenter", () => markSame(hit.doc_id, true));
  card.addEventListener("mouseleave", () => markSame(hit.doc_id, false));
  card.addEventListener("focus", () => markSame(hit.doc_id, true));
  card.addEventListener("blur", () => markSame(hit.doc_id, false));
  return card;
}

function markSame(docId, on) {
  for (const card of document.querySelectorAll(".hit")) {
    if (card.dataset.doc === docId) card.classList.toggle("same", on);
  }
}

const STOPWORDS = new Set("the and for are but not you all any can had her was one our out has how its may who why what when where which with this that from they them then than there their into about does have some".split(" "));

function queryTerms(query) {
  // Query words (3+ letters, no stopwords), longer ones cut to a stem-like prefix: "rotate" marks "Rotating".
  const words = (query.toLowerCase().match(/[\p{L}\p{N}]{3,}/gu) || []).filter((w) => !STOPWORDS.has(w));
  return [...new Set(words.map((w) => w.length > 5 ? w.slice(0, w.length - 2) : w))];
}

function snippet(text, terms, width = 280) {
  const lower = text.toLowerCase();
  let first = -1;
  for (const term of terms) {
    const at = lower.indexOf(term);
    if (at >= 0 && (first < 0 || at < first)) first = at;
  }
  const start = first > width / 2 ? text.lastIndexOf(" ", first - width / 3) + 1 : 0;
  const piece = (start > 0 ? "… " : "") + text.slice(start, start + width) + (start + width < text.length ? " …" : "");
  const node = el("p", { class: "snippet" });
  if (!terms.length) { node.textContent = piece; return node; }
  const pattern = new RegExp(`(?<![\\p{L}\\p{N}])(${terms.map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|")})[\\p{L}\\p{N}]*`, "giu");
  let last = 0;
  for (const match of piece.matchAll(pattern)) {
    node.append(piece.slice(last, match.index), el("mark", { text: match[0] }));
    last = match.index + match[0].length;
  }
  node.append(piece.slice(last));
  return node;
}

function renderJaccard(data) {
  const { views, matrix } = data.jaccard;
  $("jk").textContent = data.k;
  const head = el("tr", {}, el("th", {}), ...views.map((v) => el("th", { title: v, text: short(v) })));
  const rows = matrix.map((row, i) => el("tr", {}, el("th", { title: views[i], text: short(views[i]) }),
    ...row.map((value, j) => el("td", { style: `background: rgba(36, 86, 201, ${(value * 0.85).toFixed(3)}); color: ${value > 0.55 ? "#fff" : "inherit"}`,
      title: `${views[i]} vs ${views[j]}: ${value.toFixed(2)}`, text: value.toFixed(2) }))));
  $("jaccard").replaceChildren(head, ...rows);
  $("overlap").hidden = views.length < 2;
}

function short(view) { return view.length > 14 ? view.slice(0, 13) + "…" : view; }

// ---- evaluation runs --------------------------------------------------------------------
async function loadRuns() {
  if (!state.collection) return;
  try {
    const data = await api(`collections/${encodeURIComponent(state.collection)}/runs`);
    renderRuns(data.runs);
  } catch (error) {
    $("run-detail").replaceChildren(el("p", { class: "error", text: error.message }));
  }
}

function renderRuns(runs) {
  if (!runs.length) {
    $("runs").replaceChildren();
    $("run-detail").replaceChildren(el("p", { text: "No stored runs: `layerwise evaluate COLLECTION --queries Q --qrels QRELS` stores one." }));
    return;
  }
  const head = el("tr", {}, ...["run", "created", "queries", "views", "best", "metric", "best score"].map((t) => el("th", { text: t })));
  const rows = runs.map((run, i) => {
    const metric = run.metrics[0];
    const best = run.views.find((v) => v.name === run.best);
    const row = el("tr", { class: "pick", tabindex: "0", "data-run": run.run_id },
      el("td", { text: run.run_id }), el("td", { text: run.created_at.replace("T", " ").slice(0, 19) }),
      el("td", { text: run.queries }), el("td", { text: run.views.length }), el("td", { class: "name", text: run.best }),
      el("td", { text: metric }), el("td", { text: best ? pct(best.means[metric]) : "" }));
    const choose = () => { for (const r of $("runs").querySelectorAll("tr")) r.classList.remove("chosen"); row.classList.add("chosen"); renderRun(run); };
    row.addEventListener("click", choose);
    row.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); choose(); } });
    if (i === 0) setTimeout(choose);
    return row;
  });
  $("runs").replaceChildren(head, ...rows);
}

function pct(value) { return value === undefined || value === null ? "" : (100 * value).toFixed(2); }

function renderRun(run) {
  const metrics = run.metrics;
  const head = el("tr", {}, el("th", { text: "view" }), el("th", { text: "kind" }), ...metrics.map((m) => el("th", { text: m })),
    el("th", { text: `p vs ${run.baseline}` }), el("th", { text: "wins/losses" }));
  const rows = run.views.map((v) => el("tr", { class: v.name === run.best ? "best" : "" },
    el("td", { class: "name", text: v.name + (v.name === run.best ? " *" : "") }), el("td", { text: v.kind }),
    ...metrics.map((m) => el("td", { text: pct(v.means[m]) })),
    el("td", { text: v.name === run.baseline ? "baseline" : v.p_value === null ? "" : v.p_value.toFixed(4) }),
    el("td", { text: v.name === run.baseline ? "" : `${v.wins}/${v.losses}` })));
  const table = el("table", { class: "grid", "aria-label": `run ${run.run_id}` }, head, ...rows);
  $("run-detail").replaceChildren(el("div", { class: "run-layout" }, table, chart(run)));
}

function chart(run) {
  // Bars of the first metric per view: hidden states in order, then the other views.
  const metric = run.metrics[0];
  const views = [...run.views.filter((v) => v.kind === "layer"), ...run.views.filter((v) => v.kind !== "layer")];
  const W = 520, H = 300, left = 40, bottom = 92, top = 24;
  const band = (W - left - 8) / views.length;
  const max = Math.ceil(Math.max(...views.map((v) => v.means[metric]), 0.01) * 10) / 10;  // a round top: ticks at 0, 25, 50 …
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("width", W);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `${metric} per view`);
  const add = (tag, attrs, text) => {
    const node = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    svg.append(node);
    return node;
  };
  add("text", { x: left, y: 14, "font-size": 12, "font-weight": 600 }, `${metric} ×100 per view (run ${run.run_id}, ${run.queries} queries)`);
  add("line", { x1: left, x2: W - 4, y1: H - bottom, y2: H - bottom, stroke: "#999" });
  for (const tick of [0, 0.25, 0.5, 0.75, 1]) {
    const y = H - bottom - tick * (H - bottom - top);
    add("text", { x: left - 4, y: y + 3, "font-size": 9, "text-anchor": "end", fill: "#666" }, (100 * tick * max).toFixed(0));
  }
  views.forEach((v, i) => {
    const value = v.means[metric];
    const h = (value / max) * (H - bottom - top);
    const x = left + i * band + band * 0.15;
    const fill = v.name === run.best ? "#e07b00" : v.kind === "layer" ? "#2456c9" : "#8b95a7";
    add("rect", { x, y: H - bottom - h, width: band * 0.7, height: h, fill }).append(Object.assign(document.createElementNS(ns, "title"), { textContent: `${v.name}: ${pct(value)}` }));
    add("text", { x: x + band * 0.35, y: H - bottom - h - 3, "font-size": 8, "text-anchor": "middle" }, pct(value));
    add("text", { x: x + band * 0.35, y: H - bottom + 10, "font-size": 9, "text-anchor": "end", transform: `rotate(-45 ${x + band * 0.35} ${H - bottom + 10})` }, short(v.name));
  });
  return svg;
}

// ---- tabs and keyboard ------------------------------------------------------------------
function showTab(name) {
  for (const tab of ["search", "runs"]) {
    const on = tab === name;
    $(`tab-${tab}`).setAttribute("aria-selected", on);
    $(`tab-${tab}`).tabIndex = on ? 0 : -1;
    $(`panel-${tab}`).hidden = !on;
  }
  if (name === "runs") loadRuns();
  $(`tab-${name}`).focus();
}

function moveFocus(card, key) {
  const column = Number(card.dataset.column);
  const cards = (c) => [...document.querySelectorAll(`.hit[data-column="${c}"]`)];
  const own = cards(column);
  const at = own.indexOf(card);
  let target = null;
  if (key === "ArrowDown") target = own[at + 1];
  if (key === "ArrowUp") target = own[at - 1];
  if (key === "ArrowRight" || key === "ArrowLeft") {
    const next = cards(column + (key === "ArrowRight" ? 1 : -1));
    target = next.find((c) => c.dataset.doc === card.dataset.doc) || next[Math.min(at, next.length - 1)];
  }
  if (target) target.focus();
}

document.addEventListener("keydown", (e) => {
  const typing = ["INPUT", "SELECT", "TEXTAREA"].includes(document.activeElement.tagName);
  if (e.key === "/" && !typing) { e.preventDefault(); $("query").focus(); $("query").select(); }
  else if (e.altKey && e.key === "1") showTab("search");
  else if (e.altKey && e.key === "2") showTab("runs");
  else if (document.activeElement.classList.contains("hit") && e.key.startsWith("Arrow")) { e.preventDefault(); moveFocus(document.activeElement, e.key); }
});
for (const tab of ["search", "runs"]) $(`tab-${tab}`).addEventListener("click", () => showTab(tab));
$("tab-search").addEventListener("keydown", (e) => { if (e.key === "ArrowRight") showTab("runs"); });
$("tab-runs").addEventListener("keydown", (e) => { if (e.key === "ArrowLeft") showTab("search"); });
$("search-form").addEventListener("submit", (e) => { e.preventDefault(); runSearch(); });
$("collection").addEventListener("change", (e) => chooseCollection(e.target.value).catch((err) => showError(err.message)));
$("spec").addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); addChip(e.target.value); e.target.value = ""; } });
$("token-save").addEventListener("click", () => {
  state.token = $("token").value.trim();
  sessionStorage.setItem("layerwise-token", state.token);
  $("token-box").hidden = true;
  start();
});

function start() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (fragment.get("token")) {
    state.token = fragment.get("token");
    sessionStorage.setItem("layerwise-token", state.token);
    history.replaceState(null, "", location.pathname + location.search);
  }
  const params = new URLSearchParams(location.search);
  if (params.getAll("view").length) state.chips = params.getAll("view");
  if (params.get("q")) $("query").value = params.get("q");
  renderChips();
  loadCollections().catch((error) => showError(error.message));
}
start();
