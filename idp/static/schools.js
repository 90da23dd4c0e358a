// The school picker (idp/templates/accounts/_identify.html): each select fills the next one from
// /api/schools as soon as it changes. Without this script the form still works, one submit per step.
(function () {
  "use strict";
  function option(value, label) {
    var o = document.createElement("option");
    o.value = value;
    o.textContent = label;
    return o;
  }
  function reset(select) {
    var first = select.options[0];
    select.innerHTML = "";
    select.appendChild(option("", first ? first.textContent : "—"));
    select.value = "";
    select.disabled = true;
  }
  function fill(select, items) {
    items.forEach(function (item) { select.appendChild(option(item[0], item[1])); });
    select.disabled = items.length === 0;
  }
  function get(url) {
    return fetch(url, { headers: { Accept: "application/json" } }).then(function (r) {
      if (!r.ok) { throw new Error(r.status); }
      return r.json();
    });
  }
  document.querySelectorAll("[data-school-picker]").forEach(function (picker) {
    var county = picker.querySelector("[data-step=county]");
    var district = picker.querySelector("[data-step=district]");
    var level = picker.querySelector("[data-step=level]");
    var school = picker.querySelector("[data-step=school]");
    if (!county || !district || !level || !school) { return; }
    [district, level, school].forEach(function (s) { if (s.options.length <= 1) { s.disabled = true; } });
    county.addEventListener("change", function () {
      [district, level, school].forEach(reset);
      if (!county.value) { return; }
      get("/api/schools/districts?county=" + encodeURIComponent(county.value)).then(function (data) {
        fill(district, data.districts.map(function (d) { return [String(d.id), d.name]; }));
      });
    });
    district.addEventListener("change", function () {
      [level, school].forEach(reset);
      if (!district.value) { return; }
      get("/api/schools/levels?county=" + encodeURIComponent(county.value) + "&district=" +
          encodeURIComponent(district.value)).then(function (data) {
        fill(level, data.levels.map(function (l) { return [l, l]; }));
      });
    });
    level.addEventListener("change", function () {
      reset(school);
      if (!level.value) { return; }
      get("/api/schools?county=" + encodeURIComponent(county.value) + "&district=" +
          encodeURIComponent(district.value) + "&level=" + encodeURIComponent(level.value)).then(function (data) {
        fill(school, data.schools.map(function (s) { return [s.code, s.name]; }));
      });
    });
  });
})();
