// Menshen: the citizen digital certificate (自然人憑證) page, for binding a card and for
// signing in with it.
//
// The card is read by the MOI "HiPKI Local Sign Server" component on the user's computer (its
// origin is the form's data-component, normally http://localhost:61161):
//   1. Checks: the component packs its pkcs11info JSON (version, readers, cards, certificates)
//      into the pixels of /p11Image.bmp, which a page of another origin can read through a
//      canvas; a direct fetch of /pkcs11info is the fallback.
//   2. Signing: Menshen issues a challenge (POST /.menshen/certificate/challenge); the page opens
//      the component's /popupForm, which asks the opener for the data to sign ({"func":"getTbs"});
//      the page answers, only to the component's origin, with the tbsPackage (challenge, PIN,
//      PKCS7); the popup answers {"func":"sign", ret_code, last_error, signature, certb64}.
//   3. Menshen verifies the signature (POST /.menshen/certificate/verify) and answers with where
//      to go next, or a JSON error code.
// Every sentence comes from the page (hidden [data-msg] elements), so this file has no text.
(function () {
  'use strict';

  var form = document.getElementById('certificate-form');
  if (!form) {
    return;
  }
  var COMPONENT = form.dataset.component;
  var PURPOSE = form.dataset.purpose;
  var MIN_VERSION = form.dataset.minVersion || '0';
  var CSRF = form.dataset.csrf;
  var RD = form.dataset.rd || '';
  /** Menshen keeps a challenge two minutes; waiting longer cannot succeed. */
  var SIGN_TIMEOUT_MS = 115000;
  var CHECK_TIMEOUT_MS = 8000;
  /** After the popup closes, its last message may still be on its way. */
  var CLOSED_GRACE_MS = 1500;
  var RC_NO_CARD = 0x76000006;
  var RC_NO_READER = 0x76100003;

  var pin = document.getElementById('pin');
  var pinHint = document.getElementById('pin-hint');
  var submit = document.getElementById('certificate-submit');
  var recheck = document.getElementById('recheck');
  var message = document.getElementById('message');
  var done = document.getElementById('certificate-done');
  var doneOk = document.getElementById('certificate-done-ok');

  var texts = {};
  Array.prototype.forEach.call(document.querySelectorAll('#certificate-texts [data-msg]'), function (el) {
    texts[el.getAttribute('data-msg')] = el.textContent;
  });

  /** The sentence `code` with its {placeholders} filled. */
  function say(code, values) {
    var text = Object.prototype.hasOwnProperty.call(texts, code) ? texts[code] : null;
    if (text === null) {
      text = texts.err_other || code;
      values = Object.assign({ code: code }, values || {});
    }
    Object.keys(values || {}).forEach(function (key) {
      text = text.split('{' + key + '}').join(String(values[key]));
    });
    return text;
  }

  function show(kind, text) {
    message.className = 'message message-' + kind;
    message.textContent = text;
    message.hidden = false;
  }

  function clearMessage() {
    message.hidden = true;
    message.textContent = '';
  }

  /** Sets one row of the check table: its result text and ✓ / ✗ / —. */
  function setRow(id, result, state) {
    var row = document.getElementById(id);
    row.querySelector('.check-result').textContent = result;
    var status = row.querySelector('.status');
    status.className = 'status ' + (state === true ? 'status-bound' : state === false ? 'status-unbound' : 'status-na');
    status.querySelector('.status-mark').textContent = state === true ? '✓' : state === false ? '✗' : '—';
    status.querySelector('.status-text').textContent = say(state === true ? 'ok' : state === false ? 'failed' : 'unknown');
    row.setAttribute('data-state', state === true ? 'ok' : state === false ? 'failed' : 'unknown');
  }

  function describeOs(ua) {
    if (/Android/.test(ua)) return { name: 'Android', ok: false };
    if (/iPhone|iPad|iPod/.test(ua)) return { name: 'iOS', ok: false };
    var win = /Windows NT (\d+\.\d+)/.exec(ua);
    if (win) return { name: win[1] === '10.0' ? 'Windows 10 / 11' : 'Windows NT ' + win[1], ok: true };
    if (/Mac OS X/.test(ua)) return { name: 'macOS', ok: true };
    if (/CrOS/.test(ua)) return { name: 'ChromeOS', ok: false };
    if (/Linux/.test(ua)) return { name: 'Linux', ok: true };
    return { name: '', ok: null };
  }

  function describeBrowser(ua) {
    var patterns = [
      [/Edg\/(\d+)/, 'Microsoft Edge'],
      [/OPR\/(\d+)/, 'Opera'],
      [/Firefox\/(\d+)/, 'Firefox'],
      [/(?:HeadlessChrome|Chrome|Chromium)\/(\d+)/, 'Chrome'],
      [/Version\/(\d+)[^ ]* Safari/, 'Safari'],
    ];
    for (var i = 0; i < patterns.length; i++) {
      var m = patterns[i][0].exec(ua);
      if (m) return { name: patterns[i][1] + ' ' + m[1], ok: true };
    }
    if (/Trident\//.test(ua)) return { name: 'Internet Explorer', ok: false };
    return { name: '', ok: null };
  }

  /** Compares dotted versions numerically: -1, 0 or 1. */
  function compareVersions(a, b) {
    var pa = String(a).split('.');
    var pb = String(b).split('.');
    for (var i = 0; i < Math.max(pa.length, pb.length); i++) {
      var x = parseInt(pa[i] || '0', 10) || 0;
      var y = parseInt(pb[i] || '0', 10) || 0;
      if (x !== y) return x < y ? -1 : 1;
    }
    return 0;
  }

  /** The JSON the component packed into an image: pixel by pixel, R, G, B, up to a 0 byte. */
  function decodeImage(img) {
    var canvas = document.createElement('canvas');
    canvas.width = img.naturalWidth;
    canvas.height = img.naturalHeight;
    var ctx = canvas.getContext('2d');
    ctx.drawImage(img, 0, 0);
    var data = ctx.getImageData(0, 0, canvas.width, 1).data;
    var bytes = [];
    outer: for (var p = 0; p < canvas.width; p++) {
      for (var c = 0; c < 3; c++) {
        var b = data[p * 4 + c];
        if (b === 0) break outer;
        bytes.push(b);
      }
    }
    return JSON.parse(new TextDecoder('utf-8').decode(new Uint8Array(bytes)));
  }

  function infoFromImage() {
    return new Promise(function (resolve, reject) {
      var img = new Image();
      var timer = setTimeout(function () { reject(new Error('timeout')); }, CHECK_TIMEOUT_MS);
      img.crossOrigin = 'anonymous';
      img.onload = function () {
        clearTimeout(timer);
        try {
          resolve(decodeImage(img));
        } catch (e) {
          reject(e);
        }
      };
      img.onerror = function () {
        clearTimeout(timer);
        reject(new Error('no image'));
      };
      img.src = COMPONENT + '/p11Image.bmp?withcert=true&_=' + Date.now();
    });
  }

  function infoFromFetch() {
    var controller = new AbortController();
    var timer = setTimeout(function () { controller.abort(); }, CHECK_TIMEOUT_MS);
    return fetch(COMPONENT + '/pkcs11info?withcert=true', { cache: 'no-store', signal: controller.signal })
      .then(function (r) { return r.json(); })
      .finally(function () { clearTimeout(timer); });
  }

  /**
   * The component's pkcs11info, or null when the component does not answer. The form's
   * data-source says which way it was read (image, fetch or none).
   */
  function componentInfo() {
    return infoFromImage().then(function (info) {
      form.setAttribute('data-source', 'image');
      return info;
    }, function () {
      return infoFromFetch().then(function (info) {
        form.setAttribute('data-source', 'fetch');
        return info;
      });
    }).catch(function () {
      form.setAttribute('data-source', 'none');
      return null;
    });
  }

  function hasSigningCert(token) {
    return !!(token && Array.isArray(token.certs) && token.certs.some(function (c) {
      return c && c.usage === 'digitalSignature' && c.certb64;
    }));
  }

  var ready = false;
  var busy = false;

  function setReady(value) {
    ready = value;
    pin.disabled = !value || busy;
    submit.disabled = !value || busy;
    recheck.disabled = busy;
    pinHint.textContent = say(value ? 'pin_ready' : 'needs_component');
    document.getElementById('check-pin').setAttribute('data-state', value ? 'ready' : 'waiting');
  }

  /** Runs the whole check table; resolves when done. */
  function check() {
    setReady(false);
    form.setAttribute('data-checked', 'no');
    var ua = navigator.userAgent;
    var os = describeOs(ua);
    setRow('check-os', os.name || say('unknown'), os.ok);
    var browser = describeBrowser(ua);
    setRow('check-browser', browser.name || say('unknown'), browser.ok);
    ['check-component', 'check-card'].forEach(function (id) {
      var row = document.getElementById(id);
      row.querySelector('.check-result').textContent = texts.checking || '';
      row.removeAttribute('data-state');
    });
    return componentInfo().then(function (info) {
      var componentOk = false;
      if (!info) {
        setRow('check-component', say('component_missing'), false);
      } else if (typeof info.version !== 'string' || !Array.isArray(info.slots)) {
        setRow('check-component', say('component_bad'), false);
      } else if (compareVersions(info.version, MIN_VERSION) < 0) {
        setRow('check-component', say('component_old', { version: info.version, min: MIN_VERSION }), false);
      } else {
        setRow('check-component', say('component_version', { version: info.version }), true);
        componentOk = true;
      }
      var cardOk = false;
      if (!componentOk) {
        setRow('check-card', say('needs_component'), null);
      } else if (info.slots.length === 0) {
        setRow('check-card', say('reader_missing'), false);
      } else {
        var slot = info.slots.find(function (s) { return s && hasSigningCert(s.token); });
        if (slot) {
          setRow('check-card', say('card_ok', { reader: slot.slotDescription || '', serial: slot.token.serialNumber || '' }), true);
          cardOk = true;
        } else {
          var withToken = info.slots.find(function (s) { return s && s.token; });
          if (withToken) {
            setRow('check-card', say('card_no_signing', { reader: withToken.slotDescription || '' }), false);
          } else {
            setRow('check-card', say('card_missing', { reader: info.slots[0].slotDescription || '' }) + ' ' + say('card_hint'), false);
          }
        }
      }
      setReady(componentOk && cardOk);
      form.setAttribute('data-checked', 'yes');
    });
  }

  function postForm(path, fields) {
    return fetch(path, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields).toString(),
    }).then(function (r) {
      return r.json().catch(function () { return { error: 'unavailable' }; }).then(function (body) {
        return { status: r.status, body: body || {} };
      });
    });
  }

  /** Menshen's JSON refusal in words. */
  /**
   * The challenge request's fields: a binding from a signed-in session also carries the
   * current password (or app code) the page asks for, which Menshen checks before the card
   * is used.
   */
  function challengeFields() {
    var fields = { purpose: PURPOSE, csrf: CSRF, rd: RD };
    var proof = document.getElementById('current-proof');
    if (proof && proof.name) fields[proof.name] = proof.value;
    return fields;
  }

  function serverMessage(body) {
    var code = body && typeof body.error === 'string' ? body.error : 'unavailable';
    return say('err_' + code, { until: body && body.until ? body.until : '', code: code });
  }

  function hex(n) {
    return (Number(n) >>> 0).toString(16);
  }

  /** The component's failure in words: last_error first for a failed card login. */
  function componentMessage(answer) {
    var rc = Number(answer.ret_code);
    var le = Number(answer.last_error || 0);
    if (le && Object.prototype.hasOwnProperty.call(texts, 'le_' + hex(le))) {
      return say('le_' + hex(le));
    }
    if (Object.prototype.hasOwnProperty.call(texts, 'rc_' + hex(rc))) {
      return say('rc_' + hex(rc));
    }
    return say('rc_other', { code: '0x' + hex(rc).toUpperCase() + (le ? ' / 0x' + hex(le).toUpperCase() : '') });
  }

  /**
   * Opens the component's popup and trades the tbsPackage for its answer. `packagePromise`
   * resolves with the package (the challenge may still be on its way when the popup asks).
   */
  function signWithComponent(popup, packagePromise) {
    return new Promise(function (resolve) {
      var finished = false;
      var asker = null;
      var tbsPackage = null;
      var closedAt = 0;
      function finish(result) {
        if (finished) return;
        finished = true;
        window.removeEventListener('message', onMessage);
        clearInterval(watch);
        clearTimeout(timer);
        tbsPackage = null;
        try { popup.close(); } catch (e) { /* already closed */ }
        resolve(result);
      }
      function send() {
        if (asker && tbsPackage) {
          // Only to the component's origin: the package carries the PIN.
          asker.postMessage(JSON.stringify(tbsPackage), COMPONENT);
          tbsPackage = null;
        }
      }
      function onMessage(event) {
        // Only the popup this page opened, at the component's origin.
        if (event.origin !== COMPONENT || event.source !== popup) return;
        var data;
        try {
          data = typeof event.data === 'string' ? JSON.parse(event.data) : event.data;
        } catch (e) {
          return;
        }
        if (!data || typeof data.func !== 'string') return;
        if (data.func === 'getTbs') {
          asker = event.source;
          send();
        } else if (data.func === 'sign') {
          finish({ answer: data });
        }
      }
      window.addEventListener('message', onMessage);
      var timer = setTimeout(function () { finish({ failure: 'timeout' }); }, SIGN_TIMEOUT_MS);
      var watch = setInterval(function () {
        if (!popup.closed) return;
        if (!closedAt) closedAt = Date.now();
        if (Date.now() - closedAt > CLOSED_GRACE_MS) finish({ answer: { ret_code: 0x76000999, last_error: 0 } });
      }, 250);
      packagePromise.then(function (pkg) {
        if (!pkg) {
          finish({ failure: 'abandoned' });
          return;
        }
        tbsPackage = pkg;
        send();
      });
    });
  }

  function endBusy() {
    busy = false;
    setReady(ready);
  }

  function fail(text, recheckAfter) {
    show('error', text);
    endBusy();
    if (recheckAfter) {
      check();
    }
    pin.focus();
  }

  function onSubmit(event) {
    event.preventDefault();
    if (busy || !ready) return;
    var pinValue = pin.value;
    if (!pinValue) {
      show('error', say('pin_empty'));
      pin.focus();
      return;
    }
    pin.value = '';
    busy = true;
    setReady(ready);
    // Opened in the click's own task, so that pop-up blockers let it through.
    var popup = window.open(COMPONENT + '/popupForm', 'menshen-hipki', 'height=200,width=200,left=100,top=20');
    if (!popup) {
      fail(say('popup_blocked'), false);
      return;
    }
    show('info', say('working_challenge'));
    var challenge = null;
    var packagePromise = postForm('/.menshen/certificate/challenge', challengeFields())
      .then(function (reply) {
        if (reply.status !== 200 || !reply.body.challenge_id) {
          challenge = { refusal: reply.body };
          return null;
        }
        challenge = reply.body;
        show('info', say('working_sign'));
        var tbsPackage = {
          tbs: reply.body.tbs,
          tbsEncoding: reply.body.tbs_encoding === 'base64' ? 'base64' : 'NONE',
          hashAlgorithm: 'SHA256',
          withCardSN: 'true',
          pin: pinValue,
          nonce: '',
          func: 'MakeSignature',
          signatureType: 'PKCS7',
        };
        pinValue = '';
        return tbsPackage;
      }, function () {
        challenge = { network: true };
        return null;
      })
      .finally(function () {
        // The PIN lives only until the package is handed over.
        pinValue = '';
      });
    signWithComponent(popup, packagePromise).then(function (result) {
      if (challenge && challenge.network) return fail(say('network'), false);
      if (challenge && challenge.refusal) return fail(serverMessage(challenge.refusal), false);
      if (result.failure === 'timeout') return fail(say('timeout'), false);
      var answer = result.answer || {};
      var rc = Number(answer.ret_code);
      if (rc !== 0) {
        return fail(componentMessage(answer), rc === RC_NO_CARD || rc === RC_NO_READER);
      }
      show('info', say('working_verify'));
      return postForm('/.menshen/certificate/verify', {
        csrf: CSRF,
        challenge_id: challenge.challenge_id,
        signature_type: 'PKCS7',
        signature: answer.signature || '',
        certb64: answer.certb64 || '',
      }).then(function (reply) {
        if (reply.status === 200 && reply.body.ok && typeof reply.body.next === 'string' && reply.body.next.charAt(0) === '/') {
          if (PURPOSE === 'bind') {
            clearMessage();
            form.hidden = true;
            done.hidden = false;
            done.setAttribute('data-next', reply.body.next);
            doneOk.focus();
          } else {
            window.location.assign(reply.body.next);
          }
          return;
        }
        fail(serverMessage(reply.body), false);
      }, function () {
        fail(say('network'), false);
      });
    });
  }

  form.addEventListener('submit', onSubmit);
  recheck.addEventListener('click', function () {
    if (!busy) {
      clearMessage();
      check();
    }
  });
  doneOk.addEventListener('click', function () {
    window.location.assign(done.getAttribute('data-next') || '/.menshen/login');
  });
  check();
})();
