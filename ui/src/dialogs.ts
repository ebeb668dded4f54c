// The form page's two dialogs: an item's history (every value it held, who, when, why) and the
// reason asked when saved values change. Each closes with Escape and gives the focus back.
import { api } from "./api";
import type { Entry, ItemDto, SaveReply } from "./bindings";
import { h } from "./dom";
import { t, tx } from "./i18n";

/** Every value an item held, newest last; the focus returns to `back` when closed. */
export async function showHistory(
  subject: string,
  key: string,
  item: ItemDto,
  back: HTMLElement | null,
): Promise<void> {
  const rows = await api.history(subject, key, item.id);
  const close = h("button", { type: "button", id: "history-close" }, t("close"));
  const dialog = h(
    "div",
    { class: "modal", id: "history", role: "dialog", "aria-modal": "true" },
    h(
      "div",
      { class: "modal-body" },
      h("h3", {}, `${t("historyOf")} ${tx(item.label)} (${item.id})`),
      h(
        "table",
        { class: "grid" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ...[t("when"), t("who"), t("oldValue"), t("newValue"), t("why")].map((c) =>
              h("th", {}, c),
            ),
          ),
        ),
        h(
          "tbody",
          {},
          ...rows.map(({ change: c, old_shown, new_shown, source_shown }) =>
            h(
              "tr",
              { class: "history-row" },
              h("td", {}, `${new Date(c.utc).toLocaleString()} (UTC${c.local_offset})`),
              h("td", {}, `${c.user} (${c.role})`),
              h("td", {}, old_shown ?? "∅"),
              h("td", {}, `${new_shown ?? "∅"}${c.warning !== null ? " ⚠" : ""}`),
              h(
                "td",
                {},
                c.reason ?? "",
                source_shown !== null
                  ? h("div", { class: "provenance" }, `${t("fromLab")}: ${source_shown}`)
                  : "",
              ),
            ),
          ),
        ),
      ),
      close,
    ),
  );
  const done = () => {
    dialog.remove();
    back?.focus();
  };
  close.addEventListener("click", done);
  dialog.addEventListener("keydown", (e) => {
    if ((e as KeyboardEvent).key === "Escape") done();
  });
  document.body.append(dialog);
  close.focus();
}

/** Asks why saved values change, listing each old → new; `onReason` gets the reason given,
 * and cancelling returns the focus to `back`. */
export function askReason(
  reply: Extract<SaveReply, { kind: "reason" }>,
  entries: Entry[],
  label: (item: string) => string,
  onReason: (reason: string) => void,
  back: HTMLElement | null,
): void {
  const input = h("textarea", { id: "reason-input", rows: 3, "aria-label": t("reasonTitle") });
  const err = h("div", { class: "msg error", id: "reason-error" });
  const ok = h("button", { type: "button", id: "reason-save", class: "primary" }, t("save"));
  const cancel = h("button", { type: "button", id: "reason-cancel" }, t("cancel"));
  const dialog = h(
    "div",
    { class: "modal", id: "reason-dialog", role: "dialog", "aria-modal": "true" },
    h(
      "div",
      { class: "modal-body" },
      h("h3", {}, t("reasonTitle")),
      h("p", {}, t("reasonText")),
      h(
        "ul",
        {},
        ...reply.items.map((i) => {
          const now = entries.find((e) => e.item === i.item)?.text ?? "";
          return h("li", {}, `${label(i.item)} (${i.item}): ${i.old} → ${now || "∅"}`);
        }),
      ),
      input,
      err,
      h("div", { class: "buttons" }, ok, cancel),
    ),
  );
  ok.addEventListener("click", () => {
    const reason = input.value.trim();
    if (!reason) {
      err.textContent = t("reasonNeeded");
      input.focus();
      return;
    }
    dialog.remove();
    onReason(reason);
  });
  cancel.addEventListener("click", () => {
    dialog.remove();
    back?.focus();
  });
  dialog.addEventListener("keydown", (e) => {
    if ((e as KeyboardEvent).key === "Escape") cancel.click();
  });
  document.body.append(dialog);
  input.focus();
}
