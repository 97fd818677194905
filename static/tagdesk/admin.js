/* TagDesk admin: drag-sort of tag groups and tags (HTML5 drag and drop, no library) and a
 * native colour picker beside hex colour inputs. */
(function () {
  "use strict";

  function csrfToken() {
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    if (input) return input.value;
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function handleOf(row) { return row ? row.querySelector(".td-drag") : null; }

  function depthOf(row) {
    var el = row.querySelector("[data-depth]");
    return el ? parseInt(el.getAttribute("data-depth"), 10) || 0 : 0;
  }

  // A row and the rows of its subtree (deeper rows right below it) move together.
  function block(row) {
    var rows = [row], depth = depthOf(row), next = row.nextElementSibling;
    while (next && next.querySelector("[data-depth]") && depthOf(next) > depth) {
      rows.push(next);
      next = next.nextElementSibling;
    }
    return rows;
  }

  function siblings(handle) {
    var found = [];
    document.querySelectorAll(".td-drag").forEach(function (h) {
      if (h.dataset.parent === handle.dataset.parent && h.dataset.url === handle.dataset.url) {
        found.push(h.dataset.id);
      }
    });
    return found;
  }

  function status(text, failed) {
    var box = document.getElementById("td-sort-status");
    if (!box) return;
    box.textContent = text;
    box.className = failed ? "td-sort-status td-failed" : "td-sort-status";
  }

  function save(handle, ids) {
    var box = document.getElementById("td-sort-status") || {dataset: {}};
    var body = new URLSearchParams();
    ids.forEach(function (id) { body.append("ids", id); });
    status(box.dataset.saving || "…");
    fetch(handle.dataset.url, {
      method: "POST",
      credentials: "same-origin",
      headers: {"X-CSRFToken": csrfToken(), "X-Requested-With": "XMLHttpRequest"},
      body: body
    }).then(function (response) {
      return response.json().then(function (data) {
        if (!response.ok) throw new Error(data.error || response.statusText);
      });
    }).then(function () {
      status(box.dataset.saved || "OK");
    }, function (error) {
      status((box.dataset.failed || "") + " " + error.message, true);
    });
  }

  var dragged = null, before = "";

  document.addEventListener("dragstart", function (event) {
    var handle = event.target.closest && event.target.closest(".td-drag");
    if (!handle) return;
    dragged = handle.closest("tr");
    before = siblings(handle).join(",");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", handle.dataset.id);
    dragged.classList.add("td-dragging");
  });

  document.addEventListener("dragover", function (event) {
    if (!dragged) return;
    var row = event.target.closest && event.target.closest("tr");
    var mine = handleOf(dragged), theirs = handleOf(row);
    if (!row || row === dragged || !theirs) return;
    if (theirs.dataset.parent !== mine.dataset.parent || theirs.dataset.url !== mine.dataset.url) {
      return;
    }
    event.preventDefault();
    var moving = block(dragged);
    if (moving.indexOf(row) !== -1) return;
    var rect = row.getBoundingClientRect();
    var target = block(row);
    var anchor = event.clientY > rect.top + rect.height / 2
      ? target[target.length - 1].nextElementSibling
      : row;
    moving.forEach(function (r) { row.parentNode.insertBefore(r, anchor); });
  });

  document.addEventListener("drop", function (event) {
    if (dragged) event.preventDefault();
  });

  document.addEventListener("dragend", function () {
    if (!dragged) return;
    var handle = handleOf(dragged);
    dragged.classList.remove("td-dragging");
    dragged = null;
    var ids = siblings(handle);
    if (ids.join(",") !== before) save(handle, ids);
  });

  // Colour inputs: keep a native picker and the hex text box in step.
  function attachPicker(input) {
    if (input.dataset.tdPicker) return;
    input.dataset.tdPicker = "1";
    var picker = document.createElement("input");
    picker.type = "color";
    picker.className = "td-colour-picker";
    var hex = /^#[0-9a-fA-F]{6}$/;
    picker.value = hex.test(input.value) ? input.value
      : hex.test(input.placeholder) ? input.placeholder : "#1677ff";
    picker.addEventListener("input", function () { input.value = picker.value.toUpperCase(); });
    input.addEventListener("input", function () {
      if (/^#[0-9a-fA-F]{6}$/.test(input.value)) picker.value = input.value;
    });
    input.insertAdjacentElement("afterend", picker);
  }

  function init() {
    document.querySelectorAll("input.td-colour").forEach(function (input) {
      if (!input.closest(".empty-form")) attachPicker(input);
    });
  }

  document.addEventListener("DOMContentLoaded", init);
  document.addEventListener("formset:added", init);
})();
