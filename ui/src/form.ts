// The form page, drawn from the study definition: one field per item, its unit, its answers,
// its missing-data codes, errors and warnings beside it, the reason prompt and each field's
// history. Every rule is checked in Rust (crates/core/src/check.rs); this page only shows
// what the check said, so a rule lives in exactly one place.
import { api } from "./api";
import type { Entry, FindingDto, FormDto, FormPage, ItemDto, SaveReply } from "./bindings";
import { byId, h } from "./dom";
import { statusWord, t, tx } from "./i18n";
import { renderOversight } from "./oversight";

export interface FormContext {
  form: FormDto;
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

const RADIO_LIMIT = 6;

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

  const saved = (): Map<string, string> => new Map(page.values.map((v) => [v.item, shown(v.text)]));
  const items = form.items;
  const byItem = new Map(items.map((i) => [i.id, i]));

  // ---- reading and writing one field ----
  function missingSelect(item: ItemDto): HTMLSelectElement | null {
    return byId<HTMLSelectElement>(`mc-${item.id}`);
  }

  function getText(item: ItemDto): string {
    const mc = missingSelect(item);
    if (mc && mc.value) return `@${mc.value}`;
    if (item.kind === "choice") {
      if (item.codes.length <= RADIO_LIMIT) {
        const checked = document.querySelector<HTMLInputElement>(
          `input[name="f-${item.id}"]:checked`,
        );
        return checked ? checked.value : "";
      }
      return byId<HTMLSelectElement>(`f-${item.id}`)?.value ?? "";
    }
    if (item.kind === "multi_choice") {
      return Array.from(
        document.querySelectorAll<HTMLInputElement>(`input[name="f-${item.id}"]:checked`),
      )
        .map((c) => c.value)
        .join(",");
    }
    return byId<HTMLInputElement>(`f-${item.id}`)?.value ?? "";
  }

  function setText(item: ItemDto, text: string): void {
    const mc = missingSelect(item);
    const missing = text.startsWith("@") ? text.slice(1) : "";
    if (mc) mc.value = missing;
    const value = missing ? "" : text;
    if (item.kind === "choice" && item.codes.length <= RADIO_LIMIT) {
      for (const r of document.querySelectorAll<HTMLInputElement>(`input[name="f-${item.id}"]`)) {
        r.checked = r.value === value;
        r.disabled = !!missing || !ctx.mayEnter;
      }
    } else if (item.kind === "multi_choice") {
      const chosen = new Set(value.split(",").filter(Boolean));
      for (const c of document.querySelectorAll<HTMLInputElement>(`input[name="f-${item.id}"]`)) {
        c.checked = chosen.has(c.value);
        c.disabled = !!missing || !ctx.mayEnter;
      }
    } else {
      const el = byId<HTMLInputElement | HTMLSelectElement>(`f-${item.id}`);
      if (el) {
        el.value = value;
        el.disabled = !!missing || !ctx.mayEnter;
      }
    }
  }

  function changedEntries(): Entry[] {
    const before = saved();
    const out: Entry[] = [];
    for (const item of items) {
      if (item.derived) continue;
      const row = byId(`row-${item.id}`);
      const now = getText(item);
      const was = before.get(item.id) ?? "";
      if (row?.hidden && !was) continue;
      if (norm(now) !== norm(was)) out.push({ item: item.id, text: now });
    }
    return out;
  }

  // Which conditional questions are asked is Rust's answer for the texts on screen; a reply
  // that arrives after a newer question was sent is dropped.
  let visibilityAsked = 0;
  async function refreshVisibility(): Promise<void> {
    if (!items.some((i) => i.conditional)) return;
    const asked = ++visibilityAsked;
    const entries = items
      .filter((i) => !i.derived)
      .map((i) => ({ item: i.id, text: getText(i) }))
      .filter((e) => e.text !== "");
    let unasked: Set<string>;
    try {
      unasked = new Set(await api.unaskedItems(key, entries));
    } catch {
      return; // the rows stay as they were; the next keystroke asks again
    }
    if (asked !== visibilityAsked) return;
    for (const item of items) {
      const row = byId(`row-${item.id}`);
      if (row && item.conditional) row.hidden = unasked.has(item.id);
    }
  }

