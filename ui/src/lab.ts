// The laboratory import page: the site's subject identification log (hospital record numbers,
// on this laptop only), then a file (FHIR R4 JSON, HL7 v2, CSV or Excel) read into candidate
// values per subject and day, each with its source value, unit and time and what is entered
// now; the nurse accepts or rejects each value or a whole day, and the decisions are saved in
// one go. Matching, conversion and the worst of a day are decided in Rust (crates/lab); this
// page only shows them and sends the decisions.
import { api, messageOf } from "./api";
import type { LabCandidateDto, LabPreview, SubjectMrn } from "./bindings";
import { byId, h } from "./dom";
import { tx, wordsOf } from "./i18n";

const words = {
  title: ["Laboratory import", "检验结果导入"],
  idLog: ["Subject identification log (this laptop only)", "受试者识别记录（仅保存在本电脑）"],
  idHelp: [
    "Hospital record numbers match results to subjects. They stay in this laptop's encrypted store: never synced, exported or printed.",
    "住院号用于将检验结果与受试者匹配，仅保存在本电脑的加密数据库中，不会同步、导出或打印。",
  ],
  subject: ["Subject", "受试者"],
  mrn: ["Hospital record number", "住院号"],
  saveMrn: ["Save number", "保存住院号"],
  file: ["File (FHIR JSON, HL7, CSV or Excel)", "文件（FHIR JSON、HL7、CSV 或 Excel）"],
  choose: ["Choose…", "选择…"],
  mapping: ["Column mapping (CSV or Excel)", "列映射（CSV 或 Excel）"],
  read: ["Read file", "读取文件"],
  reading: ["Reading…", "正在读取…"],
  summary: ["results read", "条结果"],
  toDecide: ["values to decide", "个值待确认"],
  notImported: ["not imported", "条未导入"],
  day: ["Form", "表单"],
  item: ["Item", "条目"],
  value: ["Value to save", "拟保存的值"],
  source: ["Source", "来源值"],
  taken: ["Specimen time", "采样时间"],
  entered: ["Entered now", "当前已录入"],
  decision: ["Decision", "决定"],
  accept: ["Accept", "接受"],
  reject: ["Reject", "拒绝"],
  undecided: ["Later", "稍后"],
  acceptDay: ["Accept the whole day", "接受当天全部"],
  worstOf: ["worst of", "取最差值，共"],
  results: ["results", "条"],
  new: ["new", "新值"],
  differs: ["changes the entered value", "将修改已录入的值"],
  same: ["same as entered", "与已录入相同"],
  imported: ["already imported", "已导入"],
  rejected: ["rejected before", "之前已拒绝"],
  reason: ["Reason for changing entered values", "修改已录入值的原因"],
  confirm: ["I checked the values outside the usual range", "已核对超出常见范围的值"],
  save: ["Save decisions", "保存决定"],
  saved: ["Saved", "已保存"],
  savedValues: ["value(s), rejected", "个值，已拒绝"],
  left: ["left for later", "个留待稍后"],
  problems: ["Not imported", "未导入"],
  nothing: [
    "No value in this file for the subjects of this site.",
    "此文件中没有本中心受试者的检验值。",
  ],
} as const;

const w = wordsOf(words);

type Guard = (action: () => Promise<void>, errorId?: string) => Promise<void>;

const PATH_KEY = "ecrf.labFile";
const MAPPING_KEY = "ecrf.labMapping";

/** The identification log: a table and a line to add or correct a number. */
function idLogPanel(guard: Guard): HTMLElement {
  const tbody = h("tbody", { id: "mrn-rows" });
  const draw = (rows: SubjectMrn[]) => {
    tbody.replaceChildren(
      ...rows.map((r) => h("tr", {}, h("td", {}, r.subject), h("td", {}, r.mrn))),
    );
  };
  const subject = h("input", { id: "mrn-subject", type: "text", "aria-label": w("subject") });
  const mrn = h("input", { id: "mrn-value", type: "text", "aria-label": w("mrn") });
  const save = h("button", { type: "submit", id: "mrn-save" }, w("saveMrn"));
  const form = h(
    "form",
    { class: "toolbar", id: "mrn-form" },
    h("label", {}, w("subject"), subject),
    h("label", {}, w("mrn"), mrn),
    save,
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void guard(async () => {
      draw(await api.setSubjectMrn(subject.value.trim(), mrn.value.trim()));
      mrn.value = "";
      subject.focus();
    }, "lab-error");
  });
  void guard(async () => draw(await api.subjectMrns()), "lab-error");
  return h(
    "section",
    { class: "card", id: "mrn-panel" },
    h("h3", {}, w("idLog")),
    h("p", { class: "help" }, w("idHelp")),
    h(
      "table",
      { class: "grid", id: "mrn-table" },
      h("thead", {}, h("tr", {}, h("th", {}, w("subject")), h("th", {}, w("mrn")))),
      tbody,
    ),
    form,
  );
}

