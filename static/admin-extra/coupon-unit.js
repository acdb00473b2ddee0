/* The coupon form: show the value field of the chosen unit (an amount with its currency, free
 * sessions or a percentage) and hide the others, unless they hold a value or an error, so that
 * nothing typed is ever hidden. No framework. */
(function () {
  "use strict";

  var FIELDS = {money: ["amount", "currency"], sessions: ["sessions"],
                percentage: ["percentage"]};

  function rowOf(name) {
    var input = document.getElementById("id_" + name);
    return input ? input.closest(".form-row") : null;
  }

  function update(unit) {
    Object.keys(FIELDS).forEach(function (key) {
      var name = FIELDS[key][0];
      var row = rowOf(name);
      var input = document.getElementById("id_" + name);
      if (!row || !input) {
        return;
      }
      var keep = !unit || key === unit || input.value !== "" ||
        row.querySelector(".errorlist") !== null;
      row.hidden = !keep;
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var select = document.getElementById("id_unit");
    if (!select) {
      return;
    }
    update(select.value);
    select.addEventListener("change", function () { update(select.value); });
  });
})();
