// Shared by accountd's pages: calling the public API and showing its answers.
"use strict";
window.accountd = {
  // Calls the API; resolves to {status, ok, body} whatever the status (body: parsed JSON or null).
  async api(method, path, body) {
    const options = { method, headers: { accept: "application/json" }, credentials: "omit" };
    if (body !== undefined) {
      options.headers["content-type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, options);
    } catch (e) {
      return { status: 0, ok: false, body: { detail: "The service could not be reached. Try again." } };
    }
    const text = await response.text();
    let parsed = null;
    try { parsed = text ? JSON.parse(text) : null; } catch (e) { parsed = null; }
    return { status: response.status, ok: response.ok, body: parsed };
  },
  // Shows text in the element with id `id` (kind "error" or "ok"); an empty text hides it.
  show(id, text, kind) {
    const element = document.getElementById(id);
    element.textContent = text || "";
    element.className = "message " + (kind || "");
    element.hidden = !text;
  },
  // The sentence to show for a failed call: the problem's detail, with the retry delay if any.
  problem(answer) {
    const body = answer.body || {};
    return body.detail || body.title || "Something went wrong (" + answer.status + "). Try again.";
  },
};
