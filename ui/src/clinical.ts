// The subject page's clinical panel: derived outcomes and protocol flags (computed in Rust by
// core::outcome; this only shows them, by word and colour) and the trend charts.
import type { OutcomeView, SubjectPage } from "./bindings";
import { trendCharts } from "./chart";
import { h } from "./dom";
import { t, tx, type Word } from "./i18n";

function word(v: string | null | undefined): string {
  if (v === null || v === undefined) return t("notApplicable");
  const known: Record<string, Word> = {
    yes: "yes",
    no: "no",
    unknown: "unknown",
    alive: "alive",
    dead: "dead",
  };
  const w = known[v];
  return w ? t(w) : v;
}

function yesNo(v: boolean | null): string {
  return v === null ? t("notApplicable") : t(v ? "yes" : "no");
}

function row(id: string, label: Word, value: string, cls = ""): HTMLElement {
  return h(
    "div",
    { id: `outcome-${id}`, class: cls },
    h("span", {}, t(label)),
    h("strong", {}, value),
  );
}

export function outcomePanel(o: OutcomeView): HTMLElement {
  const delay =
    o.iabp_delay_min === null
      ? t("notApplicable")
      : `${Math.floor(o.iabp_delay_min / 60)} h ${String(o.iabp_delay_min % 60).padStart(2, "0")} min`;
  const days = (v: string | null) => v ?? t("notApplicable");
  const num = (v: number | null) => (v === null ? t("notApplicable") : String(v));
  return h(
    "section",
    { id: "outcomes" },
    h("h3", {}, t("outcomes")),
    h(
      "div",
      { class: "outcomes" },
      row("iabp-delay", "iabpDelay", delay),
      row("deviation", "deviation", yesNo(o.iabp_deviation)),
      row("crossover", "crossover", yesNo(o.crossover)),
      row("days-ecmo", "daysOnEcmo", days(o.days_on_ecmo)),
      row("days-iabp", "daysOnIabp", days(o.days_on_iabp)),
      row("icu-los", "icuLos", num(o.icu_los_days)),
      row("hospital-los", "hospitalLos", num(o.hospital_los_days)),
      row("weaning", "weaning", word(o.successful_weaning)),
      row("death-date", "deathDate", o.death_date ?? t("notApplicable")),
      row("day30", "day30Status", word(o.day30_status)),
      row("endpoint", "primaryEndpoint", word(o.primary_endpoint), "endpoint"),
      row("days-alive", "daysAlive", num(o.days_alive_to_day30)),
    ),
    h("h3", {}, t("flags")),
    h(
      "ul",
      { class: "flags", id: "flags" },
      ...(o.flags.length
        ? o.flags.map((f) => h("li", { "data-flag": f.code, "data-form": f.form }, tx(f.message)))
        : [h("li", { class: "none" }, t("noFlags"))]),
    ),
  );
}

export function clinicalPanel(page: SubjectPage): HTMLElement {
  return h(
    "div",
    { id: "clinical" },
    outcomePanel(page.outcome),
    h("h3", {}, t("trends")),
    trendCharts(page.trends),
  );
}
