// Login form: POST /api/login sets an HttpOnly session cookie, then the dashboard loads.
"use strict";

const form = document.getElementById("login-form");
const error = document.getElementById("login-error");

async function explainState() {
  const response = await fetch("api/auth", { cache: "no-store" });
  if (!response.ok) return;
  const who = await response.json();
  if (who.user) location.replace("./");
  else if (!who.users_exist) error.textContent = "No users yet: on the edge node run `edge-node user add NAME --role engineer`.";
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  error.textContent = "";
  const body = { username: form.username.value.trim(), password: form.password.value };
  const response = await fetch("api/login", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  if (response.ok) { location.replace("./"); return; }
  const detail = (await response.json().catch(() => ({}))).detail;
  error.textContent = typeof detail === "string" ? detail : `Login failed (HTTP ${response.status})`;
  form.password.value = "";
  form.password.focus();
});

explainState();
