# ruff: noqa: E501  (embedded HTML/CSS/JS page)
"""The cashier's hint panel at ``/``: one self-contained page fed by ``GET /v1/events``.

A till may have no internet, so the page carries its own CSS and script and names no
external URL (no CDN, no web fonts). It needs no keyboard and nothing to click: it opens a
Server-Sent-Events stream, draws the latest state, and reconnects by itself when the agent
restarts. The chrome's labels are Russian or English (``[till] language``); the hint texts
come already localized from the rules engine. Event data is put on the page with
``textContent`` only, never parsed as HTML.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

# How long a finished sale (confirmed, cancelled, refunded) stays on the screen.
CLEAR_AFTER_SECONDS = 20

LABELS: dict[str, dict[str, str]] = {
    "ru": {
        "title": "Подсказки кассиру",
        "till": "касса",
        "conn_connecting": "Подключение…",
        "conn_open": "На связи",
        "conn_lost": "Нет связи с агентом — переподключаюсь…",
        "conn_refused": "Агент не принял токен: откройте панель по адресу /?token=…",
        "customer": "Покупатель",
        "no_card": "Карта не предъявлена",
        "no_card_help": "Проведите карту или отсканируйте её код",
        "balance": "Баланс",
        "redeemable": "Можно списать",
        "pending": "В ожидании",
        "points": "б.",
        "blocked": "заблокирована",
        "hints": "Подсказки",
        "no_hints": "Подсказок нет",
        "receipt": "Чек",
        "total": "Итого",
        "discount": "Скидка",
        "redeem_will": "Спишется",
        "redeem_done": "Списано",
        "accrue_will": "Начислится",
        "accrue_done": "Начислено",
        "returned": "Возврат",
        "points_returned": "Возвращено баллов",
        "points_reversed": "Снято баллов",
        "status_calculated": "рассчитан",
        "status_confirmed": "оплачен",
        "status_cancelled": "отменён",
        "status_refunded": "возврат",
        "offline": "Нет связи с офисом: касса работает офлайн",
        "last_sync": "последняя синхронизация",
        "never": "ещё не было",
        "unsynced": "не отправлено записей",
        "read_rejected": "Карта не прочитана — проведите ещё раз",
        "dev_printer": "Принтер",
        "dev_card_reader": "Считыватель карт",
        "dev_scanner": "Сканер",
        "dev_intercept": "Перехват чеков",
        "dev_offline": "не на связи",
        "dev_paper_out": "нет бумаги",
        "dev_cover_open": "открыта крышка",
        "dev_error": "ошибка",
        "kind_upsell": "Предложите",
        "kind_birthday": "Поздравьте",
        "kind_tier": "Уровень",
        "kind_coupon": "Купон",
        "kind_ask_card": "Карта",
        "kind_offline": "Офлайн",
        "kind_device": "Устройство",
        "kind_warning": "Внимание",
        "kind_promo": "Акция",
        "kind_balance": "Баллы",
        "kind_greeting": "Покупатель",
    },
    "en": {
        "title": "Cashier hints",
        "till": "till",
        "conn_connecting": "Connecting…",
        "conn_open": "Connected",
        "conn_lost": "No connection to the agent — retrying…",
        "conn_refused": "The agent refused the token: open the panel as /?token=…",
        "customer": "Customer",
        "no_card": "No card presented",
        "no_card_help": "Swipe the card or scan its code",
        "balance": "Balance",
        "redeemable": "Redeemable now",
        "pending": "Pending",
        "points": "pts",
        "blocked": "blocked",
        "hints": "Hints",
        "no_hints": "No hints",
        "receipt": "Receipt",
        "total": "Total",
        "discount": "Discount",
        "redeem_will": "To redeem",
        "redeem_done": "Redeemed",
        "accrue_will": "To earn",
        "accrue_done": "Earned",
        "returned": "Returned",
        "points_returned": "Points given back",
        "points_reversed": "Points taken back",
        "status_calculated": "calculated",
        "status_confirmed": "paid",
        "status_cancelled": "cancelled",
        "status_refunded": "refunded",
        "offline": "No connection to head office: the till works offline",
        "last_sync": "last sync",
        "never": "never",
        "unsynced": "entries not sent",
        "read_rejected": "The card was not read — swipe it again",
        "dev_printer": "Printer",
        "dev_card_reader": "Card reader",
        "dev_scanner": "Scanner",
        "dev_intercept": "Receipt interception",
        "dev_offline": "offline",
        "dev_paper_out": "out of paper",
        "dev_cover_open": "cover open",
        "dev_error": "error",
        "kind_upsell": "Suggest",
        "kind_birthday": "Congratulate",
        "kind_tier": "Tier",
        "kind_coupon": "Coupon",
        "kind_ask_card": "Card",
        "kind_offline": "Offline",
        "kind_device": "Device",
        "kind_warning": "Attention",
        "kind_promo": "Promotion",
        "kind_balance": "Points",
        "kind_greeting": "Customer",
    },
}


def panel_html(
    *,
    language: str,
    till: str,
    store: str,
    card_session_seconds: int = 120,
    clear_after_seconds: int = CLEAR_AFTER_SECONDS,
) -> str:
    """The hint panel page for one till, its chrome in ``language`` (``ru`` or ``en``)."""
    try:
        labels = LABELS[language]
    except KeyError:
        raise ValueError(f"no hint panel labels for language {language!r}") from None
    config: dict[str, Any] = {
        "lang": language,
        "labels": labels,
        "session_seconds": card_session_seconds,
        "clear_after_seconds": min(clear_after_seconds, card_session_seconds),
    }
    # JSON inside <script>: no "</script>" or "<!--" can be formed from config text.
    blob = json.dumps(config, ensure_ascii=False)
    blob = blob.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    values = {k: html.escape(v) for k, v in labels.items()}
    values |= {"lang": language, "store": html.escape(store), "till_id": html.escape(till)}
    values["config"] = blob
    # One pass: a "{{...}}" inside a store's or till's name is text, never a placeholder.
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], _PAGE)


_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


_PAGE = """<!doctype html>
<html lang="{{lang}}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{{title}} — {{till_id}}</title>
<style>
:root{--bg:#0b0f14;--panel:#161c24;--line:#2b3440;--fg:#f4f6f8;--muted:#9aa6b4;
 --yellow:#ffd23f;--orange:#ff9f1c;--red:#d7263d;--green:#2ec27e;--blue:#4ea8ff;--pink:#ff7eb6;--purple:#b48cff}
*{box-sizing:border-box}
[hidden]{display:none!important}
html,body{height:100%;margin:0}
body{background:var(--bg);color:var(--fg);font-family:system-ui,"DejaVu Sans","Liberation Sans",Arial,sans-serif;
 font-size:clamp(22px,2.5vw,44px);line-height:1.22;display:flex;flex-direction:column;overflow:hidden;
 user-select:none;-webkit-user-select:none;font-variant-numeric:tabular-nums}
header{display:flex;justify-content:space-between;align-items:center;gap:1em;padding:.3em .8em;
 font-size:.72em;color:var(--muted);border-bottom:2px solid var(--line)}
#conn{display:flex;align-items:center;gap:.45em;font-weight:600}
#conn .dot{width:.85em;height:.85em;border-radius:50%;background:var(--muted)}
#conn[data-state=open]{color:var(--green)} #conn[data-state=open] .dot{background:var(--green)}
#conn[data-state=lost],#conn[data-state=refused]{color:#ff6b7d}
#conn[data-state=lost] .dot,#conn[data-state=refused] .dot{background:var(--red);animation:blink 1s steps(2) infinite}
@keyframes blink{50%{opacity:.2}}
#banners:empty{display:none}
.banner{padding:.35em .8em;font-weight:700;border-bottom:2px solid rgba(0,0,0,.35)}
.banner small{display:block;font-weight:400;font-size:.65em;opacity:.9}
.banner.device,.banner.connection{background:var(--red);color:#fff}
.banner.device.warn{background:var(--orange);color:#111}
.banner.offline{background:var(--orange);color:#111}
.banner.notice{background:var(--yellow);color:#111}
main{flex:1;display:grid;grid-template-columns:minmax(0,2fr) minmax(0,3fr);gap:.6em;padding:.6em;min-height:0}
body[data-conn=lost] main,body[data-conn=refused] main,body[data-conn=lost] footer,body[data-conn=refused] footer{opacity:.35}
section{background:var(--panel);border-radius:.35em;padding:.5em .7em;min-height:0;overflow:hidden}
.label{font-size:.6em;text-transform:uppercase;letter-spacing:.08em;color:var(--muted);margin-bottom:.3em}
.muted{color:var(--muted)}
.help{font-size:.7em;margin-top:.4em}
.name{font-size:1.55em;font-weight:800;line-height:1.1;overflow-wrap:anywhere}
.meta{display:flex;flex-wrap:wrap;align-items:center;gap:.5em;margin:.3em 0 .5em;font-size:.85em;color:var(--muted)}
.badge{display:inline-block;padding:.08em .5em;border-radius:1em;font-size:.8em;font-weight:800;
 text-transform:uppercase;letter-spacing:.05em;background:var(--blue);color:#111}
.tier-gold{background:#f2c14e}.tier-silver{background:#c9d1d9}.tier-platinum{background:#e6e1ff}
.tier-bronze{background:#d08c4f}.badge.blocked{background:var(--red);color:#fff}
.balance{font-size:2.3em;font-weight:800;line-height:1}
.balance .unit,.fig .unit{font-size:.45em;font-weight:600;color:var(--muted);margin-left:.2em}
.figs{display:grid;grid-template-columns:1fr 1fr;gap:.2em 1em;margin-top:.5em}
.fig{font-size:1.05em;font-weight:700}
.fig .k{display:block;font-size:.55em;font-weight:400;color:var(--muted);text-transform:uppercase;letter-spacing:.06em}
.note{margin-top:.5em;font-size:.75em;color:var(--muted)}
#hints{list-style:none;margin:0;padding:0}
#hints li{background:#1f2731;border-left:.3em solid var(--muted);border-radius:.25em;padding:.3em .55em;margin:0 0 .35em;overflow-wrap:anywhere}
#hints li .tag{display:block;font-size:.5em;font-weight:800;text-transform:uppercase;letter-spacing:.1em;opacity:.8}
#hints li.lead{font-size:1.3em;font-weight:800;padding:.35em .55em}
#hints li[data-kind=upsell]{background:var(--yellow);color:#111;border-color:#b38f00;font-weight:800}
#hints li[data-kind=ask_card]{background:var(--orange);color:#111;border-color:#a85d00;font-weight:800}
#hints li[data-kind=warning],#hints li[data-kind=device]{background:var(--red);color:#fff;border-color:#7d0f1f}
#hints li[data-kind=birthday]{border-color:var(--pink)}
#hints li[data-kind=tier]{border-color:var(--blue)}
#hints li[data-kind=coupon]{border-color:var(--green)}
#hints li[data-kind=promo]{border-color:var(--purple)}
#hints li[data-kind=offline]{border-color:var(--orange)}
body.done #hints{opacity:.45}
body.done .note{display:none}  /* the engine's balance line is from before the sale */
footer{display:flex;flex-wrap:wrap;align-items:baseline;gap:.2em .9em;padding:.35em .8em;border-top:2px solid var(--line);font-size:.75em}
footer b{font-size:1.25em}
.status{padding:.05em .45em;border-radius:.3em;font-size:.8em;font-weight:700;background:var(--line)}
.status.confirmed{background:var(--green);color:#111}.status.cancelled,.status.refunded{background:var(--orange);color:#111}
@media (max-aspect-ratio:1/1){main{grid-template-columns:1fr;grid-template-rows:auto 1fr}}
</style></head>
<body data-conn="connecting">
<header>
 <div><span data-testid="store">{{store}}</span> · {{till}} <span data-testid="till">{{till_id}}</span></div>
 <div id="conn" data-testid="connection" data-state="connecting"><span class="dot"></span><span id="conn-text">{{conn_connecting}}</span></div>
</header>
<div id="banners" data-testid="banners"></div>
<main>
 <section id="customer" data-testid="customer">
  <div class="label">{{customer}}</div>
  <div id="c-empty" data-testid="customer-empty"><div class="muted">{{no_card}}</div><div class="muted help">{{no_card_help}}</div></div>
  <div id="c-body" hidden>
   <div class="name" data-testid="customer-name"></div>
   <div class="meta"><span data-testid="customer-number"></span><span class="badge" data-testid="customer-tier"></span><span class="badge blocked" data-testid="customer-blocked" hidden>{{blocked}}</span></div>
   <div class="label">{{balance}}</div>
   <div class="balance"><span data-testid="customer-balance"></span><span class="unit">{{points}}</span></div>
   <div class="figs">
    <div class="fig"><span class="k">{{redeemable}}</span><span data-testid="customer-redeemable"></span><span class="unit">{{points}}</span></div>
    <div class="fig"><span class="k">{{pending}}</span><span data-testid="customer-pending"></span><span class="unit">{{points}}</span></div>
   </div>
   <div class="note" data-testid="customer-note"></div>
  </div>
 </section>
 <section id="hints-box">
  <div class="label">{{hints}}</div>
  <ol id="hints" data-testid="hints"></ol>
  <div id="no-hints" class="muted">{{no_hints}}</div>
 </section>
</main>
<footer id="receipt" data-testid="receipt" hidden></footer>
<script type="application/json" id="panel-config">{{config}}</script>
<script>
(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("panel-config").textContent);
  var L = cfg.labels;
  var KINDS = ["card", "hints", "receipt", "device", "sync"];
  var QUIET = {online: 1, starting: 1, stopped: 1, not_configured: 1};
  var DONE = {confirmed: 1, cancelled: 1, refunded: 1};
  var token = new URLSearchParams(location.search).get("token");
  var url = "/v1/events" + (token ? "?token=" + encodeURIComponent(token) : "");
  var ints = new Intl.NumberFormat(cfg.lang, {maximumFractionDigits: 0});
  var state, source = null, retry = null, delay = 1000, conn = "connecting";

  function fresh() {
    return {customer: null, until: 0, hints: [], receipt: null, devices: {}, sync: null, notice: null};
  }
  state = fresh();

  function $(id) { return document.getElementById(id); }
  function el(tag, cls, text, testid) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    if (testid) { e.setAttribute("data-testid", testid); }
    return e;
  }
  function points(n) { return typeof n === "number" ? ints.format(n) : "—"; }
  // Money as the API and the engine's hint texts write it ("190.00"): one style on screen.
  function money(s) { return s === undefined || s === null ? "—" : String(s); }
  function now() { return Date.now(); }
  function keep(seconds) {
    // The customer stays while the card session would; a finished sale shortens it.
    state.until = now() + seconds * 1000;
  }

  // ------------------------------------------------------------ events
  function onCard(d) {
    if (state.receipt && (DONE[state.receipt.status] ||
        (state.receipt.card && state.receipt.card.number !== d.number))) {
      state.receipt = null;
    }
    state.customer = d;
    state.hints = d.hints || [];
    keep(cfg.session_seconds);
  }
  function onHints(d) {
    if (d.card) {
      state.customer = d.card;
      keep(cfg.session_seconds);
    } else if (d.receipt_id) {
      state.customer = null;  // a sale calculated without a card
      keep(cfg.session_seconds);
    }
    state.hints = d.hints || [];
  }
  function onReceipt(d) {
    state.receipt = d;
    if (d.card && state.customer && d.card.number === state.customer.number) {
      state.customer = Object.assign({}, state.customer, d.card);
    }
    if (DONE[d.status]) {
      state.until = Math.min(state.until || Infinity, now() + cfg.clear_after_seconds * 1000);
    } else {
      keep(cfg.session_seconds);
    }
  }
  function onDevice(d) {
    if (d.event === "status_changed") {
      state.devices[d.device] = d;
    } else if (d.event === "read_rejected") {
      state.notice = {text: L.read_rejected, until: now() + 8000};
    }
  }
  function onSync(d) { state.sync = d; }
  var HANDLERS = {card: onCard, hints: onHints, receipt: onReceipt, device: onDevice, sync: onSync};

  // ------------------------------------------------------------ drawing
  function deviceProblem(d) {
    var quiet = QUIET[d.status];
    if (quiet && !(d.status === "online" && d.message)) { return null; }
    var text = d.message || ((L["dev_" + d.device] || d.device) + ": " + (L["dev_" + d.status] || d.status));
    return {text: text, detail: d.error || "", warn: !!quiet};
  }
  function drawBanners() {
    var box = $("banners"), problems = [];
    box.textContent = "";
    if (conn === "lost" || conn === "refused") {
      box.append(el("div", "banner connection", L["conn_" + conn], "banner-connection"));
    }
    Object.keys(state.devices).sort().forEach(function (name) {
      var p = deviceProblem(state.devices[name]);
      if (!p) { return; }
      problems.push(p.text);
      var b = el("div", "banner device" + (p.warn ? " warn" : ""), p.text, "banner-device");
      b.setAttribute("data-device", name);
      if (p.detail) { b.append(el("small", "", p.detail)); }
      box.append(b);
    });
    var offline = (state.sync && state.sync.offline) || (state.receipt && state.receipt.offline);
    if (offline) {
      var o = el("div", "banner offline", L.offline, "banner-offline");
      if (state.sync && state.sync.mode === "hq") {
        var last = state.sync.last_sync ? new Date(state.sync.last_sync) : null;
        var when = last && !isNaN(last.getTime())
          ? last.toLocaleString(cfg.lang, {day: "2-digit", month: "2-digit", hour: "2-digit", minute: "2-digit"})
          : L.never;
        var info = L.last_sync + ": " + when;
        if (state.sync.unsynced_entries) { info += "; " + L.unsynced + ": " + points(state.sync.unsynced_entries); }
        o.append(el("small", "", info));
      }
      box.append(o);
    }
    if (state.notice) {
      box.append(el("div", "banner notice", state.notice.text, "notice"));
    }
    return problems;
  }
  function drawCustomer(notes) {
    var c = state.customer;
    $("c-empty").hidden = !!c;
    $("c-body").hidden = !c;
    if (!c) { return; }
    var q = function (id) { return document.querySelector('[data-testid="' + id + '"]'); };
    q("customer-name").textContent = c.holder || c.number || "";
    q("customer-number").textContent = c.number || "";
    var tier = q("customer-tier");
    tier.textContent = c.tier || "";
    tier.hidden = !c.tier;
    tier.className = "badge tier-" + String(c.tier || "").toLowerCase().replace(/[^a-z0-9_-]/g, "");
    q("customer-blocked").hidden = c.status !== "blocked";
    var fields = {"customer-balance": c.balance, "customer-redeemable": c.redeemable, "customer-pending": c.pending};
    Object.keys(fields).forEach(function (id) {
      q(id).textContent = points(fields[id]);
      q(id).setAttribute("data-value", typeof fields[id] === "number" ? String(fields[id]) : "");
    });
    q("customer-note").textContent = notes.join(" · ");
  }
  function drawHints(problems) {
    var list = $("hints"), notes = [], shown = 0;
    list.textContent = "";
    state.hints.forEach(function (h) {
      // Who the customer is and their balance are drawn in the customer box.
      if (state.customer && (h.kind === "greeting" || h.kind === "balance")) {
        if (h.kind === "balance") { notes.push(h.text); }
        return;
      }
      if (h.kind === "device" && problems.indexOf(h.text) >= 0) { return; }  // already a banner
      var li = el("li", shown === 0 ? "lead" : "", null, "hint");
      li.setAttribute("data-kind", h.kind);
      li.append(el("span", "tag", L["kind_" + h.kind] || h.kind), el("span", "text", h.text, "hint-text"));
      list.append(li);
      shown += 1;
    });
    $("no-hints").hidden = shown > 0;
    return notes;
  }
  function fig(box, label, value, testid) {
    var s = el("span", "", label + " ");
    s.append(el("b", "", value, testid));
    box.append(s);
  }
  function drawReceipt() {
    var r = state.receipt, box = $("receipt");
    box.textContent = "";
    box.hidden = !r;
    document.body.classList.toggle("done", !!(r && DONE[r.status]));
    if (!r) { return; }
    var head = el("span", "", L.receipt + " ");
    head.append(el("b", "", r.receipt_id, "receipt-id"));
    box.append(head, el("span", "status " + r.status, L["status_" + r.status] || r.status, "receipt-status"));
    if (r.status === "refunded") {
      fig(box, L.returned, money(r.amount_returned), "receipt-returned");
      fig(box, L.points_returned, points(r.points_returned), "receipt-points-returned");
      fig(box, L.points_reversed, points(r.points_reversed), "receipt-points-reversed");
      return;
    }
    if (r.total !== undefined) { fig(box, L.total, money(r.total), "receipt-total"); }
    if (r.discount !== undefined) { fig(box, L.discount, money(r.discount), "receipt-discount"); }
    var done = r.status === "confirmed";
    if (r.redeemed) { fig(box, done ? L.redeem_done : L.redeem_will, points(r.redeemed.points) + " " + L.points, "receipt-redeemed"); }
    if (r.accrued) { fig(box, done ? L.accrue_done : L.accrue_will, points(r.accrued.points) + " " + L.points, "receipt-accrued"); }
  }
  function render() {
    var problems = drawBanners();
    var notes = drawHints(problems);
    drawCustomer(notes);
    drawReceipt();
  }
  function tick() {
    var changed = false;
    if (state.until && now() > state.until) {
      state.customer = null; state.hints = []; state.receipt = null; state.until = 0;
      changed = true;
    }
    if (state.notice && now() > state.notice.until) { state.notice = null; changed = true; }
    if (changed) { render(); }
  }

  // ------------------------------------------------------------ connection
  function setConn(s) {
    conn = s;
    $("conn").setAttribute("data-state", s);
    document.body.setAttribute("data-conn", s);
    $("conn-text").textContent = L["conn_" + s];
    render();
  }
  function probe() {
    // EventSource hides the status code: ask once more to tell a refused token from a dead agent.
    var ctl = new AbortController();
    fetch(url, {signal: ctl.signal, cache: "no-store"}).then(function (r) {
      ctl.abort();
      if (source) { return; }  // reconnected meanwhile
      setConn(r.status === 401 ? "refused" : "lost");
    }).catch(function () {
      if (!source && conn === "refused") { setConn("lost"); }  // the agent itself is gone
    });
  }
  function connect() {
    retry = null;
    var es = new EventSource(url);
    source = es;
    es.onopen = function () {
      if (source !== es) { return; }
      delay = 1000;
      state = fresh();  // the agent replays its latest events (none after a restart)
      setConn("open");
    };
    KINDS.forEach(function (kind) {
      es.addEventListener(kind, function (e) {
        if (source !== es) { return; }
        var data;
        try { data = JSON.parse(e.data); } catch (err) { return; }
        HANDLERS[kind](data);
        render();
      });
    });
    es.onerror = function () {
      if (source !== es) { return; }
      es.close();
      source = null;
      if (conn !== "refused") { setConn("lost"); }  // a refused token stays the reason
      probe();
      retry = setTimeout(connect, delay);
      delay = Math.min(delay * 2, 4000);
    };
  }
  setInterval(tick, 1000);
  render();
  connect();
})();
</script>
</body></html>
"""
