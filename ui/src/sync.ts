// Sync on the desktop: the header badge (online or offline, changes waiting, last sync), the
// automatic sync while online, and the Sync page (Sync now with a progress bar, conflicts,
// enrolment). What a sync does and in which order is decided in Rust (crates/sync); the words
// of this page are kept here, in both languages.
import { api, events, isAppError, messageOf } from "./api";
import type { ConflictDto, SyncStatusDto } from "./bindings";
import { byId, h } from "./dom";
import { envelopePanel } from "./envelopes";
import { wordsOf } from "./i18n";

const words = {
  title: ["Sync with the coordinating centre", "与协调中心同步"],
  online: ["Online", "在线"],
  offline: ["Offline", "离线"],
  notEnrolled: ["Offline · not enrolled", "离线 · 未注册服务器"],
  waiting: ["waiting to send", "条待发送"],
  update: [
    "A newer version of this app is offered by the server: ask your IT department to install version",
    "服务器提供本应用的新版本：请联系信息科安装版本",
  ],
  lastSync: ["last sync", "上次同步"],
  never: ["never", "从未"],
  server: ["Server", "服务器"],
  syncNow: ["Sync now", "立即同步"],
  syncing: ["Syncing…", "正在同步…"],
  sent: ["sent", "已发送"],
  received: ["received", "已接收"],
  done: ["Synced", "同步完成"],
  conflicts: ["Conflicts to resolve", "待解决的冲突"],
  noConflicts: ["No conflicts.", "无冲突。"],
  conflictHelp: [
    "Two laptops changed the same item without seeing each other's value. Both values are kept until someone who may change data checks the source document and chooses the right one, with a reason.",
    "两台电脑在未同步的情况下修改了同一条目。两个值都被保留，直至有权修改数据的人员核对源文件、选定正确的值并说明理由。",
  ],
  resolve: ["Resolve", "处理"],
  keep: ["Keep this", "保留此值"],
  chosen: ["Value to keep (empty clears it)", "保留的值（留空则清除）"],
  reason: ["Reason", "理由"],
  resolved: [
    "Resolved: every laptop reads this value after sync",
    "已处理：同步后各电脑均显示此值",
  ],
  subject: ["Subject", "受试者"],
  form: ["Form", "表单"],
  item: ["Item", "条目"],
  values: ["Values (who, where, when)", "各值（修改人、设备、时间）"],
  enrolTitle: ["Enrol this laptop", "注册本机"],
  enrolHelp: [
    "Give the coordinating centre this laptop's device id; enter the server address (https://) and the one-time code they made for this device.",
    "请将本机设备编号提供给协调中心，然后输入服务器地址（https://）及协调中心为本设备生成的一次性注册码。",
  ],
  device: ["This laptop's device id", "本机设备编号"],
  ca: ["Site CA certificate (PEM file, optional)", "站点 CA 证书（PEM 文件，可选）"],
  caNone: ["public certificate authorities", "公共证书颁发机构"],
  caPick: ["Choose file…", "选择文件…"],
  caSave: ["Save CA setting", "保存 CA 设置"],
  caSaved: ["CA setting saved", "CA 设置已保存"],
  caTitle: ["Trusted certificate", "受信任的证书"],
  code: ["Enrolment code", "注册码"],
  enrol: ["Enrol", "注册"],
  enrolled: ["Enrolled", "已注册"],
  held: [
    "change(s) held back because their form was locked: a data manager decides",
    "条变更因表单已锁定而被暂缓，由数据管理员处理",
  ],
} as const;

const w = wordsOf(words);

const errorText = messageOf;

let status: SyncStatusDto | null = null;
let online = false;
let running: Promise<void> | null = null;
let timer = 0;

function when(utc: string | null): string {
  return utc ? new Date(utc).toLocaleString() : w("never");
}

/** Paints the header badge from what was last learnt (no call into Rust). */
export function paintBadge(): void {
  const badge = byId("badge-online");
  if (!badge || !status) return;
  let text: string;
  if (!status.enrolled) text = w("notEnrolled");
  else if (online) text = `${w("online")} · ${w("lastSync")} ${when(status.last_success)}`;
  else text = `${w("offline")} · ${status.waiting} ${w("waiting")}`;
  badge.textContent = text;
  badge.title = status.server ?? "";
  badge.className = `badge ${online ? "online" : "offline"}`;
  badge.dataset.online = String(online);
}

/** Learns the status and whether the server answers, repaints, and syncs when online and
 *  something waits to be sent. */
export async function refresh(autoSync = true): Promise<void> {
  try {
    status = await api.syncStatus();
    online = status.enrolled ? await api.syncOnline() : false;
  } catch {
    return; // locked or no store yet: the badge keeps its last words
  }
  paintBadge();
  if (autoSync && online && status.waiting > 0 && !running) void syncNow();
}

