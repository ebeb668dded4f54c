// The app's screens: first run, login and lock, subject list, subject page, users, export; the form
// page is in form.ts. All data comes from Rust through api.ts.
import "./style.css";
import { api, isAppError } from "./api";
import { EXPORT_FORMATS, ROLES } from "./bindings";
import type {
  Format,
  Lang,
  FormPage,
  Printout,
  RandomizationView,
  SessionDto,
  StudyDto,
  SubjectPage,
  SubjectRow,
  Welcome,
} from "./bindings";
import { trendCharts } from "./chart";
import { clinicalPanel } from "./clinical";
import { byId, h, mount } from "./dom";
import { backupPanel } from "./backup";
import { renderForm } from "./form";
import { type ReviewContext, showAuditReview, showQueryList } from "./review";
import { showLabPage } from "./lab";
import { showScreeningLog } from "./screening";
import { paintBadge, showSyncPage, startAutoSync } from "./sync";
import { currentLang, setLang, statusWord, t, tx } from "./i18n";

let study: StudyDto;
let session: SessionDto | null = null;
let welcome: Welcome;
let lastActivity = Date.now();
let lockedUser = "";

function errorText(e: unknown): string {
  if (isAppError(e)) {
    if (e.code === "bad_login") return t("badLogin");
    if (e.code === "throttled") return `${t("throttled")} (${e.message})`;
    if (e.code === "disk_full") return t("diskFull");
    return e.message;
  }
  return e instanceof Error ? e.message : String(e);
}

/** Runs an action; an error is shown in the page's error line instead of being lost. */
async function guard(action: () => Promise<void>, errorId = "page-error"): Promise<void> {
  try {
    await action();
  } catch (e) {
    if (isAppError(e) && e.code === "not_logged_in") {
      showLogin(true);
      return;
    }
    const el = byId(errorId);
    if (el) el.textContent = errorText(e);
  }
}

function header(): HTMLElement {
  const langBtn = h(
    "button",
    { type: "button", id: "lang-toggle", class: "link" },
    t("langSwitch"),
  );
  langBtn.addEventListener("click", () => {
    const next: Lang = currentLang() === "en" ? "zh" : "en";
    void guard(async () => {
      setLang(next);
      if (session) session = await api.setLang(next);
      rerender();
    });
  });
  return h(
    "header",
    {},
    h("strong", {}, t("appTitle")),
    h("span", { class: "registry", id: "study-version" }, `${study.registry} · v${study.version}`),
    study.blocked
      ? h(
          "span",
          { class: "badge blocked", id: "definition-blocked", role: "alert" },
          study.blocked,
        )
      : null,
    welcome.demo ? h("span", { class: "badge demo" }, "DEMO") : null,
    h("span", { class: "spacer" }),
    h("span", { class: "badge offline", id: "badge-online", title: t("offline") }, t("offline")),
    session
      ? h(
          "span",
          { class: "who", id: "who" },
          `${session.name || session.user} · ${session.role} · ${session.site}`,
        )
      : null,
    langBtn,
    session ? lockMinutesSelect(session.lock_minutes) : null,
    session
      ? h(
          "button",
          { type: "button", id: "lock", class: "link", onclick: () => void lockNow() },
          t("lockNow"),
        )
      : null,
  );
}

let rerender: () => void = () => undefined;

/** A print button: writes the PDF (Rust draws it from the study definition) and says where. */
/** Asks where printouts go (the native folder picker) and remembers it for this user; false
 * when the user cancels. Printouts are not encrypted, so the app never picks a folder itself. */
async function choosePrintFolder(): Promise<boolean> {
  const chosen = await api.pickFolder(t("printFolder"), session?.print_folder ?? "");
  if (!chosen) return false;
  session = await api.setPrintFolder(chosen);
  return true;
}

/** The folder printouts go to: the one chosen before (as Rust holds it), or asked now; null
 * when cancelled. */
async function printFolder(): Promise<string | null> {
  const chosen = await api.printFolder();
  if (chosen) return chosen;
  return (await choosePrintFolder()) ? (session?.print_folder ?? null) : null;
}

