// Queries, source-data verification, signatures and locks on one form: the monitor's,
// investigator's and data manager's part of the form page. Who may do what is decided in Rust
// (crates/core/src/role.rs); this panel only shows the buttons the session's rights allow and
// what the store answered. The words of this panel are kept here, in both languages.
import { api, messageOf } from "./api";
import { SIGNATURE_MEANINGS } from "./bindings";
import type { FormDto, FormOversight, Query, QueryStep } from "./bindings";
import { byId, h } from "./dom";
import { tx, wordsOf } from "./i18n";

const words = {
  title: ["Queries, verification and signatures", "质疑、源数据核查与签名"],
  queries: ["Queries", "质疑"],
  noQueries: ["No queries on this form.", "本表无质疑。"],
  raise: ["Raise query", "发起质疑"],
  question: ["Question", "质疑内容"],
  answer: ["Answer", "回复"],
  close: ["Close", "关闭"],
  reopen: ["Reopen", "重新打开"],
  note: ["Note", "说明"],
  item: ["Item", "条目"],
  state: ["State", "状态"],
  raisedBy: ["Raised by", "发起人"],
  open: ["open", "未回复"],
  answered: ["answered", "已回复"],
  closed: ["closed", "已关闭"],
  verified: ["items verified against source", "个条目已完成源数据核查"],
  verifyForm: ["Mark form verified (SDV)", "标记本表已核查（SDV）"],
  sdvMark: ["SDV ✓", "已核查 ✓"],
  signatures: ["Signatures", "签名"],
  noSignatures: ["Not signed.", "尚未签名。"],
  signForm: ["Sign this form", "签署本表"],
  signUser: ["User id", "用户名"],
  signPassword: ["Password", "密码"],
  meaning: ["Meaning", "签名含义"],
  approval: ["I approve the data in this record", "本人确认本记录中的数据"],
  review: ["I have reviewed the data in this record", "本人已审阅本记录中的数据"],
  sign: ["Sign", "签名"],
  cancel: ["Cancel", "取消"],
  valid: ["valid", "有效"],
  broken: [
    "BROKEN — a signed value changed; needs re-signing",
    "已失效——签名后数据被修改，需重新签名",
  ],
  locked: ["Locked", "已锁定"],
  lockForm: ["Lock form", "锁定本表"],
  unlockForm: ["Unlock form", "解锁本表"],
  reason: ["Reason", "原因"],
} as const;

type Word = keyof typeof words;

const w = wordsOf(words);

function stateWord(state: string): string {
  return state === "open" || state === "answered" || state === "closed" ? w(state) : state;
}

export interface OversightContext {
  subject: string;
  key: string;
  form: FormDto;
  /** Redraws the whole form page (after a step that changes what the form shows). */
  reload: () => void;
}

const errorText = messageOf;

/** Draws the panel into `#oversight` and marks fields with query badges and SDV marks. */
export async function renderOversight(ctx: OversightContext): Promise<void> {
  const box = byId("oversight");
  if (!box) return;
  const view = await api.formOversight(ctx.subject, ctx.key);
  const label = (item: string): string =>
    tx(ctx.form.items.find((i) => i.id === item)?.label) || item;
  const notice = h("div", { class: "msg", id: "oversight-notice", role: "status" });
  const run = async (step: () => Promise<unknown>): Promise<void> => {
    try {
      await step();
      ctx.reload();
    } catch (e) {
      notice.className = "msg error";
      notice.textContent = errorText(e);
    }
  };

  markFields(view);

  const queryRow = (q: Query): HTMLElement => {
    const text = h("input", { id: `q-text-${q.id}`, "aria-label": w("note"), class: "q-text" });
    const step = (name: QueryStep, word: Word) =>
      h(
        "button",
        {
          type: "button",
          "data-query": q.id,
          "data-step": name,
          onclick: () => void run(() => api.queryStep(q.id, name, text.value)),
        },
        w(word),
      );
    const actions: HTMLElement[] = [];
    if (view.rights.answer && q.state === "open") actions.push(step("answer", "answer"));
    if (view.rights.query && q.state !== "closed") actions.push(step("close", "close"));
    if (view.rights.query && q.state !== "open") actions.push(step("reopen", "reopen"));
    return h(
      "tr",
      { class: `query q-${q.state}`, "data-item": q.item },
      h("td", {}, label(q.item)),
      h("td", {}, h("span", { class: `qstate q-${q.state}` }, stateWord(q.state))),
      h("td", { class: "q-question" }, q.text),
      h("td", {}, `${q.raised_by} · ${new Date(q.raised_utc).toLocaleString()}`),
      h("td", {}, actions.length ? text : null, ...actions),
    );
  };

  const queries = view.queries.length
    ? h(
        "table",
        { class: "grid", id: "queries" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ...[w("item"), w("state"), w("question"), w("raisedBy"), ""].map((c) => h("th", {}, c)),
          ),
        ),
        h("tbody", {}, ...view.queries.map(queryRow)),
      )
    : h("p", { class: "muted" }, w("noQueries"));

  const raise = view.rights.query
    ? (() => {
        const item = h(
          "select",
          { id: "raise-item", "aria-label": w("item") },
          ...ctx.form.items
            .filter((i) => !i.derived)
            .map((i) => h("option", { value: i.id }, `${tx(i.label)} (${i.id})`)),
        );
        const text = h("input", {
          id: "raise-text",
          "aria-label": w("question"),
          placeholder: w("question"),
        });
        return h(
          "div",
          { class: "toolbar" },
          item,
          text,
          h(
            "button",
            {
              type: "button",
              id: "raise-query",
              onclick: () =>
                void run(() => api.raiseQuery(ctx.subject, ctx.key, item.value, text.value)),
            },
            w("raise"),
          ),
        );
      })()
    : null;

  const sdv = h(
    "p",
    { id: "sdv-status" },
    `${view.verified.length} ${w("verified")}`,
    view.rights.verify
      ? h(
          "button",
          {
            type: "button",
            id: "verify-form",
            onclick: () => void run(() => api.verifyForm(ctx.subject, ctx.key)),
          },
          w("verifyForm"),
        )
      : null,
  );

  const signatures = h(
    "ul",
    { id: "signatures" },
    ...(view.signatures.length
      ? view.signatures.map((s) =>
          h(
            "li",
            { class: s.valid ? "sig valid" : "sig broken" },
            `${s.name} (${s.signer}) · ${s.utc} UTC (${s.offset}) · ${s.scope} · “${tx(s.meaning)}” — `,
            h("strong", {}, s.valid ? w("valid") : w("broken")),
          ),
        )
      : [h("li", { class: "muted" }, w("noSignatures"))]),
  );

  const signButton = view.rights.sign
    ? h(
        "button",
        {
          type: "button",
          id: "sign-form",
          class: "primary",
          onclick: () => openSignDialog(ctx, view.sign_needs_user),
        },
        w("signForm"),
      )
    : null;

  const lockBox = (() => {
    const lockedLine = view.locked
      ? h("p", { class: "locked", id: "locked" }, `🔒 ${w("locked")}: ${view.locked}`)
      : null;
    if (!view.rights.lock) return lockedLine;
    const reason = h("input", {
      id: "lock-reason",
      "aria-label": w("reason"),
      placeholder: w("reason"),
    });
    const lock = !view.locked;
    return h(
      "div",
      { class: "toolbar" },
      lockedLine,
      reason,
      h(
        "button",
        {
          type: "button",
          id: lock ? "lock-form" : "unlock-form",
          onclick: () => void run(() => api.lockForm(ctx.subject, ctx.key, reason.value, lock)),
        },
        lock ? w("lockForm") : w("unlockForm"),
      ),
    );
  })();

  box.replaceChildren(
    h("h3", {}, w("title")),
    lockBox ?? h("span"),
    h("h4", {}, w("queries")),
    queries,
    raise ?? h("span"),
    sdv,
    h("h4", {}, w("signatures")),
    signatures,
    signButton ?? h("span"),
    notice,
  );
}

