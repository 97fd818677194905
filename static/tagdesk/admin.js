/* TagDesk admin: drag-sort of tag groups and tags (HTML5 drag and drop, no library), a
 * native colour picker beside hex colour inputs, and tag search for every tag picker (the
 * server's ranked prefix / substring / pinyin search: typing "nn" shows 牛奶过敏). */
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

  // Tag search: hide the picker's tags that do not match (ticked / selected ones stay shown).
  function tagIdOf(el) {
    var id = el.getAttribute("data-tag-id") || el.value || "";
    if (/^[0-9]+$/.test(id)) return id;
    var inQuery = id.match(/[?&]tag=([0-9]+)(&|$)/);  // the tag filter's options are links
    return inQuery ? inQuery[1] : null;
  }

  function rowOf(box) {
    var item = box.closest("label") || box;
    return item.parentElement && item.parentElement.tagName === "DIV" ? item.parentElement : item;
  }

  function applyMatches(container, ids) {
    container.querySelectorAll("input[type=checkbox], input[type=radio]").forEach(function (box) {
      var id = tagIdOf(box);
      // The "(none)" choice of an exclusive group stays, as do ticked tags.
      rowOf(box).hidden = !!(ids && id && !ids[id] && !box.checked);
    });
    container.querySelectorAll("option").forEach(function (option) {
      var id = tagIdOf(option);
      option.hidden = !!(ids && id && !ids[id] && !option.selected);
    });
    container.querySelectorAll("optgroup").forEach(function (group) {
      group.hidden = !!ids && !group.querySelector("option:not([hidden])");
    });
    container.querySelectorAll(".td-tag-group").forEach(function (row) {
      var shown = Array.prototype.some.call(
        row.querySelectorAll("input[type=checkbox], input[type=radio]"),
        function (box) { return tagIdOf(box) && !rowOf(box).hidden; });
      row.hidden = !!ids && !shown;
    });
  }

  function attachSearch(input, container) {
    if (input.dataset.tdSearchReady) return;
    input.dataset.tdSearchReady = "1";
    var timer = null, serial = 0;
    var status = input.parentElement.querySelector(".td-tag-search-status");
    input.addEventListener("keydown", function (event) {
      if (event.key === "Enter") event.preventDefault();  // searching never submits the form
    });
    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        var query = input.value.trim(), mine = ++serial;
        if (!query) { applyMatches(container, null); if (status) status.textContent = ""; return; }
        var url = input.dataset.tdSearch + (input.dataset.tdSearch.indexOf("?") < 0 ? "?" : "&") +
          "q=" + encodeURIComponent(query);
        fetch(url, {credentials: "same-origin", headers: {"X-Requested-With": "XMLHttpRequest"}})
          .then(function (response) { return response.json(); })
          .then(function (data) {
            if (mine !== serial) return;  // a later keystroke has its own answer
            var ids = {};
            (data.results || []).forEach(function (hit) { ids[hit.id] = true; });
            applyMatches(container, ids);
            if (status) status.textContent = (data.results || []).length ? "" : (status.dataset.none || "");
          });
      }, 200);
    });
  }

  function initTagSearch() {
    document.querySelectorAll("input.td-tag-search").forEach(function (input) {
      var container = document.querySelector(input.dataset.tdTarget);
      if (container) attachSearch(input, container);
    });
    // Selects that ask for a search box (bulk "Add tags…", filters): one box above each.
    document.querySelectorAll("select[data-td-search]").forEach(function (select) {
      if (select.dataset.tdSearchReady) return;
      var input = document.createElement("input");
      input.type = "search";
      input.className = "td-tag-search td-tag-search-small";
      input.placeholder = select.dataset.tdPlaceholder || "";
      input.setAttribute("aria-label", select.dataset.tdPlaceholder || "");
      input.autocomplete = "off";
      input.dataset.tdSearch = select.dataset.tdSearch;
      select.dataset.tdSearchReady = "1";
      select.parentNode.insertBefore(input, select);
      attachSearch(input, select);
    });
  }

  function init() {
    document.querySelectorAll("input.td-colour").forEach(function (input) {
      if (!input.closest(".empty-form")) attachPicker(input);
    });
    initTagSearch();
  }

  document.addEventListener("DOMContentLoaded", init);
  document.addEventListener("formset:added", init);
})();