function printButton(id: string, label: string, print: () => Promise<Printout>): HTMLElement {
  const button = h("button", { type: "button", id }, label);
  button.addEventListener("click", () => {
    void guard(async () => {
      if (!(await printFolder())) return;
      const notice = byId("print-notice");
      if (notice) notice.textContent = t("printing");
      const p = await print();
      if (notice)
        notice.textContent = `${t("printed")} (${p.pages} p.): ${p.path}. ${t("notEncrypted")}`;
    });
  });
  return button;
}

/** Changes the folder printouts and audit CSVs are saved in. */
function printFolderButton(): HTMLElement {
  return h(
    "button",
    {
      type: "button",
      id: "print-folder",
      title: session?.print_folder ?? t("printFolder"),
      onclick: () => void guard(async () => void (await choosePrintFolder())),
    },
    t("printFolderChange"),
  );
}

/** How many idle minutes before the screen locks; remembered per user. */
function lockMinutesSelect(current: number): HTMLElement {
  const choices = Array.from(new Set([5, 10, 15, 30, 60, current])).sort((a, b) => a - b);
  const select = h(
    "select",
    { id: "lock-minutes", "aria-label": t("lockAfter"), title: t("lockAfter") },
    ...choices.map((m) => h("option", { value: m, selected: m === current }, `${m} min`)),
  );
  select.addEventListener("change", () => {
    void guard(async () => {
      session = await api.setLockMinutes(Number(select.value));
    });
  });
  return h("label", { class: "lock-after" }, `${t("lockAfter")} `, select);
}

function frame(title: string, ...body: HTMLElement[]): void {
  mount(
    header(),
    h(
      "main",
      {},
      h("h2", { id: "page-title" }, title),
      h("div", { class: "error-line", id: "page-error", role: "alert" }),
      ...body,
      h("div", { class: "notice", id: "print-notice", role: "status" }),
    ),
  );
  paintBadge();
}

// ---------------- first run ----------------

function showWelcome(): void {
  rerender = showWelcome;
  frame(
    t("welcomeTitle"),
    h(
      "div",
      { class: "card" },
      h(
        "button",
        { type: "button", id: "start-setup", class: "primary", onclick: () => showSetup() },
        t("startSetup"),
      ),
      h(
        "button",
        {
          type: "button",
          id: "start-demo",
          onclick: () =>
            void guard(async () => {
              welcome = await api.useDemo();
              showLogin(false);
            }),
        },
        t("startDemo"),
      ),
    ),
  );
  byId("start-setup")?.focus();
}

function input(id: string, label: string, type = "text", value = ""): HTMLElement {
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    h("div", { class: "control" }, h("input", { id, type, value, autocomplete: "off" })),
  );
}

function val(id: string): string {
  return byId<HTMLInputElement>(id)?.value ?? "";
}

function showSetup(): void {
  rerender = showSetup;
  const submit = h(
    "button",
    { type: "submit", id: "setup-submit", class: "primary" },
    t("createStore"),
  );
  const form = h(
    "form",
    { class: "card", id: "setup-form" },
    input("setup-site", t("site"), "text", "01"),
    input("setup-admin", t("adminUser"), "text", "admin"),
    input("setup-name", t("adminName")),
    input("setup-password", t("password"), "password"),
    input("setup-password2", t("passwordAgain"), "password"),
    h("p", { class: "hint", id: "setup-password-rule" }, t("passwordRule")),
    submit,
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void guard(async () => {
      if (val("setup-password") !== val("setup-password2")) throw new Error(t("passwordsDiffer"));
      const done = await api.setup({
        site: val("setup-site"),
        admin_user: val("setup-admin"),
        admin_name: val("setup-name"),
        password: val("setup-password"),
      });
      welcome = await api.welcome();
      session = welcome.session;
      showRecoveryKey(done.recovery_key);
    });
  });
  frame(t("setupTitle"), form);
  byId("setup-site")?.focus();
}

