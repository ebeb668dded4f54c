// The words of the app's own screens in English and Chinese. Form labels, units, answers and
// edit-check messages come from the study definition, not from here.
import type { Lang, FormStatus, Txt } from "./bindings";

const words = {
  appTitle: ["EARLY-IABP eCRF", "EARLY-IABP 电子病例报告表"],
  definitionVersion: ["definition", "研究定义版本"],
  offline: ["Offline · no server set", "离线 · 未配置服务器"],
  welcomeTitle: ["This laptop has no study store yet", "本机尚未建立研究数据库"],
  startSetup: ["Set up this laptop", "设置本机"],
  startDemo: ["Try the demo store", "试用演示数据库"],
  demoHint: [
    "Demo store: log in as nurse, password demo-ward-2026",
    "演示数据库：用户 nurse，密码 demo-ward-2026",
  ],
  setupTitle: ["First-run set-up", "首次设置"],
  site: ["Site code", "中心编号"],
  adminUser: ["Administrator login", "管理员账号"],
  adminName: ["Administrator full name", "管理员姓名"],
  password: ["Password", "密码"],
  passwordAgain: ["Password again", "再次输入密码"],
  passwordsDiffer: ["The two passwords differ", "两次输入的密码不一致"],
  passwordRule: [
    "At least 12 characters and hard to guess: several unrelated words work well.",
    "至少 12 个字符且不易被猜到：可使用几个无关的词语组合。",
  ],
  notEncrypted: [
    "This file is not encrypted: keep it where only the study team can read it, and delete it when it is no longer needed.",
    "此文件未加密：请保存在仅研究团队可访问的位置，不再需要时请删除。",
  ],
  printFolder: ["Folder for printouts (not encrypted)", "打印文件保存位置（未加密）"],
  printFolderChange: ["Printout folder…", "打印文件夹…"],
  createStore: ["Create the encrypted store", "创建加密数据库"],
  recoveryTitle: ["Recovery key — shown once", "恢复密钥——仅显示一次"],
  recoveryText: [
    "Write this key down or print it, and keep it locked away. It is the only way back in if every password is lost. It will not be shown again.",
    "请抄写或打印此密钥并妥善保管。所有密码遗失时，这是唯一的恢复方式。它不会再次显示。",
  ],
  recoveryStored: ["I have stored it", "我已妥善保存"],
  continue: ["Continue", "继续"],
  loginTitle: ["Log in", "登录"],
  lockedTitle: ["Locked — log in to continue", "已锁定——请重新登录"],
  user: ["User", "用户名"],
  logIn: ["Log in", "登录"],
  badLogin: ["Wrong user name or password", "用户名或密码错误"],
  lockNow: ["Lock", "锁定"],
  lockAfter: ["Lock after (min)", "自动锁定（分钟）"],
  subjects: ["Subjects", "受试者"],
  users: ["Users", "用户"],
  exportNav: ["Export data", "导出数据"],
  queriesNav: ["Queries", "质疑列表"],
  auditNav: ["Audit trail", "稽查轨迹"],
  screeningNav: ["Screening log", "筛选日志"],
  syncNav: ["Sync", "同步"],
  exportTitle: ["Export data for analysis", "导出分析数据"],
  exportFormats: ["Formats", "格式"],
  exportFormsAll: ["All forms", "全部表单"],
  exportForms: ["Forms", "表单"],
  exportSite: ["Site (empty = all)", "中心（留空=全部）"],
  exportAudit: ["Include the audit trail", "包含稽查轨迹"],
  exportFolder: ["Folder", "文件夹"],
  exportPick: ["Choose folder…", "选择文件夹…"],
  exportRun: ["Export", "导出"],
  exportRunning: ["Exporting", "正在导出"],
  exportDone: ["Exported (recorded in the audit trail)", "已导出（已记入稽查轨迹）"],
  exportNone: ["Choose at least one format", "请至少选择一种格式"],
  exportFiles: ["files", "个文件"],
  search: ["Search subject number", "搜索受试者编号"],
  newSubject: ["New subject", "新建受试者"],
  subject: ["Subject", "受试者"],
  randomize: ["Randomize", "随机分组"],
  randomized: ["Randomized", "已随机分组"],
  subjectNo: ["Subject number", "受试者编号"],
  iabpDue: [
    "IABP due within 6 h of ECMO start — time left",
    "须在ECMO启动后6小时内置入IABP——剩余时间",
  ],
  noUnloading: [
    "No mechanical unloading within 6 h of ECMO start — time left",
    "ECMO启动后6小时内不进行机械减负——剩余时间",
  ],
  windowPassed: ["6-hour window from ECMO start ended", "距ECMO启动的6小时时间窗已结束"],
  noEcmoStart: ["ECMO start not recorded: no countdown", "未记录ECMO启动时间，无法倒计时"],
  day0: ["Day 0", "第0天"],
  status: ["Status", "状态"],
  forms: ["Forms", "表单"],
  form: ["Form", "表单"],
  due: ["Due", "应完成"],
  open: ["Open", "打开"],
  noSubjects: ["No subjects yet", "暂无受试者"],
  back: ["Back", "返回"],
  save: ["Save", "保存"],
  saved: ["Saved", "已保存"],
  nothingChanged: ["Nothing changed", "没有改动"],
  fixErrors: ["Not saved: fix the marked fields", "未保存：请修改标出的字段"],
  confirmTitle: ["Unusual values — please confirm", "数值异常——请确认"],
  confirmSave: ["Confirm and save", "确认并保存"],
  cancel: ["Cancel", "取消"],
  reasonTitle: ["Reason for change", "修改原因"],
  reasonText: [
    "These saved values will change. Say why:",
    "以下已保存的数值将被修改，请说明原因：",
  ],
  reasonNeeded: ["A reason is needed", "必须填写原因"],
  history: ["History", "修改记录"],
  historyOf: ["History of", "修改记录："],
  when: ["When", "时间"],
  who: ["Who", "操作人"],
  oldValue: ["Old", "原值"],
  newValue: ["New", "新值"],
  why: ["Reason", "原因"],
  fromLab: ["Imported from", "导入自"],
  labNav: ["Laboratory import", "检验结果导入"],
  close: ["Close", "关闭"],
  draftRestored: [
    "Unsaved entries from your last visit were restored.",
    "已恢复上次未保存的录入。",
  ],
  discard: ["Discard them", "放弃"],
  valueEntry: ["value", "数值"],
  calculated: ["calculated by the app", "系统计算"],
  derivedUnknown: [
    "cannot be calculated yet (a value it needs is missing)",
    "暂无法计算（缺少所需数据）",
  ],
  derivedNotApplicable: ["not applicable", "不适用"],
  required: ["required", "必填"],
  missingRequired: ["Still empty (required):", "尚未填写（必填）："],
  warningKept: ["Confirmed warning", "已确认的警告"],
  addUser: ["Add user", "添加用户"],
  login: ["Login", "账号"],
  fullName: ["Full name", "姓名"],
  role: ["Role", "角色"],
  userAdded: ["User added", "已添加用户"],
  mayNotEnter: ["Your role reads data but does not enter it.", "您的角色可以查看但不能录入数据。"],
  logOut: ["Log out", "退出"],
  newEvent: ["New", "新增"],
  dateHint: ["YYYY-MM-DD", "年-月-日"],
  dateTimeHint: ["YYYY-MM-DD HH:MM", "年-月-日 时:分"],
  throttled: ["Too many failed attempts: wait and try again", "失败次数过多：请稍后再试"],
  langSwitch: ["中文", "English"],
  printBook: ["Print blank CRF book", "打印空白病例报告表"],
  printSubject: ["Print this subject's CRF", "打印该受试者病例报告表"],
  printForm: ["Print blank form", "打印空白表单"],
  printed: ["PDF saved", "PDF已保存"],
  printing: ["Printing…", "正在生成PDF…"],
  outcomes: ["Derived outcomes", "自动计算的结局"],
  flags: ["Protocol flags", "方案提示"],
  noFlags: ["No protocol flag", "无方案提示"],
  iabpDelay: ["IABP delay from ECMO start", "IABP距ECMO启动时间"],
  deviation: ["6-hour deviation", "6小时方案偏离"],
  crossover: ["Crossover", "交叉"],
  daysOnEcmo: ["Days on ECMO", "ECMO天数"],
  daysOnIabp: ["Days on IABP", "IABP天数"],
  icuLos: ["ICU length of stay (d)", "ICU住院天数"],
  hospitalLos: ["Hospital length of stay (d)", "住院天数"],
  weaning: ["Successful ECMO weaning", "ECMO撤机成功"],
  deathDate: ["Date of death", "死亡日期"],
  day30Status: ["Status at day 30", "第30天状态"],
  primaryEndpoint: ["Primary endpoint: death within 30 days", "主要终点：30天内死亡"],
  daysAlive: ["Days alive to day 30", "30天内存活天数"],
  yes: ["Yes", "是"],
  no: ["No", "否"],
  unknown: ["Unknown", "不详"],
  alive: ["Alive", "存活"],
  dead: ["Dead", "死亡"],
  notApplicable: ["—", "—"],
  trends: ["Trends over days", "逐日趋势"],
  noTrend: ["No daily log yet", "尚无每日记录"],
  lactate: ["Lactate (mmol/L)", "乳酸（mmol/L）"],
  mapChart: ["MAP (mmHg)", "平均动脉压（mmHg）"],
  pulsePressure: ["Pulse pressure (mmHg)", "脉压（mmHg）"],
  flowChart: ["ECMO flow (L/min)", "ECMO血流量（L/min）"],
  visChart: ["VIS", "血管活性药物评分（VIS）"],
  iabpIn: ["IABP in", "IABP置入"],
  iabpOut: ["IABP out", "IABP撤除"],
  day: ["Day {n}", "第{n}天"],
  nextDailyLog: ["Next daily log (D)", "下一份每日记录（D）"],
  prefilledFrom: ["Device settings copied from", "装置参数复制自"],
  prefilledHint: ["confirm or change them, then save.", "请确认或修改后保存。"],
  diskFull: [
    "Disk full: NOT saved. Free some space on this laptop, then save again (earlier saves are safe).",
    "磁盘已满：未保存。请清理本机磁盘空间后再次保存（之前保存的数据不受影响）。",
  ],
  backupTitle: ["Backup", "备份"],
  backupFolder: ["Backup folder (e.g. USB stick)", "备份文件夹（如U盘）"],
  backupNow: ["Back up now", "立即备份"],
  backingUp: ["Backing up…", "正在备份…"],
  backupDone: ["Encrypted backup written", "加密备份已写入"],
  backupHours: ["Remind after (hours)", "提醒间隔（小时）"],
  backupLast: ["Last backup", "上次备份"],
  backupNever: ["never", "从未备份"],
  backupRemind: [
    "Changes older than the reminder time are only on this laptop: not yet on the server and in no backup. Back up now.",
    "有超过提醒时间的修改仅存于本机：尚未同步到服务器，也没有备份。请立即备份。",
  ],
} as const;

