// The reset page: GET /v1/password-resets/{token}, then …/verification-codes, then …/completion
// (SPEC §3). The token comes from the address the email linked to and only goes back to the API.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const $ = (id) => document.getElementById(id);
  const token = new URLSearchParams(window.location.search).get("token") || "";
  const base = "/v1/password-resets/" + encodeURIComponent(token);
  const labels = { sms: "Text message to ", email: "Email to " };
  let needsCode = true;

  function invalidLink() {
    $("intro").hidden = true;
    $("method-form").hidden = true;
    $("reset-form").hidden = true;
    accountd.show("message", "This reset link is no longer valid: it was used, replaced or has " +
      "expired. Ask for a new one from the sign-in page.", "error");
  }

  function failed(answer) {
    if (answer.status === 410) return invalidLink();
    accountd.show("message", accountd.problem(answer), "error");
  }

  async function load() {
    if (!token) return invalidLink();
    const answer = await accountd.api("GET", base);
    if (!answer.ok) return failed(answer);
    const methods = answer.body.verification_methods;
    if (methods.length === 0) {
      // No verified recovery channel: the API takes the reset without a code.
      needsCode = false;
      $("code-field").hidden = true;
      $("intro").textContent = "Choose a new password.";
      $("reset-form").hidden = false;
      return;
    }
    const list = $("methods");
    methods.forEach((m, i) => {
      const label = document.createElement("label");
      const input = document.createElement("input");
      input.type = "radio";
      input.name = "method";
      input.value = m.method;
      input.checked = i === 0;
      label.append(input, document.createTextNode((labels[m.method] || m.method + " ") + m.masked_target));
      list.append(label);
    });
    $("method-form").hidden = false;
  }

  $("method-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const method = document.querySelector("input[name=method]:checked").value;
    $("send-code").disabled = true;
    const answer = await accountd.api("POST", base + "/verification-codes", { method });
    $("send-code").disabled = false;
    if (!answer.ok) return failed(answer);
    accountd.show("message", "");
    $("send-code").textContent = "Send a new code";
    $("code-hint").textContent = "We sent a 6-digit code to " + answer.body.masked_target +
      ". It expires in 5 minutes.";
    $("reset-form").hidden = false;
    $("code").focus();
  });

  $("reset-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {
      new_password: $("new-password").value,
      new_password_confirmation: $("new-password-confirmation").value,
    };
    if (needsCode) body.code = $("code").value.trim();
    $("complete").disabled = true;
    const answer = await accountd.api("POST", base + "/completion", body);
    $("complete").disabled = false;
    if (!answer.ok) return failed(answer);
    accountd.show("message", "");
    $("intro").hidden = true;
    $("method-form").hidden = true;
    $("reset-form").hidden = true;
    $("done").hidden = false;
  });

  load();
});