function showRecoveryKey(key: string): void {
  rerender = () => undefined;
  const stored = h("input", { type: "checkbox", id: "recovery-stored" });
  const go = h(
    "button",
    { type: "button", id: "recovery-continue", class: "primary", disabled: true },
    t("continue"),
  );
  stored.addEventListener("change", () => {
    go.disabled = !stored.checked;
  });
  go.addEventListener("click", () => showHome());
  frame(
    t("recoveryTitle"),
    h(
      "div",
      { class: "card" },
      h("p", {}, t("recoveryText")),
      h("pre", { id: "recovery-key", class: "recovery" }, key),
      h("label", { class: "choice" }, stored, t("recoveryStored")),
      go,
    ),
  );
  stored.focus();
}

// ---------------- login and lock ----------------

function showLogin(locked: boolean): void {
  if (locked && session) lockedUser = session.user;
  session = null;
  rerender = () => showLogin(locked);
  const form = h(
    "form",
    { class: "card", id: "login-form" },
    input("login-user", t("user"), "text", lockedUser),
    input("login-password", t("password"), "password"),
    h("div", { class: "error-line", id: "login-error", role: "alert" }),
    h("button", { type: "submit", id: "login-submit", class: "primary" }, t("logIn")),
    welcome.demo ? h("p", { class: "hint" }, t("demoHint")) : null,
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void guard(async () => {
      session = await api.login(val("login-user"), val("login-password"));
      setLang(session.lang);
      lastActivity = Date.now();
      showHome();
      startAutoSync();
    }, "login-error");
  });
  frame(locked ? t("lockedTitle") : t("loginTitle"), form);
  byId(lockedUser ? "login-password" : "login-user")?.focus();
}

async function lockNow(): Promise<void> {
  await api.lock();
  showLogin(true);
}

function watchIdle(): void {
  for (const ev of ["keydown", "mousedown", "mousemove", "wheel"]) {
    window.addEventListener(
      ev,
      () => {
        lastActivity = Date.now();
      },
      { passive: true },
    );
  }
  window.setInterval(() => {
    if (!session) return;
    if (Date.now() - lastActivity > session.lock_minutes * 60_000) void lockNow();
  }, 10_000);
}

// ---------------- subjects ----------------

function showHome(): void {
  if (session?.may_manage_users) showUsers();
  else void showSubjects();
}

function statusBadge(status: SubjectRow["status"]): HTMLElement {
  return h("span", { class: `status s-${status}` }, statusWord(status));
}

