// 更換圖片 (a new captcha picture) reloads the form page; this keeps what was typed in the
// account field by carrying it in the link (never the password). Without JavaScript the link
// still works and the server refills the name it last received.
(function () {
  'use strict';
  var link = document.getElementById('captcha-refresh');
  if (!link) return;
  link.addEventListener('click', function () {
    var field = document.getElementById(link.getAttribute('data-keep') || '');
    var param = link.getAttribute('data-param');
    if (!field || !param) return;
    var url = new URL(link.href, window.location.href);
    if (field.value) {
      url.searchParams.set(param, field.value);
    } else {
      url.searchParams.delete(param);
    }
    link.href = url.toString();
  });
})();
