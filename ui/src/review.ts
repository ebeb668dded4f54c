// Site-wide review pages: every query of the site with filters, and the audit trail filtered by
// subject, form, item and user (exportable as CSV). What a user may see is decided in Rust; the
// words of these pages are kept here, in both languages.
import { api, messageOf } from "./api";
import type { AuditFilterDto, AuditRow, Query } from "./bindings";
import { h } from "./dom";
import { wordsOf } from "./i18n";

const words = {
  queriesTitle: ["Queries of the site", "本中心全部质疑"],
  auditTitle: ["Audit trail", "稽查轨迹"],
  state: ["State", "状态"],
  any: ["any", "全部"],
  open: ["open", "未回复"],
  answered: ["answered", "已回复"],
  closed: ["closed", "已关闭"],
  subject: ["Subject", "受试者"],
  form: ["Form", "表单"],
  item: ["Item", "条目"],
  user: ["User", "用户"],
  question: ["Question", "质疑内容"],
  raisedBy: ["Raised by", "发起人"],
  openForm: ["Open form", "打开表单"],
  noQueries: ["No query matches.", "没有符合条件的质疑。"],
  matching: ["matching", "条符合"],
  of: ["of", "共"],
  when: ["When", "时间"],
  change: ["Change", "变更"],
  oldNew: ["Old → new", "原值 → 新值"],
  reason: ["Reason", "原因"],
  show: ["Show", "查询"],
  csv: ["Save as CSV", "保存为 CSV"],
  saved: ["Saved", "已保存"],
  notEncrypted: [
    "This file is not encrypted: keep it where only the study team can read it, and delete it when it is no longer needed.",
    "此文件未加密：请保存在仅研究团队可访问的位置，不再需要时请删除。",
  ],
  rows: ["changes", "条变更"],
  newest: ["showing the newest", "仅显示最新"],
  noChanges: ["No change matches.", "没有符合条件的变更。"],
} as const;

type Word = keyof typeof words;

const w = wordsOf(words);

const errorText = messageOf;

function field(id: string, label: string, value = ""): HTMLInputElement {
  return h("input", { id, "aria-label": label, placeholder: label, value });
}

function local(utc: string, offset: string): string {
  return `${new Date(utc).toLocaleString()} (${offset})`;
}

/** What the page needs from the app shell. */
export interface ReviewContext {
  frame: (title: string, ...body: HTMLElement[]) => void;
  openForm: (subject: string, key: string) => void;
  back: () => HTMLElement;
  /** The folder printouts and CSVs go to (asked when none is chosen yet); null: cancelled. */
  printFolder: () => Promise<string | null>;
}

/** Every query of the site, open first, narrowed by state, subject, form and item as you type. */
export async function showQueryList(ctx: ReviewContext, initialState = "open"): Promise<void> {
  const all = await api.queries(null);
  const state = h(
    "select",
    { id: "ql-state", "aria-label": w("state") },
    ...["", "open", "answered", "closed"].map((s) =>
      h("option", { value: s, selected: s === initialState }, s ? w(s as Word) : w("any")),
    ),
  );
  const subject = field("ql-subject", w("subject"));
  const form = field("ql-form", w("form"));
  const item = field("ql-item", w("item"));
  const count = h("p", { id: "ql-count", class: "muted", role: "status" });
  const tbody = h("tbody", {});
  const has = (v: string, q: string) => v.toLowerCase().includes(q.trim().toLowerCase());
  const row = (q: Query) =>
    h(
      "tr",
      { class: `query q-${q.state}`, "data-query": q.id },
      h("td", {}, q.subject),
      h("td", {}, q.form),
      h("td", {}, q.item),
      h("td", {}, h("span", { class: `qstate q-${q.state}` }, w(q.state as Word))),
      h("td", { class: "q-question" }, q.text),
      h("td", {}, `${q.raised_by} · ${new Date(q.raised_utc).toLocaleString()}`),
      h(
        "td",
        {},
        h(
          "button",
          {
            type: "button",
            class: "link",
            "data-open": q.id,
            onclick: () => ctx.openForm(q.subject, q.form),
          },
          w("openForm"),
        ),
      ),
    );
  const draw = () => {
    const shown = all.filter(
      (q) =>
        (!state.value || q.state === state.value) &&
        has(q.subject, subject.value) &&
        has(q.form, form.value) &&
        has(q.item, item.value),
    );
    tbody.replaceChildren(...shown.map(row));
    if (!shown.length)
      tbody.append(h("tr", {}, h("td", { colspan: 7, class: "muted" }, w("noQueries"))));
    count.textContent = `${shown.length} ${w("matching")} · ${w("of")} ${all.length}`;
  };
  for (const el of [state, subject, form, item]) el.addEventListener("input", draw);
  state.addEventListener("change", draw);
  ctx.frame(
    w("queriesTitle"),
    h("div", { class: "toolbar", id: "ql-filters" }, state, subject, form, item, ctx.back()),
    count,
    h(
      "table",
      { class: "grid", id: "query-list" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ...[w("subject"), w("form"), w("item"), w("state"), w("question"), w("raisedBy"), ""].map(
            (c) => h("th", {}, c),
          ),
        ),
      ),
      tbody,
    ),
  );
  draw();
  state.focus();
}