/** Checks every `seconds` (and syncs automatically while online) until the window closes. */
export function startAutoSync(seconds = 60): void {
  window.clearInterval(timer);
  timer = window.setInterval(() => void refresh(), seconds * 1000);
  void refresh();
}

/** One sync; the progress bar and counts on the Sync page follow it when shown. */
export function syncNow(): Promise<void> {
  if (running) return running;
  const notice = () => byId("sync-notice");
  const bar = () => byId<HTMLProgressElement>("sync-progress");
  const stop = events.syncProgress((p) => {
    const b = bar();
    if (b) {
      b.max = Math.max(p.to_send, 1);
      b.value = p.sent;
    }
    const n = notice();
    if (n)
      n.textContent = `${w("syncing")} ${p.sent}/${p.to_send} ${w("sent")} · ${p.received} ${w("received")}`;
  });
  running = (async () => {
    const n = notice();
    if (n) {
      n.className = "notice";
      n.textContent = w("syncing");
    }
    try {
      const done = await api.syncNow();
      online = true;
      const m = notice();
      if (m) {
        m.className = "notice ok";
        m.textContent = `${w("done")}: ${done.sent} ${w("sent")} · ${done.received} ${w("received")} · ${done.conflicts} ${w("conflicts").toLowerCase()} · ${when(done.finished)}`;
      }
      // What the server flagged (clock off, backdated events, changes held under a lock).
      const f = byId("sync-flags");
      if (f) {
        f.replaceChildren(...done.flags.map((x) => h("li", {}, x)));
        if (done.held) f.append(h("li", {}, `${done.held} ${w("held")}`));
      }
    } catch (e) {
      online = !(isAppError(e) && e.code === "offline") && online;
      const m = notice();
      if (m) {
        m.className = "notice error";
        m.textContent = errorText(e);
      }
    } finally {
      (await stop)();
      running = null;
      await refresh(false);
      drawStatus();
    }
  })();
  return running;
}

function drawStatus(): void {
  const box = byId("sync-status");
  if (!box || !status) return;
  const s = status;
  box.replaceChildren(
    h("p", {}, `${w("server")}: ${s.server ?? "—"}`),
    h("p", { id: "sync-device" }, `${w("device")}: `, h("code", {}, s.device)),
    h("p", { id: "sync-ca" }, `${w("ca")}: ${s.ca_file ?? w("caNone")}`),
    h("p", { id: "sync-last" }, `${w("lastSync")}: ${when(s.last_success)}`),
    h("p", { id: "sync-waiting" }, `${s.waiting} ${w("waiting")}`),
    s.update
      ? h("p", { id: "sync-update", class: "notice", role: "status" }, `${w("update")} ${s.update}`)
      : h("span", {}),
  );
  const conflicts = byId("sync-conflicts");
  if (!conflicts) return;
  conflicts.replaceChildren(
    h("h3", {}, w("conflicts")),
    s.conflicts.length
      ? h(
          "table",
          { class: "grid", id: "conflict-list" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              ...[w("subject"), w("form"), w("item"), w("values")]
                .concat(s.may_resolve ? [w("resolve")] : [])
                .map((c) => h("th", {}, c)),
            ),
          ),
          h(
            "tbody",
            {},
            ...s.conflicts.map((c) =>
              h(
                "tr",
                { "data-item": c.item },
                h("td", {}, c.subject),
                h("td", {}, c.form),
                h("td", {}, c.item),
                h(
                  "td",
                  {},
                  h(
                    "ul",
                    {},
                    ...c.values.map((v) =>
                      h("li", {}, `${v.value ?? "—"} · ${v.user} · ${v.device} · ${when(v.utc)}`),
                    ),
                  ),
                ),
                ...(s.may_resolve ? [resolveCell(c)] : []),
              ),
            ),
          ),
        )
      : h("p", { class: "muted", id: "no-conflicts" }, w("noConflicts")),
  );
  if (s.conflicts.length) conflicts.append(h("p", { class: "muted" }, w("conflictHelp")));
}

/** The resolve cell of a conflict: pick one of the values kept (or type another), give the
 * reason, and Rust writes it as a correction that replaces every value kept. */
