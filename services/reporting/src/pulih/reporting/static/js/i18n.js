// Labels in Indonesian (the default) and English; the choice is remembered in localStorage.
// Phase names (rintisan … prima) are the programme's own terms and stay Indonesian in both.

const STORE_KEY = "pulih.lang";

const LABELS = {
  id: {
    title: "Dasbor IBM",
    subtitle: "Intervensi Berbasis Masyarakat",
    regency: "Kabupaten {code}",
    login_title: "Masuk ke dasbor",
    login_help: "Tempelkan token akses yang diberikan admin kabupaten.",
    token: "Token akses",
    login: "Masuk",
    logout: "Keluar",
    bad_token: "Token tidak valid atau sudah kedaluwarsa.",
    no_right: "Token ini tidak berhak melihat dasbor ini.",
    load_failed: "Data tidak dapat dimuat. Coba lagi nanti.",
    loading: "Memuat…",
    no_data: "Belum ada data.",
    scope: "Cakupan",
    whole_regency: "Seluruh kabupaten",
    your_unit: "Unit Anda",
    months_range: "{from} – {to}",
    download_csv: "Unduh CSV",
    this_month: "Bulan ini ({month})",
    kpi_reached: "Dijangkau",
    kpi_screened: "Diskrining",
    kpi_enrolled: "Mulai program",
    kpi_active: "Klien aktif",
    kpi_sessions: "Sesi diadakan",
    kpi_overdue: "Rujukan terlambat",
    funnel_title: "Alur klien bulanan",
    funnel_note: "{month}; (%) = bagian dari tahap sebelumnya",
    month: "Bulan",
    step_reached: "Dijangkau",
    step_screened: "Diskrining",
    step_enrolled: "Mulai program",
    step_completed: "Selesai program",
    risk_title: "Tingkat risiko hasil skrining",
    risk_note: "Klien diskrining per bulan menurut risiko keseluruhan (ASSIST)",
    risk_low: "Rendah",
    risk_moderate: "Sedang",
    risk_high: "Tinggi",
    sessions_title: "Sesi dan kehadiran",
    sessions_note: "Sesi diadakan dan dihadiri per bulan",
    sessions_note_wide: "Sesi per bulan; angka di atas batang = tingkat kehadiran",
    attendance: "Tingkat kehadiran: {pct}",
    sessions_held: "Sesi diadakan",
    sessions_attended: "Sesi dihadiri",
    referrals_title: "Rujukan menurut status",
    referrals_note: "Rujukan yang dibuat {from} – {to}",
    status_referred: "Menunggu jawaban",
    status_accepted: "Diterima",
    status_declined: "Ditolak",
    status_attended: "Hadir di klinik",
    status_completed: "Selesai",
    status_dropped_out: "Putus",
    status_cancelled: "Dibatalkan",
    median_accept: "Median hari sampai diterima",
    median_close: "Median hari sampai ditutup",
    in_time: "Dijawab tepat waktu",
    overdue_title: "Rujukan belum dijawab melewati batas",
    overdue_none: "Tidak ada rujukan yang belum dijawab melewati batas.",
    overdue_days: "{days} hari",
    escalated: "dieskalasi",
    col_unit: "Unit",
    col_clinic: "Klinik",
    col_respond_by: "Batas jawab",
    col_late: "Terlambat",
    phases_title: "Unit menurut fase",
    phases_note: "Jumlah unit di tiap fase setelah penilaian tiap bulan yang sudah ditutup",
    col_phase: "Fase",
    col_since: "Sejak",
    col_trend: "Tren",
    trend_up: "naik",
    trend_down: "turun",
    trend_steady: "tetap",
    not_assessed: "belum dinilai",
    qol_title: "Perubahan kualitas hidup",
    qol_note: "WHOQOL-BREF (0–100): penilaian awal → akhir program",
    qol_improved: "{improved} dari {clients} klien membaik",
    qol_baseline: "Awal",
    qol_exit: "Akhir",
    domain_physical: "Fisik",
    domain_psychological: "Psikologis",
    domain_social: "Sosial",
    domain_environment: "Lingkungan",
    language: "Bahasa",
  },
  en: {
    title: "IBM dashboard",
    subtitle: "Community-based intervention",
    regency: "Regency {code}",
    login_title: "Sign in to the dashboard",
    login_help: "Paste the access token your regency's administrator gave you.",
    token: "Access token",
    login: "Sign in",
    logout: "Sign out",
    bad_token: "The token is not valid or has expired.",
    no_right: "This token may not view this dashboard.",
    load_failed: "The figures could not be loaded. Try again later.",
    loading: "Loading…",
    no_data: "No data yet.",
    scope: "Scope",
    whole_regency: "Whole regency",
    your_unit: "Your unit",
    months_range: "{from} – {to}",
    download_csv: "Download CSV",
    this_month: "This month ({month})",
    kpi_reached: "Reached",
    kpi_screened: "Screened",
    kpi_enrolled: "Enrolled",
    kpi_active: "Active clients",
    kpi_sessions: "Sessions held",
    kpi_overdue: "Overdue referrals",
    funnel_title: "Monthly client funnel",
    funnel_note: "{month}; (%) = share of the previous step",
    month: "Month",
    step_reached: "Reached",
    step_screened: "Screened",
    step_enrolled: "Enrolled",
    step_completed: "Completed",
    risk_title: "Risk mix at screening",
    risk_note: "Clients screened each month by overall risk (ASSIST)",
    risk_low: "Low",
    risk_moderate: "Moderate",
    risk_high: "High",
    sessions_title: "Sessions and attendance",
    sessions_note: "Sessions held and attended per month",
    sessions_note_wide: "Sessions per month; figure above each bar = attendance rate",
    attendance: "Attendance rate: {pct}",
    sessions_held: "Sessions held",
    sessions_attended: "Sessions attended",
    referrals_title: "Referrals by status",
    referrals_note: "Referrals made {from} – {to}",
    status_referred: "Awaiting answer",
    status_accepted: "Accepted",
    status_declined: "Declined",
    status_attended: "Attended clinic",
    status_completed: "Completed",
    status_dropped_out: "Dropped out",
    status_cancelled: "Cancelled",
    median_accept: "Median days to acceptance",
    median_close: "Median days to closing",
    in_time: "Answered in time",
    overdue_title: "Referrals unanswered past their deadline",
    overdue_none: "No referral is unanswered past its deadline.",
    overdue_days: "{days} days",
    escalated: "escalated",
    col_unit: "Unit",
    col_clinic: "Clinic",
    col_respond_by: "Respond by",
    col_late: "Overdue",
    phases_title: "Units by phase",
    phases_note: "Units in each phase after the assessment of each closed month",
    col_phase: "Phase",
    col_since: "Since",
    col_trend: "Trend",
    trend_up: "up",
    trend_down: "down",
    trend_steady: "steady",
    not_assessed: "not yet assessed",
    qol_title: "Quality-of-life change",
    qol_note: "WHOQOL-BREF (0–100): baseline → exit assessment",
    qol_improved: "{improved} of {clients} clients improved",
    qol_baseline: "Baseline",
    qol_exit: "Exit",
    domain_physical: "Physical",
    domain_psychological: "Psychological",
    domain_social: "Social",
    domain_environment: "Environment",
    language: "Language",
  },
};

