// fjord-console's only script: the live tail of /topics/{t}/tail. It polls
// the URL in the #tail table's data-poll with the positions in data-next,
// appends the rows the server rendered (and escaped), and keeps the newest
// 1,000. Pages without a #tail table are left alone; every other page works
// without script.
(function () {
  "use strict";
  var table = document.getElementById("tail");
  if (!table) {
    return;
  }
  var rows = table.tBodies[0];
  var status = document.getElementById("tail-status");
  var pause = document.getElementById("tail-pause");
  var poll = table.getAttribute("data-poll");
  var next = table.getAttribute("data-next");
  var every = parseInt(table.getAttribute("data-every"), 10) || 1000;
  var paused = false;
  var busy = false;
  var seen = 0;

  function say(text, bad) {
    status.textContent = text;
    status.className = bad ? "bad" : "";
  }

  pause.addEventListener("click", function () {
    paused = !paused;
    pause.textContent = paused ? "Resume" : "Pause";
    say(paused ? "Paused: " + seen + " new message(s) so far." : "Following again.", false);
  });

  function once() {
    if (paused || busy) {
      return;
    }
    busy = true;
    fetch(poll + "&next=" + encodeURIComponent(next), { cache: "no-store", credentials: "same-origin" })
      .then(function (r) {
        if (!r.ok) {
          throw new Error("HTTP " + r.status);
        }
        return r.json();
      })
      .then(function (j) {
        if (j.error) {
          say(j.error, true);
          return;
        }
        next = j.next;
        table.setAttribute("data-next", next);
        if (j.count > 0) {
          rows.insertAdjacentHTML("beforeend", j.rows);
          seen += j.count;
          while (rows.rows.length > 1000) {
            rows.deleteRow(0);
          }
        }
        say("Live: " + seen + " new message(s) since this page opened." +
            (j.note ? " Not read: " + j.note : ""), !!j.note);
      })
      .catch(function (e) {
        say("The console or the cluster did not answer (" + e.message + "); trying again.", true);
      })
      .then(function () {
        busy = false;
      });
  }

  setInterval(once, every);
  once();
})();