export type Word = keyof typeof words;

let lang: Lang = "en";

export function setLang(l: Lang): void {
  lang = l;
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
}

export function currentLang(): Lang {
  return lang;
}

export function t(w: Word): string {
  return words[w][lang === "zh" ? 1 : 0];
}

/** A word with `{n}` filled in, where each language puts the number in its own place
 * ("Day 3", "第3天"). */
export function tn(w: Word, n: number | string): string {
  return t(w).replace("{n}", String(n));
}

export function tx(text: Txt | null | undefined): string {
  if (!text) return "";
  return lang === "zh" ? text.zh : text.en;
}

const statusWords: Record<FormStatus, [string, string]> = {
  not_started: ["Not started", "未开始"],
  in_progress: ["In progress", "进行中"],
  complete: ["Complete", "已完成"],
  warnings: ["With warnings", "有警告"],
  overdue: ["Overdue", "已逾期"],
  due: ["Due today", "今日应填"],
  missing: ["Missing", "缺失"],
};

export function statusWord(s: FormStatus): string {
  return statusWords[s][lang === "zh" ? 1 : 0];
}

/** A module's own word table (`{ key: [en, zh] }`) as a lookup in the current language. */
export function wordsOf<K extends string>(
  table: Record<K, readonly [string, string]>,
): (word: K) => string {
  return (word) => table[word][currentLang() === "zh" ? 1 : 0];
}