export const LANGUAGES = Object.keys(LABELS);

/** Add a page's own labels ({id: {...}, en: {...}}) to the shared ones (the national page's). */
export function addLabels(extra) {
  for (const lang of LANGUAGES) Object.assign(LABELS[lang], extra[lang] || {});
}

let current = LANGUAGES.includes(localStorage.getItem(STORE_KEY)) ? localStorage.getItem(STORE_KEY) : "id";

export function language() {
  return current;
}

export function setLanguage(lang) {
  current = LANGUAGES.includes(lang) ? lang : "id";
  localStorage.setItem(STORE_KEY, current);
  document.documentElement.lang = current;
}

/** The label for key in the current language, with {name} placeholders filled in. */
export function t(key, vars = {}) {
  const text = LABELS[current][key] ?? LABELS.id[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ""));
}

/** Set the text of every element marked data-i18n="key" under root. */
export function applyLabels(root = document) {
  document.documentElement.lang = current;
  for (const node of root.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const node of root.querySelectorAll("[data-i18n-placeholder]")) {
    node.setAttribute("placeholder", t(node.dataset.i18nPlaceholder));
  }
}

function locale() {
  return current === "id" ? "id-ID" : "en-GB";
}

export function number(value) {
  return new Intl.NumberFormat(locale(), { maximumFractionDigits: 1 }).format(value);
}

export function percent(part, whole) {
  if (!whole) return "–";
  return new Intl.NumberFormat(locale(), { style: "percent", maximumFractionDigits: 0 }).format(part / whole);
}

/** "2026-03" as a short month ("Mar 26"), or with the full year when long is set. */
export function month(period, long = false) {
  const [year, mm] = period.split("-").map(Number);
  const options = long ? { month: "long", year: "numeric" } : { month: "short", year: "2-digit" };
  return new Intl.DateTimeFormat(locale(), { ...options, timeZone: "UTC" }).format(Date.UTC(year, mm - 1, 1));
}

/** "2026-03-04" as a local date. */
export function day(isoDate) {
  const [year, mm, dd] = isoDate.split("-").map(Number);
  return new Intl.DateTimeFormat(locale(), { day: "numeric", month: "short", year: "numeric", timeZone: "UTC" })
    .format(Date.UTC(year, mm - 1, dd));
}
