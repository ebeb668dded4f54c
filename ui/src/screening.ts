// The Screening log page: every screened patient with eligibility and the reasons, and the
// site's CONSORT counts. Judged in Rust (core::eligibility through crates/app/src/screening.rs);
// this page only draws the answer. Printed as a PDF by Rust, like every other printout.
import { api } from "./api";
import type { ConsortDto, Printout, ScreenedPatient, ScreeningStatus } from "./bindings";
import { h } from "./dom";
import { tx, wordsOf } from "./i18n";

const words = {
  title: ["Screening log", "筛选日志"],
  consort: ["CONSORT counts", "CONSORT流程计数"],
  site: ["Site", "中心"],
  patients: ["Patients", "例数"],
  screened: ["Screened", "筛选"],
  notEligible: [
    "Not eligible (a patient may count under several criteria)",
    "不符合入选（同一患者可计入多项标准）",
  ],
  eligible: ["Eligible", "符合入选"],
  consentNotObtained: ["Eligible, consent not obtained", "符合入选，未获得知情同意"],
  consented: ["Consented", "已知情同意"],
  waiting: ["Consented, not randomized yet", "已知情同意，尚未随机分组"],
  randomized: ["Randomized", "已随机分组"],
  subject: ["Screening no.", "筛选号"],
  screenedAt: ["Screened", "筛选时间"],
  ageSex: ["Age / sex", "年龄／性别"],
  eligibleCol: ["Eligible", "符合入选"],
  reasons: ["Reasons not eligible", "不符合入选的原因"],
  status: ["Consent / randomization", "知情同意／随机分组"],
  yes: ["Yes", "是"],
  no: ["No", "否"],
  screenFailure: ["Screen failure", "筛选失败"],
  none: ["No patient screened yet.", "尚无筛选患者。"],
  print: ["Print screening log", "打印筛选日志"],
  openSubject: ["Open subject", "打开受试者"],
  reasonNote: [
    "Reasons as judged from the screening checklist (SCR); details in English.",
    "原因根据筛选表（SCR）判定；详细说明为英文。",
  ],
} as const;

const w = wordsOf(words);

const statusWords: Record<ScreeningStatus, [string, string]> = {
  randomized: ["Randomized", "已随机分组"],
  pending: ["Consented, not randomized yet", "已知情同意，尚未随机分组"],
  no_consent: ["Consent not obtained", "未获得知情同意"],
  not_eligible: ["Not eligible", "不符合入选"],
};
const statusWord = wordsOf(statusWords);

/** What the page needs from the app shell. */
export interface ScreeningContext {
  frame: (title: string, ...body: HTMLElement[]) => void;
  openSubject: (subject: string) => void;
  printButton: (id: string, label: string, print: () => Promise<Printout>) => HTMLElement;
  back: () => HTMLElement;
}

function consortTable(c: ConsortDto): HTMLElement {
  const row = (key: string, label: string, n: number, depth = 0) =>
    h(
      "tr",
      { "data-count": key },
      h("td", { class: `indent-${depth}` }, label),
      h("td", { class: "num" }, String(n)),
    );
  return h(
    "table",
    { class: "grid consort", "data-site": c.site },
    h(
      "thead",
      {},
      h("tr", {}, h("th", {}, `${w("site")} ${c.site}`), h("th", { class: "num" }, w("patients"))),
    ),
    h(
      "tbody",
      {},
      row("screened", w("screened"), c.screened),
      row("not_eligible", w("notEligible"), c.not_eligible),
      ...c.by_criterion.map((x) => row(`criterion-${x.criterion}`, tx(x.label), x.count, 1)),
      row("eligible", w("eligible"), c.eligible),
      row("consent_not_obtained", w("consentNotObtained"), c.consent_not_obtained, 1),
      row("consented", w("consented"), c.consented, 1),
      row("pending", w("waiting"), c.pending, 2),
      row("randomized", w("randomized"), c.randomized, 2),
      ...c.by_arm.map((x) => row(`arm-${x.arm}`, tx(x.label), x.count, 3)),
    ),
  );
}

function patientRow(p: ScreenedPatient, ctx: ScreeningContext): HTMLElement {
  const reasons = p.reasons.map((r) =>
    h("li", { "data-criterion": r.criterion }, `${tx(r.label)}: ${r.text}`),
  );
  if (p.screen_failure)
    reasons.push(h("li", { class: "sf" }, `${w("screenFailure")}: ${tx(p.screen_failure)}`));
  let status = statusWord(p.status);
  if (p.status === "randomized" && p.arm) status = `${status} — ${tx(p.arm)}`;
  if (p.status === "no_consent" && p.consent_note) status = `${status} (${p.consent_note})`;
  return h(
    "tr",
    { "data-subject": p.subject, class: p.eligible ? "eligible" : "not-eligible" },
    h(
      "td",
      {},
      h(
        "button",
        {
          type: "button",
          class: "link",
          "data-open-subject": p.subject,
          title: w("openSubject"),
          onclick: () => ctx.openSubject(p.subject),
        },
        p.subject,
      ),
    ),
    h("td", {}, p.screened_at ?? "—"),
    h("td", {}, `${p.age ?? "—"} / ${p.sex ? tx(p.sex) : "—"}`),
    h(
      "td",
      { class: "sl-eligible" },
      h(
        "span",
        { class: `status ${p.eligible ? "s-complete" : "s-overdue"}` },
        w(p.eligible ? "yes" : "no"),
      ),
    ),
    h("td", { class: "sl-reasons" }, reasons.length ? h("ul", {}, ...reasons) : "—"),
    h("td", { class: "sl-status" }, status),
  );
}

/** The Screening log page. */
export async function showScreeningLog(ctx: ScreeningContext): Promise<void> {
  const log = await api.screeningLog();
  const tbody = h("tbody", {}, ...log.patients.map((p) => patientRow(p, ctx)));
  if (!log.patients.length)
    tbody.append(h("tr", {}, h("td", { colspan: 6, class: "muted" }, w("none"))));
  ctx.frame(
    w("title"),
    h(
      "div",
      { class: "toolbar" },
      ctx.printButton("print-screening-log", w("print"), () => api.printScreeningLog()),
      ctx.back(),
    ),
    h("section", { id: "consort" }, h("h3", {}, w("consort")), ...log.sites.map(consortTable)),
    h(
      "section",
      { id: "screened-patients" },
      h("p", { class: "muted" }, w("reasonNote")),
      h(
        "table",
        { class: "grid", id: "screening-log" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ...[
              w("subject"),
              w("screenedAt"),
              w("ageSex"),
              w("eligibleCol"),
              w("reasons"),
              w("status"),
            ].map((c) => h("th", {}, c)),
          ),
        ),
        tbody,
      ),
    ),
  );
  document.querySelector<HTMLElement>("#print-screening-log")?.focus();
}