async function showSubjects(filter = ""): Promise<void> {
  rerender = () => void showSubjects(filter);
  // The version in force at the site may have changed by a sync or the date.
  study = await api.study();
  const rows = await api.subjects();
  const search = h("input", {
    id: "subject-search",
    type: "search",
    placeholder: t("search"),
    value: filter,
    "aria-label": t("search"),
  });
  const tbody = h("tbody", {});
  const draw = () => {
    const q = search.value.trim().toLowerCase();
    tbody.replaceChildren(
      ...rows
        .filter((r) => r.subject.toLowerCase().includes(q))
        .map((r) =>
          h(
            "tr",
            { class: "clickable", onclick: () => void showSubject(r.subject) },
            h(
              "td",
              {},
              h("button", { type: "button", class: "link", "data-subject": r.subject }, r.subject),
            ),
            h("td", {}, r.day0 ?? "—"),
            h("td", {}, statusBadge(r.status)),
            h("td", {}, `${r.complete} ✓ · ${r.in_progress} … · ${r.overdue} ! · ${r.warnings} ⚠`),
          ),
        ),
    );
    if (!tbody.children.length) tbody.append(h("tr", {}, h("td", { colspan: 4 }, t("noSubjects"))));
  };
  search.addEventListener("input", draw);
  const nav = session?.may_manage_users
    ? h(
        "button",
        { type: "button", id: "nav-users", class: "link", onclick: () => showUsers() },
        t("users"),
      )
    : null;
  const exportNav = session?.may_export
    ? h(
        "button",
        { type: "button", id: "nav-export", class: "link", onclick: () => showExport() },
        t("exportNav"),
      )
    : null;
  const reviewNav = [
    h(
      "button",
      {
        type: "button",
        id: "nav-screening",
        class: "link",
        onclick: () => void guard(() => openScreeningLog()),
      },
      t("screeningNav"),
    ),
    h(
      "button",
      {
        type: "button",
        id: "nav-queries",
        class: "link",
        onclick: () => void guard(() => showQueryList(reviewContext())),
      },
      t("queriesNav"),
    ),
    h(
      "button",
      {
        type: "button",
        id: "nav-audit",
        class: "link",
        onclick: () => void guard(() => showAuditReview(reviewContext())),
      },
      t("auditNav"),
    ),
    syncNav(),
    session?.may_enter
      ? h(
          "button",
          {
            type: "button",
            id: "nav-lab",
            class: "link",
            onclick: () => showLabPage(frame, guard, reviewContext().back),
          },
          t("labNav"),
        )
      : null,
  ];
  frame(
    t("subjects"),
    h(
      "div",
      { class: "toolbar" },
      search,
      session?.may_enter
        ? h(
            "button",
            {
              type: "button",
              id: "new-subject",
              class: "primary",
              onclick: () =>
                void guard(async () => {
                  const s = await api.newSubject();
                  await showSubject(s);
                }),
            },
            t("newSubject"),
          )
        : null,
      nav,
      exportNav,
      ...reviewNav,
      printButton("print-book", t("printBook"), () => api.printBlank(null)),
      printFolderButton(),
    ),
    h(
      "table",
      { class: "grid", id: "subject-table" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ...[t("subject"), t("day0"), t("status"), t("forms")].map((c) => h("th", {}, c)),
        ),
      ),
      tbody,
    ),
    backupPanel(guard),
  );
  draw();
  search.focus();
}

/** The site-wide review pages (review.ts) draw into the app's frame and open forms here. */
/** The way back to the subject list, from the users and export pages. */
function subjectsNav(): HTMLElement {
  return h(
    "button",
    { type: "button", id: "nav-subjects", onclick: () => void showSubjects() },
    t("subjects"),
  );
}

/** The link to the Sync page, on the subject list and the users page alike. */
function syncNav(): HTMLElement {
  return h(
    "button",
    {
      type: "button",
      id: "nav-sync",
      class: "link",
      onclick: () => void guard(() => showSyncPage(frame, reviewContext().back)),
    },
    t("syncNav"),
  );
}

/** The Screening log page (screening.ts), with the way back to the subject list. */
async function openScreeningLog(): Promise<void> {
  rerender = () => void guard(() => openScreeningLog());
  await showScreeningLog({
    frame,
    openSubject: (subject) => void guard(() => showSubject(subject)),
    printButton,
    back: () => subjectsNav(),
  });
}

function reviewContext(): ReviewContext {
  return {
    frame,
    openForm: (subject, key) => void guard(() => openForm(subject, key)),
    back: () => subjectsNav(),
    printFolder,
  };
}

let countdownTimer = 0;

/** Time left in the 6-hour window from ECMO start, counted down to the second. */
function countdownText(r: RandomizationView): string {
  if (!r.window_end) return t("noEcmoStart");
  const ms = Date.parse(r.window_end) - Date.now();
  const abs = Math.abs(ms);
  const hh = Math.floor(abs / 3_600_000);
  const mm = String(Math.floor((abs % 3_600_000) / 60_000)).padStart(2, "0");
  const ss = String(Math.floor((abs % 60_000) / 1000)).padStart(2, "0");
  const hms = `${hh} h ${mm} min ${ss} s`;
  if (ms < 0) return `${t("windowPassed")} (${hms})`;
  return `${r.arm === "ECMO_IABP" ? t("iabpDue") : t("noUnloading")}: ${hms}`;
}

/** The randomization panel: the arm once randomized (never an unopened envelope), the
 * countdown, and the Randomize button whose refusals are shown as the app words them. */