function statusWord(c: LabCandidateDto): string {
  const key = c.status as "new" | "differs" | "same" | "imported" | "rejected";
  return key in words ? w(key) : c.status;
}

const open = (c: LabCandidateDto) => c.status === "new" || c.status === "differs";

/** One candidate's row: accept / reject / later as radio buttons when there is a decision. */
function candidateRow(c: LabCandidateDto): HTMLElement {
  const choice = (value: string, label: string, checked: boolean) =>
    h(
      "label",
      { class: "check" },
      h("input", {
        type: "radio",
        name: `lab-${c.id}`,
        id: `lab-${value}-${c.id}`,
        value,
        checked,
      }),
      ` ${label}`,
    );
  const decision = open(c)
    ? h(
        "td",
        { class: "decision" },
        choice("accept", w("accept"), false),
        choice("reject", w("reject"), false),
        choice("later", w("undecided"), true),
      )
    : h("td", { class: "muted" }, "—");
  const others = c.others > 0 ? ` (${w("worstOf")} ${c.others + 1} ${w("results")})` : "";
  return h(
    "tr",
    {
      id: `lab-row-${c.id}`,
      "data-item": c.item,
      "data-form": c.form,
      class: open(c) ? "lab-open" : "lab-closed muted",
      "data-status": c.status,
    },
    h("td", {}, `${tx(c.label)} (${c.item})`),
    h("td", { class: "num" }, `${c.value} ${c.unit}`),
    h("td", {}, `${c.source}${others}`),
    h("td", {}, c.taken),
    h("td", {}, c.entered ?? "—"),
    h("td", {}, statusWord(c)),
    decision,
  );
}

/** The candidates grouped by subject and day, each day with "accept the whole day". */
function candidateTable(p: LabPreview): HTMLElement {
  const groups = new Map<string, LabCandidateDto[]>();
  for (const c of p.candidates) {
    const k = `${c.subject} ${c.form}`;
    groups.set(k, [...(groups.get(k) ?? []), c]);
  }
  const body: HTMLElement[] = [];
  for (const [k, list] of groups) {
    const [subject, form] = k.split(" ");
    const acceptDay = h(
      "button",
      {
        type: "button",
        id: `lab-day-${subject}-${form}`.replace("#", "-"),
        disabled: !list.some(open),
      },
      w("acceptDay"),
    );
    acceptDay.addEventListener("click", () => {
      for (const c of list.filter(open)) {
        const radio = byId<HTMLInputElement>(`lab-accept-${c.id}`);
        if (radio) radio.checked = true;
      }
    });
    body.push(
      h(
        "tr",
        { class: "group" },
        h("th", { colspan: 6 }, `${w("subject")} ${subject} · ${form}`),
        h("th", {}, acceptDay),
      ),
      ...list.map(candidateRow),
    );
  }
  return h(
    "table",
    { class: "grid", id: "lab-candidates" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ...[w("item"), w("value"), w("source"), w("taken"), w("entered"), "", w("decision")].map(
          (c) => h("th", {}, c),
        ),
      ),
    ),
    h("tbody", {}, ...body),
  );
}

