// Sealed envelopes on the Sync page (administrators): how many this laptop holds, sealed and
// opened, per stratum, and "Load a lease" (whole blocks from the coordinating centre's list,
// sealed to this laptop). Only counts ever reach this screen: an unopened envelope's arm never
// leaves the store (Rust decides who may load; this panel only shows what it answered).
import { api, messageOf } from "./api";
import type { EnvelopesDto } from "./bindings";
import { h } from "./dom";
import { wordsOf } from "./i18n";

const words = {
  title: ["Sealed envelopes", "密封信封"],
  help: [
    "Envelopes let this laptop randomize when the server cannot be reached. Their arms stay sealed until a subject is randomized.",
    "信封用于在无法连接服务器时在本机进行随机分组。分组结果在受试者随机化之前始终保持密封。",
  ],
  stratum: ["Stratum", "分层"],
  sealed: ["Sealed", "未开启"],
  opened: ["Opened", "已开启"],
  none: ["No envelopes on this laptop.", "本机没有信封。"],
  blocks: ["Blocks to load", "载入区组数"],
  load: ["Load a lease", "载入信封"],
  loaded: ["Lease loaded", "信封已载入"],
  notEnrolled: [
    "Enrol this laptop first: leases come from the coordinating centre's server.",
    "请先注册本机：信封由协调中心服务器发放。",
  ],
} as const;

const w = wordsOf(words);

function table(e: EnvelopesDto): HTMLElement {
  if (e.strata.length === 0) return h("p", { id: "envelopes-none", class: "muted" }, w("none"));
  return h(
    "table",
    { id: "envelopes-table" },
    h("tr", {}, h("th", {}, w("stratum")), h("th", {}, w("sealed")), h("th", {}, w("opened"))),
    ...e.strata.map((s) =>
      h(
        "tr",
        {},
        h("td", {}, s.stratum),
        h("td", { class: "envelopes-sealed" }, String(s.sealed)),
        h("td", {}, String(s.opened)),
      ),
    ),
  );
}

/** The panel, for a session that may load leases; nothing for anyone else. */
export async function envelopePanel(): Promise<HTMLElement | null> {
  const e = await api.envelopes();
  if (!e.may_load) return null;
  const body = h("div", {}, table(e));
  const blocks = h("input", {
    id: "lease-blocks",
    type: "number",
    min: 1,
    max: 20,
    value: "1",
    "aria-label": w("blocks"),
  });
  const msg = h("p", { id: "lease-notice", class: "notice", role: "status" });
  const load = h("button", { type: "submit", id: "lease-load", disabled: !e.enrolled }, w("load"));
  const form = h(
    "form",
    { class: "card", id: "envelopes-panel" },
    h("h3", {}, w("title")),
    h("p", { class: "muted" }, w("help")),
    body,
    h("label", {}, `${w("blocks")} `, blocks),
    load,
    e.enrolled ? msg : h("p", { class: "muted" }, w("notEnrolled")),
  );
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    load.setAttribute("disabled", "");
    void api
      .loadLease(Number(blocks.value))
      .then((after) => {
        body.replaceChildren(table(after));
        msg.className = "notice ok";
        msg.textContent = w("loaded");
      })
      .catch((err) => {
        msg.className = "notice error";
        msg.textContent = messageOf(err);
      })
      .finally(() => load.removeAttribute("disabled"));
  });
  return form;
}
