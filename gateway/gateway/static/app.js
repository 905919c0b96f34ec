/* 社保费掌上办 reference H5 front-end: plain JavaScript, no build step, only the public API (API.md).
 * Hash routes (#/plans, #/order/<id> ...) so that refresh and the back button always land on a real screen.
 * The token lives in sessionStorage: gone when the browser tab is closed. */
'use strict';

const TYPES = {
  FE_PENSION: '灵活就业养老保险', FE_MEDICAL: '灵活就业医疗保险',
  RR_PENSION: '城乡居民养老保险', RR_MEDICAL: '城乡居民医疗保险',
};
const ORDER_STATUS = {
  pending: '待支付', paying: '支付处理中', paid: '已缴费', failed: '支付失败', expired: '已过期', unknown: '支付结果待确认',
};
const $app = document.getElementById('app');

// ---- session --------------------------------------------------------------------------------------------
const session = {
  get token() { return sessionStorage.getItem('token'); },
  get type() { return sessionStorage.getItem('insurance_type'); },
  get payer() { return JSON.parse(sessionStorage.getItem('payer') || 'null'); },
  chooseType(type) { sessionStorage.setItem('chosen_type', type); },
  get chosenType() { return sessionStorage.getItem('chosen_type') || ''; },
  start(answer) {
    sessionStorage.setItem('token', answer.token);
    sessionStorage.setItem('insurance_type', answer.insurance_type);
    sessionStorage.setItem('payer', JSON.stringify(answer.payer));
  },
  end() { ['token', 'insurance_type', 'payer'].forEach(k => sessionStorage.removeItem(k)); },
};

// ---- API --------------------------------------------------------------------------------------------
class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    Object.assign(this, { status, code, details: details || {} });
  }
}

let pending = 0;
let spinnerTimer = null;
function busy(on) {
  pending += on ? 1 : -1;
  clearTimeout(spinnerTimer);
  if (pending > 0) spinnerTimer = setTimeout(() => { document.getElementById('spinner').hidden = false; }, 150);
  else document.getElementById('spinner').hidden = true;
}

