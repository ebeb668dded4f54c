// One field of a form: its row (label, control, unit, range, missing-data code, history link,
// message line) and the text it holds. The form page keeps one Field per item and asks it for
// its text, instead of reading the state back from the page by element ids. Ids and names stay
// on the elements for labels, keyboard order and the desktop tests.
import type { ItemDto } from "./bindings";
import { h } from "./dom";
import { t, tx } from "./i18n";

/** Up to this many answers are radio buttons; more are a drop-down list. */
const RADIO_LIMIT = 6;

export type MessageKind = "error" | "warning" | "";

export interface FieldOptions {
  mayEnter: boolean;
  missingLabels: Map<string, string>;
  /** The item has saved values: offer its history. */
  hasHistory: boolean;
  onHistory: () => void;
}

export class Field {
  readonly row: HTMLElement;
  /** The one text input or drop-down, if the item is not radio buttons or check boxes. */
  private readonly single: HTMLInputElement | HTMLSelectElement | null = null;
  /** Radio buttons or check boxes, one per answer. */
  private readonly boxes: HTMLInputElement[] = [];
  private readonly missing: HTMLSelectElement | null;
  private readonly msg: HTMLElement;
  private readonly derivedText: HTMLElement | null = null;
  readonly historyLink: HTMLElement | null;

  constructor(
    readonly item: ItemDto,
    private readonly opts: FieldOptions,
  ) {
    const id = `f-${item.id}`;
    const disabled = !opts.mayEnter;
    let control: HTMLElement;
    if (item.derived) {
      control = this.derivedText = h("span", { class: "derived", id }, `(${t("calculated")})`);
    } else if (item.kind === "choice" && item.codes.length <= RADIO_LIMIT) {
      this.boxes = item.codes.map((c) =>
        h("input", { type: "radio", name: id, id: `${id}-${c.code}`, value: c.code, disabled }),
      );
      control = h(
        "div",
        { class: "choices", role: "radiogroup", "aria-labelledby": `l-${item.id}` },
        ...item.codes.map((c, n) => h("label", { class: "choice" }, this.boxes[n], tx(c.label))),
      );
    } else if (item.kind === "choice") {
      control = this.single = h(
        "select",
        { id, disabled },
        h("option", { value: "" }, "—"),
        ...item.codes.map((c) => h("option", { value: c.code }, tx(c.label))),
      );
    } else if (item.kind === "multi_choice") {
      this.boxes = item.codes.map((c) =>
        h("input", { type: "checkbox", name: id, id: `${id}-${c.code}`, value: c.code, disabled }),
      );
      control = h(
        "div",
        { class: "choices" },
        ...item.codes.map((c, n) => h("label", { class: "choice" }, this.boxes[n], tx(c.label))),
      );
    } else {
      const placeholder =
        item.kind === "date" ? t("dateHint") : item.kind === "date_time" ? t("dateTimeHint") : "";
      const numeric = item.kind === "integer" || item.kind === "decimal";
      control = this.single = h("input", {
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
    this.missing = item.missing.length
      ? h(
          "select",
          {
            id: `mc-${item.id}`,
            class: "missing",
            "aria-label": `${tx(item.label)}: ${t("valueEntry")}`,
            disabled,
          },
          h("option", { value: "" }, t("valueEntry")),
          ...item.missing.map((m) => h("option", { value: m }, opts.missingLabels.get(m) ?? m)),
        )
      : null;
    // Choosing a missing-data code empties and disables the answer; choosing "value" again
    // gives it back.
    this.missing?.addEventListener("change", () => this.setText(this.text()));
    this.historyLink = opts.hasHistory
      ? h(
          "button",
          { type: "button", class: "link", id: `h-${item.id}`, onclick: () => opts.onHistory() },
          t("history"),
        )
      : null;
    this.msg = h("div", { class: "msg", id: `m-${item.id}`, role: "status" });
    const range = item.hard ? `${item.hard.min}–${item.hard.max}` : "";
    this.row = h(
      "div",
      // A conditional question starts hidden until Rust says it is asked.
      { class: "field", id: `row-${item.id}`, hidden: item.conditional },
      h(
        "label",
        { id: `l-${item.id}`, for: id, title: tx(item.help) || undefined },
        tx(item.label),
        item.required ? h("span", { class: "req", title: t("required") }, " *") : null,
      ),
      h(
        "div",
        { class: "control" },
        control,
        item.unit ? h("span", { class: "unit" }, item.unit) : null,
        range ? h("span", { class: "range" }, `[${range}]`) : null,
        this.missing,
        this.historyLink,
      ),
      this.msg,
    );
  }

  /** The text the field holds, as Rust reads it: `@ND` for a missing-data code, codes joined
   * by commas for several answers. */
  text(): string {
    if (this.missing?.value) return `@${this.missing.value}`;
    if (this.boxes.length)
      return this.boxes
        .filter((b) => b.checked)
        .map((b) => b.value)
        .join(",");
    return this.single?.value ?? "";
  }

  setText(text: string): void {
    const missing = text.startsWith("@") ? text.slice(1) : "";
    if (this.missing) this.missing.value = missing;
    const value = missing ? "" : text;
    const disabled = !!missing || !this.opts.mayEnter;
    if (this.boxes.length) {
      const chosen = new Set(value.split(",").filter(Boolean));
      for (const b of this.boxes) {
        b.checked = chosen.has(b.value);
        b.disabled = disabled;
      }
    } else if (this.single) {
      this.single.value = value;
      this.single.disabled = disabled;
    }
  }

  /** A computed value (BMI, VIS…), shown read-only. */
  setDerived(text: string): void {
    // The exports' missing-data codes, worded for the bedside.
    const shown =
      text === "@UNK" ? t("derivedUnknown") : text === "@NA" ? t("derivedNotApplicable") : text;
    if (this.derivedText) this.derivedText.textContent = shown;
  }

  /** The message line under the field; an error also marks the row. */
  show(kind: MessageKind, text: string): void {
    this.msg.textContent = text;
    this.msg.className = `msg ${kind}`;
    this.row.classList.toggle("has-error", kind === "error");
  }

  get hidden(): boolean {
    return this.row.hidden;
  }

  set hidden(hide: boolean) {
    this.row.hidden = hide;
  }

  focus(): void {
    (this.boxes.find((b) => b.checked) ?? this.boxes[0] ?? this.single)?.focus();
  }
}
