// The form page, drawn from the study definition: one Field per item (field.ts), errors and
// warnings beside each, the reason prompt and each field's history (dialogs.ts), drafts, and
// the keyboard (Enter moves on, Ctrl+S saves). Every rule is checked in Rust
// (crates/core/src/check.rs; which questions are asked: App::unasked_items); this page only
// shows what Rust said, so a rule lives in exactly one place.
import { api } from "./api";
import type { Entry, FindingDto, FormDto, FormPage } from "./bindings";
import { askReason, showHistory } from "./dialogs";
import { byId, h } from "./dom";
import { Field, type MessageKind } from "./field";
import { statusWord, t, tx } from "./i18n";
import { renderOversight } from "./oversight";

export interface FormContext {
  form: FormDto;
  /** The study definition version this instance is entered under. */
  version: string;
  subject: string;
  key: string;
  mayEnter: boolean;
  missingLabels: Map<string, string>;
  onBack: () => void;
  printBlank: () => HTMLElement;
  frame: (title: string, ...body: HTMLElement[]) => void;
  /** The page already loaded (the next daily log, prefilled), instead of fetching it. */
  initial?: FormPage;
  /** Shown under the form (the daily log's trend charts). */
  below?: () => Promise<HTMLElement | null>;
}

/** Saved text as the field shows it: date-times with a space instead of the `T`. */
function shown(text: string): string {
  return /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/.test(text) ? text.replace("T", " ") : text;
}

function norm(text: string): string {
  return text.trim().replace("T", " ");
}

