// The chat page: plain JavaScript, no build step, no third-party code. It talks to the same server's API:
// POST v1/ask (stream=true: Server-Sent Events, `token` events then one `answer` event), GET v1/documents and
// GET v1/documents/{id} (the text a citation's start:end offsets point into), POST v1/documents (a file or a
// URL; needs the API key), GET v1/sentiment?ticker= and GET v1/documents/{id}/sentiment (scores and the
// evidence passages behind them). URLs are relative, so the page also works when the app is mounted under a
// prefix.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  // Earlier turns sent with each question, so follow-ups ("and the year before?") are rewritten against them.
  // Bounded: the whole history travels in every request.
  const MAX_HISTORY_TURNS = 12;
  const state = { history: [], documents: new Map(), busy: false };

  // ---- HTTP --------------------------------------------------------------------------------------------------

  function headers(extra = {}) {
    const key = localStorage.getItem("rag.apiKey");
    return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
  }

  async function errorText(response) {
    try {
      const body = await response.json();
      return (body.error && body.error.message) || `HTTP ${response.status}`;
    } catch {
      return `HTTP ${response.status}`;
    }
  }

  async function getJSON(path) {
    const response = await fetch(path, { headers: headers() });
    if (!response.ok) throw new Error(await errorText(response));
    return response.json();
  }

  // One parsed SSE block: `event:` and `data:` lines (several data lines join with newlines); comments (pings)
  // and blocks without data are skipped.
  function parseEvent(block) {
    let event = "message";
    const data = [];
    for (const line of block.split(/\r\n|\r|\n/)) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") event = value;
      else if (field === "data") data.push(value);
    }
    return data.length ? { event, data: data.join("\n") } : null;
  }

  // EventSource cannot POST, so the stream is read from fetch: events end at a blank line.
  async function* serverEvents(response) {
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = /\r\n\r\n|\n\n|\r\r/.exec(buffer))) {
        const event = parseEvent(buffer.slice(0, end.index));
        buffer = buffer.slice(end.index + end[0].length);
        if (event) yield event;
      }
    }
    const last = parseEvent(buffer);
    if (last) yield last;
  }

  // ---- DOM helpers (text goes in as text: document content never becomes markup) -----------------------------

  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (key === "class") node.className = value;
      else if (key.startsWith("data-") || key.startsWith("aria-")) node.setAttribute(key, value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node[key] = value;
    }
    for (const child of children.flat()) {
      if (child !== null && child !== undefined && child !== false) {
        node.append(child instanceof Node ? child : String(child));
      }
    }
    return node;
  }

  function count(n, noun) {
    return `${n} ${noun}${n === 1 ? "" : "s"}`;
  }

  function shorten(text, limit) {
    const flat = text.replace(/\s+/g, " ").trim();
    return flat.length > limit ? `${flat.slice(0, limit - 1)}…` : flat;
  }

  function safeURL(url) {
    // Only web links: a document's source_url is data, and must not become a javascript: link.
    try {
      const parsed = new URL(url, window.location.href);
      return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
    } catch {
      return null;
    }
  }

  function docMeta(doc) {
    return [doc.date, (doc.tickers || []).join(", "), doc.doc_type].filter(Boolean).join(" · ");
  }

  // ---- documents ---------------------------------------------------------------------------------------------

  async function loadDocuments() {
    const list = $("doc-list");
    try {
      const docs = await getJSON("v1/documents");
      state.documents.clear();
      $("doc-count").textContent = `(${docs.length})`;
      list.replaceChildren(...docs.map((d) => el("li", {},
        el("button", { type: "button", class: "doc", "data-doc": d.id, onclick: () => showDocument(d.id) },
          el("span", { class: "doc-title" }, d.title || d.id),
          el("span", { class: "muted" }, [docMeta(d), count(d.n_chunks, "passage")].filter(Boolean).join(" · "))))));
      if (!docs.length) list.replaceChildren(el("li", { class: "muted" }, "No documents yet: add one above, or run `rag ingest`."));
    } catch (error) {
      list.replaceChildren(el("li", { class: "error" }, `Could not list documents: ${error.message}`));
    }
  }

  function getDocument(id) {
    if (!state.documents.has(id)) {
      const pending = getJSON(`v1/documents/${encodeURIComponent(id)}`);
      pending.catch(() => state.documents.delete(id));
      state.documents.set(id, pending);
    }
    return state.documents.get(id);
  }

  // ---- adding documents --------------------------------------------------------------------------------------

  function tickerList(text) {
    return text.split(/[\s,]+/).map((t) => t.trim().toUpperCase()).filter(Boolean);
  }

  async function addDocument(event) {
    event.preventDefault();
    const file = $("add-file").files[0];
    const url = $("add-url").value.trim();
    const tickers = tickerList($("add-tickers").value);
    const status = $("add-status");
    status.className = "error";
    if (Boolean(file) === Boolean(url)) {
      status.textContent = "Choose a file or enter a web address (one of them).";
      return;
    }
    let body;
    let extra = {};
    if (file) {
      body = new FormData();  // the browser sets the multipart boundary itself
      body.append("file", file);
      if (tickers.length) body.append("metadata", JSON.stringify({ tickers }));
    } else {
      body = JSON.stringify({ url, tickers });
      extra = { "Content-Type": "application/json" };
    }
    $("add").disabled = true;
    status.className = "muted";
    status.textContent = "Adding… (embedding its passages)";
    try {
      const response = await fetch("v1/documents", { method: "POST", headers: headers(extra), body });
      if (!response.ok) throw new Error(await errorText(response));
      const report = await response.json();
      const changed = [...report.added, ...report.updated];
      status.textContent = changed.length ? `Added ${changed.join(", ")} (${count(report.chunks, "passage")})`
        : `Already indexed, unchanged: ${report.unchanged.join(", ")}`;
      $("add-form").reset();
      await loadDocuments();
    } catch (error) {
      status.className = "error";
      status.textContent = error.message;
    } finally {
      $("add").disabled = false;
    }
  }

  // ---- sentiment ---------------------------------------------------------------------------------------------

  function signed(score) {
    return `${score < 0 ? "−" : "+"}${Math.abs(score).toFixed(2)}`;
  }

  // One document's score, its provenance and the passages that drove it, each opening in the viewer.
  async function showEvidence(docId, item) {
    const old = item.querySelector(".evidence");
    if (old) {
      old.remove();
      return;
    }
    const box = el("div", { class: "evidence" }, el("p", { class: "muted" }, "Loading evidence…"));
    item.append(box);
    try {
      const scored = await getJSON(`v1/documents/${encodeURIComponent(docId)}/sentiment`);
      const notes = [el("span", { class: "muted" }, `${scored.model} · prompt ${scored.prompt}`)];
      if (scored.offline_provider) {
        notes.unshift(el("span", { class: "badge", title: scored.model }, "offline classifier, not a language model"));
      }
      box.replaceChildren(
        el("p", { class: "notes" }, notes),
        scored.rationale ? el("p", { class: "muted" }, scored.rationale) : "",
        el("ol", { class: "sources" }, scored.evidence.map((c) => el("li", {},
          citeButton(c, `Evidence [${c.n}] for the score`), " ",
          el("span", { class: "muted" }, `“${shorten(c.quote, 140)}”`)))));
    } catch (error) {
      box.replaceChildren(el("p", { class: "error" }, error.message));
    }
  }

  // The newest document against the ticker's own history and its peers: "less positive than usual" shows here.
  function relativeLine(relative) {
    if (!relative) return "";
    const parts = [];
    if (relative.change_vs_previous !== null) parts.push(`${signed(relative.change_vs_previous)} vs its previous document`);
    if (relative.vs_own_mean !== null) parts.push(`${signed(relative.vs_own_mean)} vs its own mean`);
    if (relative.percentile !== null) {
      parts.push(`percentile ${Math.round(relative.percentile)} of ${relative.peers} (${relative.peer_group})`);
    }
    return parts.length ? el("p", { class: "relative muted" }, `Newest: ${parts.join(" · ")}`) : "";
  }

  async function showSentiment(event) {
    event.preventDefault();
    const ticker = $("ticker").value.trim().toUpperCase();
    const box = $("sentiment");
    if (!ticker) return;
    box.dataset.state = "loading";
    box.replaceChildren(el("p", { class: "muted" }, `Scoring ${ticker}… (documents not yet scored are scored now)`));
    try {
      const rollup = await getJSON(`v1/sentiment?ticker=${encodeURIComponent(ticker)}`);
      box.replaceChildren(
        el("p", {}, el("span", { class: "score", "data-sign": rollup.score < 0 ? "-" : "+" }, signed(rollup.score)),
          ` ${rollup.label} · ${rollup.ticker}`),
        el("p", { class: "muted", title: rollup.method }, `${rollup.model} · confidence ${rollup.confidence.toFixed(2)}`),
        relativeLine(rollup.relative),
        el("ul", {}, rollup.documents.map((d) => {
          const item = el("li", { "data-doc": d.doc_id });
          item.append(el("button", { type: "button", class: "passage", onclick: () => showEvidence(d.doc_id, item) },
            d.title || d.doc_id), " ", el("span", { class: "muted" },
            [`${signed(d.score)} ${d.label}`, `weight ${Math.round(d.weight * 100)}%`, d.date].filter(Boolean).join(" · ")));
          return item;
        })));
      box.dataset.state = "done";
    } catch (error) {
      box.replaceChildren(el("p", { class: "error" }, error.message));
      box.dataset.state = "error";
    }
  }

  // ---- the passage viewer ------------------------------------------------------------------------------------

  async function openViewer(docId, span, label) {
    const viewer = $("viewer");
    viewer.hidden = false;
    $("viewer-title").textContent = "Loading…";
    $("viewer-meta").replaceChildren();
    $("viewer-span").textContent = "";
    $("viewer-text").replaceChildren();
    let doc;
    try {
      doc = await getDocument(docId);
    } catch (error) {
      $("viewer-title").textContent = `Could not load ${docId}: ${error.message}`;
      return;
    }
    $("viewer-title").textContent = doc.title || doc.id;
    const link = doc.source_url && safeURL(doc.source_url);
    $("viewer-meta").replaceChildren([docMeta(doc), doc.id].filter(Boolean).join(" · "),
      link ? " · " : "", link ? el("a", { href: link, target: "_blank", rel: "noopener noreferrer" }, "source") : "");
    const text = $("viewer-text");
    if (!span) {
      text.replaceChildren(doc.text);
      text.scrollTop = 0;
      return;
    }
    // Offsets count Unicode code points (Python's str), JavaScript strings count UTF-16 units: slice by code
    // point so a span after an emoji or other astral character is highlighted exactly.
    const chars = Array.from(doc.text);
    const mark = el("mark", { id: "highlight" }, chars.slice(span.start, span.end).join(""));
    text.replaceChildren(chars.slice(0, span.start).join(""), mark, chars.slice(span.end).join(""));
    $("viewer-span").textContent = `${label}: characters ${span.start}–${span.end}` +
      (span.page ? `, page ${span.page}` : "");
    mark.scrollIntoView({ block: "center" });
  }

  function showDocument(id) {
    return openViewer(id, null, "");
  }

  // ---- the conversation --------------------------------------------------------------------------------------

  function citeButton(citation, label = `Cited as [${citation.n}]`) {
    return el("button", { type: "button", class: "cite", "data-n": citation.n, title: citation.title,
                          onclick: () => openViewer(citation.doc_id, citation, label) }, `[${citation.n}]`);
  }

  // The checked answer's text with each [n] that names a citation turned into a button.
  function answerBody(answer) {
    const byNumber = new Map(answer.citations.map((c) => [c.n, c]));
    const parts = [];
    let at = 0;
    for (const match of answer.answer.matchAll(/\[(\d+)\]/g)) {
      const citation = byNumber.get(Number(match[1]));
      if (!citation) continue;
      parts.push(answer.answer.slice(at, match.index), citeButton(citation));
      at = match.index + match[0].length;
    }
    parts.push(answer.answer.slice(at));
    return el("p", { class: "answer-text" }, parts);
  }

  function renderAnswer(box, answer) {
    const children = [answerBody(answer)];
    const notes = [];
    if (answer.offline_provider) {
      notes.push(el("span", { class: "badge", title: `${answer.model}: sentences quoted from the sources` },
        "offline extractive provider, not a language model"));
    }
    notes.push(el("span", { class: "muted" }, answer.model));
    children.push(el("p", { class: "notes" }, notes));
    const warnings = [];
    if (answer.removed_citations.length) {
      warnings.push(`removed citations to no passage: ${answer.removed_citations.join(", ")}`);
    }
    if (answer.ungrounded_numbers.length) {
      warnings.push(`numbers found in no cited passage: ${answer.ungrounded_numbers.join(", ")}`);
    }
    if (warnings.length) children.push(el("p", { class: "warning" }, warnings.join("; ")));
    if (answer.citations.length) {
      children.push(el("h3", {}, "Sources"), el("ol", { class: "sources" }, answer.citations.map((c) =>
        el("li", {}, citeButton(c), " ", el("strong", {}, c.title), " ",
          el("span", { class: "muted" }, `“${shorten(c.quote, 160)}”`)))));
    }
    if (answer.abstained && answer.passages.length) {
      children.push(el("details", { class: "closest" },
        el("summary", {}, "Closest passages (not an answer: for you to check)"),
        el("ul", {}, answer.passages.slice(0, 3).map((p) => el("li", {},
          el("button", { type: "button", class: "passage", onclick: () => openViewer(p.doc_id, p, "Closest passage") },
            p.title), " ", el("span", { class: "muted" }, shorten(p.text, 160)))))));
    }
    box.replaceChildren(...children);
    box.dataset.state = answer.abstained ? "abstained" : "done";
  }

  async function ask(question) {
    const answerBox = el("div", { class: "answer", "data-state": "streaming" }, el("p", { class: "muted" }, "…"));
    const turn = el("li", { class: "turn" }, el("p", { class: "question" }, question), answerBox);
    $("turns").append(turn);
    turn.scrollIntoView({ block: "end" });
    try {
      const response = await fetch("v1/ask", {
        method: "POST",
        headers: headers({ "Content-Type": "application/json", Accept: "text/event-stream" }),
        body: JSON.stringify({ question, history: state.history.slice(-MAX_HISTORY_TURNS), stream: true }),
      });
      if (!response.ok) throw new Error(await errorText(response));
      let raw = "";
      for await (const event of serverEvents(response)) {
        if (event.event === "token") {
          // Checked text, a sentence at a time (the server holds back what the checks could still reject);
          // replaced by the rendered answer, with its citation buttons, at the end.
          raw += event.data;
          answerBox.replaceChildren(el("p", { class: "answer-text streaming" }, raw));
        } else if (event.event === "answer") {
          const answer = JSON.parse(event.data);
          renderAnswer(answerBox, answer);
          state.history.push({ role: "user", content: question }, { role: "assistant", content: answer.answer });
          return;
        } else if (event.event === "error") {
          const body = JSON.parse(event.data);
          throw new Error(body.error ? body.error.message : event.data);
        }
      }
      throw new Error("the answer stream ended early");
    } catch (error) {
      answerBox.replaceChildren(el("p", { class: "error" }, error.message));
      answerBox.dataset.state = "error";
    }
  }

  async function submit(event) {
    event.preventDefault();
    const question = $("question").value.trim();
    if (!question || state.busy) return;
    state.busy = true;
    $("ask").disabled = true;
    $("status").textContent = "Answering…";
    $("question").value = "";
    try {
      await ask(question);
    } catch (error) {
      $("status").textContent = error.message;
    } finally {
      state.busy = false;
      $("ask").disabled = false;
      if ($("status").textContent === "Answering…") $("status").textContent = "";
      $("question").focus();
    }
  }

  // ---- wiring ------------------------------------------------------------------------------------------------

  $("ask-form").addEventListener("submit", submit);
  $("add-form").addEventListener("submit", addDocument);
  $("sentiment-form").addEventListener("submit", showSentiment);
  $("question").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      $("ask-form").requestSubmit();
    }
  });
  $("new-chat").addEventListener("click", () => {
    state.history = [];
    $("turns").replaceChildren();
    $("question").focus();
  });
  $("viewer-close").addEventListener("click", () => { $("viewer").hidden = true; });
  const keyInput = $("api-key");
  keyInput.value = localStorage.getItem("rag.apiKey") || "";
  keyInput.addEventListener("change", () => {
    if (keyInput.value) localStorage.setItem("rag.apiKey", keyInput.value);
    else localStorage.removeItem("rag.apiKey");
    loadDocuments();
  });
  loadDocuments();
})();