/** A "?" badge on each field with an unclosed query, and an SDV mark on each verified one. */
function markFields(view: FormOversight): void {
  for (const q of view.queries) {
    if (q.state === "closed") continue;
    const labelEl = byId(`l-${q.item}`);
    if (labelEl && !labelEl.querySelector(".query-badge")) {
      labelEl.append(h("span", { class: "query-badge", title: q.text, "data-item": q.item }, " ?"));
    }
  }
  for (const item of view.verified) {
    const labelEl = byId(`l-${item}`);
    if (labelEl && !labelEl.querySelector(".sdv-mark"))
      labelEl.append(h("span", { class: "sdv-mark", "data-item": item }, ` ${w("sdvMark")}`));
  }
  if (view.locked) {
    for (const el of Array.from(
      document.querySelectorAll<HTMLInputElement>(
        "#crf-form input, #crf-form select, #crf-form textarea",
      ),
    ))
      el.disabled = true;
    const save = byId<HTMLButtonElement>("save");
    if (save) save.disabled = true;
  }
}

function openSignDialog(ctx: OversightContext, needsUser: boolean): void {
  const user = needsUser
    ? h("input", { id: "sign-user", autocomplete: "username", "aria-label": w("signUser") })
    : null;
  const password = h("input", {
    id: "sign-password",
    type: "password",
    autocomplete: "current-password",
    "aria-label": w("signPassword"),
  });
  const meaning = h(
    "select",
    { id: "sign-meaning", "aria-label": w("meaning") },
    ...SIGNATURE_MEANINGS.map((m) => h("option", { value: m }, w(m))),
  );
  const err = h("div", { class: "msg error", id: "sign-error", role: "alert" });
  const submit = h("button", { type: "button", id: "sign-submit", class: "primary" }, w("sign"));
  const cancel = h("button", { type: "button", id: "sign-cancel" }, w("cancel"));
  const dialog = h(
    "div",
    { class: "modal", id: "sign-dialog", role: "dialog", "aria-modal": "true" },
    h(
      "div",
      { class: "modal-body" },
      h("h3", {}, `${w("signForm")}: ${ctx.subject} ${ctx.key}`),
      user ? h("label", {}, w("signUser"), user) : null,
      h("label", {}, w("signPassword"), password),
      h("label", {}, w("meaning"), meaning),
      err,
      h("div", { class: "actions" }, submit, cancel),
    ),
  );
  const done = () => dialog.remove();
  cancel.addEventListener("click", done);
  dialog.addEventListener("keydown", (e) => {
    const ke = e as KeyboardEvent;
    if (ke.key === "Escape") done();
    if (ke.key === "Enter") submit.click();
  });
  submit.addEventListener("click", () => {
    void api
      .sign({
        subject: ctx.subject,
        key: ctx.key,
        meaning: SIGNATURE_MEANINGS.find((m) => m === meaning.value) ?? "approval",
        user: user ? user.value : null,
        password: password.value,
      })
      .then(() => {
        done();
        ctx.reload();
      })
      .catch((e: unknown) => {
        err.textContent = errorText(e);
        password.value = "";
        password.focus();
      });
  });
  document.body.append(dialog);
  (user ?? password).focus();
}
