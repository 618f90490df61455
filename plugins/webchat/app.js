/*
 * app.js - the demo page's client: one websocket to the daemon (same path as
 * the page), a public board and a private pane.  User text only ever goes
 * into the DOM through textContent.  The visitor id is a random secret kept
 * in localStorage; it is the key to this visitor's private chat, so it is
 * sent only in our own hello.
 */
(function () {
  'use strict';

  var MAX_BYTES = 4096;
  var $ = function (id) { return document.getElementById(id); };
  var board = $('board');
  var dmList = $('dm-list');
  var pane = $('private-pane');
  var layout = document.querySelector('.layout');
  var encoder = new TextEncoder();

  function load(key) {
    try { return window.localStorage.getItem(key); } catch (e) { return null; }
  }
  function save(key, value) {
    try { window.localStorage.setItem(key, value); } catch (e) { /* private mode */ }
  }
  function randomId() {
    var a = new Uint8Array(16);
    crypto.getRandomValues(a);
    return Array.prototype.map.call(a, function (b) {
      return (b < 16 ? '0' : '') + b.toString(16);
    }).join('');
  }

  var visitor = load('frontdesk.visitor');
  if (!visitor || !/^[A-Za-z0-9_-]{16,64}$/.test(visitor)) {
    visitor = randomId();
    save('frontdesk.visitor', visitor);
  }
  var name = load('frontdesk.name');
  if (!name) {
    name = 'Guest ' + (1000 + Math.floor(Math.random() * 9000));
    save('frontdesk.name', name);
  }
  $('name').value = name;

  /* ---- small DOM helpers (textContent only) ---- */
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function clock(ts) {
    var d = typeof ts === 'number' ? new Date(ts) : new Date();
    return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  }
  function hue(s) {
    var h = 0;
    for (var i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) >>> 0;
    return h % 360;
  }
  function str(v) { return typeof v === 'string' ? v : ''; }

  var toastTimer = null;
  function toast(text) {
    var t = $('toast');
    t.textContent = text;
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { t.hidden = true; }, 4000);
  }

  /* ---- board ---- */
  var posts = {};  // id -> element

  function answerEl(a) {
    var li = el('li', 'answer');
    var head = el('div', 'answer-head', 'Support bot');
    if (typeof a.case === 'number') head.appendChild(el('span', 'chip', 'case #' + a.case));
    li.appendChild(head);
    li.appendChild(el('p', null, str(a.text)));
    return li;
  }

  function setHidden(li, note) {
    li.classList.add('hidden-post');
    var body = li.querySelector('.text');
    var n = el('p', 'note', note || 'Hidden by the bot.');
    if (body) body.replaceWith(n);
    else if (!li.querySelector('.note')) li.insertBefore(n, li.querySelector('.answers'));
  }

  function postEl(p) {
    var li = el('li', 'post' + (p.mine ? ' mine' : ''));
    li.dataset.id = str(p.id);
    var head = el('div', 'post-head');
    var who = str(p.name) || 'visitor';
    var av = el('span', 'avatar', who.charAt(0).toUpperCase());
    av.style.background = 'hsl(' + hue(who) + ' 55% 52%)';
    head.appendChild(av);
    head.appendChild(el('span', 'author', who));
    if (p.mine) head.appendChild(el('span', 'you-badge', 'you'));
    head.appendChild(el('span', 'time', clock(p.ts)));
    li.appendChild(head);
    li.appendChild(el('p', 'text', str(p.text)));
    var answers = el('ul', 'answers');
    li.appendChild(answers);
    if (p.hidden) setHidden(li, str(p.note));
    (Array.isArray(p.answers) ? p.answers : []).forEach(function (a) {
      if (a && typeof a === 'object') answers.appendChild(answerEl(a));
    });
    return li;
  }

  function addPost(p) {
    if (!p || typeof p !== 'object' || typeof p.id !== 'string') return;
    var li = postEl(p);
    var old = posts[p.id];
    if (old) old.replaceWith(li);
    else board.insertBefore(li, board.firstChild);  // newest first
    posts[p.id] = li;
    refreshCount();
  }

  function refreshCount() {
    var n = board.children.length;
    $('empty').hidden = n > 0;
    $('count').textContent = n ? n + (n === 1 ? ' post' : ' posts') : '';
  }

  /* ---- private pane ---- */
  var unread = 0;

  function paneOpen() { return !pane.hidden; }
  function openPane(flash) {
    pane.hidden = false;
    layout.classList.add('with-pane');
    unread = 0;
    updateBadge();
    if (flash) {
      pane.classList.remove('flash');
      void pane.offsetWidth;  // restart the animation
      pane.classList.add('flash');
    }
    send({ type: 'read' });
    dmList.scrollTop = dmList.scrollHeight;
  }
  function closePane() {
    pane.hidden = true;
    layout.classList.remove('with-pane');
  }
  function updateBadge() {
    var b = $('badge');
    b.textContent = String(unread);
    b.hidden = unread === 0;
  }
  function setCase(c) {
    var chip = $('case');
    if (typeof c === 'number' && c > 0) {
      chip.textContent = 'case #' + c;
      chip.hidden = false;
    }
  }

  function addDm(m) {
    if (!m || typeof m !== 'object') return;
    var from = m.from === 'bot' ? 'bot' : 'you';
    var li = el('li', 'dm ' + from);
    li.appendChild(el('div', 'bubble', str(m.text)));
    li.appendChild(el('span', 'meta', (from === 'bot' ? 'Support bot' : 'You') + ' \u00b7 ' + clock(m.ts)));
    dmList.appendChild(li);
    $('dm-empty').hidden = true;
    setCase(m.case);
    dmList.scrollTop = dmList.scrollHeight;
  }

  /* ---- websocket ---- */
  var ws = null;
  var backoff = 500;

  function status(state, text) {
    var s = $('status');
    s.dataset.state = state;
    s.textContent = text;
  }

  function send(obj) {
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(obj));
    return true;
  }

  function wsUrl() {
    var path = location.pathname.replace(/\/index\.html$/, '').replace(/\/+$/, '') || '/';
    return (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + path;
  }

  function handle(m) {
    switch (m.type) {
      case 'board':
        board.textContent = '';
        posts = {};
        (Array.isArray(m.posts) ? m.posts : []).forEach(addPost);
        refreshCount();
        break;
      case 'post':
        addPost(m.post);
        break;
      case 'answer': {
        var li = posts[str(m.post)];
        if (li) li.querySelector('.answers').appendChild(answerEl(m));
        break;
      }
      case 'hidden': {
        var h = posts[str(m.post)];
        if (h) setHidden(h, str(m.note));
        break;
      }
      case 'dms':
        dmList.textContent = '';
        $('dm-empty').hidden = true;
        (Array.isArray(m.messages) ? m.messages : []).forEach(addDm);
        $('dm-empty').hidden = dmList.children.length > 0;
        setCase(m.case);
        if (typeof m.unread === 'number' && m.unread > 0) openPane(true);
        break;
      case 'dm':
        addDm(m);
        if (m.from === 'bot') {
          if (paneOpen()) {
            openPane(true);
          } else {
            unread++;
            updateBadge();
            openPane(true);
          }
        }
        break;
      case 'error':
        toast(str(m.text) || 'Something went wrong.');
        break;
    }
  }

  function connect() {
    status('connecting', 'connecting\u2026');
    try {
      ws = new WebSocket(wsUrl());
    } catch (e) {
      retry();
      return;
    }
    ws.onopen = function () {
      backoff = 500;
      status('online', 'online');
      send({ type: 'hello', visitor: visitor, name: name });
    };
    ws.onmessage = function (ev) {
      var m;
      try { m = JSON.parse(ev.data); } catch (e) { return; }
      if (m && typeof m === 'object') handle(m);
    };
    ws.onclose = function () {
      ws = null;
      retry();
    };
  }

  function retry() {
    status('offline', 'reconnecting\u2026');
    setTimeout(connect, backoff);
    backoff = Math.min(backoff * 2, 10000);
  }

  /* ---- forms ---- */
  function submitFrom(area, type) {
    var text = area.value.trim();
    if (!text) return;
    if (encoder.encode(text).length > MAX_BYTES) {
      toast('That is too long (at most 4096 bytes).');
      return;
    }
    if (!send({ type: type, text: text })) {
      toast('Not connected yet \u2014 try again in a moment.');
      return;
    }
    area.value = '';
  }

  $('post-form').addEventListener('submit', function (e) {
    e.preventDefault();
    submitFrom($('post-text'), 'post');
  });
  $('dm-form').addEventListener('submit', function (e) {
    e.preventDefault();
    submitFrom($('dm-text'), 'private');
  });
  // Enter sends, Shift+Enter makes a new line.
  [['post-text', 'post-form'], ['dm-text', 'dm-form']].forEach(function (pair) {
    $(pair[0]).addEventListener('keydown', function (e) {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        $(pair[1]).requestSubmit();
      }
    });
  });
  Array.prototype.forEach.call(document.querySelectorAll('.try'), function (b) {
    b.addEventListener('click', function () {
      var area = $('post-text');
      area.value = b.dataset.text || b.textContent;
      area.focus();
    });
  });
  $('name').addEventListener('change', function () {
    var v = $('name').value.trim().slice(0, 40);
    if (!v) { $('name').value = name; return; }
    name = v;
    save('frontdesk.name', name);
    send({ type: 'name', name: name });
  });
  $('open-private').addEventListener('click', function () {
    if (paneOpen()) closePane();
    else { openPane(false); $('dm-text').focus(); }
  });
  $('close-private').addEventListener('click', closePane);

  refreshCount();
  connect();
})();
