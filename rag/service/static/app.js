// The agents' page: paste a ticket, watch the draft stream in, see what it rests on, and send it on.
// Served as a file (not inline) so the page holds under a Content-Security-Policy of script-src 'self'.
// Everything from the server or a past case becomes text nodes or <a> elements, never innerHTML.
"use strict";

const $ = (id) => document.getElementById(id);

// Related cases below this relevance are not listed. Relevance is the match model's calibrated probability
// that the case addresses the ticket. On the 141 labelled new tickets (offline run), 15 of the 329 related
// cases below 0.2 addressed the ticket (5%; 3 of 157 on the held-out test half) against 26 of 53 at or above
// it (49%): below 0.2 a listed case is nearly always noise an agent has to read past.
const MIN_SHOWN_RELEVANCE = 0.2;

// The insert-into-reply contract (docs/service.md, "Embedding the page"): messages are objects whose `type`
// starts with this prefix; they are read only from the parent window at an origin in RAG_EMBED_ORIGINS, and
// the draft is posted only to that exact origin, never to "*".
const MSG = "qiniu-rag:";
const MSG_VERSION = 1;

let current = null;        // the last draft response
let original = "";         // the draft as first shown (links on their own lines): unchanged text is not an edit
let inFlight = null;       // the AbortController of the draft being streamed
let maxChars = 8000;
let embedOrigins = [];     // from /healthz: the help desks that may embed this page
let hostOrigin = null;     // the embedding help desk, once it said hello from an allowed origin
const caseCache = new Map();

$("token").value = localStorage.getItem("rag-token") || "";
$("token").addEventListener("change", () => localStorage.setItem("rag-token", $("token").value));

function headers() {
  const h = { "Content-Type": "application/json" };
  if ($("token").value) h["Authorization"] = "Bearer " + $("token").value;
  return h;
}
function status(text, isError) { $("status").textContent = text; $("status").className = isError ? "error" : ""; }

// The service answers {"error": {"status", "message"}}; the page says what went wrong in Chinese and keeps the
// server's message (it names the field) in brackets.
const STATUS_ZH = {
  400: "请求格式有误", 401: "访问令牌缺失或错误", 403: "未配置访问令牌，仅允许本机访问", 404: "未找到",
  413: "内容过长", 422: "请求内容有误", 429: "请求过多，请稍后再试", 500: "服务器配置错误",
  502: "大模型或向量服务暂时不可用", 503: "服务暂时繁忙，请稍后再试",
};
function errorZh(code, message) {
  const m = message || "";
  const unknown = m.match(/unknown (product|scenario) '([^']*)'; valid values: (.*)$/);
  if (unknown) return `未知的${unknown[1] === "product" ? "产品" : "场景"}「${unknown[2]}」，可选：${unknown[3]}`;
  if (/the ticket is empty/.test(m)) return "客户消息为空";
  const long = m.match(/the ticket has (\d+) characters; the limit is (\d+)/);
  if (long) return `客户消息有 ${long[1]} 字，超过上限 ${long[2]} 字`;
  if (/not valid JSON/.test(m)) return "请求不是有效的 JSON";
  return (STATUS_ZH[code] || `请求失败（HTTP ${code}）`) + (m ? `（${m}）` : "");
}
class ApiError extends Error { constructor(code, message) { super(errorZh(code, message)); this.status = code; } }

const ACTION_ZH = { answer: "直接回答", ask_for_info: "请客户补充信息", escalate: "需后台处理", defer: "转人工处理" };

async function api(method, path, body) {
  let res;
  try { res = await fetch(path, { method, headers: headers(), body: body ? JSON.stringify(body) : undefined }); }
  catch (e) { throw new ApiError(0, "无法连接服务"); }
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new ApiError(res.status, data.error && data.error.message);
  return data;
}