  function message(itemId: string, kind: "error" | "warning" | "", text: string): void {
    const m = byId(`m-${itemId}`);
    if (!m) return;
    m.textContent = text;
    m.className = `msg ${kind}`;
    byId(`row-${itemId}`)?.classList.toggle("has-error", kind === "error");
  }

  function clearMessages(): void {
    for (const item of items) message(item.id, "", "");
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

  // ---- drawing ----
  function control(item: ItemDto): HTMLElement {
    const id = `f-${item.id}`;
    const disabled = !ctx.mayEnter;
    if (item.derived) {
      return h("span", { class: "derived", id }, `(${t("calculated")})`);
    }
    if (item.kind === "choice" && item.codes.length <= RADIO_LIMIT) {
      return h(
        "div",
        { class: "choices", role: "radiogroup", "aria-labelledby": `l-${item.id}` },
        ...item.codes.map((c) =>
          h(
            "label",
            { class: "choice" },
            h("input", { type: "radio", name: id, id: `${id}-${c.code}`, value: c.code, disabled }),
            tx(c.label),
          ),
        ),
      );
    }
    if (item.kind === "choice") {
      return h(
        "select",
        { id, disabled },
        h("option", { value: "" }, "—"),
        ...item.codes.map((c) => h("option", { value: c.code }, tx(c.label))),
      );
    }
    if (item.kind === "multi_choice") {
      return h(
        "div",
        { class: "choices" },
        ...item.codes.map((c) =>
          h(
            "label",
            { class: "choice" },
            h("input", {
              type: "checkbox",
              name: id,
              id: `${id}-${c.code}`,
              value: c.code,
              disabled,
            }),
            tx(c.label),
          ),
        ),
      );
    }
    const placeholder =
      item.kind === "date" ? t("dateHint") : item.kind === "date_time" ? t("dateTimeHint") : "";
    const numeric = item.kind === "integer" || item.kind === "decimal";
    return h("input", {
      id,
      type: "text",
      class: numeric ? "num" : item.kind === "text" ? "wide" : "",
      inputmode: numeric ? "decimal" : undefined,
      placeholder: placeholder || undefined,
      maxlength: item.kind === "text" ? item.max_length : undefined,
      autocomplete: "off",
      disabled,
    });
  }

  function fieldRow(item: ItemDto): HTMLElement {
    const missing = item.missing.length
      ? h(
          "select",
          {
            id: `mc-${item.id}`,
            class: "missing",
            "aria-label": `${tx(item.label)}: ${t("valueEntry")}`,
            disabled: !ctx.mayEnter,
          },
          h("option", { value: "" }, t("valueEntry")),
          ...item.missing.map((m) => h("option", { value: m }, ctx.missingLabels.get(m) ?? m)),
        )
      : null;
    const range = item.hard ? `${item.hard.min}–${item.hard.max}` : "";
    const hasHistory = page.values.some((v) => v.item === item.id);
    return h(
      "div",
      // A conditional question starts hidden until Rust says it is asked.
      { class: "field", id: `row-${item.id}`, hidden: item.conditional },
      h(
        "label",
        { id: `l-${item.id}`, for: `f-${item.id}`, title: tx(item.help) || undefined },
        tx(item.label),
        item.required ? h("span", { class: "req", title: t("required") }, " *") : null,
      ),
      h(
        "div",
        { class: "control" },
        control(item),
        item.unit ? h("span", { class: "unit" }, item.unit) : null,
        range ? h("span", { class: "range" }, `[${range}]`) : null,
        missing,
        hasHistory
          ? h(
              "button",
              {
                type: "button",
                class: "link",
                id: `h-${item.id}`,
                onclick: () => void showHistory(item),
              },
              t("history"),
            )
          : null,
      ),
      h("div", { class: "msg", id: `m-${item.id}`, role: "status" }),
    );
  }

  async function showHistory(item: ItemDto): Promise<void> {
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
            ...rows.map((r) =>
              h(
                "tr",
                { class: "history-row" },
                h("td", {}, `${new Date(r.utc).toLocaleString()} (UTC${r.offset})`),
                h("td", {}, `${r.user} (${r.role})`),
                h("td", {}, r.old ?? "∅"),
                h("td", {}, `${r.new ?? "∅"}${r.warning ? " ⚠" : ""}`),
                h("td", {}, r.reason ?? ""),
              ),
            ),
          ),
        ),
        close,
      ),
    );
    const done = () => {
      dialog.remove();
      byId(`h-${item.id}`)?.focus();
    };
    close.addEventListener("click", done);
    dialog.addEventListener("keydown", (e) => {
      if ((e as KeyboardEvent).key === "Escape") done();
    });
    document.body.append(dialog);
    close.focus();
  }

  function askReason(reply: Extract<SaveReply, { kind: "reason" }>, entries: Entry[]): void {
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
            const label = tx(byItem.get(i.item)?.label);
            return h("li", {}, `${label} (${i.item}): ${i.old} → ${now || "∅"}`);
          }),
        ),
        input,
        err,
        h("div", { class: "buttons" }, ok, cancel),
      ),
    );
    const finish = () => dialog.remove();
    ok.addEventListener("click", () => {
      const reason = input.value.trim();
      if (!reason) {
        err.textContent = t("reasonNeeded");
        input.focus();
        return;
      }
      finish();
      void save(reason, lastConfirm);
    });
    cancel.addEventListener("click", () => {
      finish();
      byId("save")?.focus();
    });
    dialog.addEventListener("keydown", (e) => {
      if ((e as KeyboardEvent).key === "Escape") cancel.click();
    });
    document.body.append(dialog);
    input.focus();
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
        if (first) byId(`f-${first.item}`)?.focus();
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
        askReason(reply, entries);
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
    for (const item of items) if (!item.derived) setText(item, before.get(item.id) ?? "");
    for (const v of page.values) {
      if (v.warning) message(v.item, "warning", `${t("warningKept")}: ${tx(v.warning)}`);
    }
    for (const d of page.derived) {
      const el = byId(`f-${d.item}`);
      if (el) el.textContent = d.text;
    }
    void refreshVisibility();
  }

  function draw(): void {
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
          ...items.filter((i) => !s.id || i.section === s.id).map(fieldRow),
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
          `${t("missingRequired")} ${page.missing.map((m) => tx(byItem.get(m)?.label)).join(", ")}`,
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
      `${subject} · ${tx(form.name)} · ${key}`,
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
    body.addEventListener("change", (e) => {
      const target = e.target as HTMLElement;
      if (target.classList.contains("missing")) {
        const itemId = target.id.slice(3);
        const item = byItem.get(itemId);
        if (item) setText(item, getText(item));
      }
      void refreshVisibility();
      scheduleDraft();
    });
    body.addEventListener("keydown", (e) => {
      const ke = e as KeyboardEvent;
      const target = ke.target as HTMLElement;
      if (ke.key === "Enter" && target instanceof HTMLInputElement && !ke.ctrlKey) {
        // Enter moves on to the next field, as on paper; Ctrl+Enter or Ctrl+S saves.
        ke.preventDefault();
        const fields = Array.from(
          body.querySelectorAll<HTMLElement>(
            "input:not([type=radio]):not([disabled]), select:not([disabled]), input[type=radio]:checked, .choices",
          ),
        ).filter((el) => !el.closest("[hidden]"));
        const i = fields.indexOf(target);
        const next = fields[i + 1];
        (next ?? byId("save"))?.focus();
      }
    });
  }

  draw();
  if (page.draft && page.draft.length && ctx.mayEnter) {
    for (const e of page.draft) {
      const item = byItem.get(e.item);
      if (item) setText(item, e.text);
    }
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
  const first = form.items.find((i) => !i.derived);
  if (first)
    document.querySelector<HTMLElement>(`#f-${first.id}, input[name="f-${first.id}"]`)?.focus();
}