/** The audit trail, filtered; the newest rows on screen and every matching row in the CSV. */
export async function showAuditReview(ctx: ReviewContext, subjectFilter = ""): Promise<void> {
  const subject = field("al-subject", w("subject"), subjectFilter);
  const form = field("al-form", w("form"));
  const item = field("al-item", w("item"));
  const user = field("al-user", w("user"));
  const count = h("p", { id: "al-count", class: "muted", role: "status" });
  const notice = h("p", { id: "al-notice", class: "notice", role: "status" });
  const tbody = h("tbody", {});
  const filter = (): AuditFilterDto => ({
    subject: subject.value.trim() || null,
    form: form.value.trim() || null,
    item: item.value.trim() || null,
    user: user.value.trim() || null,
  });
  const row = ({ seq, change: c, old_shown, new_shown }: AuditRow) =>
    h(
      "tr",
      { "data-seq": seq, class: c.kind === "item.set" ? "" : "system" },
      h("td", {}, String(seq)),
      h("td", {}, local(c.utc, c.local_offset)),
      h("td", {}, `${c.user} (${c.role})`),
      h("td", {}, c.kind),
      h("td", {}, [c.subject, c.form, c.item].filter(Boolean).join(" · ")),
      h("td", { class: "al-values" }, `${old_shown ?? "—"} → ${new_shown ?? "—"}`),
      h("td", { class: "al-reason" }, c.reason ?? ""),
    );
  const load = async () => {
    notice.textContent = "";
    try {
      const page = await api.auditReview(filter());
      tbody.replaceChildren(...page.rows.map(row));
      if (!page.rows.length)
        tbody.append(h("tr", {}, h("td", { colspan: 7, class: "muted" }, w("noChanges"))));
      count.textContent =
        page.total > page.rows.length
          ? `${page.total} ${w("rows")} · ${w("newest")} ${page.rows.length}`
          : `${page.total} ${w("rows")}`;
    } catch (e) {
      notice.className = "notice error";
      notice.textContent = errorText(e);
    }
  };
  const csv = h(
    "button",
    {
      type: "button",
      id: "al-csv",
      onclick: () =>
        void ctx
          .printFolder()
          .then((folder) => (folder ? api.auditCsv(filter()) : null))
          .then((done) => {
            if (!done) return;
            notice.className = "notice ok";
            notice.textContent = `${w("saved")}: ${done.path} (${done.rows} ${w("rows")}). ${w("notEncrypted")}`;
          })
          .catch((e) => {
            notice.className = "notice error";
            notice.textContent = errorText(e);
          }),
    },
    w("csv"),
  );
  const show = h("button", { type: "submit", id: "al-show", class: "primary" }, w("show"));
  const filters = h(
    "form",
    { class: "toolbar", id: "al-filters" },
    subject,
    form,
    item,
    user,
    show,
    csv,
    ctx.back(),
  );
  filters.addEventListener("submit", (e) => {
    e.preventDefault();
    void load();
  });
  ctx.frame(
    w("auditTitle"),
    filters,
    count,
    notice,
    h(
      "table",
      { class: "grid", id: "audit-list" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ...[
            "#",
            w("when"),
            w("user"),
            w("change"),
            `${w("subject")} · ${w("form")} · ${w("item")}`,
            w("oldNew"),
            w("reason"),
          ].map((c) => h("th", {}, c)),
        ),
      ),
      tbody,
    ),
  );
  await load();
  subject.focus();
}