/** Draws the preview and wires "Save decisions". */
function previewPanel(
  p: LabPreview,
  mapping: string | null,
  guard: Guard,
  reread: (notice: string) => Promise<void>,
): HTMLElement {
  const decide = p.candidates.filter(open).length;
  const summary = h(
    "p",
    { id: "lab-summary", role: "status" },
    `${p.results} ${w("summary")} · ${decide} ${w("toDecide")} · ${p.problems.length} ${w("notImported")}`,
  );
  const reason = h("input", { id: "lab-reason", type: "text", "aria-label": w("reason") });
  const confirm = h("input", { id: "lab-confirm", type: "checkbox" });
  const save = h(
    "button",
    { type: "button", id: "lab-save", class: "primary", disabled: decide === 0 },
    w("save"),
  );
  const notice = h("p", { class: "notice", id: "lab-notice", role: "status" });
  save.addEventListener("click", () => {
    const chosen = (value: string) =>
      p.candidates
        .filter(open)
        .filter((c) => byId<HTMLInputElement>(`lab-${value}-${c.id}`)?.checked)
        .map((c) => c.id);
    void guard(async () => {
      const done = await api.labApply(
        p.path,
        mapping,
        p.sha256,
        chosen("accept"),
        chosen("reject"),
        reason.value.trim() === "" ? null : reason.value.trim(),
        confirm.checked,
      );
      // Read again: the page then shows what is saved, imported and rejected now.
      await reread(
        `${w("saved")} ${done.saved} ${w("savedValues")} ${done.rejected} · ${done.undecided} ${w("left")}`,
      );
    }, "lab-error");
  });
  const problems = h(
    "section",
    { id: "lab-problems" },
    h("h3", {}, `${w("problems")} (${p.problems.length})`),
    h(
      "ul",
      {},
      ...p.problems.map((x) => h("li", { class: "lab-problem" }, `${x.place}: ${x.message}`)),
    ),
  );
  return h(
    "section",
    { id: "lab-preview" },
    summary,
    p.candidates.length ? candidateTable(p) : h("p", {}, w("nothing")),
    h(
      "div",
      { class: "toolbar" },
      h("label", {}, w("reason"), reason),
      h("label", { class: "check" }, confirm, ` ${w("confirm")}`),
      save,
    ),
    notice,
    problems,
  );
}

/** The page. */
export function showLabPage(
  frame: (title: string, ...body: HTMLElement[]) => void,
  guard: Guard,
  back: () => HTMLElement,
): void {
  const path = h("input", {
    id: "lab-path",
    type: "text",
    value: localStorage.getItem(PATH_KEY) ?? "",
    "aria-label": w("file"),
  });
  const mapping = h("input", {
    id: "lab-mapping",
    type: "text",
    value: localStorage.getItem(MAPPING_KEY) ?? "",
    "aria-label": w("mapping"),
  });
  const pick = h("button", { type: "button", id: "lab-pick" }, w("choose"));
  pick.addEventListener("click", () => {
    void guard(async () => {
      const chosen = await api.pickLabFile(w("file"));
      if (chosen) path.value = chosen;
    }, "lab-error");
  });
  const read = h("button", { type: "submit", id: "lab-read", class: "primary" }, w("read"));
  const result = h("div", { id: "lab-result" });
  const error = h("div", { class: "error-line", id: "lab-error", role: "alert" });
  const load = async (notice: string) => {
    error.textContent = "";
    result.replaceChildren(h("p", { role: "status" }, w("reading")));
    localStorage.setItem(PATH_KEY, path.value.trim());
    localStorage.setItem(MAPPING_KEY, mapping.value.trim());
    const m = mapping.value.trim() === "" ? null : mapping.value.trim();
    try {
      const p = await api.labPreview(path.value.trim(), m);
      result.replaceChildren(previewPanel(p, m, guard, load));
      const n = byId("lab-notice");
      if (n) n.textContent = notice;
    } catch (e) {
      result.replaceChildren();
      error.textContent = messageOf(e);
    }
  };
  const fileForm = h(
    "form",
    { class: "card", id: "lab-file-form" },
    h("label", {}, w("file"), path),
    pick,
    h("label", {}, w("mapping"), mapping),
    read,
  );
  fileForm.addEventListener("submit", (e) => {
    e.preventDefault();
    void load("");
  });
  frame(
    w("title"),
    h("div", { class: "toolbar" }, back()),
    error,
    idLogPanel(guard),
    fileForm,
    result,
  );
  path.focus();
}