function randomizationPanel(subject: string, page: SubjectPage): HTMLElement {
  window.clearInterval(countdownTimer);
  const r = page.randomization;
  const parts: HTMLElement[] = [];
  if (r) {
    const countdown = h("p", { id: "rnd-countdown", class: "countdown" }, countdownText(r));
    countdownTimer = window.setInterval(() => {
      if (!countdown.isConnected) window.clearInterval(countdownTimer);
      else countdown.textContent = countdownText(r);
    }, 1000);
    parts.push(
      h(
        "p",
        { id: "rnd-arm", class: "arm" },
        `${t("randomized")}: ${tx(r.arm_label)} · ${t("subjectNo")} ${r.subject_no} · ${r.at} · ${r.by}`,
      ),
      countdown,
    );
  }
  parts.push(
    h(
      "button",
      {
        type: "button",
        id: "randomize",
        "data-randomize": subject,
        onclick: () =>
          void guard(async () => {
            const next = await api.randomize(subject);
            await showSubject(subject, next);
          }, "rnd-message"),
      },
      t("randomize"),
    ),
    h("p", { id: "rnd-message", class: "error", role: "alert" }),
  );
  return h("section", { id: "randomization", class: "randomization" }, ...parts);
}

async function showSubject(subject: string, loaded?: SubjectPage): Promise<void> {
  rerender = () => void showSubject(subject);
  const page = loaded ?? (await api.subject(subject));
  const open = (key: string) => void openForm(subject, key);
  const events = study.forms.filter((f) => f.repeat === "by_event");
  const nextLog = () =>
    void guard(async () => {
      const next = await api.nextDailyLog(subject);
      await openForm(subject, next.key, next);
    });
  frame(
    `${t("subject")} ${subject}`,
    h("p", {}, `${t("day0")}: ${page.day0 ?? "—"}`),
    randomizationPanel(subject, page),
    clinicalPanel(page),
    h(
      "table",
      { class: "grid", id: "schedule" },
      h(
        "thead",
        {},
        h("tr", {}, ...[t("form"), "", t("due"), t("status")].map((c) => h("th", {}, c))),
      ),
      h(
        "tbody",
        {},
        ...page.schedule.map((r) =>
          h(
            "tr",
            {
              class: r.system ? "system" : "clickable",
              "data-row": r.key,
              onclick: () => {
                if (!r.system) open(r.key);
              },
            },
            h(
              "td",
              {},
              r.system
                ? tx(r.name)
                : h("button", { type: "button", class: "link", "data-key": r.key }, tx(r.name)),
            ),
            h("td", {}, r.key),
            h("td", {}, r.due ?? ""),
            h("td", {}, statusBadge(r.status)),
          ),
        ),
      ),
    ),
    h(
      "div",
      { class: "toolbar" },
      session?.may_enter && page.day0
        ? h(
            "button",
            { type: "button", id: "next-daily-log", class: "primary", onclick: nextLog },
            t("nextDailyLog"),
          )
        : null,
      ...events.map((f) => {
        const n = page.schedule.filter((r) => r.form === f.id).length + 1;
        return h(
          "button",
          { type: "button", id: `new-${f.id}`, onclick: () => open(`${f.id}#${n}`) },
          `${t("newEvent")}: ${tx(f.name)}`,
        );
      }),
      printButton("print-subject", t("printSubject"), () => api.printSubject(subject)),
      h("button", { type: "button", id: "back", onclick: () => void showSubjects() }, t("back")),
    ),
  );
  document.querySelector<HTMLElement>("#schedule button[data-key]")?.focus();
  // One keystroke for the next daily log (D), when not typing in a field.
  document.onkeydown = (e: KeyboardEvent) => {
    const typing =
      e.target instanceof HTMLInputElement ||
      e.target instanceof HTMLSelectElement ||
      e.target instanceof HTMLTextAreaElement;
    if (
      !typing &&
      !e.ctrlKey &&
      !e.altKey &&
      (e.key === "d" || e.key === "D") &&
      byId("next-daily-log")
    ) {
      e.preventDefault();
      nextLog();
    }
  };
}

