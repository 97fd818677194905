/* TagDesk rule editor: the conditions as a form (groups and conditions with field, operator,
 * value and window) that writes the JSON tree into the "conditions" textarea, which stays
 * editable: editing the JSON by hand rebuilds the form. Conditions the form does not know
 * (ratios, custom RFM thresholds) are kept as small JSON boxes. No library. */
(function () {
  "use strict";

  var schema = null, textarea = null, root = null, box = null, T = {};

  function h(tag, attrs, children) {
    var el = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") el.textContent = attrs[k];
      else if (k === "className") el.className = attrs[k];
      else el.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) el.appendChild(c); });
    return el;
  }

  function select(options, value, onChange, label) {
    var s = h("select", {"aria-label": label || ""});
    options.forEach(function (o) {
      var opt = h("option", {value: o[0], text: o[1]});
      if (String(o[0]) === String(value)) opt.selected = true;
      s.appendChild(opt);
    });
    s.addEventListener("change", function () { onChange(s.value); });
    return s;
  }

  function input(type, value, onChange, attrs) {
    var i = h("input", Object.assign({type: type}, attrs || {}));
    i.value = value === undefined || value === null ? "" : value;
    i.addEventListener("input", function () { onChange(i.value); });
    return i;
  }

  function num(text) {
    if (text === "" || text === null || text === undefined) return null;
    var n = Number(text);
    return isNaN(n) ? text : n;  // a number is stored as a number; the validator reports text
  }

  function button(text, onClick, cls) {
    var b = h("button", {type: "button", className: "button td-rb-button " + (cls || ""), text: text});
    b.addEventListener("click", function (e) { e.preventDefault(); onClick(); });
    return b;
  }

  // --- model <-> JSON tree ------------------------------------------------------------------

  function fromTree(raw) {
    if (raw && typeof raw === "object" && !Array.isArray(raw)) {
      if (Array.isArray(raw.all) && Object.keys(raw).length === 1) {
        return {group: "all", children: raw.all.map(fromTree)};
      }
      if (Array.isArray(raw.any)) {
        var keys = Object.keys(raw).filter(function (k) { return k !== "any" && k !== "at_least"; });
        if (!keys.length) {
          return {group: raw.at_least > 1 ? "at_least" : "any", at_least: raw.at_least || 1,
                  children: raw.any.map(fromTree)};
        }
      }
      if ("not" in raw && Object.keys(raw).length === 1) {
        return {group: "not", children: [fromTree(raw.not)]};
      }
      if ("attribute" in raw && schema.attributes[raw.attribute]) return Object.assign({leaf: "attribute"}, raw);
      if ("event" in raw && !("ratio" in raw)) return Object.assign({leaf: "event"}, raw);
      if ("tag" in raw) return Object.assign({leaf: "tag"}, raw);
      if ("rfm" in raw && !raw.thresholds) return Object.assign({leaf: "rfm"}, raw);
    }
    return {leaf: "json", raw: raw};
  }

  function toTree(node) {
    if (node.group) {
      var kids = node.children.map(toTree);
      if (node.group === "all") return {all: kids};
      if (node.group === "any") return {any: kids};
      if (node.group === "at_least") return {any: kids, at_least: node.at_least || 1};
      return {not: kids.length === 1 ? kids[0] : {all: kids}};
    }
    var out = {};
    Object.keys(node).forEach(function (k) {
      if (k !== "leaf" && k !== "raw" && node[k] !== null && node[k] !== undefined && node[k] !== "") out[k] = node[k];
    });
    if (node.leaf === "json") return node.raw;
    return out;
  }

  function write() {
    textarea.value = JSON.stringify(toTree(root), null, 2);
    textarea.dispatchEvent(new Event("input", {bubbles: true}));  // the live check runs
  }

  // --- rendering -----------------------------------------------------------------------------

  function valueType(node) {
    if (node.leaf === "attribute") return schema.attributes[node.attribute].type;
    if (node.leaf === "event") return (schema.aggregates[node.agg || "count"] || {}).type || "number";
    return "number";
  }

  function operatorsFor(node) {
    if (node.leaf === "attribute") return schema.attributes[node.attribute].operators;
    return schema.operators_by_type[valueType(node)];
  }

  function valueEditor(node) {
    var op = schema.operators[node.op] || {arity: "one"};
    var type = valueType(node), numeric = type !== "text";
    var kind = numeric ? "number" : "text";
    if (op.arity === "none") { delete node.value; return null; }
    if (op.arity === "two") {
      var pair = Array.isArray(node.value) ? node.value : [null, null];
      node.value = pair;
      return h("span", {}, [
        input(kind, pair[0], function (v) { pair[0] = numeric ? num(v) : v; write(); }, {"aria-label": T.from, step: "any"}),
        h("span", {text: " – "}),
        input(kind, pair[1], function (v) { pair[1] = numeric ? num(v) : v; write(); }, {"aria-label": T.to, step: "any"})
      ]);
    }
    if (op.arity === "many") {
      var list = Array.isArray(node.value) ? node.value : [];
      return input("text", list.join(", "), function (v) {
        node.value = v.split(/[,，;；]/).map(function (x) { return x.trim(); })
          .filter(Boolean).map(function (x) { return numeric ? num(x) : x; });
        write();
      }, {placeholder: T.list, "aria-label": T.value});
    }
    if (Array.isArray(node.value)) node.value = null;
    return input(kind, node.value, function (v) { node.value = numeric ? num(v) : v; write(); },
                 {"aria-label": T.value, step: "any"});
  }

  function opSelect(node, rerender) {
    var ops = operatorsFor(node);
    if (ops.indexOf(node.op) < 0) node.op = ops[0];
    return select(ops.map(function (k) { return [k, schema.operators[k].label]; }), node.op,
      function (v) { node.op = v; write(); rerender(); }, T.operator);
  }

  function windowEditor(node) {
    var w = node.window || null;
    var mode = !w ? "" : ("days" in w ? "days" : "dates");
    var wrap = h("span", {className: "td-rb-window"});
    function draw() {
      wrap.replaceChildren(select([["", T.anytime], ["days", T.last_days], ["dates", T.between_dates]], mode,
        function (v) {
          mode = v;
          node.window = v === "days" ? {days: 30} : v === "dates" ? {from: "", to: ""} : null;
          write(); draw();
        }, T.window));
      if (mode === "days") {
        wrap.appendChild(input("number", node.window.days, function (v) { node.window.days = num(v); write(); },
                               {min: 1, "aria-label": T.days}));
      } else if (mode === "dates") {
        wrap.appendChild(input("date", node.window.from, function (v) { node.window.from = v; write(); }, {"aria-label": T.from}));
        wrap.appendChild(input("date", node.window.to, function (v) { node.window.to = v; write(); }, {"aria-label": T.to}));
      }
    }
    draw();
    return wrap;
  }

  function leafEditor(node, parent, index) {
    var row = h("div", {className: "td-rb-leaf"});
    function rerender() { row.replaceWith(leafEditor(node, parent, index)); }
    var kinds = [["attribute", T.attribute], ["event", T.event], ["tag", T.tag], ["rfm", T.rfm], ["json", "JSON"]];
    row.appendChild(select(kinds, node.leaf, function (v) {
      var fresh = blankLeaf(v);
      Object.keys(node).forEach(function (k) { delete node[k]; });
      Object.assign(node, fresh);
      write(); rerender();
    }, T.kind));
    if (node.leaf === "attribute") {
      row.appendChild(select(Object.keys(schema.attributes).map(function (k) { return [k, schema.attributes[k].label]; }),
        node.attribute, function (v) { node.attribute = v; node.value = null; write(); rerender(); }, T.field));
      row.appendChild(opSelect(node, rerender));
      row.appendChild(valueEditor(node));
    } else if (node.leaf === "event") {
      if (!node.agg) node.agg = "count";
      row.appendChild(select(Object.keys(schema.aggregates).map(function (k) { return [k, schema.aggregates[k].label]; }),
        node.agg, function (v) {
          node.agg = v;
          if (schema.aggregates[v].measure) node.measure = node.measure || "amount"; else delete node.measure;
          write(); rerender();
        }, T.aggregate));
      if (schema.aggregates[node.agg].measure) {
        row.appendChild(select(Object.keys(schema.measures).map(function (k) { return [k, schema.measures[k]]; }),
          node.measure || "amount", function (v) { node.measure = v; write(); }, T.measure));
      }
      row.appendChild(select(Object.keys(schema.events).map(function (k) { return [k, schema.events[k]]; }),
        node.event, function (v) { node.event = v; write(); }, T.event));
      Object.keys(schema.event_filters).forEach(function (k) {
        row.appendChild(input("text", node[k], function (v) { node[k] = v.trim() || null; write(); },
                              {placeholder: schema.event_filters[k], "aria-label": schema.event_filters[k], size: 10}));
      });
      row.appendChild(windowEditor(node));
      row.appendChild(opSelect(node, rerender));
      row.appendChild(valueEditor(node));
    } else if (node.leaf === "tag") {
      row.appendChild(select([["has", T.has], ["lacks", T.lacks]], node.op || "has",
        function (v) { node.op = v; write(); }, T.operator));
      var tags = schema.tags.map(function (t) { return [t[0], t[1]]; });
      if (!node.tag && tags.length) node.tag = tags[0][0];
      row.appendChild(select(tags, node.tag, function (v) { node.tag = num(v); write(); }, T.tag));
    } else if (node.leaf === "rfm") {
      row.appendChild(select(Object.keys(schema.rfm).map(function (k) { return [k, schema.rfm[k]]; }),
        node.rfm, function (v) { node.rfm = v; write(); }, T.rfm));
      row.appendChild(opSelect(node, rerender));
      row.appendChild(valueEditor(node));
    } else {
      var area = h("textarea", {rows: 3, cols: 60, className: "td-rb-json", "aria-label": "JSON"});
      area.value = JSON.stringify(node.raw);
      area.addEventListener("input", function () {
        try { node.raw = JSON.parse(area.value); area.classList.remove("td-rb-bad"); write(); }
        catch (e) { area.classList.add("td-rb-bad"); }
      });
      row.appendChild(area);
    }
    row.appendChild(button("✕", function () { parent.children.splice(index, 1); write(); redraw(); }, "td-rb-remove"));
    return row;
  }

  function blankLeaf(kind) {
    if (kind === "event") return {leaf: "event", event: Object.keys(schema.events)[0], agg: "count", window: {days: 30}, op: "gte", value: 1};
    if (kind === "tag") return {leaf: "tag", tag: schema.tags.length ? schema.tags[0][0] : null, op: "has"};
    if (kind === "rfm") return {leaf: "rfm", rfm: "recency", op: "gte", value: 4};
    if (kind === "json") return {leaf: "json", raw: {}};
    var first = Object.keys(schema.attributes)[0];
    return {leaf: "attribute", attribute: first, op: schema.attributes[first].operators[0], value: null};
  }

  function groupEditor(node, parent, index) {
    var wrap = h("div", {className: "td-rb-group"});
    var head = h("div", {className: "td-rb-head"});
    head.appendChild(select([["all", T.all], ["any", T.any], ["at_least", T.at_least], ["not", T.not]],
      node.group, function (v) { node.group = v; write(); redraw(); }, T.group));
    if (node.group === "at_least") {
      head.appendChild(input("number", node.at_least || 2, function (v) { node.at_least = num(v); write(); },
                             {min: 1, "aria-label": T.at_least}));
    }
    if (parent) head.appendChild(button("✕", function () { parent.children.splice(index, 1); write(); redraw(); }, "td-rb-remove"));
    wrap.appendChild(head);
    var list = h("div", {className: "td-rb-children"});
    node.children.forEach(function (child, i) {
      list.appendChild(child.group ? groupEditor(child, node, i) : leafEditor(child, node, i));
    });
    wrap.appendChild(list);
    if (node.group !== "not" || node.children.length === 0) {
      wrap.appendChild(h("div", {className: "td-rb-add"}, [
        button(T.add_condition, function () { node.children.push(blankLeaf("attribute")); write(); redraw(); }),
        button(T.add_group, function () { node.children.push({group: "all", children: [blankLeaf("attribute")]}); write(); redraw(); })
      ]));
    }
    return wrap;
  }

  function redraw() {
    box.replaceChildren(groupEditor(root, null, 0));
  }

  function load() {
    var raw;
    try { raw = textarea.value.trim() ? JSON.parse(textarea.value) : null; }
    catch (e) { return false; }  // the JSON is being edited by hand: keep the form as it is
    if (raw === null) { root = {group: "all", children: [blankLeaf("attribute")]}; return true; }
    var node = fromTree(raw);
    root = node.group ? node : {group: "all", children: [node]};
    return true;
  }

  function init() {
    var data = document.getElementById("td-rule-schema");
    textarea = document.getElementById("id_tree");
    if (!data || !textarea) return;
    schema = JSON.parse(data.textContent);
    T = schema.labels;
    box = h("div", {className: "td-rule-builder", id: "td-rule-builder"});
    // A row of its own above the JSON, full width: conditions read left to right.
    var row = textarea.closest(".form-row") || textarea.parentNode;
    row.parentNode.insertBefore(h("div", {className: "form-row td-rule-builder-row"}, [
      h("label", {text: T.title}), h("p", {className: "help", text: T.help}), box
    ]), row);
    var wasEmpty = !textarea.value.trim() || textarea.value.trim() === "null";
    load();
    redraw();
    if (wasEmpty) write();
    textarea.addEventListener("change", function () { if (load()) redraw(); });
  }

  document.addEventListener("DOMContentLoaded", init);
})();
