// The console's replay player: re-streams a recorded answer with its
// original timing (1x, 4x, or at once). The segments come from the
// event list the server rendered (offset in data-at-ms, text in the
// .ev-text cell); the recording is attacker-controlled, so this script
// only ever reads and sets textContent (nothing is parsed as HTML) and
// adds no inline script or style (the console's CSP forbids both).
(function () {
  "use strict";
  var root = document.getElementById("player");
  if (!root) return;
  var segs = [];
  document.querySelectorAll("#events tbody tr[data-at-ms]").forEach(function (tr) {
    var at = parseFloat(tr.getAttribute("data-at-ms"));
    var cell = tr.querySelector(".ev-text");
    segs.push({ at: isFinite(at) && at > 0 ? at : 0, text: cell ? cell.textContent : "" });
  });
  var out = document.getElementById("player-out");
  var status = document.getElementById("player-status");
  var speed = document.getElementById("player-speed");
  var next = 0;      // the next segment to write
  var pos = 0;       // recording time reached, in ms
  var base = 0;      // performance.now() at recording time 0, at this speed
  var timer = null;

  function factor() { return speed.value === "max" ? 0 : parseFloat(speed.value) || 1; }
  function say(s) { status.textContent = s; }

  function write(i) {
    var span = document.createElement("span");
    span.textContent = segs[i].text;
    out.appendChild(span);
  }

  function step() {
    timer = null;
    var f = factor(), now = performance.now();
    while (next < segs.length && (f === 0 || base + segs[next].at / f <= now)) {
      pos = segs[next].at;
      write(next++);
    }
    if (next >= segs.length) {
      say("finished: " + segs.length + " parts");
      return;
    }
    timer = setTimeout(step, base + segs[next].at / f - now);
  }

  function play() {
    if (timer !== null) return;
    if (next >= segs.length) restart();
    var f = factor();
    base = performance.now() - (f === 0 ? 0 : pos / f);
    say("playing at " + speed.options[speed.selectedIndex].text);
    step();
  }

  function pause() {
    if (timer === null) return;
    clearTimeout(timer);
    timer = null;
    var f = factor();
    if (f > 0) pos = Math.min((performance.now() - base) * f, next < segs.length ? segs[next].at : pos);
    say("paused at +" + pos.toFixed(1) + " ms (" + next + " of " + segs.length + " parts)");
  }

  function restart() {
    var playing = timer !== null;
    if (playing) { clearTimeout(timer); timer = null; }
    out.textContent = "";
    next = 0;
    pos = 0;
    say("ready");
    if (playing) play();
  }

  document.getElementById("player-play").addEventListener("click", play);
  document.getElementById("player-pause").addEventListener("click", pause);
  document.getElementById("player-restart").addEventListener("click", restart);
  speed.addEventListener("change", function () {
    if (timer !== null) { pause(); play(); }
  });
  root.hidden = false;
})();