// POST /v1/drafts/stream: server-sent events, `delta` ({text}) as checked sentences, then one `draft` (the whole
// response) or `error`. EventSource cannot POST, so the body is read and split into events here.
async function streamDraft(body, onDelta, signal) {
  let res;
  try {
    res = await fetch("/v1/drafts/stream", { method: "POST", headers: { ...headers(), Accept: "text/event-stream" },
                                            body: JSON.stringify(body), signal });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, "无法连接服务");
  }
  if (!res.ok) {  // a bad request fails before the stream starts, with the usual error body
    const data = await res.json().catch(() => ({}));
    throw new ApiError(res.status, data.error && data.error.message);
  }
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    buffer += decoder.decode(value || new Uint8Array(), { stream: !done });
    const blocks = buffer.split(/\r?\n\r?\n/);
    buffer = done ? "" : blocks.pop();
    for (const block of blocks) {
      let event = "message";
      const data = [];
      for (const line of block.split(/\r?\n/)) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (!data.length) continue;
      const payload = JSON.parse(data.join("\n"));
      if (event === "delta") onDelta(payload.text);
      else if (event === "draft") return payload;
      else if (event === "error") throw new ApiError(payload.error.status, payload.error.message);
    }
    if (done) throw new ApiError(0, "连接中断，草稿未生成完");
  }
}

// ---- links on their own line ------------------------------------------------------------------------------
// The dataset glues links to the words around them ("DV限免https://…", "…/apply2.补全信息"). The service lists
// the clean links of a draft (`links`); each is put on a line of its own, so a customer's mail client links
// exactly the address. Links the list does not name (while streaming) are found with the same rule as the
// server's reader: printable ASCII, minus trailing punctuation.
const URL_RE = /https?:\/\/[\x21-\x7e]+/g;
const TRAILING = ".,;:!?)]}'\"-";
const CLOSING = /^[。，、；：！？）」』】,.;:!?)]+/;

