// The page's logic: ask /api/suggest, draw one card per reply, record a pick with /api/feedback.
// A pick sends only the answer's id and the card's index: the server keeps what it showed.
"use strict";
const $ = (id) => document.getElementById(id);
let last = null; // the latest answer: its id is what a pick refers to

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

// FastAPI answers 422 with {message, fields}, 503 with {detail}; show one readable sentence.
function errorText(status, body) {
  if (body && body.message) return `${status}: ${body.message}`;
  if (body && typeof body.detail === "string") return `${status}: ${body.detail}`;
  return `request failed (${status})`;
}

async function postJSON(url, payload) {
  const res = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(payload) });
  let body = null;
  try { body = await res.json(); } catch (_) { /* a non-JSON error page */ }
  if (!res.ok) throw new Error(errorText(res.status, body));
  return body;
}

// Scores of the heuristic reward lie in [0, 1]; a composite or learned total may not, so then
// the bar is relative to the shown replies (the number beside it stays the absolute score).
function barWidths(scores) {
  const lo = Math.min(...scores), hi = Math.max(...scores);
  if (lo >= 0 && hi <= 1) return scores.map((s) => s);
  return scores.map((s) => (hi > lo ? 0.1 + 0.9 * (s - lo) / (hi - lo) : 1));
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text; // textContent: model output is never parsed as HTML
  return e;
}

function render(data) {
  const cards = $("cards");
  cards.replaceChildren();
  const widths = barWidths(data.suggestions.map((s) => s.score));
  data.suggestions.forEach((s, i) => {
    const card = el("article", "card");
    card.dataset.index = String(i);
    card.appendChild(el("p", "reply", s.reply));
    const line = el("div", "scoreline");
    line.appendChild(el("strong", "rank", `#${i + 1}`));
    const bar = el("div", "bar");
    const fill = el("span");
    fill.style.width = `${Math.round(100 * Math.max(0, Math.min(1, widths[i])))}%`;
    bar.appendChild(fill);
    line.appendChild(bar);
    line.appendChild(el("span", "total", s.score.toFixed(3)));
    card.appendChild(line);
    const comps = el("div", "components");
    for (const [name, v] of Object.entries(s.components)) comps.appendChild(el("span", "", `${name} ${v.toFixed(2)}`));
    card.appendChild(comps);
    const actions = el("div", "actions");
    const copy = el("button", "secondary copy", "Copy");
    copy.type = "button";
    copy.addEventListener("click", () => copyText(s.reply, copy));
    const pick = el("button", "pick", "I'd post this");
    pick.type = "button";
    pick.addEventListener("click", () => choose(i, card, pick));
    actions.append(copy, pick);
    card.appendChild(actions);
    cards.appendChild(card);
  });
  const style = (data.tone ? ` · tone: ${data.tone}` : "") + (data.voice.length ? ` · your voice (${data.voice.length})` : "");
  setStatus(`${data.suggestions.length} replies from ${data.n_sampled} sampled (${data.n_distinct} distinct) in ${data.seconds.toFixed(1)} s${style}`);
}

async function copyText(text, button) {
  try {
    await navigator.clipboard.writeText(text);
  } catch (_) { // clipboard API needs a secure context; fall back to a hidden textarea
    const t = el("textarea");
    t.value = text;
    document.body.appendChild(t);
    t.select();
    document.execCommand("copy");
    t.remove();
  }
  button.textContent = "Copied";
  setTimeout(() => { button.textContent = "Copy"; }, 1200);
}

async function choose(i, card, button) {
  if (!last) return;
  const picks = document.querySelectorAll("#cards button.pick");
  picks.forEach((b) => { b.disabled = true; }); // one pick per answer (the server refuses a second)
  try {
    const r = await postJSON("/api/feedback", { id: last.id, chosen: i });
    card.classList.add("chosen");
    button.textContent = "Saved ✓";
    setStatus(`Saved your pick: ${r.rows} preference pair${r.rows === 1 ? "" : "s"} added to ${r.file}`);
  } catch (e) {
    picks.forEach((b) => { b.disabled = false; });
    setStatus(e.message, true);
  }
}

function voiceLines() {
  return $("voice").value.split("\n").map((l) => l.trim()).filter((l) => l.length > 0);
}

function showVoiceCount() {
  const n = voiceLines().length;
  $("voice-count").textContent = n ? `(${n} example${n === 1 ? "" : "s"})` : "(none)";
}

async function suggest(ev) {
  ev.preventDefault();
  const tweet = $("tweet").value;
  const k = Number($("k").value), temperature = Number($("temperature").value);
  const tone = $("tone").value || null, voice = voiceLines();
  $("suggest").disabled = true;
  setStatus("Sampling replies…");
  try {
    last = await postJSON("/api/suggest", { tweet, k, temperature, tone, voice });
    render(last);
  } catch (e) {
    setStatus(e.message, true);
  } finally {
    $("suggest").disabled = false;
  }
}

function init() {
  $("form").addEventListener("submit", suggest);
  $("tweet").addEventListener("keydown", (ev) => { // Ctrl/Cmd+Enter suggests; plain Enter is a newline
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) $("form").requestSubmit();
  });
  $("k").addEventListener("input", () => { $("k-out").textContent = $("k").value; });
  $("temperature").addEventListener("input", () => { $("t-out").textContent = Number($("temperature").value).toFixed(1); });
  $("voice").addEventListener("input", showVoiceCount);
  fetch("/healthz").then((r) => r.json()).then((h) => {
    $("meta").textContent = `model: ${h.model} · ranked by: ${h.reward}` + (h.source ? ` · ${h.source}` : "");
  }).catch(() => { $("meta").textContent = "server unreachable"; });
  // Tone presets and the server's default tone and voice (--tone, --voice).
  fetch("/api/options").then((r) => r.json()).then((o) => {
    for (const [name, instruction] of Object.entries(o.tones)) {
      const opt = el("option", "", name);
      opt.value = name;
      opt.title = instruction;
      $("tone").appendChild(opt);
    }
    $("tone").value = o.tone || "";
    $("voice").value = o.voice.join("\n");
    showVoiceCount();
  }).catch(() => {});
}

document.addEventListener("DOMContentLoaded", init);