async function api(method, path, body, { raw = false } = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (session.token) headers.Authorization = `Bearer ${session.token}`;
  busy(true);
  try {
    let res;
    try {
      res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (e) {
      throw new ApiError(0, 'NETWORK', '网络连接失败，请检查网络后重试');
    }
    if (!res.ok) {
      let error = { code: 'INTERNAL_ERROR', message: '系统繁忙，请稍后再试', details: {} };
      try { error = (await res.json()).error || error; } catch (e) { /* not the envelope */ }
      if (res.status === 401 && session.token) { session.end(); }
      throw new ApiError(res.status, error.code, error.message, error.details);
    }
    if (raw) return res;
    return res.status === 204 ? null : res.json();
  } finally {
    busy(false);
  }
}

// ---- helpers ----------------------------------------------------------------------------------------
const esc = s => String(s ?? '').replace(/[&<>"']/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
const fen = amount => Math.round(parseFloat(amount) * 100);
const yuan = f => (f / 100).toFixed(2);
const today = () => new Date(Date.now() + 8 * 3600e3).toISOString().slice(0, 10);  // Asia/Shanghai date
const fmtTime = iso => iso ? new Date(iso).toLocaleString('zh-CN', { timeZone: 'Asia/Shanghai', hour12: false }) : '';
const go = hash => { location.hash = hash; };

function view(title, html, { back = true } = {}) {
  document.getElementById('title').textContent = title;
  document.getElementById('back').hidden = !back;
  $app.innerHTML = html;
  window.scrollTo(0, 0);
}

function field(name, label, attrs = '') {
  return `<label for="f-${name}">${label}</label><input id="f-${name}" name="${name}" ${attrs}><div class="err" data-err="${name}"></div>`;
}

function codeField(name, label = '验证码') {
  return `<label for="f-${name}">${label}</label>
    <div class="row"><input id="f-${name}" name="${name}" inputmode="numeric" maxlength="6" autocomplete="one-time-code">
    <button type="button" class="secondary" data-code-for="${name}">获取</button></div><div class="err" data-err="${name}"></div>`;
}

/** Shows an API error next to the field it concerns, or at the form's action when no field matches. */
function showError(form, err) {
  form.querySelectorAll('.err').forEach(e => { e.textContent = ''; });
  let placed = false;
  for (const [name, messages] of Object.entries(err.details || {})) {
    const slot = form.querySelector(`[data-err="${name}"]`);
    if (slot && Array.isArray(messages)) { slot.textContent = messages.join('；'); placed = true; }
  }
  const fieldOf = { INVALID_ID_NUMBER: 'id_number' };
  const slot = form.querySelector(`[data-err="${fieldOf[err.code] || '_form'}"]`) || form.querySelector('[data-err="_form"]');
  if (!placed || fieldOf[err.code]) {
    let text = err.message;
    if (err.code === 'ACCOUNT_LOCKED' && err.details.retry_after_seconds) {
      text += `（约${Math.ceil(err.details.retry_after_seconds / 60)}分钟后可重试）`;
    }
    slot.textContent = text;
  }
}

/** "获取" buttons: ask for a code and count 60 s down; the countdown survives a refresh. */
function bindCodeButtons(form, purposeOf, phoneFieldOf) {
  form.querySelectorAll('[data-code-for]').forEach(button => {
    const target = button.dataset.codeFor;
    const key = () => `countdown:${purposeOf(target)}:${form.elements[phoneFieldOf(target)].value}`;
    const tick = () => {
      const left = Math.ceil(((+sessionStorage.getItem(key()) || 0) - Date.now()) / 1000);
      button.disabled = left > 0;
      button.textContent = left > 0 ? `${left}秒` : '获取';
      if (left > 0) setTimeout(tick, 1000);
    };
    form.elements[phoneFieldOf(target)].addEventListener('input', tick);
    tick();
    button.addEventListener('click', async () => {
      const phone = form.elements[phoneFieldOf(target)].value.trim();
      try {
        await api('POST', '/api/v1/sms-codes', { phone, purpose: purposeOf(target) });
        sessionStorage.setItem(key(), String(Date.now() + 60e3));
        form.querySelector(`[data-err="${target}"]`).textContent = '';
        tick();
      } catch (err) {
        const slot = form.querySelector(`[data-err="${target}"]`);
        slot.textContent = err.details && err.details.phone ? err.details.phone.join('；') : err.message;
      }
    });
  });
}

function formData(form) {
  return Object.fromEntries([...new FormData(form).entries()].map(([k, v]) => [k, String(v).trim()]));
}

function requireLogin() {
  if (!session.token) { go('#/login'); return false; }
  return true;
}

// ---- screens ----------------------------------------------------------------------------------------
const screens = {};

screens.types = () => {
  view('险种选择', `<div class="card"><p class="muted">请选择需要办理缴费的险种</p><div class="grid">
      ${Object.entries(TYPES).map(([code, name]) => `<button class="tile" data-type="${code}">${name}</button>`).join('')}
    </div></div>
    <button class="link" data-go="#/register">还没有注册？点击注册</button>`, { back: false });
  $app.querySelectorAll('[data-type]').forEach(b => b.addEventListener('click', () => {
    session.chooseType(b.dataset.type);
    go('#/login');
  }));
};

screens.register = () => {
  view('注册', `<form class="card" id="form" novalidate>
      ${field('id_number', '身份证号码', 'maxlength="18" autocomplete="off" placeholder="18位，字母大写"')}
      ${field('name', '姓名', 'maxlength="30" autocomplete="name"')}
      ${field('phone', '手机号码', 'inputmode="tel" maxlength="11" autocomplete="tel"')}
      ${field('password', '密码', 'type="password" autocomplete="new-password" placeholder="至少8位，包含字母和数字"')}
      ${codeField('sms_code')}
      <div class="err" data-err="_form"></div>
      <button class="primary" type="submit">注册</button>
    </form>`);
  const form = document.getElementById('form');
  bindCodeButtons(form, () => 'register', () => 'phone');
  form.addEventListener('submit', async e => {
    e.preventDefault();
    const body = formData(form);
    body.id_number = body.id_number.toUpperCase();
    try {
      await api('POST', '/api/v1/payers', body);
      sessionStorage.setItem('flash', '注册成功，请登录');
      go('#/login');
    } catch (err) { showError(form, err); }
  });
};

screens.login = () => {
  const flash = sessionStorage.getItem('flash');
  sessionStorage.removeItem('flash');
  view('登录', `${flash ? `<div class="notice ok">${esc(flash)}</div>` : ''}<form class="card" id="form" novalidate>
      ${field('id_number', '身份证号码', 'maxlength="18" autocomplete="username"')}
      ${field('name', '姓名', 'maxlength="30"')}
      ${field('password', '密码', 'type="password" autocomplete="current-password"')}
      <label for="f-insurance_type">险种</label><select id="f-insurance_type" name="insurance_type">
        ${Object.entries(TYPES).map(([c, n]) => `<option value="${c}" ${c === session.chosenType ? 'selected' : ''}>${n}</option>`).join('')}
      </select><div class="err" data-err="insurance_type"></div>
      ${field('phone', '注册手机号码', 'inputmode="tel" maxlength="11" placeholder="验证码将发送至注册手机"')}
      ${codeField('sms_code')}
      <div class="err" data-err="_form"></div>
      <button class="primary" type="submit">登录</button>
    </form>
    <button class="link" data-go="#/register">注册</button>`);
  const form = document.getElementById('form');
  bindCodeButtons(form, () => 'login', () => 'phone');
  form.addEventListener('submit', async e => {
    e.preventDefault();
    const { phone, ...body } = formData(form);
    body.id_number = body.id_number.toUpperCase();
    try {
      session.start(await api('POST', '/api/v1/sessions', body));
      go('#/home');
    } catch (err) { showError(form, err); }
  });
};

screens.home = async () => {
  if (!requireLogin()) return;
  const payer = session.payer;
  view(TYPES[session.type], `<div class="card"><div>${esc(payer.name)}　<span class="muted">${esc(payer.id_number_masked)}</span></div>
      <div class="muted">${TYPES[session.type]}</div></div>
    <div class="grid" id="tiles">
      <button class="tile" data-go="#/plans">个人缴费<small>按属期顺序缴费</small></button>
      <button class="tile" data-go="#/certs">证明开具<small>缴费证明 / 完税证明</small></button>
      <button class="tile" data-go="#/records">记录查询<small>参保 / 缴费 / 支付</small></button>
      <button class="tile" data-go="#/phone">修改手机号</button>
    </div>
    <button class="primary" id="logout">退出登录</button>`, { back: false });
  document.getElementById('logout').addEventListener('click', async () => {
    try { await api('DELETE', '/api/v1/sessions/current'); } catch (e) { /* already gone */ }
    session.end();
    go('#/');
  });
  try {
    const enrollment = await api('GET', '/api/v1/me/enrollment');
    if (session.type === 'FE_PENSION' && String(enrollment.region_code || '').startsWith('2310')) {
      document.getElementById('tiles').insertAdjacentHTML('beforeend',
        `<button class="tile" data-go="#/declare">缴费申报<small>牡丹江选档</small></button>
         <button class="tile" data-go="#/declarations">申报作废</button>`);
    }
  } catch (e) { /* enrolment unavailable: the regular tiles still work */ }
};

function planRow(plan, index, checked = true) {
  const deadline = plan.deadline ? new Date(plan.deadline) : null;
  const late = deadline && deadline < new Date();
  return `<label class="plan"><input type="checkbox" data-index="${index}" value="${esc(plan.plan_id)}" ${checked ? 'checked' : ''}>
    <span class="main"><span>费款所属期 ${esc(plan.period)}</span><br>
    <span class="${late ? 'late' : 'muted'}">缴费截止 ${esc(fmtTime(plan.deadline))}${late ? '（已过截止时间，请在下一征期缴费）' : ''}</span></span>
    <span class="amount">¥${esc(plan.amount)}</span></label>`;
}

/** 选择规则只能从上到下按顺序选择不可跳选: checking a plan checks all earlier ones, unchecking one unchecks all later. */
function bindSequentialChecks(container, onChange) {
  const boxes = [...container.querySelectorAll('input[type=checkbox][data-index]')];
  boxes.forEach((box, i) => box.addEventListener('change', () => {
    boxes.forEach((other, j) => {
      if (box.checked && j < i) other.checked = true;
      if (!box.checked && j > i) other.checked = false;
    });
    onChange(boxes.filter(b => b.checked));
  }));
  onChange(boxes.filter(b => b.checked));
  return () => boxes.filter(b => b.checked).map(b => b.value);
}

screens.plans = async () => {
  if (!requireLogin()) return;
  view('个人缴费', '<div class="card muted">正在查询缴费计划…</div>');
  let answer;
  try { answer = await api('GET', '/api/v1/me/plans'); } catch (err) {
    view('个人缴费', `<div class="notice">${esc(err.message)}</div>`); return;
  }
  if (!answer.plans.length) {
    view('个人缴费', `<div class="card"><p class="big">${esc(answer.message || '当前没有可缴费计划')}</p>
      ${answer.advice ? `<p class="muted">${esc(answer.advice)}</p>` : ''}</div>`);
    return;
  }
  const amounts = Object.fromEntries(answer.plans.map(p => [p.plan_id, fen(p.amount)]));
  view('个人缴费', `<form class="card" id="form"><p class="muted">请按费款所属期从上至下连续选择，不可跳选</p>
      <div id="plans">${answer.plans.map((p, i) => planRow(p, i)).join('')}</div>
      <div class="total"><span>合计</span><span id="total"></span></div>
      <div class="err" data-err="_form"></div>
      <button class="primary" type="submit" id="confirm">确认</button></form>`);
  const form = document.getElementById('form');
  const selected = bindSequentialChecks(form, boxes => {
    document.getElementById('total').textContent = `¥${yuan(boxes.reduce((sum, b) => sum + amounts[b.value], 0))}`;
    document.getElementById('confirm').disabled = boxes.length === 0;
  });
  form.addEventListener('submit', async e => {
    e.preventDefault();
    try {
      const order = await api('POST', '/api/v1/orders', { plan_ids: selected() });
      go(`#/order/${encodeURIComponent(order.order_id)}`);
    } catch (err) { showError(form, err); }
  });
};

screens.order = async orderId => {
  if (!requireLogin()) return;
  let order, channels;
  try {
    [order, channels] = await Promise.all([api('GET', `/api/v1/orders/${encodeURIComponent(orderId)}`),
                                           api('GET', '/api/v1/channels')]);
  } catch (err) { view('缴费记录', `<div class="notice">${esc(err.message)}</div>`); return; }
  if (order.status !== 'pending') { go(`#/result/${encodeURIComponent(orderId)}`); return; }
  view('缴费记录', `<form class="card" id="form">
      <div class="total"><span>应缴金额</span><span>¥${esc(order.amount)}</span></div>
      <p class="muted">${TYPES[session.type]}　请在 ${esc(fmtTime(order.expires_at))} 前完成支付</p>
      <label>缴费方式</label>
      ${channels.channels.map((c, i) => `<label class="plan"><input type="radio" name="channel" value="${esc(c.code)}" ${i === 0 ? 'checked' : ''}>
        <span class="main">${esc(c.name)}</span></label>`).join('')}
      <div class="err" data-err="_form"></div>
      <button class="primary" type="submit">立即缴费</button></form>`);
  document.getElementById('form').addEventListener('submit', e => {
    e.preventDefault();
    const channel = new FormData(e.target).get('channel');
    go(`#/order/${encodeURIComponent(orderId)}/confirm/${encodeURIComponent(channel)}`);
  });
};

screens.confirm = async (orderId, channel) => {
  if (!requireLogin()) return;
  let order;
  try { order = await api('GET', `/api/v1/orders/${encodeURIComponent(orderId)}`); } catch (err) {
    view('缴费确认', `<div class="notice">${esc(err.message)}</div>`); return;
  }
  view('缴费确认', `<form class="card" id="form">
      <table><tr><th>险种</th><td>${TYPES[session.type]}</td></tr>
      <tr><th>缴费人</th><td>${esc(session.payer.name)}</td></tr>
      <tr><th>缴费方式</th><td>${esc(channel)}</td></tr>
      <tr><th>金额</th><td>¥${esc(order.amount)}</td></tr></table>
      <div class="err" data-err="_form"></div>
      <button class="primary" type="submit">确认缴费</button></form>`);
  const form = document.getElementById('form');
  form.addEventListener('submit', async e => {
    e.preventDefault();
    try {
      const payment = await api('POST', `/api/v1/orders/${encodeURIComponent(orderId)}/payments`, { channel });
      // Hand-off to the channel's own pay page; its 返回商户 comes back to #/result/<order> (ACP frontUrl).
      location.href = payment.pay_url;
    } catch (err) { showError(form, err); }
  });
};

screens.result = async orderId => {
  if (!requireLogin()) return;
  const started = Date.now();
  const poll = async () => {
    let order;
    try { order = await api('GET', `/api/v1/orders/${encodeURIComponent(orderId)}`); } catch (err) {
      view('缴费结果', `<div class="notice">${esc(err.message)}</div>`); return;
    }
    if (!location.hash.startsWith('#/result/')) return;
    const settled = ['paid', 'failed', 'expired'].includes(order.status);
    const text = order.status === 'paid' ? (order.message || `您已经付款${order.amount}元`)
      : order.status === 'failed' ? '支付未成功，缴费计划已释放，请重新缴费'
      : order.status === 'unknown' ? '支付结果待确认：请于次日查询缴费记录，确认未成功后再重新缴费'
      : order.status === 'expired' ? '缴费记录已过期，请重新缴费' : '正在确认支付结果…';
    view('缴费结果', `<div class="card"><p class="big" id="result-text">${esc(text)}</p>
      <p class="muted">状态：${ORDER_STATUS[order.status] || esc(order.status)}</p></div>
      <button class="primary" data-go="#/home">返回首页</button>`, { back: false });
    if (!settled && Date.now() - started < 90e3) setTimeout(poll, 2000);
  };
  poll();
};

function recordsTable(records, selectable) {
  return `<div id="records">${records.map((r, i) => `<label class="plan">
      ${selectable ? `<input type="checkbox" value="${esc(r.record_id)}" checked>` : ''}
      <span class="main">费款所属期 ${esc(r.period)}<br><span class="muted">电子税票号码 ${esc(r.tax_ticket_no)}　${esc(fmtTime(r.paid_at))}</span></span>
      <span class="amount">¥${esc(r.amount)}</span></label>`).join('')}</div>`;
}

screens.certs = () => {
  if (!requireLogin()) return;
  const year = today().slice(0, 4);
  view('证明开具', `<form class="card" id="range">
      ${field('paid_from', '缴费日期起', `type="date" value="${year}-01-01"`)}
      ${field('paid_to', '缴费日期止', `type="date" value="${today()}"`)}
      <div class="err" data-err="_form"></div>
      <button class="primary" type="submit">证明开具</button></form><div id="list"></div>`);
  const range = document.getElementById('range');
  range.addEventListener('submit', async e => {
    e.preventDefault();
    const { paid_from, paid_to } = formData(range);
    const list = document.getElementById('list');
    list.innerHTML = '';
    let answer;
    try {
      answer = await api('GET', `/api/v1/me/certificates/records?paid_from=${paid_from}&paid_to=${paid_to}`);
    } catch (err) { showError(range, err); return; }
    range.querySelector('[data-err="_form"]').textContent = '';
    if (!answer.records.length) { list.innerHTML = '<div class="card big">未查询到缴费记录</div>'; return; }
    list.innerHTML = `<form class="card" id="pick">${recordsTable(answer.records, true)}
      <div class="err" data-err="_form"></div><div id="issued" class="muted"></div>
      <button class="primary" type="button" data-kind="payment">缴费证明开具</button>
      <button class="primary" type="button" data-kind="tax">完税证明开具</button></form>`;
    const pick = document.getElementById('pick');
    pick.querySelectorAll('[data-kind]').forEach(button => button.addEventListener('click', async () => {
      const record_ids = [...pick.querySelectorAll('input:checked')].map(b => b.value);
      try {
        const res = await api('POST', '/api/v1/me/certificates', { kind: button.dataset.kind, paid_from, paid_to, record_ids },
                              { raw: true });
        const code = res.headers.get('X-Certificate-Code') || '';
        const url = URL.createObjectURL(await res.blob());
        const link = Object.assign(document.createElement('a'), {
          href: url, download: `${button.dataset.kind === 'tax' ? '完税证明' : '缴费证明'}-${code}.pdf` });
        document.body.appendChild(link); link.click(); link.remove();
        setTimeout(() => URL.revokeObjectURL(url), 60e3);
        document.getElementById('issued').textContent = `已开具，验证码 ${code}`;
        pick.querySelector('[data-err="_form"]').textContent = '';
      } catch (err) { showError(pick, err); }
    }));
  });
};

screens.records = () => {
  if (!requireLogin()) return;
  const year = today().slice(0, 4);
  view('记录查询', `<div class="grid">
      <button class="tile" data-q="enrollment">参保信息查询</button>
      <button class="tile" data-q="records">缴费记录查询</button>
      <button class="tile" data-q="payments">第三方支付情况查询</button></div>
    <form class="card" id="q" hidden></form><div id="out"></div>`);
  const q = document.getElementById('q');
  const out = document.getElementById('out');
  const show = html => { out.innerHTML = html; };
  $app.querySelectorAll('[data-q]').forEach(b => b.addEventListener('click', async () => {
    show('');
    if (b.dataset.q === 'enrollment') {
      q.hidden = true;
      try {
        const e = await api('GET', '/api/v1/me/enrollment');
        show(`<div class="card"><table>${Object.entries({ 险种: TYPES[e.insurance_type], 参保地区: e.region_code,
          参保状态: e.status, 参保日期: e.enrolled_on }).map(([k, v]) => `<tr><th>${k}</th><td>${esc(v)}</td></tr>`).join('')}</table></div>`);
      } catch (err) { show(`<div class="notice">${esc(err.message)}</div>`); }
      return;
    }
    const byPeriod = b.dataset.q === 'records';
    q.hidden = false;
    q.innerHTML = byPeriod
      ? `${field('period_from', '费款所属期起', `type="month" value="${year}-01"`)}${field('period_to', '费款所属期止', `type="month" value="${today().slice(0, 7)}"`)}`
      : `${field('paid_from', '支付日期起', `type="date" value="${year}-01-01"`)}${field('paid_to', '支付日期止', `type="date" value="${today()}"`)}`;
    q.insertAdjacentHTML('beforeend', '<div class="err" data-err="_form"></div><button class="primary" type="submit">查询缴费记录</button>');
    q.onsubmit = async e => {
      e.preventDefault();
      const params = new URLSearchParams(formData(q)).toString();
      try {
        const answer = await api('GET', `/api/v1/me/${byPeriod ? 'records' : 'payments'}?${params}`);
        q.querySelector('[data-err="_form"]').textContent = '';
        const rows = byPeriod ? answer.records : answer.payments;
        if (!rows.length) { show('<div class="card big">未查询到缴费记录</div>'); return; }
        show(byPeriod ? `<div class="card">${recordsTable(rows, false)}</div>`
          : `<div class="card"><table><tr><th>支付时间</th><th>渠道</th><th>金额</th><th>状态</th></tr>${rows.map(p =>
              `<tr><td>${esc(fmtTime(p.paid_at))}</td><td>${esc(p.channel)}</td><td>¥${esc(p.amount)}</td><td>${esc(p.status)}</td></tr>`).join('')}</table></div>`);
      } catch (err) { showError(q, err); }
    };
  }));
};

screens.phone = () => {
  if (!requireLogin()) return;
  view('修改手机号', `<form class="card" id="form" novalidate>
      ${field('old_phone', '原手机号码', 'inputmode="tel" maxlength="11"')}
      ${codeField('old_phone_code', '原手机验证码')}
      ${field('new_phone', '新手机号码', 'inputmode="tel" maxlength="11"')}
      ${codeField('new_phone_code', '新手机验证码')}
      <div class="err" data-err="_form"></div>
      <button class="primary" type="submit">确认修改</button></form>`);
  const form = document.getElementById('form');
  bindCodeButtons(form, () => 'change_phone', target => (target === 'old_phone_code' ? 'old_phone' : 'new_phone'));
  form.addEventListener('submit', async e => {
    e.preventDefault();
    const { old_phone, ...body } = formData(form);
    try {
      await api('PUT', '/api/v1/me/phone', body);
      view('修改手机号', '<div class="card big">手机号码已修改</div><button class="primary" data-go="#/home">返回首页</button>');
    } catch (err) { showError(form, err); }
  });
};

screens.declare = async () => {
  if (!requireLogin()) return;
  let options;
  try { options = await api('GET', '/api/v1/me/declaration-options'); } catch (err) {
    view('缴费申报', `<div class="notice">${esc(err.message)}</div>`); return;
  }
  const periods = options.periods.map(p => (typeof p === 'string' ? p : p.period));
  view('缴费申报', `<form class="card" id="form">
      <label for="f-grade">缴费档次</label><select id="f-grade" name="grade">${options.grades.map(g =>
        `<option value="${esc(g.grade)}">${esc(g.grade)}档（${Math.round(parseFloat(g.base_ratio) * 100)}%）每月¥${esc(g.monthly_amount)}</option>`).join('')}</select>
      <label>申报属期</label><div id="periods">${periods.map((p, i) =>
        `<label class="plan"><input type="checkbox" data-index="${i}" value="${esc(p)}" ${i === 0 ? 'checked' : ''}><span class="main">${esc(p)}</span></label>`).join('')}</div>
      <div class="err" data-err="_form"></div><button class="primary" type="submit">申报</button></form>`);
  const form = document.getElementById('form');
  const selected = bindSequentialChecks(form, () => {});
  form.addEventListener('submit', async e => {
    e.preventDefault();
    try {
      const grade = form.elements.grade.value;
      await api('POST', '/api/v1/me/declarations', { periods: selected(), grade: /^\d+$/.test(grade) ? Number(grade) : grade });
      view('缴费申报', '<div class="card big">申报已提交，核定后即可缴费</div><button class="primary" data-go="#/plans">去缴费</button>');
    } catch (err) { showError(form, err); }
  });
};

screens.declarations = async () => {
  if (!requireLogin()) return;
  let answer;
  try { answer = await api('GET', '/api/v1/me/declarations'); } catch (err) {
    view('申报作废', `<div class="notice">${esc(err.message)}</div>`); return;
  }
  const rows = answer.declarations || [];
  view('申报作废', rows.length ? `<div class="card" id="list">${rows.map(d => `<div class="plan"><span class="main">
      ${esc((d.periods || []).join('、'))}<br><span class="muted">${esc(d.status)}</span></span>
      ${d.status !== 'voided' ? `<button class="secondary" data-void="${esc(d.declaration_id)}">作废</button>` : ''}</div>`).join('')}
      <div class="err" data-err="_form"></div></div>` : '<div class="card big">没有申报记录</div>');
  $app.querySelectorAll('[data-void]').forEach(b => b.addEventListener('click', async () => {
    try {
      await api('DELETE', `/api/v1/me/declarations/${encodeURIComponent(b.dataset.void)}`);
      screens.declarations();
    } catch (err) { showError(document.getElementById('list'), err); }
  }));
};

// ---- routing ----------------------------------------------------------------------------------------
const routes = [
  [/^#?\/?$/, () => screens.types()],
  [/^#\/register$/, () => screens.register()],
  [/^#\/login$/, () => screens.login()],
  [/^#\/home$/, () => screens.home()],
  [/^#\/plans$/, () => screens.plans()],
  [/^#\/order\/([^/]+)$/, m => screens.order(decodeURIComponent(m[1]))],
  [/^#\/order\/([^/]+)\/confirm\/([^/]+)$/, m => screens.confirm(decodeURIComponent(m[1]), decodeURIComponent(m[2]))],
  [/^#\/result\/([^/]+)$/, m => screens.result(decodeURIComponent(m[1]))],
  [/^#\/certs$/, () => screens.certs()],
  [/^#\/records$/, () => screens.records()],
  [/^#\/phone$/, () => screens.phone()],
  [/^#\/declare$/, () => screens.declare()],
  [/^#\/declarations$/, () => screens.declarations()],
];

function route() {
  const hash = location.hash || '#/';
  for (const [pattern, show] of routes) {
    const match = hash.match(pattern);
    if (match) { show(match); return; }
  }
  go(session.token ? '#/home' : '#/');
}

document.getElementById('back').addEventListener('click', () => history.back());
// Navigation buttons carry data-go (no inline handlers, so the page runs under a strict CSP).
document.addEventListener('click', e => {
  const target = e.target.closest('[data-go]');
  if (target) { e.preventDefault(); go(target.dataset.go); }
});
window.addEventListener('hashchange', route);
route();