async function openForm(subject: string, key: string, initial?: FormPage): Promise<void> {
  // The instance's own definition version: the items and rules it was entered under.
  const { form, version } = await api.formDefinition(subject, key);
  rerender = () => void openForm(subject, key);
  await renderForm({
    form,
    version,
    subject,
    key,
    mayEnter: session?.may_enter ?? false,
    missingLabels: new Map(study.missing_codes.map((m) => [m.code, tx(m.label)])),
    onBack: () => void showSubject(subject),
    printBlank: () => printButton("print-form", t("printForm"), () => api.printBlank(form.id)),
    frame,
    initial,
    below:
      form.id === "DLY" ? async () => trendCharts((await api.subject(subject)).trends) : undefined,
  });
}

// ---------------- users (administrators) ----------------

async function showUsersAsync(): Promise<void> {
  rerender = showUsers;
  const users = await api.users();
  const form = h(
    "form",
    { class: "card", id: "user-form" },
    h("h3", {}, t("addUser")),
    input("user-username", t("login")),
    input("user-name", t("fullName")),
    h(
      "div",
      { class: "field" },
      h("label", { for: "user-role" }, t("role")),
      h(
        "div",
        { class: "control" },
        h("select", { id: "user-role" }, ...ROLES.map((r) => h("option", { value: r }, r))),
      ),
    ),
    input("user-password", t("password"), "password"),
    h("p", { class: "hint", id: "user-password-rule" }, t("passwordRule")),
    h("div", { class: "error-line", id: "user-error", role: "alert" }),
    h("button", { type: "submit", id: "user-add", class: "primary" }, t("addUser")),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void guard(async () => {
      await api.addUser(
        val("user-username"),
        val("user-name"),
        ROLES.find((r) => r === byId<HTMLSelectElement>("user-role")?.value) ?? "nurse",
        val("user-password"),
      );
      await showUsersAsync();
      const n = byId("user-error");
      if (n) n.textContent = t("userAdded");
    }, "user-error");
  });
  frame(
    t("users"),
    h(
      "table",
      { class: "grid", id: "user-table" },
      h(
        "thead",
        {},
        h("tr", {}, ...[t("login"), t("fullName"), t("role")].map((c) => h("th", {}, c))),
      ),
      h(
        "tbody",
        {},
        ...users.map((u) =>
          h(
            "tr",
            { "data-user": u.username },
            ...[u.username, u.name, u.role].map((c) => h("td", {}, c)),
          ),
        ),
      ),
    ),
    form,
    h("div", { class: "toolbar" }, subjectsNav(), syncNav()),
  );
  byId("user-username")?.focus();
}

function showUsers(): void {
  void guard(showUsersAsync);
}

// ---------------- export (data manager) ----------------

/** Each export format's name on the Export page (a new format in Rust fails `tsc` here). */
const FORMAT_LABELS: Record<Format, string> = {
  csv: "CSV + dictionary + R",
  stata: "Stata .dta",
  spss: "SPSS .sav",
  sas: "SAS .xpt",
  odm: "CDISC ODM 1.3.2",
};

/** The Export page: formats, forms, site, audit trail, folder; one call per format so the
 * progress bar moves as each is written. Rust writes the files and records each export. */
