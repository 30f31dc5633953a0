(function () {
  var box = document.getElementById("autorefresh");
  if (!box) { return; }
  var key = "reconciler-watch-autorefresh";
  try { box.checked = window.localStorage.getItem(key) !== "off"; } catch (e) {}
  box.addEventListener("change", function () {
    try { window.localStorage.setItem(key, box.checked ? "on" : "off"); } catch (e) {}
  });
  var seconds = parseInt(box.getAttribute("data-seconds"), 10) || 30;
  window.setInterval(function () {
    var busy = document.activeElement && document.activeElement.matches("input[type=search], select");
    if (box.checked && !document.hidden && !busy) { window.location.reload(); }
  }, seconds * 1000);
})();
