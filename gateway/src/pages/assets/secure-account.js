// The "this wasn't me" page: POST /v1/account-protection/{token} (SPEC §3), only when the person
// confirms with the button, never on load (mail scanners open links). The token comes from the
// address the security notice linked to and only goes back to the API.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const $ = (id) => document.getElementById(id);
  const token = new URLSearchParams(window.location.search).get("token") || "";
  const names = {
    contact_mobile: "contact mobile",
    contact_email: "contact email",
    recovery_mobile: "recovery mobile",
    recovery_email: "recovery email",
    login_email: "login email",
    password: "password",
    password_reset: "password reset",
  };
  // What the page says when nothing could be undone, per change kind (default: the generic one).
  const unrevertable = {
    sign_in: "The sign-in from the new device ended with every other session; the lock and " +
      "the password reset protect the account.",
  };

  function invalidLink() {
    $("intro").hidden = true;
    $("secure-form").hidden = true;
    accountd.show("message", "This link is no longer valid: it was used already, belongs to a " +
      "change that is no longer current or has expired. If you still think someone else uses " +
      "your account, reset your password from the sign-in page.", "error");
  }

  if (!token) return invalidLink();
  $("secure-form").hidden = false;

  $("secure-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    $("secure").disabled = true;
    accountd.show("message", "");
    const answer = await accountd.api("POST",
      "/v1/account-protection/" + encodeURIComponent(token));
    if (!answer.ok) {
      $("secure").disabled = false;
      if (answer.status === 410) return invalidLink();
      return accountd.show("message", accountd.problem(answer), "error");
    }
    const what = names[answer.body.change] || "change";
    $("done-revert").textContent = answer.body.reverted
      ? "The " + what + " change was undone: the previous value is back."
      : unrevertable[answer.body.change] ||
        "The " + what + " change could not be undone here; the lock and the password reset " +
        "protect the account.";
    $("intro").hidden = true;
    $("secure-form").hidden = true;
    $("done").hidden = false;
  });
});