export async function renderForm(ctx: FormContext): Promise<void> {
  const { form, subject, key } = ctx;
  let page: FormPage = ctx.initial ?? (await api.form(subject, key));
  let below = ctx.below ? await ctx.below() : null;
  let lastConfirm = false;
  let draftTimer: number | undefined;
  /** The fields on screen, by item id; drawn anew by draw(). */
  let fields = new Map<string, Field>();

  const saved = (): Map<string, string> => new Map(page.values.map((v) => [v.item, shown(v.text)]));
  const label = (item: string) => tx(form.items.find((i) => i.id === item)?.label);

  function changedEntries(): Entry[] {
    const before = saved();
    const out: Entry[] = [];
    for (const f of fields.values()) {
      if (f.item.derived) continue;
      const now = f.text();
      const was = before.get(f.item.id) ?? "";
      if (f.hidden && !was) continue;
      if (norm(now) !== norm(was)) out.push({ item: f.item.id, text: now });
    }
    return out;
  }

  // Which conditional questions are asked is Rust's answer for the texts on screen; a reply
  // that arrives after a newer question was sent is dropped.
  let visibilityAsked = 0;
  async function refreshVisibility(): Promise<void> {
    if (!form.items.some((i) => i.conditional)) return;
    const asked = ++visibilityAsked;
    const entries = [...fields.values()]
      .filter((f) => !f.item.derived)
      .map((f) => ({ item: f.item.id, text: f.text() }))
      .filter((e) => e.text !== "");
    let unasked: Set<string>;
    try {
      unasked = new Set(await api.unaskedItems(key, entries));
    } catch {
      return; // the rows stay as they were; the next keystroke asks again
    }
    if (asked !== visibilityAsked) return;
    for (const f of fields.values()) if (f.item.conditional) f.hidden = unasked.has(f.item.id);
  }

  function message(itemId: string, kind: MessageKind, text: string): void {
    fields.get(itemId)?.show(kind, text);
  }

  function clearMessages(): void {
    for (const f of fields.values()) f.show("", "");
    byId("confirm-bar")?.remove();
  }

  function showFindings(findings: FindingDto[], kind: "error" | "warning"): void {
    const byField = new Map<string, string[]>();
    for (const f of findings) {
      const list = byField.get(f.item) ?? [];
      list.push(tx(f.message));
      byField.set(f.item, list);
    }
    for (const [item, texts] of byField) message(item, kind, texts.join(" · "));
  }

  function notice(text: string, kind = "info"): void {
    const n = byId("form-notice");
    if (n) {
      n.textContent = text;
      n.className = `notice ${kind}`;
    }
  }

  async function save(reason: string | null, confirm: boolean): Promise<void> {
    const entries = changedEntries();
    if (entries.length === 0) {
      notice(t("nothingChanged"));
      return;
    }
    lastConfirm = confirm;
    const reply = await api.saveForm(subject, key, entries, reason, confirm);
    clearMessages();
    switch (reply.kind) {
      case "saved":
        page = reply.page;
        // The charts under the daily log follow what was just saved.
        if (ctx.below) below = await ctx.below();
        draw();
        notice(`${t("saved")} (${reply.changes})`, "ok");
        break;
      case "refused": {
        showFindings(reply.errors, "error");
        notice(t("fixErrors"), "error");
        const first = reply.errors[0];
        if (first) fields.get(first.item)?.focus();
        break;
      }
      case "confirm": {
        showFindings(reply.warnings, "warning");
        const bar = h(
          "div",
          { class: "confirm-bar", id: "confirm-bar", role: "alert" },
          h("strong", {}, t("confirmTitle")),
          h(
            "button",
            {
              type: "button",
              id: "confirm-save",
              class: "primary",
              onclick: () => void save(reason, true),
            },
            t("confirmSave"),
          ),
          h(
            "button",
            { type: "button", id: "confirm-cancel", onclick: () => clearMessages() },
            t("cancel"),
          ),
        );
        byId("form-actions")?.before(bar);
        byId("confirm-save")?.focus();
        break;
      }
      case "reason":
        askReason(reply, entries, label, (given) => void save(given, lastConfirm), byId("save"));
        break;
    }
  }

  function scheduleDraft(): void {
    if (!ctx.mayEnter) return;
    window.clearTimeout(draftTimer);
    draftTimer = window.setTimeout(() => {
      const entries = changedEntries();
      void (entries.length ? api.saveDraft(subject, key, entries) : api.discardDraft(subject, key));
    }, 700);
  }

  function fill(): void {
    const before = saved();
    for (const f of fields.values()) if (!f.item.derived) f.setText(before.get(f.item.id) ?? "");
    for (const v of page.values) {
      if (v.warning) message(v.item, "warning", `${t("warningKept")}: ${tx(v.warning)}`);
    }
    for (const d of page.derived) fields.get(d.item)?.setDerived(d.text);
    void refreshVisibility();
  }

  function draw(): void {
    fields = new Map(
      form.items.map((item) => {
        const field: Field = new Field(item, {
          mayEnter: ctx.mayEnter,
          missingLabels: ctx.missingLabels,
          hasHistory: page.values.some((v) => v.item === item.id),
          onHistory: () => void showHistory(subject, key, item, field.historyLink),
        });
        return [item.id, field];
      }),
    );
    const sections = form.sections.length ? form.sections : [{ id: "", label: form.name }];
    const body = h(
      "form",
      {
        id: "crf-form",
        class: "crf",
        autocomplete: "off",
        onsubmit: (e: Event) => e.preventDefault(),
      },
      ...sections.map((s) =>
        h(
          "fieldset",
          {},
          h("legend", {}, tx(s.label)),
          ...[...fields.values()].filter((f) => !s.id || f.item.section === s.id).map((f) => f.row),
        ),
      ),
    );
    const status = h(
      "span",
      { class: `status s-${page.status}`, id: "form-status" },
      statusWord(page.status),
    );
    const missingList = page.missing.length
      ? h(
          "p",
          { class: "missing-list" },
          `${t("missingRequired")} ${page.missing.map(label).join(", ")}`,
        )
      : null;
    const actions = h(
      "div",
      { class: "actions", id: "form-actions" },
      ctx.mayEnter
        ? h(
            "button",
            { type: "button", id: "save", class: "primary", onclick: () => void save(null, false) },
            `${t("save")} (Ctrl+S)`,
          )
        : h("p", {}, t("mayNotEnter")),
      h("button", { type: "button", id: "back", onclick: () => ctx.onBack() }, t("back")),
      ctx.printBlank(),
    );
    ctx.frame(
      `${subject} · ${tx(form.name)} · ${key} · ${t("definitionVersion")} ${ctx.version}`,
      h(
        "div",
        { class: "form-head" },
        status,
        h("div", { id: "form-notice", class: "notice", role: "status" }),
      ),
      missingList ?? h("span"),
      body,
      actions,
      below ?? h("span"),
      h("section", { id: "oversight", class: "oversight" }),
    );
    fill();
    void renderOversight({ subject, key, form, reload: () => void renderForm(ctx) });
    body.addEventListener("input", () => {
      void refreshVisibility();
      scheduleDraft();
    });
    body.addEventListener("change", () => {
      void refreshVisibility();
      scheduleDraft();
    });
    body.addEventListener("keydown", (e) => {
      const ke = e as KeyboardEvent;
      const target = ke.target as HTMLElement;
      if (ke.key === "Enter" && target instanceof HTMLInputElement && !ke.ctrlKey) {
        // Enter moves on to the next field, as on paper; Ctrl+Enter or Ctrl+S saves.
        ke.preventDefault();
        const order = Array.from(
          body.querySelectorAll<HTMLElement>(
            "input:not([type=radio]):not([disabled]), select:not([disabled]), input[type=radio]:checked, .choices",
          ),
        ).filter((el) => !el.closest("[hidden]"));
        const i = order.indexOf(target);
        const next = order[i + 1];
        (next ?? byId("save"))?.focus();
      }
    });
  }

  draw();
  if (page.draft && page.draft.length && ctx.mayEnter) {
    for (const e of page.draft) fields.get(e.item)?.setText(e.text);
    void refreshVisibility();
    const discard = h(
      "button",
      { type: "button", id: "discard-draft", class: "link" },
      t("discard"),
    );
    discard.addEventListener("click", () => {
      void api.discardDraft(subject, key).then(() => {
        page.draft = null;
        draw();
      });
    });
    const n = byId("form-notice");
    if (page.prefilled_from)
      n?.replaceChildren(
        `${t("prefilledFrom")} ${page.prefilled_from}: ${t("prefilledHint")}`,
        " ",
        discard,
      );
    else n?.replaceChildren(t("draftRestored"), " ", discard);
  }
  document.onkeydown = (e: KeyboardEvent) => {
    if (e.ctrlKey && (e.key === "s" || e.key === "Enter") && byId("crf-form")) {
      e.preventDefault();
      void save(null, false);
    }
  };
  [...fields.values()].find((f) => !f.item.derived)?.focus();
}