function linkSpans(text, links) {
  const spans = [];
  const free = (s, e) => spans.every(([a, b]) => e <= a || s >= b);
  for (const link of [...(links || [])].sort((x, y) => y.length - x.length)) {
    for (let i = text.indexOf(link); i !== -1; i = text.indexOf(link, i + 1)) {
      if (free(i, i + link.length)) spans.push([i, i + link.length]);
    }
  }
  for (const m of text.matchAll(URL_RE)) {
    let url = m[0];
    while (url && TRAILING.includes(url[url.length - 1])) url = url.slice(0, -1);
    const cut = url.search(/["'<>\\]/);
    if (cut !== -1) url = url.slice(0, cut);
    if (url.length > 8 && free(m.index, m.index + url.length)) spans.push([m.index, m.index + url.length]);
  }
  return spans.sort((a, b) => a[0] - b[0]);
}

// Returns the text with a line break before and after each link, and `map`: for every position of the input,
// its position in the output (so a passage found in the server's text is found in the shown text).
function linksOnOwnLine(text, links) {
  let out = "";
  const map = new Array(text.length + 1);
  let i = 0;
  const copy = (end) => { for (; i < end; i++) { map[i] = out.length; out += text[i]; } };
  for (const [start, end] of linkSpans(text, links)) {
    if (start < i) continue;
    copy(start);
    if (out && !out.endsWith("\n")) { out = out.replace(/[ \t]+$/, ""); out += "\n"; }
    copy(end);
    const closing = text.slice(end).match(CLOSING);  // "。" after a link stays with it, not alone on a line
    if (closing) copy(end + closing[0].length);
    let j = i;
    while (j < text.length && (text[j] === " " || text[j] === "\t")) { map[j] = out.length; j++; }
    if (j < text.length && text[j] !== "\n") out += "\n";
    i = j;
  }
  copy(text.length);
  map[text.length] = out.length;
  return { text: out, map };
}

// Case text becomes text nodes and <a> elements only: links are clickable, only http(s), each on its own line,
// opened in a new tab without giving it access to this page.
function linkify(parent, text, links) {
  const shown = linksOnOwnLine(text, links).text;
  let last = 0;
  for (const [start, end] of linkSpans(shown, links)) {
    parent.append(document.createTextNode(shown.slice(last, start)));
    const raw = shown.slice(start, end);
    let href = null;
    try { const u = new URL(raw); if (u.protocol === "http:" || u.protocol === "https:") href = u.href; } catch (e) { /* not a URL */ }
    if (href) {
      const a = document.createElement("a"); a.href = href; a.textContent = raw;
      a.target = "_blank"; a.rel = "noopener noreferrer"; parent.append(a);
    } else parent.append(document.createTextNode(raw));
    last = end;
  }
  parent.append(document.createTextNode(shown.slice(last)));
}

// ---- health, counter -----------------------------------------------------------------------------------------
function updateCounter() {
  const n = $("ticket").value.trim().length;
  $("counter").textContent = `${n} / ${maxChars} 字`;
  $("counter").classList.toggle("over", n > maxChars);
}

const healthLoaded = (async () => {
  try {
    const h = await api("GET", "/healthz");
    $("health").textContent = `${h.cases} 个历史案例 · ${h.backend === "offline" ? "离线草稿" : h.backend}`;
    if (h.max_ticket_chars) { maxChars = h.max_ticket_chars; updateCounter(); }
    embedOrigins = h.embed_origins || [];
    for (const p of h.products) { const o = document.createElement("option"); o.value = p; o.textContent = p; $("product").appendChild(o); }
  } catch (e) { $("health").textContent = "服务不可用：" + e.message; }
})();

// ---- drafting ------------------------------------------------------------------------------------------------
const ACTION_BUTTONS = ["copy", "insert", "accept", "edit", "reject"];
function setButtons(on) { for (const id of ACTION_BUTTONS) $(id).disabled = !on; }

function clearDraft() {
  current = null; original = "";
  $("draft-text").value = ""; $("draft-text").readOnly = false; $("draft-text").classList.remove("streaming");
  $("draft-meta").textContent = ""; $("notes").textContent = "";
  $("action").className = "badge hidden"; $("action").textContent = "";
  $("fallback").classList.add("hidden"); $("reject-row").classList.add("hidden");
  for (const id of ["sources", "related", "passages"]) $(id).textContent = "暂无";
  $("threshold").textContent = `相关度低于 ${MIN_SHOWN_RELEVANCE} 的案例不显示`;
  hidePreview(); setButtons(false);
}

async function draft() {
  const text = $("ticket").value.trim();
  if (inFlight) inFlight.abort();  // a new request replaces the one still streaming
  if (!text) { clearDraft(); status("请先粘贴客户消息", true); return; }
  if (text.length > maxChars) { clearDraft(); status(`客户消息有 ${text.length} 字，超过上限 ${maxChars} 字`, true); return; }
  clearDraft();
  const controller = new AbortController();
  inFlight = controller;
  const box = $("draft-text");
  box.readOnly = true; box.classList.add("streaming");
  status("正在生成…");
  let streamed = "";
  try {
    const d = await streamDraft({ text, title: $("title").value, product: $("product").value || null }, (delta) => {
      streamed += delta;
      box.value = linksOnOwnLine(streamed).text;  // checked sentences as they come
    }, controller.signal);
    if (inFlight !== controller) return;
    show(d);
    status("草稿已生成");
  } catch (e) {
    if (e.name === "AbortError" || inFlight !== controller) return;
    clearDraft(); status("生成失败：" + e.message, true);  // never leave a stale or half draft beside an error
  } finally {
    if (inFlight === controller) inFlight = null;
  }
}

function show(d) {
  current = d;
  const shown = linksOnOwnLine(d.text, d.links);
  original = shown.text;
  const box = $("draft-text");
  box.value = shown.text; box.readOnly = false; box.classList.remove("streaming");
  $("action").textContent = ACTION_ZH[d.action] || d.action;
  $("action").className = "badge " + d.action;
  $("fallback").classList.toggle("hidden", !d.fallback);
  $("draft-meta").textContent = `置信度 ${(d.confidence * 100).toFixed(0)}% · ${d.backend === "offline" ? "离线草稿" : d.backend} · ${Math.round(d.latency_ms)} 毫秒`;
  $("notes").textContent = (d.notes_zh || []).join("；");  // the notes' Chinese text (rag/notes.py)
  const numbers = renderCitations(d.citations || []);
  renderPassages(d, shown, numbers);
  setButtons(true);
  $("insert").classList.toggle("hidden", !hostOrigin);
}

// ---- what the draft rests on ---------------------------------------------------------------------------------
const relevance = (c) => (c.match === null || c.match === undefined ? c.score : c.match);

// Where a cited case came from, so an agent can tell a dataset case from one a reviewer approved out of
// feedback (feedback text is untrusted until approved; the reviewer and date say who vouched for it).
const VERDICT_ZH = { accepted: "采纳", edited: "修改后采纳" };
function provenanceText(p) {
  if (!p) return "来源：历史工单数据集";
  const parts = [`来源：客服反馈 #${p.feedback_ids.join(", #")}（${VERDICT_ZH[p.verdict] || p.verdict}）`,
                 `审核人 ${p.reviewer || "未记录"}`, `审核于 ${p.reviewed_at || "未记录"}`];
  if (p.copies > 1) parts.push(`合并 ${p.copies} 条相同反馈`);
  return parts.join(" · ");
}

// The source cases first, numbered [1], [2] (the numbers the sentence marks use), then the related cases at or
// above the stated relevance. Returns case id → number.
function renderCitations(citations) {
  const sources = citations.filter((c) => c.relation === "source");
  const related = citations.filter((c) => c.relation !== "source");
  const shown = related.filter((c) => relevance(c) >= MIN_SHOWN_RELEVANCE);
  const numbers = new Map(sources.map((c, n) => [c.case_id, n + 1]));
  const box = $("sources"); box.textContent = "";
  if (!sources.length) box.textContent = "草稿没有依据任何历史案例（见上方的处理建议）";
  sources.forEach((c, n) => box.append(caseCard(c, "source", n + 1)));
  const rel = $("related"); rel.textContent = "";
  if (!shown.length) rel.textContent = `没有相关度不低于 ${MIN_SHOWN_RELEVANCE} 的其他案例`;
  for (const c of shown) rel.append(caseCard(c, "related", null));
  const hidden = related.length - shown.length;
  $("threshold").textContent = `相关度低于 ${MIN_SHOWN_RELEVANCE} 的案例不显示` + (hidden ? `（本次未显示 ${hidden} 个）` : "");
  return numbers;
}

function caseCard(c, relation, number) {
  const div = document.createElement("div"); div.className = "case " + relation; div.dataset.caseId = c.case_id;
  const head = document.createElement("div"); head.className = "case-head";
  const badge = document.createElement("span"); badge.className = "badge " + relation;
  badge.textContent = relation === "source" ? `[${number}] 草稿依据` : "相关";
  const b = document.createElement("button"); b.className = "case-title"; b.textContent = c.title; b.dataset.caseId = c.case_id;
  b.setAttribute("aria-expanded", "false");
  head.append(badge, b);
  const m = document.createElement("div"); m.className = "meta";
  m.textContent = `${c.product || "未知产品"} · ${c.case_id} · 相关度 ${relevance(c).toFixed(2)}`;
  const src = document.createElement("div"); src.className = "provenance";
  src.textContent = provenanceText(c.provenance);
  const pre = document.createElement("pre"); pre.className = "hidden";
  // Hover or keyboard focus previews the case beside the list; a click keeps it open in place.
  b.addEventListener("mouseenter", () => previewCase(b, c.case_id, null));
  b.addEventListener("focus", () => previewCase(b, c.case_id, null));
  b.addEventListener("mouseleave", hidePreview);
  b.addEventListener("blur", hidePreview);
  b.addEventListener("click", async () => {
    hidePreview();
    if (pre.classList.contains("hidden") && !pre.textContent) {
      try { fillCase(pre, await loadCase(c.case_id), null); }
      catch (e) { pre.textContent = "加载失败：" + e.message; }
    }
    pre.classList.toggle("hidden");
    b.setAttribute("aria-expanded", String(!pre.classList.contains("hidden")));
  });
  div.append(head, m, src, pre);
  return div;
}

async function loadCase(id) {
  if (!caseCache.has(id)) caseCache.set(id, api("GET", "/v1/cases/" + id).catch((e) => { caseCache.delete(id); throw e; }));
  return caseCache.get(id);
}

// A case as text: product, the customer's question and the agent's answer; with `passage`, the answer around
// that sentence, the sentence marked.
function fillCase(el, k, passage) {
  el.textContent = "";
  const head = `【${k.product}｜${k.subcategory}】`;
  if (passage) {
    const at = locate(k.answer, passage);
    if (at) {
      const before = k.answer.slice(Math.max(0, at[0] - 160), at[0]);
      const after = k.answer.slice(at[1], at[1] + 160);
      linkify(el, `${head}\n客服：${at[0] > 160 ? "…" : ""}${before}`);
      const mark = document.createElement("mark"); linkify(mark, k.answer.slice(at[0], at[1])); el.append(mark);
      linkify(el, `${after}${at[1] + 160 < k.answer.length ? "…" : ""}`);
      return;
    }
  }
  linkify(el, `${head}\n客户：${k.question}\n客服：${k.answer}`);
}

// Where a draft sentence sits in the case's answer, ignoring whitespace (the writer joins lines); null if the
// guard changed it beyond that.
function locate(answer, sentence) {
  const squeeze = (s) => s.replace(/\s+/g, "");
  const target = squeeze(sentence);
  if (!target) return null;
  const chars = [];
  for (let i = 0; i < answer.length; i++) if (!/\s/.test(answer[i])) chars.push(i);
  const flat = chars.map((i) => answer[i]).join("");
  const at = flat.indexOf(target);
  return at === -1 ? null : [chars[at], chars[at + target.length - 1] + 1];
}

// ---- the draft's sentences and the cases they came from ------------------------------------------------------
function renderPassages(d, shown, numbers) {
  const box = $("passages"); box.textContent = "";
  const passages = d.passages || [];
  if (!passages.length) { box.textContent = "这份草稿没有直接取自历史案例的句子"; return; }
  let cursor = 0;  // passages come in draft order: each is looked for after the previous one
  const marks = [];
  for (const p of passages) {
    const at = d.text.indexOf(p.text, cursor);
    if (at === -1 || !p.text) continue;
    marks.push([shown.map[at], shown.map[at + p.text.length], p]);
    cursor = at + p.text.length;
  }
  let last = 0;
  for (const [start, end, p] of marks) {
    linkify(box, shown.text.slice(last, start));
    const span = document.createElement("span"); span.className = "from-case"; span.tabIndex = 0;
    span.dataset.caseId = p.case_id;
    const n = numbers.get(p.case_id);
    span.setAttribute("aria-label", `取自案例 ${n ? "[" + n + "] " : ""}${p.case_id}`);
    linkify(span, shown.text.slice(start, end));
    const sup = document.createElement("sup"); sup.textContent = n ? `[${n}]` : "[案例]"; span.append(sup);
    span.addEventListener("mouseenter", () => previewCase(span, p.case_id, p.text));
    span.addEventListener("focus", () => previewCase(span, p.case_id, p.text));
    span.addEventListener("mouseleave", hidePreview);
    span.addEventListener("blur", hidePreview);
    box.append(span);
    last = end;
  }
  linkify(box, shown.text.slice(last));
}

// ---- the floating preview --------------------------------------------------------------------------------------
let previewFor = null;
async function previewCase(anchor, id, passage) {
  previewFor = anchor;
  const box = $("preview");
  box.textContent = "加载中…";
  place(box, anchor);
  try {
    const k = await loadCase(id);
    if (previewFor !== anchor) return;  // the pointer moved on
    box.textContent = "";
    const title = document.createElement("div"); title.className = "meta";
    title.textContent = `${passage ? "这句取自" : "案例"}：${k.title}（${k.case_id}）`;
    const pre = document.createElement("pre"); fillCase(pre, k, passage);
    box.append(title, pre);
    place(box, anchor);
  } catch (e) { if (previewFor === anchor) box.textContent = "加载失败：" + e.message; }
}
function place(box, anchor) {
  box.classList.remove("hidden");
  const r = anchor.getBoundingClientRect();
  const width = Math.min(520, window.innerWidth - 16);
  box.style.left = Math.max(8, Math.min(r.left, window.innerWidth - width - 8)) + "px";
  const below = r.bottom + 6;
  box.style.top = (below + box.offsetHeight < window.innerHeight ? below : Math.max(8, r.top - box.offsetHeight - 6)) + "px";
}
function hidePreview() { previewFor = null; $("preview").classList.add("hidden"); }

// ---- feedback, copy, insert ------------------------------------------------------------------------------------
async function feedback(verdict, extra) {
  if (!current) return;
  try {
    await api("POST", "/v1/feedback", { draft_id: current.draft_id, verdict, ...extra });
    status({ accepted: "已采纳", edited: "已记录修改", rejected: "已拒绝" }[verdict]);
    setButtons(false); $("copy").disabled = false; $("insert").disabled = false; $("reject-row").classList.add("hidden");
  } catch (e) { status("反馈失败：" + e.message, true); }
}

async function copy() {
  const text = $("draft-text").value;
  try { await navigator.clipboard.writeText(text); } catch (e) { $("draft-text").select(); document.execCommand("copy"); }
  status("已复制到剪贴板");
}

// "采纳" sends the text on screen: if the agent changed it, the change is what was accepted.
function accept() {
  const text = $("draft-text").value.trim();
  feedback("accepted", text && text !== original.trim() ? { final_text: text } : {});
}
function edited() {
  const text = $("draft-text").value.trim();
  if (text === original.trim()) {
    $("draft-text").focus();
    status("草稿没有改动：请在草稿框中修改，改好后再按“修改后采纳”（Alt+E）", true);
    return;
  }
  feedback("edited", { final_text: text });
}
function openReject() { $("reject-row").classList.remove("hidden"); $("reason").focus(); }
function sendReject() {
  const reason = $("reason").value.trim();
  if (!reason) { status("请填写拒绝原因", true); return; }
  feedback("rejected", { reason });
}

function insert() {
  if (!hostOrigin) { status("本页没有嵌入已允许的工单系统，无法插入；请用“复制”", true); return; }
  const sources = (current.citations || []).filter((c) => c.relation === "source").map((c) => c.case_id);
  window.parent.postMessage({ type: MSG + "insert", version: MSG_VERSION, text: $("draft-text").value,
                              draft_id: current.draft_id, action: current.action, sources }, hostOrigin);
  status("已发送到工单系统的回复框");
}

// Messages from the embedding help desk: only from the parent window, only from an allowed origin. Anything
// else is ignored (a warning in this page's console says why, for whoever sets the integration up).
window.addEventListener("message", async (event) => {
  const data = event.data;
  if (event.source !== window.parent || window.parent === window || !data || typeof data.type !== "string"
      || !data.type.startsWith(MSG)) return;
  await healthLoaded;
  if (!embedOrigins.includes(event.origin)) {
    console.warn(`qiniu-rag: ignored ${data.type} from ${event.origin}: not in RAG_EMBED_ORIGINS`);
    return;
  }
  const kind = data.type.slice(MSG.length);
  if (kind === "hello") {
    hostOrigin = event.origin;
    $("embedded").classList.remove("hidden");
    $("insert").classList.remove("hidden");
    $("insert").disabled = !current;
    window.parent.postMessage({ type: MSG + "ready", version: MSG_VERSION }, hostOrigin);
  } else if (kind === "ticket" && typeof data.text === "string") {
    $("ticket").value = data.text; updateCounter();
    if (typeof data.title === "string") $("title").value = data.title;
    if (typeof data.product === "string") $("product").value = [...$("product").options].some((o) => o.value === data.product) ? data.product : "";
    status("已从工单系统载入客户消息：按 Ctrl+Enter 生成草稿");
  } else if (kind === "inserted" && event.origin === hostOrigin) {
    status("已插入工单系统的回复框");
  }
});

// ---- wiring and shortcuts --------------------------------------------------------------------------------------
$("go").addEventListener("click", draft);
$("ticket").addEventListener("input", updateCounter);
$("copy").addEventListener("click", copy);
$("insert").addEventListener("click", insert);
$("accept").addEventListener("click", accept);
$("edit").addEventListener("click", edited);
$("reject").addEventListener("click", openReject);
$("reject-send").addEventListener("click", sendReject);
$("reason").addEventListener("keydown", (e) => { if (e.key === "Enter" && !e.isComposing) { e.preventDefault(); sendReject(); } });

// Alt+letter by physical key (e.code), so the shortcut is the same on any keyboard layout and macOS's Option
// characters never reach the text; keys pressed while an input method is composing are left alone.
const SHORTCUTS = { KeyC: ["copy", copy], KeyI: ["insert", insert], KeyA: ["accept", accept], KeyE: ["edit", edited],
                    KeyR: ["reject", openReject] };
document.addEventListener("keydown", (e) => {
  if (e.isComposing) return;
  if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); draft(); return; }
  if (e.key === "Escape") { hidePreview(); $("reject-row").classList.add("hidden"); return; }
  if (!e.altKey || e.ctrlKey || e.metaKey || !(e.code in SHORTCUTS)) return;
  e.preventDefault();
  const [id, run] = SHORTCUTS[e.code];
  if (!current) { status("还没有草稿：先按 Ctrl+Enter 生成", true); return; }
  if (id === "insert" && !hostOrigin) { insert(); return; }
  if ($(id).disabled) { status("这份草稿的反馈已提交", true); return; }
  run();
});

clearDraft();