function resolveCell(c: ConflictDto): HTMLElement {
  const id = `${c.subject}-${c.form}-${c.item}`.replace(/[^A-Za-z0-9-]/g, "_");
  const value = h("input", {
    id: `resolve-value-${id}`,
    "aria-label": w("chosen"),
    placeholder: w("chosen"),
    value: c.values[0]?.value ?? "",
  });
  const reason = h("input", {
    id: `resolve-reason-${id}`,
    "aria-label": w("reason"),
    placeholder: w("reason"),
  });
  const msg = h("p", { class: "error-line", role: "alert" });
  const keep = c.values.map((v, n) =>
    h(
      "button",
      {
        type: "button",
        class: "link",
        "data-keep": n,
        onclick: () => {
          value.value = v.value ?? "";
          reason.focus();
        },
      },
      `${w("keep")}: ${v.value ?? "—"}`,
    ),
  );
  const form = h(
    "form",
    { class: "resolve", "data-resolve": `${c.form} ${c.item}` },
    ...keep,
    value,
    reason,
    h("button", { type: "submit", class: "primary" }, w("resolve")),
    msg,
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void api
      .resolveConflict(c.subject, c.form, c.item, value.value, reason.value)
      .then((next) => {
        status = next;
        drawStatus();
        const n = byId("sync-notice");
        if (n) {
          n.className = "notice ok";
          n.textContent = `${w("resolved")}: ${c.subject} ${c.form} ${c.item}`;
        }
      })
      .catch((err) => {
        msg.textContent = errorText(err);
      });
  });
  return h("td", {}, form);
}

/** The Sync page: status, Sync now with progress, conflicts and (administrators) enrolment. */
export async function showSyncPage(
  frame: (title: string, ...body: HTMLElement[]) => void,
  back: () => HTMLElement,
): Promise<void> {
  await refresh(false);
  const s = status;
  const now = h(
    "button",
    {
      type: "button",
      id: "sync-now",
      class: "primary",
      disabled: !s?.enrolled,
      onclick: () => void syncNow(),
    },
    w("syncNow"),
  );
  const enrolForm = (): HTMLElement | null => {
    if (!s?.may_enrol) return null;
    const server = h("input", {
      id: "enrol-server",
      "aria-label": w("server"),
      placeholder: "https://…",
      value: s.server ?? "",
    });
    const code = h("input", {
      id: "enrol-code",
      "aria-label": w("code"),
      placeholder: w("code"),
      autocomplete: "off",
    });
    const ca = caField("enrol-ca", s.ca_file ?? "");
    const msg = h("p", { id: "enrol-notice", class: "notice", role: "status" });
    const form = h(
      "form",
      { class: "card", id: "enrol-form" },
      h("h3", {}, w("enrolTitle")),
      h("p", { class: "muted" }, w("enrolHelp")),
      h("p", {}, `${w("device")}: `, h("code", { id: "enrol-device" }, s.device)),
      h("label", {}, `${w("server")} `, server),
      h("label", {}, `${w("code")} `, code),
      ca.label,
      h("button", { type: "submit", id: "enrol-submit" }, w("enrol")),
      msg,
    );
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      void api
        .enrol(server.value, code.value, ca.input.value.trim() || null)
        .then(async () => {
          msg.className = "notice ok";
          msg.textContent = w("enrolled");
          await refresh(false);
          now.removeAttribute("disabled");
          drawStatus();
        })
        .catch((err) => {
          msg.className = "notice error";
          msg.textContent = errorText(err);
        });
    });
    return form;
  };
  const caForm = (): HTMLElement | null => {
    if (!s?.may_enrol || !s.enrolled) return null;
    const ca = caField("site-ca", s.ca_file ?? "");
    const msg = h("p", { id: "site-ca-notice", class: "notice", role: "status" });
    const form = h(
      "form",
      { class: "card", id: "site-ca-form" },
      h("h3", {}, w("caTitle")),
      ca.label,
      h("button", { type: "submit", id: "site-ca-save" }, w("caSave")),
      msg,
    );
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      void api
        .setSiteCa(ca.input.value)
        .then((next) => {
          status = next;
          msg.className = "notice ok";
          msg.textContent = w("caSaved");
          drawStatus();
        })
        .catch((err) => {
          msg.className = "notice error";
          msg.textContent = errorText(err);
        });
    });
    return form;
  };
  frame(
    w("title"),
    h("div", { class: "card", id: "sync-status" }),
    h(
      "div",
      { class: "toolbar" },
      now,
      h("progress", { id: "sync-progress", max: 1, value: 0 }),
      back(),
    ),
    h("p", { id: "sync-notice", class: "notice", role: "status" }),
    h("ul", { id: "sync-flags", class: "notice error", role: "alert" }),
    h("div", { id: "sync-conflicts" }),
    ...[enrolForm(), caForm(), await envelopePanel().catch(() => null)].filter(
      (e): e is HTMLElement => e !== null,
    ),
  );
  drawStatus();
}

/** A CA certificate path field with the native file picker beside it (the field stays
 * editable: typed paths, or a machine where the picker cannot open). */
function caField(id: string, value: string): { label: HTMLElement; input: HTMLInputElement } {
  const input = h("input", {
    id,
    "aria-label": w("ca"),
    placeholder: "/path/to/site-ca.pem",
    value,
  });
  const pick = h("button", { type: "button", id: `${id}-pick` }, w("caPick"));
  pick.addEventListener("click", () => {
    void api.pickCertificate(w("ca")).then((chosen) => {
      if (chosen) input.value = chosen;
    });
  });
  return { label: h("label", {}, `${w("ca")} `, input, pick), input };
}
