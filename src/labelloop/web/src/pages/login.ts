import { api, ApiError, type AuthUser } from "../api";
import { session, go, type PageContext } from "../app";
import { h } from "../dom";

export function loginPage({ root, query }: PageContext): void {
  const error = h("div", { class: "form-error", role: "alert" });
  const username = h("input", { name: "username", autocomplete: "username", required: true, autofocus: true, placeholder: "admin" });
  const password = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
  const submit = h("button", { class: "btn primary wide", type: "submit" }, "Log in");
  const form = h(
    "form",
    {
      class: "login-card card",
      onsubmit: async (e: Event) => {
        e.preventDefault();
        submit.disabled = true;
        error.textContent = "";
        try {
          const res = await api.post<AuthUser>("/api/auth/login", { username: username.value.trim(), password: password.value });
          session.user = res.user;
          go(`#${query.get("next") || "/"}`);
        } catch (err) {
          error.textContent = err instanceof ApiError ? err.message : String(err);
          submit.disabled = false;
        }
      },
    },
    h("div", { class: "login-brand" }, h("span", { class: "logo big" }, "L"), h("div", null, h("h1", null, "labelloop"), h("p", { class: "muted" }, "Annotate a few. Train. Let the model do the rest."))),
    h("label", null, "User name", username),
    h("label", null, "Password", password),
    error,
    submit,
    h("p", { class: "muted small" }, "First run? The admin password was printed once in the server console (or set with LABELLOOP_ADMIN_PASSWORD)."),
  );
  root.append(h("div", { class: "login-wrap" }, form));
}