async function showExportAsync(): Promise<void> {
  rerender = showExport;
  const folder = await api.defaultExportFolder();
  const check = (id: string, label: string, checked: boolean, attrs: Record<string, string> = {}) =>
    h(
      "label",
      { class: "check" },
      h("input", { type: "checkbox", id, checked, ...attrs }),
      ` ${label}`,
    );
  const formats = h(
    "fieldset",
    { id: "export-formats" },
    h("legend", {}, t("exportFormats")),
    ...EXPORT_FORMATS.map((f) =>
      check(`export-format-${f}`, FORMAT_LABELS[f], true, { "data-format": f }),
    ),
  );
  const forms = h(
    "fieldset",
    { id: "export-forms" },
    h("legend", {}, t("exportForms")),
    check("export-forms-all", t("exportFormsAll"), true),
    ...study.forms.map((f) =>
      check(`export-form-${f.id}`, `${f.id} · ${tx(f.name)}`, false, { "data-form": f.id }),
    ),
  );
  const progress = h("progress", { id: "export-progress", max: EXPORT_FORMATS.length, value: 0 });
  const status = h("p", { id: "export-status", role: "status" });
  const files = h("ul", { id: "export-files" });
  const run = h("button", { type: "submit", id: "export-run", class: "primary" }, t("exportRun"));
  // The native folder picker fills the folder field; the field stays editable (typed paths,
  // or a machine where the picker cannot open).
  const pick = h("button", { type: "button", id: "export-pick" }, t("exportPick"));
  pick.addEventListener("click", () => {
    void guard(async () => {
      const chosen = await api.pickFolder(t("exportFolder"), val("export-folder"));
      const field = byId<HTMLInputElement>("export-folder");
      if (chosen && field) field.value = chosen;
    }, "export-error");
  });
  const form = h(
    "form",
    { class: "card", id: "export-form" },
    formats,
    forms,
    input("export-site", t("exportSite")),
    check("export-audit", t("exportAudit"), true),
    input("export-folder", t("exportFolder"), "text", folder),
    pick,
    h("p", { class: "notice", id: "export-warning" }, t("notEncrypted")),
    h("div", { class: "error-line", id: "export-error", role: "alert" }),
    run,
    progress,
    status,
    files,
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void guard(async () => {
      const chosen = Array.from(formats.querySelectorAll<HTMLInputElement>("input[data-format]"))
        .filter((i) => i.checked)
        .flatMap((i) => EXPORT_FORMATS.filter((f) => f === i.dataset.format));
      if (!chosen.length) throw new Error(t("exportNone"));
      const all = byId<HTMLInputElement>("export-forms-all")?.checked ?? true;
      const formIds = all
        ? []
        : Array.from(forms.querySelectorAll<HTMLInputElement>("input[data-form]"))
            .filter((i) => i.checked)
            .map((i) => i.dataset.form ?? "");
      const site = val("export-site").trim();
      run.setAttribute("disabled", "");
      files.replaceChildren();
      progress.setAttribute("max", String(chosen.length));
      progress.setAttribute("value", "0");
      try {
        for (const [n, format] of chosen.entries()) {
          status.textContent = `${t("exportRunning")} ${format} (${n + 1}/${chosen.length})…`;
          const done = await api.export({
            format,
            forms: formIds,
            site: site === "" ? null : site,
            include_audit: byId<HTMLInputElement>("export-audit")?.checked ?? false,
            folder: val("export-folder"),
          });
          progress.setAttribute("value", String(n + 1));
          files.append(
            h(
              "li",
              { "data-format": format },
              `${format}: ${done.files.length} ${t("exportFiles")} · ${done.millis} ms`,
            ),
          );
          status.textContent = `${t("exportDone")}: ${done.folder} · ${done.subjects} ${t("subjects")}`;
        }
      } finally {
        run.removeAttribute("disabled");
      }
    }, "export-error");
  });
  frame(t("exportTitle"), form, h("div", { class: "toolbar" }, subjectsNav()));
}

function showExport(): void {
  void guard(showExportAsync);
}

// ---------------- start ----------------

async function start(): Promise<void> {
  study = await api.study();
  welcome = await api.welcome();
  watchIdle();
  if (!welcome.store_exists) showWelcome();
  else showLogin(false);
  void api.uiReady("login");
  document.title = `${tx(study.title)} — eCRF`;
  // The start-up benchmark only (ECRF_STARTUP_PROBE with a probe user): log in and time the
  // subject list; otherwise the shell answers null and the login screen stays.
  const probe = await api.probeLogin();
  if (probe) {
    session = probe;
    setLang(session.lang);
    lastActivity = Date.now();
    await showSubjects();
    startAutoSync();
    requestAnimationFrame(() => void api.uiReady("subjects"));
  }
}

void start().catch((e) => mount(h("pre", { class: "fatal" }, errorText(e))));
